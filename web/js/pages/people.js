// /people (admins): every account, a search, new accounts for teachers, tutors and admins with
// their one-time set-password link (copy or print it), reset links, and deactivation.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { setText } from '../i18n.js';
import { copyField, printCard } from '../copy.js';
import { requireMe } from './account.js';
import { adminNav } from './school.js';
import { emailResetButton } from './notifications.js';

/** The card that hands a one-time link to a person: copy it, or print it. */
function linkCard(titleKey, vars, url, hintKey) {
  const card = h('section', { class: 'card link-card-secret', 'aria-live': 'polite' },
    h('h3', { text: titleKey, vars }),
    h('p', { class: 'hint', text: hintKey, vars }),
    copyField('set_password_link', url, { className: 'secret-link' }));
  card.append(h('button', { type: 'button', class: 'print', text: 'print', on: { click: () => printCard(card) } }));
  return card;
}

function kindKey(user) {
  if (user.is_admin) return 'role_admin';
  if (user.staff_role) return `role_${user.staff_role}`;
  return 'account_member';
}

export async function people() {
  const me = await requireMe();
  if (!me.user.is_admin) {
    mount('people_title', h('h1', { text: 'people_title' }), h('p', { text: 'admins_only' }));
    return;
  }
  const list = h('ul', { class: 'people-list' });
  const search = h('input', { type: 'search', name: 'search', placeholder: 'search_people', label: 'search_people', autocomplete: 'off' });
  let users = [];

  function render() {
    const q = search.value.trim().toLowerCase();
    const shown = users.filter((u) => !q || u.display_name.toLowerCase().includes(q) || u.login.includes(q) || (u.email || '').toLowerCase().includes(q));
    list.replaceChildren(...shown.map((u) => {
      const out = h('div', { class: 'person-out' });
      const error = h('p', { class: 'error', role: 'alert', hidden: true });
      const act = (fn) => async () => {
        error.hidden = true;
        try {
          await fn();
        } catch (e) {
          showError(error, e);
        }
      };
      const reset = h('button', { type: 'button', text: 'reset_password', label: 'reset_password_for', vars: { name: u.display_name },
        on: { click: act(async () => {
          const link = await api('POST', `/api/v1/users/${u.id}/password-reset`, {});
          out.replaceChildren(linkCard('reset_link_for', { name: u.display_name }, link.reset_url, 'reset_link_hint'),
            u.email ? emailResetButton(link.reset_url, u.email) : null);
        }) } });
      const toggle = u.id === me.user.id ? null : h('button', {
        type: 'button', class: u.deactivated ? '' : 'danger', text: u.deactivated ? 'reactivate' : 'deactivate',
        label: u.deactivated ? 'reactivate_person' : 'deactivate_person', vars: { name: u.display_name },
        on: { click: act(async () => {
          await api('POST', `/api/v1/users/${u.id}/${u.deactivated ? 'reactivate' : 'deactivate'}`, {});
          await refresh();
        }) },
      });
      return h('li', { class: u.deactivated ? 'card person deactivated' : 'card person', dataset: { login: u.login } },
        h('div', { class: 'person-head' },
          h('strong', {}, u.display_name), ' ', h('span', { class: 'hint' }, u.login), ' ',
          h('span', { class: 'badge', text: kindKey(u) }),
          u.deactivated ? h('span', { class: 'badge off', text: 'deactivated' }) : null),
        h('div', { class: 'actions' }, u.deactivated ? null : reset, toggle), error, out);
    }));
    if (!shown.length) list.replaceChildren(h('li', { text: 'no_people_found' }));
  }

  async function refresh() {
    users = await api('GET', '/api/v1/users');
    render();
  }
  search.addEventListener('input', render);

  // New account.
  const created = h('div', { class: 'created' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const name = h('input', { name: 'display_name', required: true, maxLength: 80, autocomplete: 'off' });
  const login = h('input', { name: 'login', required: true, maxLength: 64, autocomplete: 'off' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'off' });
  const kind = h('select', { name: 'role' }, ['teacher', 'tutor', 'admin'].map((k) => h('option', { value: k, text: `role_${k}` })));
  const submit = h('button', { type: 'submit', class: 'primary', text: 'create_account_for' });
  const form = h('form', {
    class: 'card form inline new-person',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          const made = await api('POST', '/api/v1/users', { display_name: name.value, login: login.value, email: email.value || null, role: kind.value });
          created.replaceChildren(linkCard('account_made', { name: made.user.display_name }, made.set_password_url, 'set_password_hint'));
          name.value = '';
          login.value = '';
          email.value = '';
          await refresh();
        } catch (e) {
          showError(error, e);
        } finally {
          submit.disabled = false;
        }
      },
    },
  }, field('person_name', name), field('login', login), field('email_optional', email), field('account_for', kind), submit, error);

  const count = h('p', { class: 'hint' });
  mount('people_title', adminNav('/people'),
    h('h1', { text: 'people_title' }),
    h('section', { 'aria-labelledby': 'new-person-title' }, h('h2', { id: 'new-person-title', text: 'new_person' }), form, created),
    h('section', { 'aria-labelledby': 'people-list-title' }, h('h2', { id: 'people-list-title', text: 'everyone' }), search, count, list));
  await refresh();
  setText(count, 'people_count', { count: users.length });
}
