// /classes (admins): every class, new classes with their teacher, renaming, archiving (history
// kept; families no longer see it) and assigning more teachers.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { requireMe } from './account.js';
import { adminNav } from './school.js';

/** Accounts that may be given a class: active ones, those made as teachers first. */
export function teacherOptions(users) {
  const active = users.filter((u) => !u.deactivated);
  const rank = (u) => (u.staff_role === 'teacher' ? 0 : u.is_admin ? 1 : u.staff_role === 'tutor' ? 2 : 3);
  return active.sort((a, b) => rank(a) - rank(b) || a.display_name.localeCompare(b.display_name))
    .map((u) => h('option', { value: String(u.id) }, `${u.display_name} (${u.login})`));
}

export async function classesPage() {
  const me = await requireMe();
  if (!me.user.is_admin) {
    mount('classes_title', h('h1', { text: 'classes_title' }), h('p', { text: 'admins_only' }));
    return;
  }
  const list = h('ul', { class: 'class-list' });
  let users = [];

  async function refresh() {
    users = await api('GET', '/api/v1/users');
    const classes = await api('GET', '/api/v1/classes');
    const cards = await Promise.all(classes.map(async (c) => {
      const members = await api('GET', `/api/v1/classes/${c.id}/members`);
      const teachers = members.filter((m) => m.role === 'teacher');
      const error = h('p', { class: 'error', role: 'alert', hidden: true });
      const act = (fn) => async (event) => {
        event?.preventDefault();
        error.hidden = true;
        try {
          await fn();
          await refresh();
        } catch (e) {
          showError(error, e);
        }
      };
      const rename = h('input', { name: 'class_name', required: true, maxLength: 80, value: c.name, label: 'rename_class_named', vars: { name: c.name } });
      const pick = h('select', { name: 'teacher', label: 'teacher_for', vars: { name: c.name } }, teacherOptions(users.filter((u) => !teachers.some((t) => t.user_id === u.id))));
      const archived = Boolean(c.archived_at);
      return h('li', { class: archived ? 'card class-card archived' : 'card class-card', dataset: { classId: String(c.id) } },
        h('div', { class: 'class-head' },
          h('strong', {}, c.name), ' ',
          archived ? h('span', { class: 'badge off', text: 'archived' }) : null,
          h('span', { class: 'hint', text: teachers.length ? 'taught_by' : 'no_teacher', vars: { names: teachers.map((t) => t.display_name).join(', ') } })),
        h('div', { class: 'actions' },
          h('a', { class: 'button', href: `/class/${c.id}`, text: 'open_class' }),
          h('a', { class: 'button', href: `/class/${c.id}/manage`, text: 'manage_class' }),
          h('button', { type: 'button', text: archived ? 'unarchive' : 'archive', on: { click: act(() => api('PATCH', `/api/v1/classes/${c.id}`, { archived: !archived })) } })),
        h('form', { class: 'inline-form', on: { submit: act(() => api('PATCH', `/api/v1/classes/${c.id}`, { name: rename.value })) } },
          rename, h('button', { type: 'submit', text: 'rename' })),
        h('form', { class: 'inline-form', on: { submit: act(() => api('PUT', `/api/v1/classes/${c.id}/members/${pick.value}`, { role: 'teacher' })) } },
          pick, h('button', { type: 'submit', text: 'assign_teacher', disabled: !pick.options.length })),
        error);
    }));
    list.replaceChildren(...cards);
    if (!cards.length) list.replaceChildren(h('li', { text: 'no_classes_yet' }));
    teacher.replaceChildren(h('option', { value: '', text: 'no_teacher_yet' }), ...teacherOptions(users));
    const made = users.find((u) => u.staff_role === 'teacher' && !u.deactivated);
    if (made && !teacher.dataset.touched) teacher.value = String(made.id);
  }

  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const name = h('input', { name: 'class_name', required: true, maxLength: 80, autocomplete: 'off' });
  const teacher = h('select', { name: 'teacher_id', on: { change: () => { teacher.dataset.touched = '1'; } } });
  const form = h('form', {
    class: 'card form inline new-class',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        try {
          await api('POST', '/api/v1/classes', { name: name.value, teacher_id: teacher.value ? Number(teacher.value) : null });
          name.value = '';
          await refresh();
        } catch (e) {
          showError(error, e);
        }
      },
    },
  }, field('class_name', name), field('class_teacher', teacher), h('button', { type: 'submit', class: 'primary', text: 'create_class' }), error);

  mount('classes_title', adminNav('/classes'),
    h('h1', { text: 'classes_title' }),
    h('section', { 'aria-labelledby': 'new-class-title' }, h('h2', { id: 'new-class-title', text: 'new_class' }), form),
    h('section', { 'aria-labelledby': 'class-list-title' }, h('h2', { id: 'class-list-title', text: 'all_classes' }), list));
  await refresh();
}
