// The app: connection, sign-in, the room list and routing. The room view is in room.js.
import { Ddp, passwordDigest } from './ddp.js';
import { h, fill, avatar as avatarImage } from './dom.js';
import * as rest from './rest.js';
import { RoomView } from './room.js';
import { openPanel, closePanel, setApp } from './panels.js';

const TOKEN_KEY = 'Meteor.loginToken';
const USER_KEY = 'Meteor.userId';
const STATUS_NAMES = ['offline', 'online', 'away', 'busy'];

const root = document.getElementById('app');
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websocket`;

export const app = {
  ddp: new Ddp(wsUrl),
  settings: {},
  me: null,
  /** rid -> {sub, room} */
  rooms: new Map(),
  presence: new Map(), // uid -> status name
  current: null, // RoomView
  filter: '',
  signedIn: false,
  everConnected: false,
};

// --- connection state ------------------------------------------------------------------------

const banner = h('div', { class: 'conn', role: 'status', 'aria-live': 'polite' });
let bannerTimer;
function showConnection(state) {
  clearInterval(bannerTimer);
  banner.dataset.state = state;
  if (state === 'connected') {
    fill(banner);
    return;
  }
  const draw = () => {
    if (state === 'connecting') fill(banner, app.everConnected ? 'Reconnecting…' : 'Connecting…');
    else {
      const secs = Math.max(0, Math.ceil((app.ddp.retryAt - Date.now()) / 1000));
      fill(
        banner,
        app.everConnected ? 'Connection lost. ' : 'Cannot reach the server. ',
        `Retrying in ${secs} s `,
        h('button', { type: 'button', class: 'link', onclick: () => app.ddp.retryNow() }, 'Retry now'),
      );
    }
  };
  draw();
  if (state === 'offline') bannerTimer = setInterval(draw, 1000);
}

app.ddp.onstate = (state) => {
  showConnection(state);
  const form = document.querySelector('.login form');
  if (form) form.dataset.conn = state;
  if (state === 'connected') {
    if (app.everConnected && app.signedIn) {
      app.ddp.onconnected();
      catchUp();
    }
    app.everConnected = true;
  }
};

app.ddp.onopen = async () => {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return;
  try {
    const result = await app.ddp.call('login', { resume: token });
    rest.setAuth(result.id, result.token);
  } catch (e) {
    if (!e.offline) {
      forget();
      app.signedIn = false;
      showLogin('Your session has expired. Please sign in again.');
    }
    throw e;
  }
};

app.ddp.onpresence = (uid, _username, status) => {
  app.presence.set(uid, STATUS_NAMES[status] || 'offline');
  for (const dot of document.querySelectorAll(`.presence[data-uid="${CSS.escape(uid)}"]`)) {
    dot.dataset.status = app.presence.get(uid);
  }
};

/** Avatars: one version per username we changed here, so the new image replaces the cached one. */
const avatarVersions = new Map();
function avatar(username, size = 32) {
  return avatarImage(username, size, avatarVersions.get(username));
}
function avatarChanged(username, etag) {
  const version = etag || Date.now().toString(36);
  avatarVersions.set(username, version);
  for (const img of document.querySelectorAll(`img.avatar[data-username="${CSS.escape(username)}"]`)) {
    img.src = `/avatar/${encodeURIComponent(username)}?etag=${version}`;
  }
}

function forget() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  rest.setAuth(null, null);
}

/** After a reconnect: the sidebar and the open room catch up on what happened meanwhile. */
async function catchUp() {
  try {
    await loadRooms();
    await app.current?.catchUp();
  } catch {
    // the next reconnect tries again
  }
}

// --- sign-in and registration ---------------------------------------------------------------

function field(label, attrs) {
  const id = 'f-' + attrs.name;
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, ...attrs }));
}

function showLogin(notice) {
  app.signedIn = false;
  document.title = 'Sign in · Apogee';
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  if (notice) error.textContent = notice;
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { 'aria-labelledby': 'login-title', 'aria-describedby': 'login-error', novalidate: true },
    h('h1', { id: 'login-title' }, 'Sign in to Apogee'),
    field('Username or e-mail', { name: 'user', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    error,
    submit,
  );
  form.dataset.conn = app.ddp.state;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = form.elements.user.value.trim();
    const password = form.elements.password.value;
    if (!user || !password) {
      error.textContent = 'Enter your username or e-mail and your password.';
      return;
    }
    submit.disabled = true;
    error.textContent = '';
    try {
      await login(user, password);
    } catch (err) {
      error.textContent = err.offline
        ? 'Cannot reach the server. Check your connection; Apogee keeps trying to reconnect.'
        : err.ddp?.error === 403 || /password|not found/i.test(err.message)
          ? 'Wrong username, e-mail or password.'
          : err.message;
      form.elements.password.select();
    } finally {
      submit.disabled = false;
    }
  });
  const children = [banner, h('main', { class: 'login' }, form)];
  if (app.settings.Accounts_RegistrationForm === 'Public') {
    form.append(h('p', null, 'No account? ', h('button', { type: 'button', class: 'link', onclick: () => showRegister() }, 'Create one')));
  }
  fill(root, ...children);
  root.removeAttribute('aria-busy');
  root.className = '';
  form.elements.user.focus();
}

function showRegister() {
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { 'aria-labelledby': 'reg-title', novalidate: true },
    h('h1', { id: 'reg-title' }, 'Create your account'),
    field('Name', { name: 'name', autocomplete: 'name', required: true }),
    field('E-mail', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field('Username', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' }),
    field('Password', { name: 'pass', type: 'password', autocomplete: 'new-password', required: true }),
    error,
    h('button', { type: 'submit', class: 'primary' }, 'Create account'),
    h('p', null, h('button', { type: 'button', class: 'link', onclick: () => showLogin() }, 'Back to sign in')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(['name', 'email', 'username', 'pass'].map((k) => [k, form.elements[k].value.trim()]));
    data.pass = form.elements.pass.value;
    if (Object.values(data).some((v) => !v)) {
      error.textContent = 'Every field is required.';
      return;
    }
    try {
      await rest.post('users.register', data);
      await login(data.username, data.pass);
    } catch (err) {
      error.textContent = err.offline ? 'Cannot reach the server.' : err.message;
    }
  });
  fill(root, banner, h('main', { class: 'login' }, form));
  form.elements.name.focus();
}

async function login(user, password) {
  const who = user.includes('@') ? { email: user } : { username: user };
  let secret;
  // crypto.subtle exists only in secure contexts (https, localhost); elsewhere the plain password
  // goes over the same connection the digest would have.
  if (globalThis.crypto?.subtle) secret = { digest: await passwordDigest(password), algorithm: 'sha-256' };
  else secret = password;
  await app.ddp.connected();
  const result = await app.ddp.call('login', { user: who, password: secret });
  localStorage.setItem(TOKEN_KEY, result.token);
  localStorage.setItem(USER_KEY, result.id);
  rest.setAuth(result.id, result.token);
  await startSession();
}

async function logout() {
  try {
    await app.ddp.call('logout');
  } catch {
    // signed out locally either way
  }
  forget();
  app.current?.close();
  app.current = null;
  for (const stop of app.userStreams || []) stop();
  app.userStreams = [];
  app.rooms.clear();
  history.replaceState(null, '', '/');
  showLogin();
}

// --- the signed-in shell ---------------------------------------------------------------------

const els = {};

async function startSession() {
  const me = await rest.get('me');
  app.me = me;
  app.signedIn = true;
  buildShell();
  app.userStreams = [
    app.ddp.subscribe('stream-notify-user', `${me._id}/subscriptions-changed`, ([action, sub]) => {
      if (!sub?.rid) return;
      if (action === 'removed') app.rooms.delete(sub.rid);
      else app.rooms.set(sub.rid, { room: app.rooms.get(sub.rid)?.room || { _id: sub.rid }, sub });
      drawRooms();
      if (sub.t === 'd') watchUsers(app.rooms.get(sub.rid)?.room.uids || []);
    }),
    app.ddp.subscribe('stream-notify-user', `${me._id}/rooms-changed`, ([action, room]) => {
      const entry = room && app.rooms.get(room._id);
      if (!entry) return;
      if (action !== 'removed') entry.room = room;
      drawRooms();
      watchUsers(room.uids || []);
      if (app.current?.rid === room._id) app.current.roomChanged(room);
    }),
    // Someone changed their avatar: every picture of them on this page reloads.
    app.ddp.subscribe('stream-notify-logged', 'updateAvatar', ([change]) => {
      if (change?.username) avatarChanged(change.username, change.etag);
    }),
  ];
  await loadRooms();
  route();
}

async function loadRooms() {
  const [subs, rooms] = await Promise.all([rest.get('subscriptions.get'), rest.get('rooms.get')]);
  const byId = new Map((rooms.update || []).map((r) => [r._id, r]));
  app.rooms.clear();
  for (const sub of subs.update || []) app.rooms.set(sub.rid, { sub, room: byId.get(sub.rid) || { _id: sub.rid } });
  drawRooms();
  watchPresence();
}

function watchPresence() {
  const uids = [];
  for (const { room } of app.rooms.values()) uids.push(...(room.uids || []));
  watchUsers(uids);
}

/** Adds users to the presence watch (one live subscription; later subs only add to its set). */
const watched = new Set();
function watchUsers(uids) {
  const added = [...new Set(uids)].filter((uid) => uid && uid !== app.me?._id && !watched.has(uid));
  if (!added.length) return;
  for (const uid of added) watched.add(uid);
  app.ddp.rawSub('stream-user-presence', ['', { added }]);
}
app.ddp.onconnected = () => {
  // A new socket watches nobody: renew the whole set.
  if (watched.size) app.ddp.rawSub('stream-user-presence', ['', { added: [...watched] }]);
};

export function roomPath(entry) {
  const { sub } = entry;
  if (sub.t === 'd') return `/direct/${encodeURIComponent(sub.rid)}`;
  return `/${sub.t === 'p' ? 'group' : 'channel'}/${encodeURIComponent(sub.name)}`;
}

export function roomLabel(entry) {
  return entry.sub.fname || entry.sub.name || entry.room.fname || entry.room.name || entry.sub.rid;
}

function activity(entry) {
  const t = entry.room.lm || entry.sub.ls || entry.sub.ts || entry.room._updatedAt;
  return t ? new Date(t.$date ?? t).getTime() : 0;
}

/** Rooms as the sidebar shows them: filtered, most recent activity first. */
function sortedRooms() {
  const needle = app.filter.toLowerCase();
  return [...app.rooms.values()]
    .filter((e) => e.sub.open !== false || e.sub.unread > 0)
    .filter((e) => !needle || roomLabel(e).toLowerCase().includes(needle))
    .sort((a, b) => activity(b) - activity(a));
}

function buildShell() {
  document.title = 'Apogee';
  els.list = h('ul', { class: 'rooms', 'aria-label': 'Rooms' });
  els.filter = h('input', { type: 'search', placeholder: 'Filter rooms', 'aria-label': 'Filter rooms', class: 'filter' });
  els.filter.addEventListener('input', () => {
    app.filter = els.filter.value;
    drawRooms();
  });
  // Enter opens the first match; Down moves into the list.
  els.filter.addEventListener('keydown', (e) => {
    const first = els.list.querySelector('a.room-link');
    if (e.key === 'Enter' && first) {
      e.preventDefault();
      navigate(first.getAttribute('href'));
    } else if (e.key === 'ArrowDown' && first) {
      e.preventDefault();
      first.focus();
    }
  });
  els.status = h('span', { class: 'presence', 'data-uid': app.me._id, 'data-status': app.me.status || 'online', 'aria-hidden': 'true' });
  const menu = h(
    'div',
    { class: 'me' },
    h('button', { type: 'button', class: 'me-button', onclick: () => openPanel('profile') }, avatar(app.me.username, 28), els.status, h('span', { class: 'me-name' }, app.me.name || app.me.username), h('span', { class: 'sr-only' }, ': profile and status')),
    h('button', { type: 'button', class: 'ghost', onclick: () => logout() }, 'Sign out'),
  );
  const actions = h(
    'div',
    { class: 'actions' },
    h('button', { type: 'button', onclick: () => openPanel('create', { type: 'c' }) }, '+ Channel'),
    h('button', { type: 'button', onclick: () => openPanel('create', { type: 'p' }) }, '+ Private'),
    h('button', { type: 'button', onclick: () => openPanel('create', { type: 'd' }) }, '+ Direct'),
    h('button', { type: 'button', onclick: () => openPanel('directory') }, 'Directory'),
  );
  els.sidebar = h('nav', { class: 'sidebar', 'aria-label': 'Rooms and account' }, menu, els.filter, actions, els.list);
  els.main = h('main', { class: 'room-area', id: 'room' }, h('p', { class: 'empty' }, 'Pick a room.'));
  els.panel = h('aside', { class: 'panel', hidden: true });
  els.shell = h('div', { class: 'shell' }, els.sidebar, els.main, els.panel);
  fill(root, banner, els.shell);
  root.removeAttribute('aria-busy');
  root.className = '';
  app.els = els;
}

function drawRooms() {
  if (!els.list) return;
  const items = sortedRooms().map((entry) => {
    const { sub } = entry;
    const label = roomLabel(entry);
    const unread = sub.unread || 0;
    const mentions = (sub.userMentions || 0) + (sub.groupMentions || 0);
    const kind = sub.t === 'd' ? 'Direct message' : sub.t === 'p' ? 'Private group' : 'Channel';
    const other = sub.t === 'd' ? (entry.room.uids || []).find((u) => u !== app.me._id) : null;
    // A DM's subscription is named after the other person (a group DM's after several).
    const dmAvatar = sub.t === 'd' && (entry.room.uids || []).length <= 2 ? avatar(sub.name, 22) : null;
    const icon =
      sub.t === 'd'
        ? [dmAvatar, h('span', { class: 'presence', 'data-uid': other || '', 'data-status': app.presence.get(other) || 'offline', 'aria-hidden': 'true' })]
        : h('span', { class: 'icon', 'aria-hidden': 'true' }, sub.t === 'p' ? '🔒' : '#');
    // The name comes from the content (visible text plus hidden words), so it matches what is seen.
    let counts = '';
    if (unread) counts += `, ${unread} unread`;
    if (mentions) counts += `, ${mentions} mentions`;
    const link = h(
      'a',
      {
        href: roomPath(entry),
        class: 'room-link' + (unread || sub.alert ? ' unread' : ''),
        'aria-current': app.current?.rid === sub.rid ? 'page' : null,
        dataset: { rid: sub.rid },
      },
      icon,
      h('span', { class: 'sr-only' }, kind + ' '),
      h('span', { class: 'name' }, label),
      counts ? h('span', { class: 'sr-only' }, counts) : null,
      mentions ? h('span', { class: 'badge mention', 'aria-hidden': 'true' }, '@' + mentions) : null,
      unread ? h('span', { class: 'badge', 'aria-hidden': 'true' }, String(unread)) : null,
    );
    return h('li', null, link);
  });
  fill(els.list, ...(items.length ? items : [h('li', { class: 'empty' }, app.filter ? 'No room matches.' : 'No rooms yet.')]));
}

export function refreshRooms() {
  drawRooms();
}

// --- routing ---------------------------------------------------------------------------------

export function navigate(path) {
  history.pushState(null, '', path);
  route();
}

function findRoute() {
  const [, kind, key] = location.pathname.split('/').map(decodeURIComponent);
  for (const entry of app.rooms.values()) {
    if (kind === 'direct' && entry.sub.rid === key) return entry;
    if (kind === 'channel' && entry.sub.t === 'c' && entry.sub.name === key) return entry;
    if (kind === 'group' && entry.sub.t === 'p' && entry.sub.name === key) return entry;
  }
  return null;
}

function route() {
  if (!app.signedIn) return;
  let entry = findRoute();
  if (!entry) {
    entry = app.rooms.get('GENERAL') || sortedRooms()[0];
    if (!entry) return;
    history.replaceState(null, '', roomPath(entry));
  }
  if (app.current?.rid !== entry.sub.rid) {
    app.current?.close();
    closePanel();
    app.current = new RoomView(app, entry, els.main);
  } else {
    app.current.composer.focus();
  }
  els.shell.classList.add('show-room');
  drawRooms();
}

window.addEventListener('popstate', route);

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href^="/"]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0 || a.target === '_blank' || a.hasAttribute('download')) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});

/** Back to the room list (narrow screens show one of the two). */
export function showList() {
  els.shell?.classList.remove('show-room');
  els.list?.querySelector('[aria-current="page"]')?.focus();
}

// Alt+Up/Down: previous/next room; Ctrl+K: the filter box; Alt+Shift+Down: next unread room.
document.addEventListener('keydown', (e) => {
  if (!app.signedIn) return;
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
    e.preventDefault();
    els.shell.classList.remove('show-room');
    els.filter.focus();
    els.filter.select();
    return;
  }
  if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
    e.preventDefault();
    const list = sortedRooms();
    if (!list.length) return;
    const at = list.findIndex((r) => r.sub.rid === app.current?.rid);
    let next;
    if (e.shiftKey) {
      const unread = list.filter((r) => r.sub.unread > 0 && r.sub.rid !== app.current?.rid);
      next = unread[0];
    } else {
      const step = e.key === 'ArrowDown' ? 1 : -1;
      next = list[(at + step + list.length) % list.length];
    }
    if (next) navigate(roomPath(next));
    return;
  }
  if (e.key === 'Escape' && !els.panel.hidden) closePanel();
});

// --- start -----------------------------------------------------------------------------------

async function boot() {
  try {
    const data = await rest.get('settings.public', { _id: 'Accounts_RegistrationForm' });
    for (const s of data.settings || []) app.settings[s._id] = s.value;
  } catch {
    // the login form says the server is unreachable once the socket fails too
  }
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) showLogin();
  else fill(root, banner, h('p', { class: 'boot-note' }, 'Signing in…'));
  const opened = new Promise((resolve) => {
    const previous = app.ddp.onopen;
    app.ddp.onopen = async () => {
      app.ddp.onopen = previous;
      try {
        await previous();
        resolve(true);
      } catch (e) {
        resolve(false);
        throw e;
      }
    };
  });
  app.ddp.start();
  if (token && (await opened) && rest.auth.token) {
    try {
      await startSession();
    } catch {
      showLogin('Could not load your rooms. Please sign in again.');
    }
  } else if (token && !rest.auth.token && !document.querySelector('.login')) {
    showLogin();
  }
}

Object.assign(app, { avatar, avatarChanged, watchUsers, navigate, roomPath, roomLabel, refreshRooms, loadRooms, showList, logout });
setApp(app);
boot();
