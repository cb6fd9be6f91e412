// Message Markdown, safely: the text is split into tokens and every piece becomes a DOM text node
// or an element built here. No HTML from a message is ever parsed, so `<script>` stays text.
import { h } from './dom.js';

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/y;

/** Renders `text` into a DocumentFragment. `ctx.mention(name)` / `ctx.channel(name)` make links. */
export function render(text, ctx = {}) {
  const out = document.createDocumentFragment();
  const lines = String(text ?? '').split('\n');
  let i = 0;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) {
      const p = h('p');
      paragraph.forEach((line, n) => {
        if (n) p.append(h('br'));
        inline(line, p, ctx);
      });
      out.append(p);
      paragraph = [];
    }
  };
  while (i < lines.length) {
    const line = lines[i];
    if (line.trimStart().startsWith('```')) {
      flush();
      const body = [];
      const first = line.trimStart().slice(3);
      // ```code``` on one line
      if (first.endsWith('```') && first.length >= 3) {
        out.append(h('pre', null, h('code', null, first.slice(0, -3))));
        i += 1;
        continue;
      }
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith('```')) body.push(lines[i++]);
      i += 1; // closing fence (or end of text)
      out.append(h('pre', null, h('code', null, body.join('\n'))));
      continue;
    }
    if (line.startsWith('>')) {
      flush();
      const quoted = [];
      while (i < lines.length && lines[i].startsWith('>')) quoted.push(lines[i++].replace(/^> ?/, ''));
      const q = h('blockquote');
      q.append(render(quoted.join('\n'), ctx));
      out.append(q);
      continue;
    }
    paragraph.push(line);
    i += 1;
  }
  flush();
  return out;
}

/** Inline spans: `code`, links, *bold*, _italic_, ~strike~, @mentions and #channels. */
function inline(text, parent, ctx) {
  let plain = '';
  const emit = () => {
    if (plain) parent.append(document.createTextNode(plain));
    plain = '';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const prev = i === 0 ? ' ' : text[i - 1];
    const boundary = /[\s(\[{'"]/.test(prev);
    if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end > i + 1) {
        emit();
        parent.append(h('code', null, text.slice(i + 1, end)));
        i = end + 1;
        continue;
      }
    }
    if (c === 'h' && boundary) {
      URL_RE.lastIndex = i;
      const m = URL_RE.exec(text);
      if (m) {
        emit();
        parent.append(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer nofollow' }, m[0]));
        i += m[0].length;
        continue;
      }
    }
    if ((c === '*' || c === '_' || c === '~') && boundary) {
      // `*x*` and `**x**` alike (Rocket.Chat's bold is one asterisk; people type two).
      const marker = text[i + 1] === c ? c + c : c;
      const from = i + marker.length;
      const end = text.indexOf(marker, from + 1);
      const after = end + marker.length;
      if (
        end > from && text[from] !== ' ' && text[end - 1] !== ' ' &&
        (after >= text.length || /[\s.,;:!?)\]}'"]/.test(text[after]))
      ) {
        emit();
        const el = h(c === '*' ? 'strong' : c === '_' ? 'em' : 's');
        inline(text.slice(from, end), el, ctx);
        parent.append(el);
        i = after;
        continue;
      }
    }
    if ((c === '@' || c === '#') && boundary) {
      const m = /^[\w.\-]+/.exec(text.slice(i + 1));
      if (m) {
        emit();
        const name = m[0].replace(/[.\-]+$/, '');
        const make = c === '@' ? ctx.mention : ctx.channel;
        parent.append(make ? make(name) : h('span', { class: 'mention' }, c + name));
        i += 1 + name.length;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  emit();
}
