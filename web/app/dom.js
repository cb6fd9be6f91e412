// Building DOM without HTML strings: user content only ever becomes text nodes or attribute
// values, so nothing a message or a name contains can run.

/** `h('button', {class: 'x', onclick: f, 'aria-label': 'Send'}, 'text', child)` */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'value') el.value = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const DAY = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export const formatDay = (d) => DAY.format(d);
export const formatTime = (d) => TIME.format(d);

/** EJSON `{"$date": ms}`, an ISO string or ms, as a Date. */
export function toDate(v) {
  if (v && typeof v === 'object' && '$date' in v) return new Date(v.$date);
  return new Date(v ?? 0);
}

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** `1536` as `1.5 KB`. */
export function formatSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * A URL from user content (a message's attachment) as an absolute http(s) URL, or null: a
 * `javascript:` or `data:` link must never become a clickable `href`. `sameOrigin` also refuses
 * other sites (the CSP would block their images anyway, and they would learn who looks).
 */
export function safeUrl(value, sameOrigin = false) {
  if (typeof value !== 'string' || !value) return null;
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (sameOrigin && url.origin !== location.origin) return null;
  return url.href;
}

/** A user's avatar (`/avatar/<username>`), decorative: the name is always next to it. */
export function avatar(username, size = 32, version = '') {
  if (!username) return null;
  const src = `/avatar/${encodeURIComponent(username)}${version ? `?etag=${encodeURIComponent(version)}` : ''}`;
  return h('img', { class: 'avatar', src, alt: '', width: String(size), height: String(size), loading: 'lazy', decoding: 'async', dataset: { username } });
}
