// The side panel: profile and status, creating rooms, the directory, and panels a room opens
// (thread, search, pinned, starred) through `custom`.
import { h, fill } from './dom.js';
import * as rest from './rest.js';

let app;
let current = null;
let returnFocus = null;

export function setApp(a) {
  app = a;
}

export function currentPanel() {
  return current;
}

export function closePanel() {
  const panel = app?.els?.panel;
  if (!panel || panel.hidden) return;
  current?.onclose?.();
  current = null;
  panel.hidden = true;
  fill(panel);
  app.els.shell.classList.remove('with-panel');
  returnFocus?.focus?.();
}

export function openPanel(kind, opts = {}) {
  const panel = app.els.panel;
  if (!current) returnFocus = document.activeElement;
  current?.onclose?.();
  current = { kind, onclose: opts.onclose };
  const title = opts.title || { profile: 'Your profile', create: createTitle(opts.type), directory: 'Directory' }[kind];
  const body = h('div', { class: 'panel-body' });
  panel.setAttribute('aria-labelledby', 'panel-title');
  fill(
    panel,
    h('header', null, h('h2', { id: 'panel-title' }, title), h('button', { type: 'button', class: 'ghost', 'aria-label': 'Close panel', onclick: () => closePanel() }, '✕')),
    body,
  );
  panel.hidden = false;
  app.els.shell.classList.add('with-panel');
  if (kind === 'profile') profile(body);
  else if (kind === 'create') create(body, opts.type);
  else if (kind === 'directory') directory(body);
  else opts.render(body);
  if (!panel.contains(document.activeElement)) panel.querySelector('input, select, textarea, button:not(.ghost)')?.focus();
}

function createTitle(type) {
  return type === 'd' ? 'New direct message' : type === 'p' ? 'New private group' : 'New channel';
}

function labelled(label, input) {
  const id = 'p-' + Math.random().toString(36).slice(2);
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function profile(body) {
  const me = app.me;
  const status = h(
    'select',
    { name: 'status' },
    ...['online', 'away', 'busy', 'offline'].map((s) => h('option', { value: s, selected: (me.status || 'online') === s }, s === 'offline' ? 'invisible' : s)),
  );
  const text = h('input', { name: 'statusText', value: me.statusText || '', maxlength: '120' });
  const name = h('input', { name: 'name', value: me.name || '', autocomplete: 'name' });
  const note = h('p', { role: 'status' });
  const form = h(
    'form',
    null,
    h('p', null, 'Signed in as ', h('strong', null, '@' + me.username)),
    avatarEditor(me),
    labelled('Status', status),
    labelled('Status message', text),
    labelled('Name', name),
    note,
    h('button', { type: 'submit', class: 'primary' }, 'Save'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    note.textContent = 'Saving…';
    try {
      await app.ddp.call('setUserStatus', status.value, text.value);
      if (name.value.trim() && name.value.trim() !== me.name) await rest.post('users.updateOwnBasicInfo', { data: { name: name.value.trim() } });
      Object.assign(me, { status: status.value, statusText: text.value, name: name.value.trim() || me.name });
      app.presence.set(me._id, status.value);
      for (const dot of document.querySelectorAll(`.presence[data-uid="${CSS.escape(me._id)}"]`)) dot.dataset.status = status.value;
      document.querySelector('.me-name').textContent = me.name || me.username;
      note.textContent = 'Saved.';
    } catch (err) {
      note.textContent = `Not saved: ${err.message}`;
    }
  });
  body.append(form);
}

/** Your avatar: upload a new image (`users.setAvatar`, multipart `image`) or reset it. */
function avatarEditor(me) {
  const current = app.avatar(me.username, 64);
  current.alt = 'Your avatar';
  current.loading = 'eager';
  const note = h('p', { class: 'avatar-note', role: 'status' });
  const input = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', name: 'avatar' });
  const progress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Uploading your avatar' });
  const done = (text) => {
    progress.hidden = true;
    note.textContent = text;
  };
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    const form = new FormData();
    form.append('image', file, file.name);
    progress.hidden = false;
    note.textContent = 'Uploading…';
    try {
      await rest.upload('users.setAvatar', form, (loaded, total) => {
        progress.max = total || file.size || 1;
        progress.value = loaded;
      });
      app.avatarChanged(me.username);
      done('Avatar changed.');
    } catch (err) {
      done(`Avatar not changed: ${err.message}`);
    } finally {
      input.value = '';
    }
  });
  const reset = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        note.textContent = 'Resetting…';
        try {
          await rest.post('users.resetAvatar', {});
          app.avatarChanged(me.username);
          done('Avatar reset.');
        } catch (err) {
          done(`Avatar not reset: ${err.message}`);
        }
      },
    },
    'Reset avatar',
  );
  return h(
    'fieldset',
    { class: 'avatar-editor' },
    h('legend', null, 'Avatar'),
    current,
    h('div', { class: 'avatar-actions' }, labelled('Upload a new avatar', input), progress, reset, note),
  );
}

function create(body, type) {
  const note = h('p', { class: 'error', role: 'alert' });
  const name = h('input', { name: 'name', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const members = h('input', { name: 'members', autocapitalize: 'none', spellcheck: 'false', placeholder: 'alice, bob' });
  const form = h(
    'form',
    null,
    type === 'd' ? labelled('Usernames (comma-separated)', members) : labelled('Name', name),
    type === 'd' ? null : labelled('Invite (usernames, comma-separated, optional)', members),
    note,
    h('button', { type: 'submit', class: 'primary' }, 'Create'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const list = members.value.split(/[\s,]+/).map((s) => s.replace(/^@/, '')).filter(Boolean);
    try {
      let rid;
      if (type === 'd') {
        if (!list.length) throw new Error('Name at least one user.');
        const data = await rest.post('im.create', list.length === 1 ? { username: list[0] } : { usernames: list.join(',') });
        rid = data.room?.rid || data.room?._id;
      } else {
        if (!name.value.trim()) throw new Error('The name is required.');
        const data = await rest.post(type === 'p' ? 'groups.create' : 'channels.create', { name: name.value.trim(), members: list });
        rid = (data.group || data.channel)?._id;
      }
      await app.loadRooms();
      const entry = app.rooms.get(rid);
      closePanel();
      if (entry) app.navigate(app.roomPath(entry));
    } catch (err) {
      note.textContent = err.message;
    }
  });
  body.append(form);
}

function directory(body) {
  const input = h('input', { type: 'search', 'aria-label': 'Search channels', placeholder: 'Search channels' });
  const results = h('ul', { class: 'directory', 'aria-live': 'polite', 'aria-label': 'Channels' });
  const load = async () => {
    try {
      const data = await rest.get('directory', { type: 'channels', text: input.value.trim(), count: 50, sort: JSON.stringify({ usersCount: -1 }) });
      const rows = (data.result || []).map((room) => {
        const joined = app.rooms.has(room._id);
        return h(
          'li',
          null,
          h('div', null, h('strong', null, '#' + room.name), h('span', { class: 'muted' }, ` · ${room.usersCount ?? 0} members`), room.topic ? h('p', { class: 'muted' }, room.topic) : null),
          h(
            'button',
            {
              type: 'button',
              onclick: async () => {
                try {
                  if (!joined) await rest.post('channels.join', { roomId: room._id });
                  await app.loadRooms();
                  closePanel();
                  app.navigate(`/channel/${encodeURIComponent(room.name)}`);
                } catch (err) {
                  alert(err.message);
                }
              },
            },
            joined ? 'Open' : 'Join',
          ),
        );
      });
      fill(results, ...(rows.length ? rows : [h('li', { class: 'empty' }, 'No channels found.')]));
    } catch (err) {
      fill(results, h('li', { class: 'error' }, err.message));
    }
  };
  let timer;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  body.append(input, results);
  load();
}
