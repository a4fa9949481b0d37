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

/**
 * The catalogue key for `key` said of `count`: `key_one`, `key_few`… when the catalogue has
 * that form for the language's plural rule (Intl.PluralRules), else `key`.
 */
function pluralKey(key, count) {
  if (typeof count !== 'number') return key;
  const form = `${key}_${new Intl.PluralRules(current).select(count)}`;
  return form in strings || (current === 'en' && form in english) ? form : key;
}

/**
 * A value shown in a text: numbers in the reader's locale; `{duration_ms}` as seconds under a
 * minute, else minutes (and hours); `{date_ms}` as the reader's date and time without seconds;
 * `{time_ms}` as the time alone. Kept as data in `data-i18n-vars`, so a language switch
 * formats them again.
 */
function formatted(value) {
  if (typeof value === 'number') return new Intl.NumberFormat(current).format(value);
  if (value && typeof value === 'object') {
    if ('duration_ms' in value) return duration(value.duration_ms);
    if ('date_ms' in value) return dateText(value.date_ms);
    if ('time_ms' in value) return timeText(value.time_ms);
  }
  return String(value);
}

/** The text for `key` with `{name}` placeholders filled from `vars` (plural by `vars.count`). */
export function t(key, vars = {}) {
  const chosen = pluralKey(key, vars?.count);
  const text = strings[chosen] ?? english[chosen] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars && name in vars ? formatted(vars[name]) : `{${name}}`));
}

/** A date and time in the reader's language, without seconds. */
export function dateText(ms) {
  return new Date(ms).toLocaleString(current, { dateStyle: 'medium', timeStyle: 'short' });
}

export function timeText(ms) {
  return new Date(ms).toLocaleTimeString(current, { hour: '2-digit', minute: '2-digit' });
}

/** A duration: seconds under a minute, minutes under an hour, else hours and minutes. */
export function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return t('duration_seconds', { count: seconds });
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return t('duration_minutes', { count: minutes });
  return t('duration_hours', { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
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
