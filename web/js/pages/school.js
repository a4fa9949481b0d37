// The school's own settings (its name) and, on the admin's home page, the first-run checklist:
// name the school, add teachers, create classes, each linking to its page.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { requireMe } from './account.js';

/** Links to the admin's pages, on every admin page. */
export function adminNav(current) {
  const link = (href, key) => h('a', { href, text: key, 'aria-current': href === current ? 'page' : false });
  return h('nav', { class: 'admin-nav', label: 'admin_pages' },
    link('/', 'nav_home'), link('/school', 'nav_school'), link('/people', 'nav_people'), link('/classes', 'nav_classes'));
}

/** The first-run checklist and the admin's links, for the home page. */
export async function adminPanel() {
  const school = await api('GET', '/api/v1/school');
  const setup = school.setup || {};
  const steps = [
    ['school', '/school', 'step_name_school', setup.school_named, school.name ? h('span', { class: 'hint' }, school.name) : null],
    ['teachers', '/people', 'step_add_teachers', setup.teachers > 0, h('span', { class: 'hint', text: 'count_teachers', vars: { count: setup.teachers || 0 } })],
    ['classes', '/classes', 'step_create_classes', setup.classes > 0, h('span', { class: 'hint', text: 'count_classes', vars: { count: setup.classes || 0 } })],
  ];
  const done = steps.filter((s) => s[3]).length;
  return h('section', { class: 'card checklist', 'aria-labelledby': 'checklist-title' },
    h('h2', { id: 'checklist-title', text: 'checklist_title' }),
    h('p', { class: 'hint', text: done === steps.length ? 'checklist_all_done' : 'checklist_progress', vars: { done, total: steps.length } }),
    h('ol', { class: 'steps' }, steps.map(([name, href, key, ok, extra]) =>
      h('li', { class: ok ? 'step done' : 'step', dataset: { step: name, done: String(Boolean(ok)) } },
        h('span', { class: ok ? 'badge done' : 'badge todo', text: ok ? 'step_done' : 'step_todo' }), ' ',
        h('a', { href, text: key }), ' ', extra))),
    adminNav('/'));
}

/** /school: the school's name, shown on the pages and on printed invitation sheets. */
export async function schoolPage() {
  const user = await requireMe();
  if (!user.user.is_admin) {
    mount('school_title', h('h1', { text: 'school_title' }), h('p', { text: 'admins_only' }));
    return;
  }
  const school = await api('GET', '/api/v1/school');
  const name = h('input', { name: 'school_name', required: true, maxLength: 80, value: school.name || '', autocomplete: 'organization' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const saved = h('p', { class: 'ok', role: 'status', hidden: true },
    h('span', { text: 'school_saved' }), ' ', h('a', { href: '/', text: 'back_to_checklist' }));
  const form = h('form', {
    class: 'card form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        saved.hidden = true;
        try {
          await api('PUT', '/api/v1/school', { name: name.value });
          saved.hidden = false;
        } catch (e) {
          showError(error, e);
        }
      },
    },
  }, field('school_name', name), error, h('button', { type: 'submit', class: 'primary', text: 'save' }), saved);
  mount('school_title', adminNav('/school'), h('h1', { text: 'school_title' }), h('p', { class: 'hint', text: 'school_intro' }), form);
}
