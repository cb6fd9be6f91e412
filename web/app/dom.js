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
