// Files, avatars and threads in the web client, two people in two browser contexts (Debian's
// chromium via playwright-core), for tests/tests/web_client.rs.
// Usage: node web_files.js <server url> <user a> <user b> <password> <channel> <fixtures dir> <screenshot dir>
// The test has made the channel (both are members), a thread with more replies than a history page
// and a message from B whose attachment carries script payloads; <fixtures dir> holds `photo.png`
// (large, so the progress bar has time to move) and `avatar.png`.
// Prints one line per step: THREAD, UPLOADED, PROGRESS, IMAGE_SEEN, DROPPED, XSS_INERT, AVATAR_SET,
// AVATAR_RESET, A11Y, OK.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [url, userA, userB, password, channel, fixtures, shots] = process.argv.slice(2);
const STEP_MS = 30000;
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DROPPED_NAME = `<img src=x onerror=window.__xss=1> & ' onmouseover='window.__xss=2'.txt`;
// What the server keeps of it: it drops the characters file systems refuse (`<`, `>`, `"`...).
const DROPPED_STORED = `img src=x onerror=window.__xss=1 & ' onmouseover='window.__xss=2'.txt`;
const DROPPED_TEXT = 'dropped notes\n'.repeat(200);

function step(line) {
  process.stdout.write(line + '\n');
}

async function signIn(browser, user, problems) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`${user} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${user} page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`${user} dialog: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(url);
  await page.getByLabel('Username or e-mail').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('a.room-link').first().waitFor();
  await page.goto(`${url}/channel/${channel}`);
  await page.getByRole('heading', { name: `# ${channel}` }).waitFor();
  return page;
}

async function accessibility(page, where) {
  const result = await page.evaluate(async (source) => {
    // eslint-disable-next-line no-eval
    (0, eval)(source);
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  }, AXE);
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (serious.length) throw new Error(`accessibility (${where}): ${JSON.stringify(serious)}`);
  return result.length;
}

/** The avatar's content type as the page sees it (with the page's cookies). */
async function avatarType(page, username) {
  return page.evaluate(async (u) => {
    const r = await fetch(`/avatar/${encodeURIComponent(u)}?fresh=${Date.now()}`, { cache: 'no-store' });
    return r.headers.get('content-type');
  }, username);
}

async function inert(page, who) {
  const state = await page.evaluate(() => ({
    xss: window.__xss,
    jsLinks: document.querySelectorAll('a[href^="javascript:" i], img[src^="javascript:" i], [onerror], [onmouseover]').length,
    injected: document.querySelectorAll('img[src="x"], script:not([src])').length,
  }));
  if (state.xss !== undefined || state.jsLinks || state.injected) throw new Error(`${who}: a payload became live: ${JSON.stringify(state)}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
  const problems = [];
  try {
    const a = await signIn(browser, userA, problems);
    const b = await signIn(browser, userB, problems);

    // The thread: the parent's count is the server's tcount (its replies are not in the room's
    // history), and the panel loads every reply, past the first page.
    const threadLink = a.locator('button.thread-link', { hasText: '120 replies' });
    await threadLink.waitFor();
    await threadLink.click();
    await a.locator('.thread-count', { hasText: '120 replies' }).waitFor();
    await a.waitForFunction(() => document.querySelectorAll('.panel ol.thread li.msg').length === 121);
    const last = await a.locator('.panel ol.thread li.msg').last().innerText();
    if (!last.includes('reply 119')) throw new Error(`the thread's last reply: ${last}`);
    await a.getByRole('button', { name: 'Close panel' }).click();
    step('THREAD');

    // Upload by button, with a throttled connection so the progress bar is seen moving.
    const cdp = await a.context().newCDPSession(a);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    const photo = path.join(fixtures, 'photo.png');
    const photoSize = fs.statSync(photo).size;
    await a.locator('.room-area .composer input[type="file"]').setInputFiles(photo);
    const tray = a.locator('.room-area .uploads li.upload');
    await tray.waitFor();
    const preview = await tray.locator('img.upload-preview').evaluate(async (img) => {
      await img.decode();
      return [img.naturalWidth, img.naturalHeight, img.src.slice(0, 5)];
    });
    if (preview[0] < 100 || preview[2] !== 'blob:') throw new Error(`image preview: ${preview}`);
    await a.screenshot({ path: path.join(shots, 'files-upload-tray.png') });
    await tray.getByLabel(/^Description/).fill('a photo <b>not bold</b>');
    await tray.getByRole('button', { name: 'Upload' }).click();
    // Sample the bar until the item leaves the tray.
    const samples = await a.evaluate(async () => {
      const seen = [];
      for (let i = 0; i < 1200; i += 1) {
        const bar = document.querySelector('.room-area .uploads progress:not([hidden])');
        const item = document.querySelector('.room-area .uploads li.upload');
        if (bar) seen.push([Number(bar.value), Number(bar.max), document.querySelector('.upload-state')?.textContent || '']);
        if (!item) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      return seen;
    });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const partial = samples.filter(([v, max]) => v > 0 && v < max);
    if (!partial.length || !samples.some(([, , text]) => / \d+ %$/.test(text))) {
      throw new Error(`no upload progress seen: ${JSON.stringify(samples.slice(0, 20))}`);
    }
    step(`PROGRESS ${partial.length} partial samples of ${photoSize} bytes`);
    await a.locator('.room-area li.msg img.attachment-image').waitFor();
    step('UPLOADED');

    // B sees the image (a thumbnail fetched with B's cookies: files are protected), its name and size.
    const seen = b.locator('li.msg', { has: b.locator('img.attachment-image') }).last();
    await seen.waitFor();
    const image = await seen.locator('img.attachment-image').evaluate(async (img) => {
      await img.decode();
      return { w: img.naturalWidth, h: img.naturalHeight, src: new URL(img.src).pathname };
    });
    if (image.w < 10 || !image.src.startsWith('/file-upload/')) throw new Error(`B's image: ${JSON.stringify(image)}`);
    const line = await seen.locator('.file-line').innerText();
    if (!line.includes('photo.png') || !/\d(\.\d)? (KB|MB)/.test(line)) throw new Error(`B's file line: ${line}`);
    const description = await seen.locator('.file-description').innerText();
    if (description !== 'a photo <b>not bold</b>') throw new Error(`B's description: ${description}`);
    await b.screenshot({ path: path.join(shots, 'files-room.png') });
    step(`IMAGE_SEEN ${image.w}x${image.h}`);

    // Drag and drop a text file whose name carries markup; B downloads it through the link.
    await a.evaluate(({ name, text }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], name, { type: 'text/plain' }));
      const area = document.querySelector('.room-area');
      area.dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: dt }));
      if (!area.classList.contains('dropping')) throw new Error('no drop target shown');
      area.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: dt }));
      area.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));
    }, { name: DROPPED_NAME, text: DROPPED_TEXT });
    const dropped = a.locator('.room-area .uploads li.upload');
    await dropped.waitFor();
    await dropped.getByLabel(/^Description/).fill('<script>window.__xss=3</script>');
    await dropped.getByLabel(/^Description/).press('Enter');
    const link = b.locator('a.file-link', { hasText: DROPPED_STORED });
    await link.waitFor();
    const fetched = await link.evaluate(async (el) => {
      const r = await fetch(el.getAttribute('href'));
      return { status: r.status, text: await r.text(), download: el.getAttribute('download') };
    });
    if (fetched.status !== 200 || fetched.text !== DROPPED_TEXT || fetched.download !== DROPPED_STORED) {
      throw new Error(`B's download: ${JSON.stringify({ ...fetched, text: fetched.text.slice(0, 40) })}`);
    }
    const sizeText = await b.locator('li.msg', { has: link }).locator('.file-size').innerText();
    if (!sizeText.includes('2.7 KB')) throw new Error(`the dropped file's size: ${sizeText}`);
    step('DROPPED');

    // Script and HTML in names, descriptions and attachment URLs stay text on both sides.
    const crafted = b.locator('li.msg', { hasText: 'crafted attachment' });
    await crafted.waitFor();
    const craftedName = await crafted.locator('.file-name').innerText();
    if (craftedName !== '<img src=x onerror=window.__xss=1>') throw new Error(`crafted title: ${craftedName}`);
    await b.locator('li.msg', { hasText: '<script>window.__xss=3</script>' }).waitFor();
    await crafted.hover();
    await a.locator('a.file-link', { hasText: DROPPED_STORED }).hover();
    await inert(a, userA);
    await inert(b, userB);
    step('XSS_INERT');

    // Avatar: upload one in the profile; B sees it change without reloading (the server's
    // updateAvatar event); then reset it, which B sees too.
    const theirSrc = (u) =>
      b.evaluate((name) => [...document.querySelectorAll(`li.msg img.avatar[data-username="${name}"]`)].map((i) => i.getAttribute('src')), u);
    const before = await theirSrc(userA);
    if (!before.length) throw new Error("B shows no avatar of A's");
    const defaultType = await avatarType(a, userA);
    await a.locator('.me-button').click();
    await a.getByLabel('Upload a new avatar').setInputFiles(path.join(fixtures, 'avatar.png'));
    await a.getByText('Avatar changed.').waitFor();
    const own = await a.locator(`.room-area li.msg img.avatar[data-username="${userA}"]`).first().evaluate(async (img) => {
      await img.decode();
      return img.getAttribute('src');
    });
    if (!own.includes('?etag=')) throw new Error(`own avatar not refreshed: ${own}`);
    const setType = await avatarType(a, userA);
    if (setType === defaultType || !/^image\/(png|jpeg|webp)/.test(setType)) throw new Error(`avatar type ${defaultType} -> ${setType}`);
    await b.waitForFunction(
      ([name, old]) => [...document.querySelectorAll(`li.msg img.avatar[data-username="${name}"]`)].every((i) => i.getAttribute('src') !== old),
      [userA, before[0]],
    );
    const theirs = b.locator(`li.msg img.avatar[data-username="${userA}"]`).first();
    const bType = await avatarType(b, userA);
    if (bType !== setType) throw new Error(`B sees avatar type ${bType}, A set ${setType}`);
    const bImage = await theirs.evaluate(async (img) => {
      await img.decode();
      return img.naturalWidth;
    });
    if (!bImage) throw new Error("B's avatar image did not load");
    const minor = await accessibility(a, 'profile');
    await a.screenshot({ path: path.join(shots, 'profile-avatar.png') });
    step(`AVATAR_SET ${setType}`);
    const setSrc = (await theirSrc(userA))[0];
    await a.getByRole('button', { name: 'Reset avatar' }).click();
    await a.getByText('Avatar reset.').waitFor();
    await b.waitForFunction(
      ([name, old]) => [...document.querySelectorAll(`li.msg img.avatar[data-username="${name}"]`)].every((i) => i.getAttribute('src') !== old),
      [userA, setSrc],
    );
    const resetType = await avatarType(a, userA);
    if (resetType !== defaultType) throw new Error(`after reset the avatar is ${resetType}, not ${defaultType}`);
    step('AVATAR_RESET');

    const roomMinor = await accessibility(b, 'files room');
    step(`A11Y ${minor + roomMinor} minor`);
    await inert(a, userA);
    await inert(b, userB);
    if (problems.length) throw new Error(problems.join('\n'));
    step('OK');
  } catch (e) {
    // what the pages logged says more than the step that timed out
    if (problems.length) e.message += `\nthe pages also reported:\n${problems.join('\n')}`;
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
