// Measures the web client in Debian's chromium (not a test; numbers for the README):
//   node measure.js <server url> <username> <password> <messages to seed> [existing channel]
// Prints the initial download (bytes over the wire, compressed), the time from navigation to the
// first rendered room list with a stored session, and, after seeding a channel with N messages (or
// reusing the named one) and scrolling all of them into memory, the JS heap and the number of DOM
// nodes; then frame times and the DOM size while scrolling through the loaded messages.
'use strict';

const { chromium } = require('playwright-core');

const [url, user, password, seedArg, existing] = process.argv.slice(2);
const seed = Number(seedArg || 10000);

async function api(path, body, auth) {
  const headers = { 'Content-Type': 'application/json' };
  if (auth) Object.assign(headers, { 'X-User-Id': auth.userId, 'X-Auth-Token': auth.authToken });
  const r = await fetch(`${url}/api/v1/${path}`, { method: body ? 'POST' : 'GET', headers, body: body && JSON.stringify(body) });
  const data = await r.json();
  if (!data.success && data.status !== 'success') throw new Error(`${path}: ${JSON.stringify(data)}`);
  return data;
}

async function main() {
  const auth = (await api('login', { user, password })).data;
  const name = existing || `big-${Date.now().toString(36)}`;
  const rid = existing ? null : (await api('channels.create', { name }, auth)).channel._id;
  let next = existing ? seed : 0;
  const worker = async () => {
    while (next < seed) {
      const n = next++;
      await api('chat.postMessage', { roomId: rid, text: `message ${n} with some *markdown* and a link https://example.com/${n}` }, auth);
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 8 }, worker));
  if (!existing) console.log(`seeded ${seed} messages in #${name} in ${Date.now() - t0} ms`);

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(60000);
  const responses = [];
  page.on('response', (r) => responses.push(r));
  await page.goto(url, { waitUntil: 'load' });
  await page.getByLabel('Password').waitFor();
  let bytes = 0;
  for (const r of responses) {
    const sizes = await r.request().sizes();
    bytes += sizes.responseBodySize + sizes.responseHeadersSize;
    console.log(`  ${r.url().replace(url, '')} ${sizes.responseBodySize} B body (${r.headers()['content-encoding'] || 'identity'})`);
  }
  console.log(`initial download (sign-in screen, incl. headers): ${bytes} bytes`);

  await page.getByLabel('Username or e-mail').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: /general/ }).waitFor();

  const times = [];
  for (let i = 0; i < 5; i += 1) {
    const start = Date.now();
    await page.reload();
    await page.locator('a.room-link').first().waitFor();
    times.push(Date.now() - start);
  }
  console.log(`reload to first rendered room list (stored session): ${times.join(', ')} ms`);

  await page.goto(`${url}/channel/${name}`);
  await page.locator('li.msg').first().waitFor();
  const client = await page.context().newCDPSession(page);
  await client.send('Performance.enable');
  const t1 = Date.now();
  // LOAD_LIMIT_MS stops loading history after that long (on a slow machine a 100,000-message room
  // takes minutes to page in 50 at a time); the numbers below then say how many were loaded.
  const limit = Number(process.env.LOAD_LIMIT_MS || Infinity);
  for (;;) {
    const done = await page.evaluate(() => {
      const s = document.querySelector('.scroller');
      s.scrollTop = 0;
      s.dispatchEvent(new Event('scroll'));
      return document.querySelector('.history-state').textContent === 'Start of the room.';
    });
    if (done || Date.now() - t1 > limit) break;
    await page.waitForTimeout(30);
  }
  await page.waitForTimeout(500);
  // The oldest loaded message, at the top now, tells how far history reaches (with a room seeded by
  // the SQL in the README, "seeded message K" has K + (seed - seeded rows) messages after it).
  const oldest = await page.evaluate(() => document.querySelector('li.msg .body')?.textContent || '');
  console.log(`loaded history for ${Date.now() - t1} ms; oldest loaded message: ${oldest.slice(0, 40)}`);
  await page.evaluate(() => {
    const s = document.querySelector('.scroller');
    s.scrollTop = s.scrollHeight / 2;
  });
  await page.waitForTimeout(300);
  await client.send('HeapProfiler.collectGarbage');
  const { metrics } = await client.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const rendered = await page.locator('li.msg').count();
  console.log(`with ${seed} messages loaded: JS heap used ${(m.JSHeapUsedSize / 1048576).toFixed(1)} MiB, DOM nodes ${m.Nodes}, message elements rendered ${rendered}`);
  const frame = await page.evaluate(async () => {
    const s = document.querySelector('.scroller');
    const t = performance.now();
    for (let i = 0; i < 60; i += 1) {
      s.scrollTop = Math.random() * s.scrollHeight;
      s.dispatchEvent(new Event('scroll'));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    }
    return (performance.now() - t) / 60;
  });
  console.log(`random jumps through the room: ${frame.toFixed(1)} ms per jump (two frames each)`);

  // Continuous scrolling: 40 px a frame for 900 frames (about 800 messages) from the middle, as a
  // wheel or a flick would; every frame's interval, and the DOM's size, sampled each frame.
  const smooth = await page.evaluate(async () => {
    const s = document.querySelector('.scroller');
    s.scrollTop = s.scrollHeight / 2;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const gaps = [];
    let maxNodes = 0;
    let maxItems = 0;
    let last = performance.now();
    for (let i = 0; i < 900; i += 1) {
      s.scrollTop += i < 450 ? 40 : -40;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      maxNodes = Math.max(maxNodes, document.getElementsByTagName('*').length);
      maxItems = Math.max(maxItems, document.querySelectorAll('li.msg').length);
    }
    gaps.sort((a, b) => a - b);
    const at = (q) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))];
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: gaps.at(-1), over50: gaps.filter((g) => g > 50).length, maxNodes, maxItems };
  });
  console.log(
    `continuous scroll, 900 frames: frame interval p50 ${smooth.p50.toFixed(1)} ms, p95 ${smooth.p95.toFixed(1)} ms, ` +
      `p99 ${smooth.p99.toFixed(1)} ms, max ${smooth.max.toFixed(1)} ms, ${smooth.over50} frames over 50 ms; ` +
      `at most ${smooth.maxNodes} elements in the document, ${smooth.maxItems} message elements`,
  );
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
