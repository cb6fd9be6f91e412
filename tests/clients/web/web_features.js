// The rest of the web client's features in Debian's chromium (playwright-core), for
// tests/tests/web_client.rs: sign-in by e-mail, a direct message with @-autocomplete, the directory,
// #-autocomplete, star and the starred list, search in the room, profile (status, status message,
// name) and deleting your own message. Usage:
//   node web_features.js <server url> <user e-mail> <password> <other username> <screenshot dir>
// Prints one line per step; exits non-zero on the first failure.
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const [url, email, password, other, shots] = process.argv.slice(2);
const step = (line) => process.stdout.write(line + '\n');

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
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    page.setDefaultTimeout(20000);
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push('console: ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('dialog', (d) => d.accept());
    await page.goto(url);
    await page.getByLabel('Username or e-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: '# general' }).waitFor();
    step('EMAIL_SIGN_IN');
    // A direct message, naming the other user through @-autocomplete.
    await page.getByRole('button', { name: '+ Direct' }).click();
    await page.getByLabel(/Usernames/).fill(other);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: new RegExp(`^${other} Name$`) }).waitFor();
    const box = page.getByRole('combobox', { name: new RegExp(`^Message in ${other} Name`) });
    await box.fill(`dm hello @${other.slice(0, 2)}`);
    await page.getByRole('option', { name: new RegExp(other) }).waitFor();
    await box.press('Enter');
    if ((await box.inputValue()) !== `dm hello @${other} `) throw new Error('@ autocomplete gave ' + (await box.inputValue()));
    await box.press('Enter');
    await page.locator('li.msg', { hasText: 'dm hello' }).waitFor();
    step('DIRECT_MESSAGE');
    await page.getByRole('button', { name: 'Directory' }).click();
    await page.locator('.directory li').first().waitFor();
    await page.locator('.directory li', { hasText: '#general' }).getByRole('button', { name: 'Open' }).waitFor();
    step('DIRECTORY');
    await page.getByRole('button', { name: 'Close panel' }).click();
    // In #general: #-autocomplete, star, the starred list, search.
    await page.goto(url + '/channel/general');
    await page.getByRole('heading', { name: '# general' }).waitFor();
    await page.getByText('Start of the room.').waitFor();
    const gbox = page.getByRole('combobox', { name: /^Message in general/ });
    await gbox.fill('star me #gen');
    await page.getByRole('option', { name: 'general' }).waitFor();
    await gbox.press('Tab');
    if ((await gbox.inputValue()) !== 'star me #general ') throw new Error('# autocomplete gave ' + (await gbox.inputValue()));
    await gbox.press('Enter');
    const msg = page.getByRole('log').locator('li.msg', { hasText: 'star me' }).last();
    await msg.waitFor();
    await msg.hover();
    await msg.getByRole('button', { name: 'Star' }).click();
    await msg.getByText('★ starred').waitFor();
    await page.getByRole('button', { name: 'Starred' }).click();
    await page.locator('.panel li.msg', { hasText: 'star me' }).first().waitFor();
    step('STARRED');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByLabel('Search messages').fill('star me');
    await page.getByLabel('Search messages').press('Enter');
    await page.locator('.panel li.msg', { hasText: 'star me' }).first().waitFor();
    step('SEARCH');
    // Profile: status, status message, name.
    await page.getByRole('button', { name: /profile and status/ }).click();
    await page.getByLabel('Status', { exact: true }).selectOption('busy');
    await page.getByLabel('Status message').fill('in a meeting');
    await page.getByLabel('Name', { exact: true }).fill('Renamed Person');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    if ((await page.locator('.me-name').innerText()) !== 'Renamed Person') throw new Error('the name did not change');
    step('PROFILE');
    // Deleting your own message removes it from the log.
    await msg.hover();
    await msg.getByRole('button', { name: 'Delete' }).click();
    await msg.waitFor({ state: 'detached' });
    step('DELETED');
    await page.screenshot({ path: path.join(shots, 'profile-desktop-light.png') });
    await page.setViewportSize({ width: 320, height: 640 });
    await page.screenshot({ path: path.join(shots, 'profile-320-light.png') });
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
  process.stderr.write((e && e.stack) || String(e));
  process.stderr.write('\n');
  process.exit(1);
});
