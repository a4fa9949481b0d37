// Signing in, the first admin's set-up, password reset links, accepting an invite, and the
// list of one's classes.

import { api, me, rememberMe } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { roleKey } from '../components.js';
import { adminPanel } from './school.js';

/** The signed-in user, or off to the sign-in page (coming back here afterwards). */
export async function requireMe() {
  const user = await me();
  if (!user) {
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.hash)}`);
    throw new Error('signing in');
  }
  return user;
}

/**
 * Where to go after signing in: `next` only when it is a path on this site, else `/`.
 * Browsers read a backslash as `/` and drop tabs and newlines from URLs, so `/\evil.example`
 * and `/<tab>/evil.example` both mean `//evil.example`, another site. The raw value must start
 * with one `/` followed by neither `/` nor a backslash, hold no control characters, and still
 * resolve to this origin.
 */
export function safeNext(next, origin = location.origin) {
  if (typeof next !== 'string' || !/^\/(?![/\\])/.test(next) || /[\u0000-\u001f\u007f-\u009f]/.test(next)) {
    return '/';
  }
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return '/';
  }
  return url.origin === origin ? url.pathname + url.search + url.hash : '/';
}

function nextPath() {
  return safeNext(new URLSearchParams(location.search).get('next') || '/');
}

/** A form whose submit handler gets the form's values; errors show in the form. */
function form(fields, submitKey, onSubmit) {
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary', text: submitKey });
  const el = h('form', {
    class: 'card form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        button.disabled = true;
        try {
          await onSubmit(Object.fromEntries(new FormData(el)));
        } catch (e) {
          showError(error, e);
        } finally {
          button.disabled = false;
        }
      },
    },
  }, ...fields, error, button);
  return el;
}

const input = (name, attrs = {}) => h('input', { name, required: true, ...attrs });

export async function signin() {
  mount('sign_in',
    h('h1', { text: 'sign_in' }),
    form([
      field('login', input('login', { autocomplete: 'username', autofocus: true })),
      field('password', input('password', { type: 'password', autocomplete: 'current-password' })),
    ], 'sign_in', async (values) => {
      rememberMe(await api('POST', '/api/v1/session', values));
      location.assign(nextPath());
    }),
    h('p', { class: 'hint', text: 'sign_in_hint' }),
    h('p', { class: 'hint' }, h('a', { class: 'check-link', href: '/check', text: 'check_link_hint' })));
}

export async function home() {
  const user = await me();
  if (!user) return signin();
  const classes = user.classes || [];
  // Admins get the first-run checklist and their pages (school.js).
  const admin = user.user.is_admin ? await adminPanel() : null;
  mount('your_classes',
    h('h1', { text: 'hello_name', vars: { name: user.user.display_name } }),
    ...(admin ? [admin] : []),
    h('h2', { text: 'your_classes' }),
    classes.length
      ? h('ul', { class: 'cards' }, classes.map((c) => h('li', {},
        h('a', { class: 'card link-card', href: `/class/${c.id}` }, h('strong', {}, c.name), ' ',
          c.role ? h('span', { class: 'badge', text: roleKey(c.role) }) : h('span', { class: 'badge', text: 'role_admin' }),
          c.archived_at ? h('span', { class: 'badge off', text: 'archived' }) : null))))
      : h('p', { text: 'no_classes' }));
}

function hashSecret() {
  return decodeURIComponent(location.hash.slice(1)).trim();
}

export async function setup() {
  const secret = hashSecret();
  mount('setup_title',
    h('h1', { text: 'setup_title' }),
    h('p', { text: 'setup_intro' }),
    form([
      field('display_name', input('display_name', { autocomplete: 'name' })),
      field('login', input('login', { autocomplete: 'username' })),
      field('password', input('password', { type: 'password', autocomplete: 'new-password', minLength: 10 })),
    ], 'create_admin', async (values) => {
      rememberMe(await api('POST', '/api/v1/setup', { ...values, secret }));
      location.assign('/');
    }));
}

export async function reset() {
  const token = hashSecret();
  const done = h('p', { class: 'ok', role: 'status', hidden: true }, h('span', { text: 'password_set' }), ' ', h('a', { href: '/signin', text: 'sign_in' }));
  const el = form([
    field('new_password', input('new_password', { type: 'password', autocomplete: 'new-password', minLength: 10 })),
  ], 'set_password', async (values) => {
    await api('POST', '/api/v1/password-reset', { token, new_password: values.new_password });
    el.hidden = true;
    done.hidden = false;
  });
  mount('reset_title', h('h1', { text: 'reset_title' }), el, done);
}

export async function join() {
  const code = hashSecret();
  const area = h('div');
  mount('join_title', h('h1', { text: 'join_title' }), area);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  if (!code) {
    area.replaceChildren(form([field('invite_code', input('code', { autocomplete: 'off' }))], 'continue', async (values) => {
      location.hash = values.code;
      location.reload();
    }));
    return;
  }
  let preview;
  try {
    preview = await api('POST', '/api/v1/invites/lookup', { code });
  } catch (e) {
    showError(error, e);
    area.replaceChildren(error);
    return;
  }
  const intro = preview.student_name
    ? h('p', { text: 'invite_for_student', vars: { class_name: preview.class_name, student: preview.student_name } })
    : h('p', { text: 'invite_for_class', vars: { class_name: preview.class_name } });
  const role = h('p', {}, h('span', { text: 'invite_role' }), ' ', h('span', { class: 'badge', text: roleKey(preview.role) }));
  const user = await me();
  if (user) {
    area.replaceChildren(intro, role, form([
      h('p', { text: 'join_as', vars: { name: user.user.display_name } }),
    ], 'join_class', async () => {
      await api('POST', '/api/v1/invites/accept', { code });
      location.assign('/');
    }));
    return;
  }
  area.replaceChildren(intro, role,
    form([
      field('display_name', input('display_name', { autocomplete: 'name' })),
      field('login', input('login', { autocomplete: 'username' })),
      field('email_optional', h('input', { name: 'email', type: 'email', autocomplete: 'email' })),
      field('password', input('password', { type: 'password', autocomplete: 'new-password', minLength: 10 })),
    ], 'create_account', async (values) => {
      rememberMe(await api('POST', '/api/v1/invites/accept', { ...values, code }));
      location.assign('/');
    }),
    h('p', {}, h('span', { text: 'have_account' }), ' ',
      h('a', { href: `/signin?next=${encodeURIComponent('/join#' + code)}`, text: 'sign_in_to_join' })));
}
