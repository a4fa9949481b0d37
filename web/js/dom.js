// A tiny element builder. Attributes: `text` (a catalogue key), `vars`, `label` (a catalogue
// key for aria-label), `placeholder` (a catalogue key), `class`, `on: {event: fn}`, and any
// other attribute or property. Never sets `style` attributes: the CSP forbids inline styles.

import { setLabel, setText, t } from './i18n.js';

export function h(tag, attrs = {}, ...children) {
  children = children.flat().filter((c) => c !== null && c !== undefined && c !== false);
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') setText(el, value, attrs.vars);
    else if (name === 'vars') continue;
    else if (name === 'label') setLabel(el, value, attrs.vars);
    else if (name === 'placeholder') {
      el.dataset.i18nPlaceholder = value;
      el.placeholder = t(value);
    } else if (name === 'class') el.className = value;
    else if (name === 'on') for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name in el && typeof value !== 'string') el[name] = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the page's content and moves focus to it for keyboard and screen-reader users. */
export function mount(titleKey, ...children) {
  const main = document.getElementById('main');
  // Pages pass `cond ? el : null` for optional parts; never show those as the text "null".
  main.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
  document.body.dataset.titleKey = titleKey;
  document.title = `${t(titleKey)} · Homeroom`;
  main.focus({ preventScroll: true });
  return main;
}

/** The page-wide status line (reconnecting, errors). `null` hides it. */
export function status(key, vars, kind = 'info') {
  const el = document.getElementById('status');
  if (!key) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.className = `status ${kind}`;
  setText(el, key, vars);
}

/** A form field: a label with its input. */
export function field(labelKey, input) {
  return h('label', { class: 'field' }, h('span', { text: labelKey }), input);
}

/** Shows an error message from the API (or a catalogue key) in `el`. */
export function showError(el, error) {
  el.hidden = false;
  if (typeof error === 'string') setText(el, error);
  else {
    const key = error?.code ? `error_${error.code}` : 'error_generic';
    if (t(key) !== key) setText(el, key);
    else setText(el, 'error_with_message', { message: error?.message || '' });
  }
}

export function go(path) {
  history.pushState({}, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}
