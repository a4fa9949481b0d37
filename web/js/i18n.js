// The string catalogue: every text the app shows comes from web/i18n/<lang>.json.
// Elements made with `data-i18n` (text), `data-i18n-label` (aria-label and title) and
// `data-i18n-placeholder` are translated again in place when the language changes, so a live
// session keeps running while the family switches language.

export const LANGUAGES = ['en', 'es'];
const KEY = 'homeroom.lang';
let strings = {};
let english = {};
let current = 'en';

/** The saved choice, else the first of the browser's languages we have, else English. */
export function preferredLanguage() {
  const saved = localStorage.getItem(KEY);
  if (LANGUAGES.includes(saved)) return saved;
  for (const tag of navigator.languages || [navigator.language || 'en']) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return 'en';
}

async function fetchCatalogue(lang) {
  const response = await fetch(`/static/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`catalogue ${lang}: ${response.status}`);
  return response.json();
}

export async function setLanguage(lang, { save = false } = {}) {
  if (!LANGUAGES.includes(lang)) lang = 'en';
  if (!Object.keys(english).length) english = await fetchCatalogue('en');
  strings = lang === 'en' ? english : await fetchCatalogue(lang);
  current = lang;
  if (save) localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang;
  translate(document);
}

export function language() {
  return current;
}

/** The text for `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = strings[key] ?? english[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

function varsOf(el) {
  try {
    return el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : {};
  } catch {
    return {};
  }
}

export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n, varsOf(el));
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    const text = t(el.dataset.i18nLabel, varsOf(el));
    el.setAttribute('aria-label', text);
    el.title = text;
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  if (document.body?.dataset.titleKey) document.title = `${t(document.body.dataset.titleKey)} · Homeroom`;
}

/** Points an element at another catalogue entry and shows it now. */
export function setText(el, key, vars) {
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars);
}

export function setLabel(el, key, vars) {
  el.dataset.i18nLabel = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  const text = t(key, vars);
  el.setAttribute('aria-label', text);
  el.title = text;
}
