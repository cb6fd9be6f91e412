// One open room: a windowed (virtualised) message list with history loaded upward, live
// messages from stream-room-messages, typing, the composer with autocomplete, and message actions.
import { h, fill, toDate, sameDay, formatDay, formatTime, formatSize, safeUrl } from './dom.js';
import { render as markdown } from './markdown.js';
import * as rest from './rest.js';
import { openPanel } from './panels.js';

const PAGE = 50;
/** Messages rendered beyond the visible ones, above and below. */
const OVERSCAN = 25;
/** Height assumed for a message not measured yet. */
const ESTIMATE = 44;
const GROUP_MS = 5 * 60 * 1000;
export const EMOJI = {
  ':+1:': '👍', ':heart:': '❤️', ':joy:': '😂', ':tada:': '🎉', ':eyes:': '👀', ':rocket:': '🚀', ':smile:': '😄', ':white_check_mark:': '✅',
};

const SYSTEM = {
  uj: (m) => `${m.u?.username} joined the room`,
  ujt: (m) => `${m.u?.username} joined the team`,
  ul: (m) => `${m.u?.username} left the room`,
  ult: (m) => `${m.u?.username} left the team`,
  au: (m) => `${m.u?.username} added ${m.msg}`,
  ru: (m) => `${m.u?.username} removed ${m.msg}`,
  r: (m) => `${m.u?.username} renamed the room to ${m.msg}`,
  rm: (m) => `${m.u?.username} deleted a message`,
  room_changed_topic: (m) => (m.msg ? `${m.u?.username} changed the topic to: ${m.msg}` : `${m.u?.username} cleared the topic`),
  room_changed_description: (m) => `${m.u?.username} changed the description to: ${m.msg}`,
  room_changed_announcement: (m) => `${m.u?.username} changed the announcement to: ${m.msg}`,
  room_changed_purpose: (m) => `${m.u?.username} changed the purpose to: ${m.msg}`,
  room_changed_privacy: (m) => `${m.u?.username} changed the room type to ${m.msg}`,
  'room-archived': (m) => `${m.u?.username} archived the room`,
  'room-unarchived': (m) => `${m.u?.username} unarchived the room`,
  'subscription-role-added': (m) => `${m.u?.username} set ${m.msg} as ${m.role}`,
  'subscription-role-removed': (m) => `${m.u?.username} removed ${m.msg} as ${m.role}`,
  'user-muted': (m) => `${m.u?.username} muted ${m.msg}`,
  'user-unmuted': (m) => `${m.u?.username} unmuted ${m.msg}`,
  message_pinned: (m) => `${m.u?.username} pinned a message`,
  'message_pinned_e2e': (m) => `${m.u?.username} pinned a message`,
  'message_unpinned': (m) => `${m.u?.username} unpinned a message`,
};

export function systemText(m) {
  const f = SYSTEM[m.t];
  return f ? f(m) : `${m.u?.username || 'Someone'}: ${m.msg || m.t}`;
}

/** `w`×`h` scaled down (never up) to fit `maxW`×`maxH`, in whole pixels. */
function fit(w, h, maxW, maxH) {
  const k = Math.min(1, maxW / w, maxH / h);
  return [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
}

const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => 'ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz23456789'[b % 55]).join('');

export class RoomView {
  constructor(app, entry, mount) {
    this.app = app;
    this.entry = entry;
    this.rid = entry.sub.rid;
    this.mount = mount;
    this.msgs = []; // main list, oldest first
    this.mainIds = new Set(); // ids in `msgs`: deduplicating a page must not scan the whole room
    this.byId = new Map(); // every loaded message, thread replies too
    this.replies = new Map(); // tmid -> ids of its loaded replies (the server may not count them)
    this.heights = new Map();
    this.start = 0;
    this.end = 0;
    this.noMore = false;
    this.loading = false;
    this.stickToBottom = true;
    this.typing = new Map(); // username -> timeout
    this.lastUpdate = 0;
    this.build();
    this.streams = [
      app.ddp.subscribe('stream-room-messages', this.rid, (args) => args.forEach((m) => this.upsert(m, true))),
      app.ddp.subscribe('stream-notify-room', `${this.rid}/deleteMessage`, ([m]) => m?._id && this.remove(m._id)),
      app.ddp.subscribe('stream-notify-room', `${this.rid}/typing`, ([username, on]) => this.setTyping(username, on)),
    ];
    this.loadOlder().then(() => this.markRead());
  }

  close() {
    this.closed = true;
    for (const stop of this.streams) stop();
    this.stopTyping();
    for (const t of this.typing.values()) clearTimeout(t);
  }

  label() {
    return this.app.roomLabel(this.entry);
  }

  build() {
    const { sub } = this.entry;
    const label = this.label();
    document.title = `${sub.t === 'd' ? '@' : sub.t === 'p' ? '🔒' : '#'}${label} · Apogee`;
    this.topic = h('p', { class: 'topic' }, this.entry.room.topic || '');
    const header = h(
      'header',
      { class: 'room-header' },
      h('button', { type: 'button', class: 'back ghost', 'aria-label': 'Back to rooms', onclick: () => this.app.showList() }, '←'),
      h('div', { class: 'title' }, h('h1', { id: 'room-title' }, sub.t === 'd' ? label : (sub.t === 'p' ? '🔒 ' : '# ') + label), this.topic),
      h(
        'div',
        { class: 'room-tools' },
        h('button', { type: 'button', class: 'ghost', onclick: () => this.openSearch() }, 'Search'),
        h('button', { type: 'button', class: 'ghost', onclick: () => this.openMarked('pinned') }, 'Pinned'),
        h('button', { type: 'button', class: 'ghost', onclick: () => this.openMarked('starred') }, 'Starred'),
      ),
    );
    this.topSpacer = h('li', { class: 'spacer', 'aria-hidden': 'true' });
    this.bottomSpacer = h('li', { class: 'spacer', 'aria-hidden': 'true' });
    this.list = h('ol', { class: 'msgs' }, this.topSpacer, this.bottomSpacer);
    this.status = h('p', { class: 'history-state', role: 'status' });
    this.scroller = h(
      'div',
      { class: 'scroller', role: 'log', 'aria-labelledby': 'room-title', tabindex: '0', 'aria-describedby': 'log-help' },
      this.status,
      this.list,
    );
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.scroller.addEventListener('keydown', (e) => this.onLogKey(e));
    this.typingLine = h('p', { class: 'typing', 'aria-live': 'polite' });
    this.composer = new Composer(this, (text) => this.send(text));
    fill(
      this.mount,
      header,
      h('p', { id: 'log-help', class: 'sr-only' }, 'Use Up and Down arrows to move between messages; on a message, Tab reaches its actions.'),
      this.scroller,
      this.typingLine,
      this.composer.el,
    );
    this.mount.setAttribute('aria-labelledby', 'room-title');
    this.dropNote = h('div', { class: 'drop-note', 'aria-hidden': 'true' }, `Drop files to upload to ${this.label()}`);
    this.mount.append(this.dropNote);
    // Properties, not listeners: the room area outlives this view and must not keep its handlers.
    const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    this.mount.ondragenter = this.mount.ondragover = (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      this.mount.classList.add('dropping');
    };
    this.mount.ondragleave = (e) => {
      if (!this.mount.contains(e.relatedTarget)) this.mount.classList.remove('dropping');
    };
    this.mount.ondrop = (e) => {
      this.mount.classList.remove('dropping');
      if (!carriesFiles(e)) return;
      e.preventDefault();
      this.composer.addFiles(e.dataTransfer.files);
    };
    this.composer.focus();
  }

  roomChanged(room) {
    this.entry.room = room;
    this.topic.textContent = room.topic || '';
  }

  // --- data ---------------------------------------------------------------------------------

  inMain(m) {
    return !m.tmid || m.tshow;
  }

  /** Adds or replaces a message; `live` ones mark the room read when it is in view. */
  upsert(m, live) {
    if (!m || m.rid !== this.rid || !m._id) return;
    if (m._hidden) return this.remove(m._id);
    this.lastUpdate = Math.max(this.lastUpdate, toDate(m._updatedAt ?? m.ts).getTime());
    const known = this.byId.has(m._id);
    this.remember(m);
    this.app.watchUsers([m.u?._id]);
    if (this.inMain(m)) {
      const at = this.mainIds.has(m._id) ? this.msgs.findIndex((x) => x._id === m._id) : -1;
      if (at >= 0) this.msgs[at] = m;
      else {
        const ts = toDate(m.ts).getTime();
        let i = this.msgs.length;
        while (i > 0 && toDate(this.msgs[i - 1].ts).getTime() > ts) i -= 1;
        this.msgs.splice(i, 0, m);
        this.mainIds.add(m._id);
      }
      this.heights.delete(m._id);
    }
    if (m.tmid) this.heights.delete(m.tmid);
    this.draw();
    if (m.tmid) this.threadChanged(m.tmid);
    this.threadChanged(m._id);
    if (live && !known && m.u?._id !== this.app.me._id) this.markRead();
  }

  remember(m) {
    this.byId.set(m._id, m);
    if (m.tmid) {
      if (!this.replies.has(m.tmid)) this.replies.set(m.tmid, new Set());
      this.replies.get(m.tmid).add(m._id);
    }
  }

  replyCount(m) {
    return Math.max(m.tcount || 0, this.replies.get(m._id)?.size || 0);
  }

  remove(id) {
    const gone = this.byId.get(id);
    if (gone?.tmid) this.replies.get(gone.tmid)?.delete(id);
    this.byId.delete(id);
    const at = this.mainIds.has(id) ? this.msgs.findIndex((x) => x._id === id) : -1;
    if (at >= 0) {
      this.mainIds.delete(id);
      this.msgs.splice(at, 1);
      this.draw();
    }
  }

  async loadOlder() {
    if (this.loading || this.noMore) return;
    this.loading = true;
    this.status.textContent = 'Loading messages…';
    const oldest = this.msgs[0];
    try {
      // showThreadMessages false: replies stay in their threads (the panel loads them and the
      // parent's tcount counts them), so every page fills the main list.
      const result = await this.app.ddp.call('loadHistory', this.rid, oldest ? { $date: toDate(oldest.ts).getTime() } : null, PAGE, null, false);
      if (this.closed) return;
      const messages = result?.messages || [];
      if (messages.length < PAGE) this.noMore = true;
      for (const m of messages) {
        this.remember(m);
        this.lastUpdate = Math.max(this.lastUpdate, toDate(m._updatedAt ?? m.ts).getTime());
      }
      this.app.watchUsers(messages.map((m) => m.u?._id));
      const older = messages.filter((m) => this.inMain(m) && !this.mainIds.has(m._id)).reverse();
      for (const m of older) this.mainIds.add(m._id);
      this.msgs = older.concat(this.msgs);
      this.start += older.length;
      this.end += older.length;
      this.status.textContent = this.noMore ? 'Start of the room.' : '';
      this.draw(!oldest);
    } catch (e) {
      this.status.textContent = e.offline ? 'Offline: history will load when the connection is back.' : `Could not load messages: ${e.message}`;
    } finally {
      this.loading = false;
    }
  }

  /** After a reconnect: messages sent, edited or deleted while we were away. */
  async catchUp() {
    if (!this.lastUpdate) return this.loadOlder();
    const data = await rest.get('chat.syncMessages', { roomId: this.rid, lastUpdate: new Date(this.lastUpdate).toISOString() });
    for (const m of data.result?.updated || []) this.upsert(m, false);
    for (const m of data.result?.deleted || []) this.remove(m._id);
    this.markRead();
  }

  markRead() {
    if (document.visibilityState !== 'visible' || this.closed) return;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => rest.post('subscriptions.read', { rid: this.rid }).catch(() => {}), 300);
  }

  async send(text, tmid) {
    if (this.composer.editing) {
      const m = this.composer.editing;
      await this.app.ddp.call('updateMessage', { _id: m._id, rid: this.rid, msg: text });
      return;
    }
    const message = { _id: randomId(), rid: this.rid, msg: text };
    if (tmid) message.tmid = tmid;
    this.stickToBottom = true;
    const saved = await this.app.ddp.call('sendMessage', message);
    if (saved) this.upsert(saved, false);
  }

  // --- typing -------------------------------------------------------------------------------

  setTyping(username, on) {
    if (!username || username === this.app.me.username) return;
    clearTimeout(this.typing.get(username));
    if (on) this.typing.set(username, setTimeout(() => this.setTyping(username, false), 15000));
    else this.typing.delete(username);
    const names = [...this.typing.keys()];
    this.typingLine.textContent = !names.length
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`;
  }

  typed() {
    if (!this.typingSent) {
      this.typingSent = true;
      this.app.ddp.call('stream-notify-room', `${this.rid}/typing`, this.app.me.username, true).catch(() => {});
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), 4000);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typingSent) {
      this.typingSent = false;
      this.app.ddp.call('stream-notify-room', `${this.rid}/typing`, this.app.me.username, false).catch(() => {});
    }
  }

  // --- the windowed list --------------------------------------------------------------------

  height(i) {
    return this.heights.get(this.msgs[i]._id) ?? ESTIMATE;
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  onScroll() {
    if (this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => {
      this.scrollQueued = false;
      this.stickToBottom = this.atBottom();
      if (this.scroller.scrollTop < 300 && this.start === 0) this.loadOlder();
      const [first, last] = this.visibleRange();
      if (first - this.start < OVERSCAN / 2 && this.start > 0) this.draw();
      else if (this.end - last < OVERSCAN / 2 && this.end < this.msgs.length) this.draw();
      if (this.stickToBottom) this.markRead();
    });
  }

  /** Indices of the first and last message in the viewport, from measured or estimated heights. */
  visibleRange() {
    const top = this.scroller.scrollTop - this.list.offsetTop;
    const bottom = top + this.scroller.clientHeight;
    let y = 0;
    let first = -1;
    let last = this.msgs.length - 1;
    for (let i = 0; i < this.msgs.length; i += 1) {
      const next = y + this.height(i);
      if (first < 0 && next > top) first = i;
      if (next >= bottom) {
        last = i;
        break;
      }
      y = next;
    }
    return [Math.max(0, first), last];
  }

  /** Renders the window around what is visible, keeping the message at the top of the view in place. */
  draw(toBottom) {
    const s = this.scroller;
    const stick = toBottom || this.stickToBottom;
    // Anchor: the first rendered message whose bottom is below the viewport's top.
    let anchor = null;
    const viewTop = s.getBoundingClientRect().top;
    for (const li of this.list.querySelectorAll('li.msg')) {
      const r = li.getBoundingClientRect();
      if (r.bottom > viewTop) {
        anchor = { id: li.dataset.id, offset: r.top - viewTop };
        break;
      }
    }
    const n = this.msgs.length;
    let center;
    if (stick) center = n - 1;
    else if (anchor) center = this.msgs.findIndex((m) => m._id === anchor.id);
    if (center === undefined || center < 0) center = this.visibleRange()[0];
    const visibleCount = Math.ceil(s.clientHeight / 24) + 1;
    this.start = Math.max(0, center - OVERSCAN);
    this.end = Math.min(n, center + visibleCount + OVERSCAN);
    if (stick) this.start = Math.max(0, n - visibleCount - 2 * OVERSCAN);

    const focused = document.activeElement?.closest?.('li.msg')?.dataset.id;
    const items = [];
    for (let i = this.start; i < this.end; i += 1) items.push(this.item(i));
    this.list.replaceChildren(this.topSpacer, ...items, this.bottomSpacer);
    for (const li of items) this.heights.set(li.dataset.id, li.offsetHeight);
    let above = 0;
    for (let i = 0; i < this.start; i += 1) above += this.height(i);
    let below = 0;
    for (let i = this.end; i < n; i += 1) below += this.height(i);
    this.topSpacer.style.height = `${above}px`;
    this.bottomSpacer.style.height = `${below}px`;

    if (stick) s.scrollTop = s.scrollHeight;
    else if (anchor) {
      const li = this.list.querySelector(`li.msg[data-id="${CSS.escape(anchor.id)}"]`);
      if (li) s.scrollTop += li.getBoundingClientRect().top - viewTop - anchor.offset;
    }
    if (focused) this.list.querySelector(`li.msg[data-id="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
  }

  /** The element for message `i`: day separator, grouping with the previous one, body, tools. */
  item(i) {
    const m = this.msgs[i];
    const prev = this.msgs[i - 1];
    const ts = toDate(m.ts);
    const newDay = !prev || !sameDay(toDate(prev.ts), ts);
    const grouped = !newDay && prev && !prev.t && !m.t && prev.u?._id === m.u?._id && ts - toDate(prev.ts) < GROUP_MS && !m.tmid;
    const li = this.messageElement(m, { grouped });
    if (newDay) li.prepend(h('div', { class: 'day', role: 'separator' }, h('span', null, formatDay(ts))));
    return li;
  }

  messageElement(m, { grouped = false, inThread = false } = {}) {
    const me = this.app.me;
    const ts = toDate(m.ts);
    const own = m.u?._id === me._id;
    const name = m.u?.name || m.u?.username || '';
    const classes = ['msg'];
    if (grouped) classes.push('grouped');
    if (m.t) classes.push('system');
    if (own) classes.push('own');
    const mentioned = (m.mentions || []).some((u) => u._id === me._id || u.username === 'all' || u.username === 'here');
    if (mentioned && !own) classes.push('mentioned');
    const li = h('li', { class: classes.join(' '), tabindex: '-1', dataset: { id: m._id }, 'aria-label': m.t ? systemText(m) : `${name}, ${formatTime(ts)}` });
    if (m.t) {
      li.append(h('p', { class: 'system-text' }, systemText(m), ' ', h('time', { datetime: ts.toISOString() }, formatTime(ts))));
      return li;
    }
    if (!grouped) {
      li.append(
        this.app.avatar(m.u?.username, 32),
        h(
          'div',
          { class: 'meta' },
          h('span', { class: 'presence', 'data-uid': m.u?._id || '', 'data-status': this.app.presence.get(m.u?._id) || (own ? 'online' : 'offline'), 'aria-hidden': 'true' }),
          h('strong', { class: 'author' }, name),
          name !== m.u?.username ? h('span', { class: 'username' }, '@' + m.u?.username) : null,
          h('time', { datetime: ts.toISOString(), title: ts.toLocaleString() }, formatTime(ts)),
        ),
      );
    }
    const body = h('div', { class: 'body' });
    body.append(
      markdown(m.msg, {
        mention: (n) => h('span', { class: 'mention' + (n === me.username ? ' me' : '') }, '@' + n),
        channel: (n) => h('a', { href: `/channel/${encodeURIComponent(n)}`, class: 'channel-link' }, '#' + n),
      }),
    );
    const files = this.attachments(m);
    if (files) body.append(files);
    const marks = [];
    if (m.editedAt) marks.push(h('span', { class: 'mark', title: `Edited ${toDate(m.editedAt).toLocaleString()}` }, '(edited)'));
    if (m.pinned) marks.push(h('span', { class: 'mark' }, '📌 pinned'));
    const starred = (m.starred || []).some((s) => s._id === me._id);
    if (starred) marks.push(h('span', { class: 'mark' }, '★ starred'));
    if (marks.length) body.append(h('div', { class: 'marks' }, ...marks));
    li.append(body);

    const reactions = Object.entries(m.reactions || {});
    if (reactions.length) {
      li.append(
        h(
          'div',
          { class: 'reactions' },
          ...reactions.map(([emoji, r]) => {
            const mine = (r.usernames || []).includes(me.username);
            const count = (r.usernames || []).length;
            return h(
              'button',
              {
                type: 'button',
                class: 'reaction' + (mine ? ' mine' : ''),
                'aria-pressed': String(mine),
                'aria-label': `${emoji} by ${(r.usernames || []).join(', ')}`,
                title: (r.usernames || []).join(', '),
                onclick: () => this.react(m, emoji),
              },
              EMOJI[emoji] || emoji,
              ' ',
              String(count),
            );
          }),
        ),
      );
    }
    const replies = this.replyCount(m);
    if (!inThread && replies) {
      li.append(h('button', { type: 'button', class: 'thread-link link', onclick: () => this.openThread(m._id) }, `${replies} ${replies === 1 ? 'reply' : 'replies'}`));
    }
    li.append(this.tools(m, own, starred, inThread));
    return li;
  }

  /** File messages: an image thumbnail (sized before it loads, so the list's heights hold), or a
   * download link with the name and size. Every URL is user content and checked. */
  attachments(m) {
    const list = (Array.isArray(m.attachments) ? m.attachments : []).filter((a) => a && typeof a === 'object' && !a.message_link);
    if (!list.length) return null;
    return h('div', { class: 'attachments' }, ...list.map((a) => this.attachment(m, a)));
  }

  attachment(m, a) {
    const file = (m.files || []).find((f) => f && f.name === a.title) || m.file || {};
    const title = String(a.title || file.name || 'file');
    const link = safeUrl(a.title_link);
    const size = a.image_size ?? a.size ?? a.audio_size ?? a.video_size ?? file.size;
    const parts = [];
    const image = safeUrl(a.image_url, true);
    const video = safeUrl(a.video_url, true);
    const audio = safeUrl(a.audio_url, true);
    if (image) {
      const dims = a.image_dimensions || {};
      const [w, hgt] = fit(Number(dims.width) || 360, Number(dims.height) || 240, 360, 240);
      parts.push(
        h(
          'a',
          { href: link || image, target: '_blank', rel: 'noopener noreferrer', class: 'image-link' },
          h('img', { class: 'attachment-image', src: image, alt: title, width: String(w), height: String(hgt), loading: 'lazy', decoding: 'async' }),
        ),
      );
    } else if (video) {
      parts.push(h('video', { src: video, controls: true, preload: 'metadata', class: 'attachment-media', 'aria-label': title, width: '360', height: '203' }));
    } else if (audio) {
      parts.push(h('audio', { src: audio, controls: true, preload: 'none', class: 'attachment-media', 'aria-label': title }));
    }
    const sizeText = size !== undefined && size !== null && formatSize(size) ? ` · ${formatSize(size)}` : '';
    parts.push(
      h(
        'p',
        { class: 'file-line' },
        link
          ? h('a', { href: link, download: title, class: 'file-link', rel: 'noopener noreferrer', 'aria-label': `Download ${title}${sizeText ? `, ${formatSize(size)}` : ''}` }, title)
          : h('span', { class: 'file-name' }, title),
        sizeText ? h('span', { class: 'muted file-size' }, sizeText) : null,
      ),
    );
    if (typeof a.description === 'string' && a.description) parts.push(h('div', { class: 'file-description' }, markdown(a.description, {})));
    return h('figure', { class: 'attachment' }, ...parts);
  }

  tools(m, own, starred, inThread) {
    const b = (label, action, extra = {}) => h('button', { type: 'button', tabindex: '-1', onclick: action, ...extra }, label);
    return h(
      'div',
      { class: 'tools', role: 'toolbar', 'aria-label': 'Message actions' },
      b('React', (e) => this.pickReaction(m, e.currentTarget), { 'aria-haspopup': 'true' }),
      inThread ? null : b('Reply in thread', () => this.openThread(m._id)),
      b(starred ? 'Unstar' : 'Star', () => rest.post(starred ? 'chat.unStarMessage' : 'chat.starMessage', { messageId: m._id }).then(() => this.refetch(m._id))),
      b(m.pinned ? 'Unpin' : 'Pin', () => rest.post(m.pinned ? 'chat.unPinMessage' : 'chat.pinMessage', { messageId: m._id }).catch((e) => alert(e.message))),
      own ? b('Edit', () => this.composer.edit(m)) : null,
      own ? b('Delete', () => this.deleteMessage(m)) : null,
    );
  }

  async refetch(id) {
    try {
      const data = await rest.get('chat.getMessage', { msgId: id });
      if (data.message) this.upsert(data.message, false);
    } catch {
      // the next live update brings it
    }
  }

  async deleteMessage(m) {
    if (!confirm('Delete this message? This cannot be undone.')) return;
    try {
      await this.app.ddp.call('deleteMessage', { _id: m._id });
      this.remove(m._id);
    } catch (e) {
      alert(`Could not delete: ${e.message}`);
    }
  }

  async react(m, emoji) {
    try {
      await this.app.ddp.call('setReaction', emoji, m._id);
    } catch (e) {
      alert(`Could not react: ${e.message}`);
    }
  }

  pickReaction(m, button) {
    document.querySelector('.picker')?.remove();
    const picker = h(
      'div',
      { class: 'picker', role: 'menu', 'aria-label': 'Pick a reaction' },
      ...Object.entries(EMOJI).map(([code, glyph]) =>
        h('button', { type: 'button', role: 'menuitem', 'aria-label': code, onclick: () => { picker.remove(); this.react(m, code); button.focus(); } }, glyph),
      ),
    );
    picker.addEventListener('keydown', (e) => {
      const items = [...picker.querySelectorAll('button')];
      const at = items.indexOf(document.activeElement);
      if (e.key === 'Escape') {
        picker.remove();
        button.focus();
      } else if (e.key === 'ArrowRight' || e.key === 'ArrowDown') {
        e.preventDefault();
        items[(at + 1) % items.length].focus();
      } else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') {
        e.preventDefault();
        items[(at - 1 + items.length) % items.length].focus();
      }
    });
    button.closest('li')?.append(picker);
    picker.querySelector('button').focus();
  }

  /** Up/Down move between messages; the focused one's actions join the Tab order. */
  onLogKey(e) {
    const items = [...this.list.querySelectorAll('li.msg')];
    const current = document.activeElement?.closest?.('li.msg');
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    if (e.target.closest('.picker')) return;
    e.preventDefault();
    let at = current ? items.indexOf(current) : e.key === 'ArrowUp' ? items.length : -1;
    at += e.key === 'ArrowUp' ? -1 : 1;
    const next = items[Math.max(0, Math.min(items.length - 1, at))];
    if (!next) return;
    for (const b of this.list.querySelectorAll('.tools button[tabindex="0"]')) b.tabIndex = -1;
    for (const b of next.querySelectorAll('.tools button')) b.tabIndex = 0;
    next.focus();
    if (at <= 0 && this.start === 0) this.loadOlder();
  }

  // --- panels -------------------------------------------------------------------------------

  openThread(id) {
    this.threadId = id;
    openPanel('custom', {
      title: 'Thread',
      render: (body) => {
        this.threadBody = h('ol', { class: 'msgs thread', 'aria-label': 'Thread messages' });
        const composer = new Composer(this, (text) => this.send(text, id), 'Reply in thread', 'Reply in thread', id);
        body.append(this.threadBody, composer.el);
        this.drawThread();
        composer.focus();
        this.loadThread(id);
      },
      onclose: () => {
        this.threadId = null;
        this.threadNote = null;
      },
    });
  }

  /** The whole thread from the server (`chat.getThreadMessages`), not only the replies that
   * happen to be among the room's loaded messages; the parent too when it is not loaded. */
  async loadThread(id) {
    try {
      if (!this.byId.has(id)) {
        const data = await rest.get('chat.getMessage', { msgId: id });
        if (data.message) this.remember(data.message);
      }
      let offset = 0;
      for (;;) {
        const data = await rest.get('chat.getThreadMessages', { tmid: id, count: 100, offset });
        const page = data.messages || [];
        for (const m of page) this.remember(m);
        this.app.watchUsers(page.map((m) => m.u?._id));
        offset += page.length;
        if (!page.length || offset >= (data.total ?? 0) || this.threadId !== id) break;
      }
    } catch (e) {
      if (this.threadId === id) this.threadNote = `Could not load the thread: ${e.message}`;
    }
    this.threadChanged(id);
  }

  threadChanged(id) {
    if (this.threadId && this.threadId === id) this.drawThread();
  }

  drawThread() {
    if (!this.threadBody || !this.threadId) return;
    const parent = this.byId.get(this.threadId);
    const ids = this.replies.get(this.threadId) || new Set();
    const replies = [...ids].map((rid) => this.byId.get(rid)).filter(Boolean).sort((a, b) => toDate(a.ts) - toDate(b.ts));
    const count = parent ? this.replyCount(parent) : replies.length;
    fill(
      this.threadBody,
      parent ? this.messageElement(parent, { inThread: true }) : null,
      h('li', { class: 'thread-count', role: 'separator' }, `${count} ${count === 1 ? 'reply' : 'replies'}`),
      this.threadNote ? h('li', { class: 'error' }, this.threadNote) : null,
      ...replies.map((m) => this.messageElement(m, { inThread: true })),
    );
  }

  openSearch() {
    openPanel('custom', {
      title: `Search in ${this.label()}`,
      render: (body) => {
        const input = h('input', { type: 'search', 'aria-label': 'Search messages', placeholder: 'Search messages' });
        const results = h('ol', { class: 'msgs results', 'aria-live': 'polite', 'aria-label': 'Results' });
        const form = h('form', { role: 'search' }, input, h('button', { type: 'submit' }, 'Search'));
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          const searchText = input.value.trim();
          if (!searchText) return;
          fill(results, h('li', { class: 'empty' }, 'Searching…'));
          try {
            const data = await rest.get('chat.search', { roomId: this.rid, searchText, count: 50 });
            const found = data.messages || [];
            fill(results, ...(found.length ? found.map((m) => this.messageElement(m, { inThread: true })) : [h('li', { class: 'empty' }, 'No messages found.')]));
          } catch (err) {
            fill(results, h('li', { class: 'error' }, err.message));
          }
        });
        body.append(form, results);
        input.focus();
      },
    });
  }

  openMarked(kind) {
    openPanel('custom', {
      title: kind === 'pinned' ? 'Pinned messages' : 'Starred messages',
      render: async (body) => {
        const results = h('ol', { class: 'msgs results', 'aria-label': kind === 'pinned' ? 'Pinned messages' : 'Starred messages' }, h('li', { class: 'empty' }, 'Loading…'));
        body.append(results);
        try {
          const data = await rest.get(kind === 'pinned' ? 'chat.getPinnedMessages' : 'chat.getStarredMessages', { roomId: this.rid, count: 50 });
          const found = data.messages || [];
          fill(results, ...(found.length ? found.map((m) => this.messageElement(m, { inThread: true })) : [h('li', { class: 'empty' }, 'None yet.')]));
        } catch (err) {
          fill(results, h('li', { class: 'error' }, err.message));
        }
      },
    });
  }
}

/** The message box: Enter sends, Shift+Enter is a new line, Up edits your last message, @ and # complete. */
class Composer {
  constructor(view, onSend, label = 'Message', placeholder, tmid) {
    this.view = view;
    this.onSend = onSend;
    this.tmid = tmid;
    this.editing = null;
    const id = 'ac-' + Math.random().toString(36).slice(2);
    this.listbox = h('ul', { class: 'autocomplete', role: 'listbox', id, hidden: true, 'aria-label': 'Suggestions' });
    this.input = h('textarea', {
      rows: '1',
      'aria-label': `${label} in ${view.label()}`,
      placeholder: placeholder || `${label} ${view.entry.sub.t === 'd' ? '@' : '#'}${view.label()}`,
      'aria-autocomplete': 'list',
      'aria-controls': id,
      'aria-expanded': 'false',
      role: 'combobox',
      enterkeyhint: 'send',
    });
    this.note = h('p', { class: 'composer-note', 'aria-live': 'polite' });
    this.fileInput = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Files to upload' });
    this.fileInput.addEventListener('change', () => {
      this.addFiles(this.fileInput.files);
      this.fileInput.value = '';
    });
    const attach = h('button', { type: 'button', class: 'attach', 'aria-label': tmid ? 'Attach files to the thread' : 'Attach files', title: 'Attach files', onclick: () => this.fileInput.click() }, 'Attach');
    this.tray = h('ul', { class: 'uploads', 'aria-label': 'Files to upload', hidden: true });
    this.el = h(
      'form',
      { class: 'composer', 'aria-label': label },
      this.listbox,
      this.tray,
      this.note,
      h('div', { class: 'row' }, attach, this.fileInput, this.input, h('button', { type: 'submit', class: 'primary' }, 'Send')),
    );
    this.input.addEventListener('paste', (e) => {
      const files = e.clipboardData?.files;
      if (files?.length) {
        e.preventDefault();
        this.addFiles(files);
      }
    });
    this.el.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => this.onKey(e));
    this.input.addEventListener('input', () => {
      this.autosize();
      if (this.input.value) view.typed();
      else view.stopTyping();
      this.complete();
    });
    this.items = [];
    this.active = -1;
  }

  focus() {
    this.input.focus();
  }

  // --- uploads ------------------------------------------------------------------------------

  /** Puts files in the tray: a preview for images, the name (editable), size and a description;
   * each is sent with its own button, or all with Enter in the message box. */
  addFiles(list) {
    const added = [...(list || [])].map((file) => this.trayItem(file));
    if (!added.length) return;
    this.tray.hidden = false;
    added[0].querySelector('input[name="description"]').focus();
  }

  trayItem(file) {
    const preview = file.type.startsWith('image/') && file.type !== 'image/svg+xml' ? URL.createObjectURL(file) : null;
    const id = 'up-' + Math.random().toString(36).slice(2);
    const name = h('input', { name: 'name', value: file.name, 'aria-label': `File name for ${file.name}`, id: `${id}-name` });
    const description = h('input', { name: 'description', placeholder: 'Description (optional)', 'aria-label': `Description for ${file.name}` });
    const progress = h('progress', { max: String(file.size || 1), value: '0', 'aria-label': `Uploading ${file.name}`, hidden: true });
    const state = h('p', { class: 'upload-state', role: 'status' });
    const abort = new AbortController();
    const send = h('button', { type: 'button', class: 'primary', onclick: () => this.uploadItem(item) }, 'Upload');
    const cancel = h('button', {
      type: 'button',
      onclick: () => {
        abort.abort();
        this.dropItem(item);
        this.focus();
      },
    }, 'Cancel');
    const item = h(
      'li',
      { class: 'upload', 'aria-label': file.name },
      preview ? h('img', { class: 'upload-preview', src: preview, alt: `Preview of ${file.name}`, width: '64', height: '64' }) : h('span', { class: 'upload-preview file-kind', 'aria-hidden': 'true' }, (file.name.split('.').pop() || 'file').slice(0, 4).toUpperCase()),
      h('div', { class: 'upload-fields' }, name, description, h('span', { class: 'muted' }, formatSize(file.size)), progress, state),
      h('div', { class: 'upload-buttons' }, send, cancel),
    );
    Object.assign(item, { file, preview, nameInput: name, description, progress, state, abort, send });
    description.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        this.uploadItem(item);
      }
    });
    this.tray.append(item);
    return item;
  }

  dropItem(item) {
    if (item.preview) URL.revokeObjectURL(item.preview);
    item.remove();
    this.tray.hidden = !this.tray.children.length;
  }

  /** `rooms.media/:rid` (XHR, for the progress bar) then `rooms.mediaConfirm/:rid/:fileId`. */
  async uploadItem(item) {
    if (item.busy) return;
    item.busy = true;
    const { view } = this;
    const fileName = item.nameInput.value.trim() || item.file.name;
    item.send.disabled = true;
    item.nameInput.disabled = true;
    item.description.disabled = true;
    item.progress.hidden = false;
    item.state.textContent = 'Uploading…';
    try {
      const form = new FormData();
      form.append('file', item.file, fileName);
      const sent = await rest.upload(`rooms.media/${encodeURIComponent(view.rid)}`, form, (loaded, total) => {
        item.progress.max = total || item.file.size || 1;
        item.progress.value = loaded;
        const pct = Math.floor((100 * loaded) / (total || item.file.size || 1));
        item.state.textContent = `Uploading… ${pct} %`;
      }, item.abort.signal);
      item.state.textContent = 'Sending…';
      const body = { msg: '', fileName };
      const text = item.description.value.trim();
      if (text) body.description = text;
      if (this.tmid) body.tmid = this.tmid;
      const data = await rest.post(`rooms.mediaConfirm/${encodeURIComponent(view.rid)}/${encodeURIComponent(sent.file._id)}`, body);
      view.stickToBottom = !this.tmid;
      if (data.message) view.upsert(data.message, false);
      this.dropItem(item);
      if (!this.tray.children.length) this.focus();
    } catch (e) {
      if (e.cancelled) return;
      item.busy = false;
      item.send.disabled = false;
      item.nameInput.disabled = false;
      item.description.disabled = false;
      item.progress.hidden = true;
      item.send.textContent = 'Retry';
      item.state.textContent = e.offline ? 'Not uploaded: no connection to the server.' : `Not uploaded: ${e.message}`;
    }
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  edit(m) {
    this.editing = m;
    this.input.value = m.msg;
    this.note.textContent = 'Editing a message. Enter saves, Escape cancels.';
    this.autosize();
    this.focus();
  }

  cancelEdit() {
    this.editing = null;
    this.input.value = '';
    this.note.textContent = '';
    this.autosize();
  }

  async submit() {
    const pending = [...this.tray.children].filter((item) => !item.busy);
    for (const item of pending) this.uploadItem(item);
    const text = this.input.value.trim();
    if (!text) return;
    this.view.stopTyping();
    const saved = this.input.value;
    this.input.value = '';
    this.autosize();
    try {
      await this.onSend(text);
      if (this.editing) this.cancelEdit();
      else this.note.textContent = '';
    } catch (e) {
      this.input.value = saved;
      this.note.textContent = e.offline ? 'Not sent: no connection to the server. Try again when it is back.' : `Not sent: ${e.message}`;
    }
  }

  onKey(e) {
    if (!this.listbox.hidden && this.items.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.select((this.active + (e.key === 'ArrowDown' ? 1 : -1) + this.items.length) % this.items.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        this.insert(this.items[Math.max(0, this.active)]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        this.hideList();
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'Escape' && this.editing) {
      e.preventDefault();
      this.cancelEdit();
    } else if (e.key === 'ArrowUp' && !this.input.value) {
      const mine = [...this.view.msgs].reverse().find((m) => m.u?._id === this.view.app.me._id && !m.t);
      if (mine) {
        e.preventDefault();
        this.edit(mine);
      }
    }
  }

  async complete() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const m = /(^|\s)([@#])([\w.\-]*)$/.exec(before);
    if (!m) return this.hideList();
    const [, , sigil, term] = m;
    const ask = ++this.asked;
    let items = [];
    try {
      if (sigil === '@') {
        const data = await rest.get('users.autocomplete', { selector: JSON.stringify({ term }) });
        items = (data.items || []).map((u) => ({ insert: '@' + u.username, username: u.username, label: u.name ? `${u.username} — ${u.name}` : u.username }));
        for (const special of ['all', 'here']) if (special.startsWith(term)) items.push({ insert: '@' + special, label: `${special} — notify everyone` });
      } else {
        const data = await rest.get('rooms.autocomplete.channelAndPrivate', { selector: JSON.stringify({ name: term }) });
        items = (data.items || []).map((r) => ({ insert: '#' + r.name, label: r.name }));
      }
    } catch {
      items = [];
    }
    if (ask !== this.asked) return;
    this.items = items.slice(0, 8);
    this.term = sigil + term;
    if (!this.items.length) return this.hideList();
    fill(
      this.listbox,
      ...this.items.map((item, i) =>
        h('li', { role: 'option', id: `${this.listbox.id}-${i}`, 'aria-selected': 'false', onmousedown: (e) => { e.preventDefault(); this.insert(item); } }, item.username ? this.view.app.avatar(item.username, 20) : null, item.label),
      ),
    );
    this.listbox.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.select(0);
  }

  select(i) {
    this.active = i;
    [...this.listbox.children].forEach((li, n) => li.setAttribute('aria-selected', String(n === i)));
    this.input.setAttribute('aria-activedescendant', `${this.listbox.id}-${i}`);
  }

  insert(item) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret - this.term.length);
    const after = this.input.value.slice(caret);
    this.input.value = `${before}${item.insert} ${after}`;
    const at = before.length + item.insert.length + 1;
    this.input.setSelectionRange(at, at);
    this.hideList();
  }

  hideList() {
    this.listbox.hidden = true;
    this.items = [];
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }
}
Composer.prototype.asked = 0;

