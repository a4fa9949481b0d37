// Copying a link, code or key with visible feedback ("Copied"), and printing one card of a page
// (a set-password link to hand over on paper).

import { h } from './dom.js';
import { setText } from './i18n.js';

/** The old way, for browsers that refuse the clipboard API (no permission, not focused). */
function legacyCopy(text) {
  const area = h('textarea', { readOnly: true, class: 'offscreen', 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A Copy button and, beside it, a live note that says "Copied" (or how to copy by hand). */
export function copyButton(getText, { labelKey, vars } = {}) {
  const note = h('span', { class: 'copied', role: 'status' });
  let timer = null;
  const button = h('button', {
    type: 'button', class: 'copy', text: 'copy', label: labelKey, vars,
    on: {
      click: async () => {
        const text = typeof getText === 'function' ? getText() : getText;
        let ok = false;
        try {
          await navigator.clipboard.writeText(text);
          ok = true;
        } catch {
          ok = legacyCopy(text);
        }
        setText(note, ok ? 'copied' : 'copy_failed');
        clearTimeout(timer);
        timer = setTimeout(() => {
          note.textContent = '';
          delete note.dataset.i18n;
        }, 5000);
      },
    },
  });
  return h('span', { class: 'copy-group' }, button, note);
}

/** A read-only field with a Copy button, e.g. for a link shown only once. */
export function copyField(labelKey, value, { className = '', vars } = {}) {
  const input = h('input', { readOnly: true, value, class: `copy-value ${className}`.trim() });
  input.addEventListener('focus', () => input.select());
  return h('div', { class: 'copy-field' },
    h('label', { class: 'field' }, h('span', { text: labelKey, vars }), input),
    copyButton(() => input.value));
}

/** Prints only `card` (the rest of the page is hidden while printing). */
export function printCard(card) {
  card.classList.add('print-target');
  document.body.classList.add('printing-one');
  const done = () => {
    card.classList.remove('print-target');
    document.body.classList.remove('printing-one');
    window.removeEventListener('afterprint', done);
  };
  window.addEventListener('afterprint', done);
  window.print();
}
