// Drives the web client in Debian's chromium through playwright-core, for tests/tests/web_client.rs.
// Usage: node web_client.js <server url> <username> <password> <incoming text> <screenshot dir>
// Prints one line per step (the Rust test waits for them); exits non-zero on the first failure.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [url, username, password, incoming, shots] = process.argv.slice(2);
const STEP_MS = 20000;
const unique = Date.now().toString(36);

function step(line) {
  process.stdout.write(line + '\n');
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'apogee-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
  });
  const problems = [];
  try {
    const page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    // A CSP violation or a script error is a failure even if the steps pass.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push('console: ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective));
    });

    await page.goto(url);
    // A wrong password: a clear error, still on the form.
    await page.getByLabel('Username or e-mail').fill(username);
    await page.getByLabel('Password').fill(password + '-wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username, e-mail or password.' }).waitFor();
    step('WRONG_PASSWORD_SHOWN');

    // Registration is open on a TEST_MODE server: a new account lands in #general; then sign out.
    await page.getByRole('button', { name: 'Create one' }).click();
    const newbie = `newbie${unique}`;
    await page.getByLabel('Name', { exact: true }).fill('New Person');
    await page.getByLabel('E-mail').fill(`${newbie}@example.com`);
    await page.getByLabel('Username', { exact: true }).fill(newbie);
    await page.getByLabel('Password').fill('a-long-password');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: '# general' }).waitFor();
    await page.getByRole('button', { name: /^New Person/ }).waitFor();
    step(`REGISTERED ${newbie}`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username or e-mail').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: /^Channel\s*general/ }).waitFor();
    await page.getByRole('heading', { name: '# general' }).waitFor();
    step('SIGNED_IN');

    // A message with markup and an HTML payload: the markup renders, the HTML stays text.
    const text = `hello from the browser ${unique} **bold** <img src=x onerror="window.__xss=1">`;
    const box = page.getByRole('combobox', { name: /^Message in general/ });
    await box.fill(text);
    await box.press('Enter');
    const mine = page.locator('li.msg', { hasText: `hello from the browser ${unique}` });
    await mine.waitFor();
    const rendered = await mine.evaluate((li) => ({
      strong: li.querySelector('.body strong')?.textContent,
      img: li.querySelectorAll('.body img').length,
      text: li.querySelector('.body').textContent,
    }));
    if (rendered.strong !== 'bold' || rendered.img !== 0 || !rendered.text.includes('<img src=x onerror="window.__xss=1">')) {
      throw new Error('message rendered wrongly: ' + JSON.stringify(rendered));
    }
    step('SENT');

    // Another user posts through REST (the Rust test, after READY); it must show up live.
    step('READY');
    await page.locator('li.msg', { hasText: incoming }).waitFor();
    step('RECEIVED');
    await page.screenshot({ path: path.join(shots, 'room-desktop-light.png') });

    // A reload keeps the session (resume token in localStorage).
    await page.reload();
    await page.getByRole('heading', { name: '# general' }).waitFor();
    await page.locator('li.msg', { hasText: incoming }).waitFor();
    if (await page.getByLabel('Password').count()) throw new Error('the login form came back after a reload');
    step('STILL_SIGNED_IN');

    // Keyboard only: Ctrl+K to the filter, a name, Enter opens it; Alt+Down to the next room.
    await page.keyboard.press('Control+k');
    await page.keyboard.type('gen');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: '# general' }).waitFor();
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    if (!/^Message in general/.test(focused || '')) throw new Error('after opening a room the focus is on ' + focused);
    step('KEYBOARD');

    // Dark theme at 320 px: the room, then the room list.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 320, height: 640 });
    await page.screenshot({ path: path.join(shots, 'room-320-dark.png') });
    await page.getByRole('button', { name: 'Back to rooms' }).click();
    await page.getByRole('link', { name: /^Channel\s*general/ }).waitFor();
    await page.screenshot({ path: path.join(shots, 'rooms-320-dark.png') });

    const xss = await page.evaluate(() => window.__xss);
    if (xss !== undefined) throw new Error('the payload ran');
    if (problems.length) throw new Error(problems.join('\n'));
    step('OK');
  } catch (e) {
    // what the pages logged says more than the step that timed out
    if (problems.length) e.message += `\nthe pages also reported:\n${problems.join('\n')}`;
    throw e;
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write((e && e.stack) || String(e));
  process.stderr.write('\n');
  process.exit(1);
});
