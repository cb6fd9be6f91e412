#!/usr/bin/env node
/*
 * Drives an Apogee server with the real npm client `@rocket.chat/sdk` 0.2.9 (unmodified; its Git
 * dependency `asteroid` resolved to the registry's 0.6.1 through npm `overrides`, see package.json).
 *
 * Usage: ROCKETCHAT_URL=http://host:port ROCKETCHAT_USER=bot ROCKETCHAT_PASSWORD=pw \
 *          NODE_PATH=<dir>/node_modules node sdk_client.js ROOM_NAME OTHER_USERNAME INCOMING OUTGOING
 *
 * The bot user must exist; OTHER_USERNAME posts INCOMING to ROOM_NAME through REST after this script
 * prints `READY`. The script, through the SDK's driver, as a Hubot-style bot does:
 *   * `driver.connect({host})` (ddp.js `connect`, Asteroid's `meteor.loginServiceConfiguration` sub);
 *   * `driver.login()` (plain-text password over DDP) and checks the returned user id;
 *   * `driver.joinRooms([ROOM_NAME])` (`getRoomIdByNameOrId` + `joinRoom`);
 *   * `driver.subscribeToMessages()` (`stream-room-messages ["__my_messages__", true]`, resolved on
 *     `ready`), `driver.reactToMessages(cb)` (records every event) and `driver.respondToMessages(cb)`
 *     (the filtered feed bots use), then prints `READY`;
 *   * waits until both deliver INCOMING from OTHER_USERNAME, prints `RECEIVED <INCOMING>`;
 *   * `driver.sendToRoom(OUTGOING, ROOM_NAME)` must resolve with the saved message, and the server must
 *     echo it on `__my_messages__`; prints `SENT <_id> <OUTGOING>` (the caller reads it back via REST);
 *   * `driver.disconnect()` (`unsub` + `logout`).
 *
 * Every DDP frame is recorded through ddp.js' own socket intercept hook, so a failure prints what the
 * SDK sent and what the server answered; Asteroid's "Server misbehaviour" warnings, ddp.js' "Non DDP
 * message" warnings and uncaught exceptions (ddp.js throws on some bad frames) fail the run. Every step
 * is bounded by a timeout. Exits 1 on failure, 0 after printing `OK ...`. With CLIENT_TRACE set, the
 * frames and the SDK's log are printed to stderr on success too.
 */
'use strict';

const fs = require('fs');

const EXPECTED_VERSIONS = { '@rocket.chat/sdk': '0.2.9', asteroid: '0.6.1', 'ddp.js': '0.5.0' };
const STEP_TIMEOUT_MS = 20000;
const RECEIVE_TIMEOUT_MS = 60000;
const TOTAL_TIMEOUT_MS = 180000;

const START = Date.now();
const FRAMES = []; // [direction, ms since start, text]
const LOG = []; // the SDK's own log lines and console warnings
const WARNINGS = [];

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

function show(value, limit = 700) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === undefined || text.length <= limit ? String(text) : `${text.slice(0, limit)}...(truncated)`;
}

// Synchronous writes: process.exit() must not drop protocol lines or the failure report.
function say(line) {
  fs.writeSync(1, `${line}\n`);
}

function note(line) {
  fs.writeSync(2, `${line}\n`);
}

function dump(frames) {
  note('DDP frames (direction, ms, frame):');
  for (const [direction, at, text] of frames) note(`  ${direction} ${String(at).padStart(6)} ${show(text, 600)}`);
  note('SDK log and console warnings:');
  for (const line of LOG.slice(-60)) note(`  ${show(line, 600)}`);
}

let finished = false;

function fail(error) {
  if (finished) return;
  finished = true;
  note(`FAIL: ${error && error.name}: ${error && error.message ? error.message : show(error)}`);
  if (error && error.stack && !(error instanceof CheckFailed)) note(error.stack);
  dump(FRAMES.slice(-50));
  process.exit(1);
}

process.on('uncaughtException', (error) => fail(new Error(`uncaught exception: ${show(error)} ${error && error.stack}`)));
process.on('unhandledRejection', (error) => fail(new Error(`unhandled rejection: ${show(error)} ${error && error.stack}`)));

// Asteroid and ddp.js report server protocol errors only through console.warn.
for (const level of ['log', 'info', 'warn', 'error']) {
  console[level] = (...args) => {
    const line = `console.${level}: ${args.map((a) => (typeof a === 'string' ? a : show(a))).join(' ')}`;
    LOG.push(line);
    if (level === 'warn') WARNINGS.push(line);
  };
}

function step(what, promise, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

function parsed(direction) {
  const out = [];
  for (const [d, , text] of FRAMES) {
    if (d !== direction) continue;
    try {
      out.push(JSON.parse(text));
    } catch (e) {
      // not JSON; shown in the trace anyway
    }
  }
  return out;
}

function checkNoWarnings(when) {
  const bad = WARNINGS.filter((w) => /misbehaviour|Non DDP message/i.test(w));
  check(bad.length === 0, `${when}: Asteroid/ddp.js rejected server frames: ${show(bad, 1500)}`);
}

async function run(roomName, otherUsername, incoming, outgoing) {
  for (const [name, expected] of Object.entries(EXPECTED_VERSIONS)) {
    const version = require(`${name}/package.json`).version;
    check(version === expected, `${name} ${version} installed, expected ${expected}`);
  }
  const url = process.env.ROCKETCHAT_URL;
  const username = process.env.ROCKETCHAT_USER;
  check(url && username && process.env.ROCKETCHAT_PASSWORD, 'ROCKETCHAT_URL, ROCKETCHAT_USER and ROCKETCHAT_PASSWORD must be set');

  // The SDK reads its configuration from the environment now, at first require.
  const { driver } = require('@rocket.chat/sdk');
  driver.useLog({
    debug: (...a) => LOG.push(`sdk.debug: ${a.map((x) => (typeof x === 'string' ? x : show(x))).join(' ')}`),
    info: (...a) => LOG.push(`sdk.info: ${a.map((x) => (typeof x === 'string' ? x : show(x))).join(' ')}`),
    warn: (...a) => LOG.push(`sdk.warn: ${a.map((x) => (typeof x === 'string' ? x : show(x))).join(' ')}`),
    warning: (...a) => LOG.push(`sdk.warning: ${a.map((x) => (typeof x === 'string' ? x : show(x))).join(' ')}`),
    error: (...a) => LOG.push(`sdk.error: ${a.map((x) => (typeof x === 'string' ? x : show(x))).join(' ')}`),
  });

  // 1. Connect. driver.connect creates the Asteroid instance synchronously, whose ddp.js socket opens
  // later: installing ddp.js' intercept hook right away records every frame.
  const connecting = driver.connect({ host: url });
  driver.asteroid.ddp._socketInterceptFunction = (event) => {
    const at = event.timestamp - START;
    if (event.type === 'socket_message_sent') FRAMES.push(['C->S', at, event.message]);
    else if (event.type === 'socket_message_received') FRAMES.push(['S->C', at, event.message]);
    else FRAMES.push(['--', at, `${event.type}${event.error ? ` ${event.error}` : ''}`]);
  };
  await step('driver.connect', connecting, 25000);

  // 2. Log in with the plain-text password.
  const userId = await step('driver.login', driver.login());
  check(typeof userId === 'string' && userId.length > 0, `driver.login resolved ${show(userId)}`);
  const login = parsed('C->S').find((f) => f.msg === 'method' && f.method === 'login');
  const loginResult = parsed('S->C').find((f) => f.msg === 'result' && login && f.id === login.id);
  check(loginResult && loginResult.result && typeof loginResult.result.token === 'string', `login result carries no token: ${show(loginResult)}`);

  // 3. Join the room (getRoomIdByNameOrId, then joinRoom).
  await step(`driver.joinRooms([${roomName}])`, driver.joinRooms([roomName]));
  check(driver.joinedIds.length === 1 && typeof driver.joinedIds[0] === 'string', `joinedIds after joinRooms: ${show(driver.joinedIds)}`);
  const roomId = driver.joinedIds[0];

  // 4. Subscribe to __my_messages__ and listen, both raw and through the bot filter.
  await step('driver.subscribeToMessages (waits for `ready`)', driver.subscribeToMessages());
  const raw = [];
  const responded = [];
  const waiters = [];
  const wake = () => waiters.splice(0).forEach((resolve) => resolve());
  driver.reactToMessages((err, message, meta) => {
    raw.push({ err: err ? String(err) : null, message, meta });
    wake();
  });
  await step('driver.respondToMessages', driver.respondToMessages((err, message, meta) => {
    responded.push({ err: err ? String(err) : null, message, meta });
    wake();
  }));
  checkNoWarnings('after subscribing');
  // respondToMessages drops messages whose ts is not after the moment it started (ms resolution).
  await new Promise((resolve) => setTimeout(resolve, 20));
  say('READY');

  async function waitFor(what, list, predicate, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = list.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CheckFailed(
          `${what}: not delivered within ${ms / 1000}s. reactToMessages got ${show(raw, 2500)}; respondToMessages got ${show(responded, 1500)}; warnings: ${show(WARNINGS, 1000)}`
        );
      }
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 500));
      });
    }
  }

  // 5. A message another user posts through REST reaches the bot (reactToMessages, then the filter).
  const isIncoming = (e) => e.message && e.message.msg === incoming;
  const got = await waitFor(`reactToMessages: ${show(incoming)} from ${otherUsername}`, raw, isIncoming, RECEIVE_TIMEOUT_MS);
  check(got.err === null, `reactToMessages reported an error: ${got.err}`);
  check(got.message.rid === roomId, `received message rid ${show(got.message.rid)}, expected ${roomId}`);
  check(got.message.u && got.message.u.username === otherUsername && got.message.u._id !== userId, `received message u: ${show(got.message.u)}`);
  check(got.message.ts && typeof got.message.ts.$date === 'number', `received message ts is not EJSON {$date}: ${show(got.message.ts)}`);
  check(got.meta && got.meta.roomParticipant === true && got.meta.roomType === 'c', `received message meta (second arg): ${show(got.meta)}`);
  await waitFor(`respondToMessages (the bot filter): ${show(incoming)}`, responded, isIncoming, STEP_TIMEOUT_MS);
  checkNoWarnings('after receiving');
  say(`RECEIVED ${incoming}`);

  // 6. sendToRoom resolves with the saved message, which comes back on __my_messages__.
  const sent = await step(`driver.sendToRoom(…, ${roomName})`, driver.sendToRoom(outgoing, roomName));
  check(sent && typeof sent._id === 'string' && sent._id.length > 0, `sendToRoom resolved ${show(sent)}`);
  check(sent.msg === outgoing && sent.rid === roomId, `sendToRoom resolved ${show(sent)}`);
  check(sent.u && sent.u._id === userId && sent.u.username === username, `sendToRoom result u: ${show(sent.u)}`);
  const echo = await waitFor(`the echo of our own message ${sent._id}`, raw, (e) => e.message && e.message._id === sent._id, STEP_TIMEOUT_MS);
  check(echo.message.msg === outgoing, `echo of our own message: ${show(echo.message)}`);
  check(!responded.some((e) => e.message && e.message._id === sent._id), 'respondToMessages passed on the bot\'s own message');
  say(`SENT ${sent._id} ${outgoing}`);

  // 7. Disconnect: unsubscribe and log out.
  await step('driver.disconnect (logout)', driver.disconnect());
  checkNoWarnings('at the end');

  return `OK @rocket.chat/sdk ${EXPECTED_VERSIONS['@rocket.chat/sdk']} against ${url}: logged in as ${username}, joined ${roomName} (${roomId}), received a REST-posted message through reactToMessages and respondToMessages, sent ${sent._id}, ${FRAMES.length} DDP frames`;
}

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 4) {
    note(`usage: node ${process.argv[1]} ROOM_NAME OTHER_USERNAME INCOMING OUTGOING (and ROCKETCHAT_URL/USER/PASSWORD)`);
    process.exit(2);
  }
  const watchdog = setTimeout(() => fail(new CheckFailed(`no result after ${TOTAL_TIMEOUT_MS / 1000}s`)), TOTAL_TIMEOUT_MS);
  run(...args).then(
    (summary) => {
      clearTimeout(watchdog);
      if (finished) return;
      finished = true;
      if (process.env.CLIENT_TRACE) dump(FRAMES);
      say(summary);
      // ddp.js reconnects forever once the socket closes: leave explicitly.
      process.exit(0);
    },
    (error) => fail(error)
  );
}

main();
