// Two people chatting in the web client, each in their own browser context (Debian's chromium via
// playwright-core), for tests/tests/web_client.rs.
// Usage: node web_chat.js <server url> <user a> <user b> <password> <screenshot dir>
// A creates a channel inviting B; messages, typing, a reaction, a thread reply and an edit must
// reach the other side live; a script payload stays inert; axe-core finds no serious violation.
// Prints one line per step; after `WAITING_UNREAD` it expects the test to post to #general as B.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [url, userA, userB, password, shots] = process.argv.slice(2);
const STEP_MS = 20000;
const unique = Date.now().toString(36);
const channel = `talk-${unique}`;
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function step(line) {
  process.stdout.write(line + '\n');
}

async function signIn(browser, user, problems) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`${user} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${user} page error: ${e.message}`));
  page.on('dialog', (d) => d.accept());
  await page.goto(url);
  await page.getByLabel('Username or e-mail').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: '# general' }).waitFor();
  return page;
}

/** axe-core in the page (evaluated through the debugger protocol, so the CSP does not apply). */
async function accessibility(page, where) {
  const result = await page.evaluate(async (source) => {
    // eslint-disable-next-line no-eval
    (0, eval)(source);
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  }, AXE);
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (serious.length) throw new Error(`accessibility (${where}): ${JSON.stringify(serious)}`);
  step(`A11Y ${where} ${result.length} minor`);
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
    // The sign-in screen, before anyone signs in.
    const probe = await browser.newPage();
    await probe.goto(url);
    await probe.getByLabel('Username or e-mail').waitFor();
    await accessibility(probe, 'login');
    await probe.close();

    const a = await signIn(browser, userA, problems);
    const b = await signIn(browser, userB, problems);
    step('SIGNED_IN');

    // A creates a channel and invites B; it appears in B's list by itself.
    await a.getByRole('button', { name: '+ Channel' }).click();
    await a.getByLabel('Name', { exact: true }).fill(channel);
    await a.getByLabel(/^Invite/).fill(userB);
    await a.getByRole('button', { name: 'Create' }).click();
    await a.getByRole('heading', { name: `# ${channel}` }).waitFor();
    await b.getByRole('link', { name: new RegExp(`^Channel ${channel}`) }).click();
    await b.getByRole('heading', { name: `# ${channel}` }).waitFor();
    // History loaded: the room's streams were subscribed before it was asked for.
    await b.getByText('Start of the room.').waitFor();
    await a.getByText('Start of the room.').waitFor();
    step('CHANNEL_SHARED');

    // Typing shows on the other side, then the message arrives live.
    const boxA = a.getByRole('combobox', { name: new RegExp(`^Message in ${channel}`) });
    const boxB = b.getByRole('combobox', { name: new RegExp(`^Message in ${channel}`) });
    await boxA.pressSequentially('hi ');
    await b.getByText(`${userA} is typing…`).waitFor();
    await boxA.pressSequentially(`${userB}, this is _live_ ${unique}`);
    await boxA.press('Enter');
    await b.locator('li.msg', { hasText: `this is live ${unique}` }).locator('em', { hasText: 'live' }).waitFor();
    step('LIVE_A_TO_B');

    // B answers with a script payload: A sees it as text and nothing runs.
    const payload = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> reply ${unique}`;
    await boxB.fill(payload);
    await boxB.press('Enter');
    const reply = a.locator('li.msg', { hasText: `reply ${unique}` });
    await reply.waitFor();
    const body = await reply.locator('.body').evaluate((el) => ({ text: el.textContent, elements: el.querySelectorAll('script, img').length }));
    if (!body.text.includes('<script>window.__xss=1</script>') || body.elements) throw new Error('payload rendered as HTML: ' + JSON.stringify(body));
    step('LIVE_B_TO_A');

    // A reacts to B's reply; B sees the count.
    await reply.hover();
    await reply.getByRole('button', { name: 'React' }).click();
    await a.getByRole('menuitem', { name: ':+1:' }).click();
    await b.locator('li.msg', { hasText: `reply ${unique}` }).getByRole('button', { name: `:+1: by ${userA}` }).waitFor();
    step('REACTED');

    // B replies in a thread on A's message; A's message shows the reply count, A opens the thread.
    const first = b.locator('li.msg', { hasText: `this is live ${unique}` });
    await first.hover();
    await first.getByRole('button', { name: 'Reply in thread' }).click();
    const threadBox = b.getByRole('combobox', { name: /^Reply in thread/ });
    await threadBox.fill(`in the thread ${unique}`);
    await threadBox.press('Enter');
    await b.locator('.panel li.msg', { hasText: `in the thread ${unique}` }).waitFor();
    await a.locator('li.msg', { hasText: `this is live ${unique}` }).getByRole('button', { name: '1 reply' }).click();
    await a.locator('.panel li.msg', { hasText: `in the thread ${unique}` }).waitFor();
    await a.screenshot({ path: path.join(shots, 'thread-desktop-light.png') });
    await a.getByRole('button', { name: 'Close panel' }).click();
    step('THREAD');

    // A edits their message (Up in the empty box); B sees the new text.
    await boxA.click();
    await boxA.press('ArrowUp');
    await boxA.fill(`hi ${userB}, edited ${unique}`);
    await boxA.press('Enter');
    await b.getByRole('log').locator('li.msg', { hasText: `edited ${unique}` }).getByText('(edited)').waitFor();
    step('EDITED');

    // Someone posts in #general while A is elsewhere: an unread badge.
    step('WAITING_UNREAD');
    await a.getByRole('link', { name: /^Channel\s*general\s*, 1 unread/ }).waitFor();
    await a.screenshot({ path: path.join(shots, 'chat-desktop-light.png') });
    await accessibility(a, 'room');
    await b.emulateMedia({ colorScheme: 'dark' });
    await b.screenshot({ path: path.join(shots, 'chat-desktop-dark.png') });

    for (const page of [a, b]) {
      if ((await page.evaluate(() => window.__xss)) !== undefined) throw new Error('a payload ran');
    }
    if (problems.length) throw new Error(problems.join('\n'));
    step(`OK ${channel}`);
  } catch (e) {
    // what the pages logged says more than the step that timed out
    if (problems.length) e.message += `\nthe pages also reported:\n${problems.join('\n')}`;
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stderr.write((e && e.stack) || String(e));
  process.stderr.write('\n');
  process.exit(1);
});
