// /class/{id}/manage: what teachers (and admins) do to set a class up. Students (add one per
// line, rename, remove, print an invitation sheet), invitations (invitations.js), members by
// role (change role, remove; families with their students) and rooms (create, rename, delete;
// a tutoring room's host).

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { roleKey } from '../components.js';
import { t } from '../i18n.js';
import { requireMe } from './account.js';
import { invitationsSection } from './invitations.js';

const ROLES = ['teacher', 'family', 'tutor', 'student'];
const allowed = (klass, action) => ['allowed', 'draft_only', 'own_only'].includes(klass.permissions?.[action]);

/** Runs `fn`, showing its error in `error`; the section refreshes afterwards. */
function acting(error, fn, refresh) {
  return async (...args) => {
    args[0]?.preventDefault?.();
    error.hidden = true;
    try {
      await fn(...args);
      await refresh();
    } catch (e) {
      showError(error, e);
    }
  };
}

/** A name with a Rename control that turns into a small form. */
function renamable(name, labelKey, onSave) {
  const text = h('strong', { class: 'name' }, name);
  const input = h('input', { name: 'new_name', required: true, maxLength: 80, value: name, label: labelKey, vars: { name } });
  const form = h('form', { class: 'inline-form', hidden: true, on: { submit: async (e) => { e.preventDefault(); await onSave(input.value); } } },
    input, h('button', { type: 'submit', class: 'primary', text: 'save' }));
  const button = h('button', { type: 'button', class: 'icon', text: 'rename', label: labelKey, vars: { name },
    on: { click: () => { form.hidden = false; text.hidden = true; button.hidden = true; input.focus(); } } });
  return [text, form, button];
}

function studentsSection(classId, ctx, onChange) {
  const list = h('ul', { class: 'student-list' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const names = h('textarea', { name: 'student_names', rows: 4, required: true });
  const added = h('p', { class: 'ok', role: 'status' });
  const form = h('form', {
    class: 'card form new-students',
    on: {
      submit: acting(error, async () => {
        const lines = names.value.split('\n').map((l) => l.trim()).filter(Boolean);
        for (const name of lines) await api('POST', `/api/v1/classes/${classId}/students`, { name });
        names.value = '';
        added.textContent = '';
        added.append(h('span', { text: 'students_added', vars: { count: lines.length } }));
      }, onChange),
    },
  }, field('student_names_hint', names), h('button', { type: 'submit', class: 'primary', text: 'add_students' }), added, error);

  function render() {
    list.replaceChildren(...ctx.students.map((s) => {
      const rowError = h('p', { class: 'error', role: 'alert', hidden: true });
      const lang = h('select', { name: 'sheet_language', label: 'sheet_language_for', vars: { name: s.name } },
        h('option', { value: 'en' }, 'English'), h('option', { value: 'es' }, 'Español'));
      const print = h('button', { type: 'button', text: 'print_sheet', label: 'print_sheet_for', vars: { name: s.name },
        on: { click: async () => {
          rowError.hidden = true;
          try {
            const made = await api('POST', `/api/v1/classes/${classId}/invites`, { role: 'family', student_id: s.id });
            location.assign(`/class/${classId}/sheet?lang=${lang.value}#${made.code}`);
          } catch (e) {
            showError(rowError, e);
          }
        } } });
      return h('li', { class: 'card student', dataset: { studentId: String(s.id) } },
        h('div', { class: 'row' },
          ...renamable(s.name, 'rename_student', acting(rowError, (name) => api('PATCH', `/api/v1/classes/${classId}/students/${s.id}`, { name }), onChange)),
          h('button', { type: 'button', class: 'icon danger', text: 'remove', label: 'remove_student', vars: { name: s.name },
            on: { click: acting(rowError, () => api('DELETE', `/api/v1/classes/${classId}/students/${s.id}`), onChange) } })),
        h('div', { class: 'row sheet-row' }, lang, print),
        rowError);
    }));
    if (!ctx.students.length) list.replaceChildren(h('li', { text: 'no_students' }));
  }

  const section = h('section', { id: 'students', 'aria-labelledby': 'students-title' },
    h('h2', { id: 'students-title', text: 'students' }), list, form);
  section.refresh = render;
  return section;
}

function membersSection(classId, ctx, me, onChange) {
  const box = h('div', { class: 'members' });
  function render() {
    box.replaceChildren(...ROLES.map((role) => {
      const people = ctx.members.filter((m) => m.role === role);
      return h('section', { class: 'member-group', dataset: { role } },
        h('h3', { text: `members_${role}`, vars: { count: people.length } }),
        h('ul', { class: 'member-list' }, people.length ? people.map((m) => {
          const error = h('p', { class: 'error', role: 'alert', hidden: true });
          const select = h('select', { name: 'member_role', label: 'role_of', vars: { name: m.display_name } },
            ROLES.map((r) => h('option', { value: r, text: roleKey(r), selected: r === m.role })));
          const self = m.user_id === me.user.id;
          return h('li', { class: 'card member', dataset: { userId: String(m.user_id) } },
            h('div', { class: 'row' }, h('strong', {}, m.display_name), ' ', h('span', { class: 'hint' }, m.login)),
            m.students?.length ? h('p', { class: 'hint', text: 'family_of', vars: { names: m.students.map((s) => s.name).join(', ') } }) : null,
            self ? null : h('form', { class: 'inline-form', on: { submit: acting(error, () => api('PUT', `/api/v1/classes/${classId}/members/${m.user_id}`, { role: select.value }), onChange) } },
              select, h('button', { type: 'submit', text: 'change_role' }),
              h('button', { type: 'button', class: 'danger', text: 'remove', label: 'remove_member', vars: { name: m.display_name },
                on: { click: acting(error, () => api('DELETE', `/api/v1/classes/${classId}/members/${m.user_id}`), onChange) } })),
            error);
        }) : h('li', { class: 'hint', text: 'nobody_yet' })));
    }));
  }
  const section = h('section', { id: 'members', 'aria-labelledby': 'members-title' },
    h('h2', { id: 'members-title', text: 'members' }), box);
  section.refresh = render;
  return section;
}

/** Who may host a tutoring room: the class's tutors and teachers. */
function hostOptions(ctx, selected) {
  const hosts = ctx.members.filter((m) => m.role === 'tutor' || m.role === 'teacher');
  return [h('option', { value: '', text: 'host_teachers_only' }),
    ...hosts.map((m) => h('option', { value: String(m.user_id), selected: m.user_id === selected }, `${m.display_name} · ${t(roleKey(m.role))}`))];
}

function roomsSection(classId, ctx, onChange) {
  const list = h('ul', { class: 'rooms manage-rooms' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const kind = h('select', { name: 'kind' }, ['classroom', 'tutoring', 'open_house'].map((k) => h('option', { value: k, text: `kind_${k}` })));
  const name = h('input', { name: 'room_name', required: true, maxLength: 80 });
  const host = h('select', { name: 'host' });
  const hostField = field('room_host', host);
  const syncKind = () => { hostField.hidden = kind.value !== 'tutoring'; };
  kind.addEventListener('change', syncKind);
  const form = h('form', {
    class: 'card form inline new-room',
    on: {
      submit: acting(error, async () => {
        const body = { kind: kind.value, name: name.value };
        if (kind.value === 'tutoring' && host.value) body.host_user_id = Number(host.value);
        await api('POST', `/api/v1/classes/${classId}/rooms`, body);
        name.value = '';
      }, onChange),
    },
  }, field('room_kind', kind), field('room_name', name), hostField, h('button', { type: 'submit', class: 'primary', text: 'add_room' }), error);

  function render() {
    host.replaceChildren(...hostOptions(ctx, null));
    syncKind();
    list.replaceChildren(...ctx.rooms.map((room) => {
      const rowError = h('p', { class: 'error', role: 'alert', hidden: true });
      const controls = [];
      if (room.kind === 'tutoring') {
        const pick = h('select', { name: 'room_host', label: 'host_of', vars: { name: room.name } }, hostOptions(ctx, room.host_user_id));
        controls.push(h('form', { class: 'inline-form', on: { submit: acting(rowError, () => api('PATCH', `/api/v1/rooms/${room.id}`, { host_user_id: pick.value ? Number(pick.value) : null }), onChange) } },
          pick, h('button', { type: 'submit', text: 'set_host' })));
        // Who may ask to come in: chosen students and their families (none chosen: anyone).
        const boxes = ctx.students.map((st) => h('label', { class: 'pick' },
          h('input', { type: 'checkbox', name: 'room_student', value: String(st.id), checked: room.student_ids.includes(st.id) }), ' ', st.name));
        controls.push(h('form', { class: 'inline-form entry-list', on: { submit: acting(rowError, () => api('PATCH', `/api/v1/rooms/${room.id}`, {
          student_ids: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value)),
        }), onChange) } },
          h('fieldset', { class: 'student-picks' }, h('legend', { text: 'who_may_enter' }), h('div', { class: 'picks' }, boxes)),
          h('button', { type: 'submit', text: 'save_who_may_enter', label: 'save_who_may_enter_in', vars: { name: room.name } })));
      }
      // Every session recorded from the host's arrival (src/recording).
      controls.push(h('label', { class: 'record-sessions' },
        h('input', { type: 'checkbox', name: 'record_sessions', checked: room.record_sessions === true,
          on: { change: acting(rowError, (e) => api('PATCH', `/api/v1/rooms/${room.id}`, { record_sessions: e.target.checked }), onChange) } }),
        ' ', h('span', { text: 'record_every_session' })));
      const forNames = room.student_ids.map((id) => ctx.students.find((st) => st.id === id)?.name).filter(Boolean).join(', ');
      return h('li', { class: 'card room', dataset: { roomId: String(room.id) } },
        h('div', { class: 'room-head' },
          ...renamable(room.name, 'rename_room', acting(rowError, (n) => api('PATCH', `/api/v1/rooms/${room.id}`, { name: n }), onChange)), ' ',
          h('span', { class: 'badge', text: `kind_${room.kind}` }), ' ',
          room.kind === 'tutoring'
            ? h('span', { class: 'host-line', text: room.host_name ? 'hosted_by' : 'hosted_by_teachers', vars: { name: room.host_name || '' } })
            : null, ' ',
          room.kind === 'tutoring'
            ? h('span', { class: 'hint', text: forNames ? 'room_for_students' : 'room_for_anyone', vars: { names: forNames } })
            : null),
        h('div', { class: 'actions' }, ...controls,
          h('button', { type: 'button', class: 'danger', text: 'delete_room', label: 'delete_room_named', vars: { name: room.name },
            on: { click: acting(rowError, () => api('DELETE', `/api/v1/rooms/${room.id}`), onChange) } })),
        rowError);
    }));
    if (!ctx.rooms.length) list.replaceChildren(h('li', { text: 'no_rooms' }));
  }
  const section = h('section', { id: 'rooms', 'aria-labelledby': 'manage-rooms-title' },
    h('h2', { id: 'manage-rooms-title', text: 'rooms' }), list, form);
  section.refresh = render;
  return section;
}

export async function manage(classId) {
  const me = await requireMe();
  const klass = await api('GET', `/api/v1/classes/${classId}`);
  if (!allowed(klass, 'manage_class')) {
    mount('manage_title', h('h1', {}, klass.name), h('p', { text: 'not_allowed_here' }));
    return;
  }
  const ctx = { students: [], members: [], rooms: [] };
  const sections = [];
  const refresh = async () => {
    [ctx.students, ctx.members, ctx.rooms] = await Promise.all([
      api('GET', `/api/v1/classes/${classId}/students`),
      api('GET', `/api/v1/classes/${classId}/members`),
      api('GET', `/api/v1/classes/${classId}/rooms`),
    ]);
    for (const s of sections) await s.refresh();
  };
  sections.push(studentsSection(classId, ctx, refresh), invitationsSection(classId, ctx),
    membersSection(classId, ctx, me, refresh), roomsSection(classId, ctx, refresh));
  const jump = h('nav', { class: 'jump', label: 'manage_sections' },
    ['students', 'invitations', 'members', 'rooms'].map((id) => h('a', { href: `#${id}`, text: id })));
  mount('manage_title',
    h('p', {}, h('a', { href: `/class/${classId}`, text: 'back_to_class' })),
    h('h1', { text: 'manage_class_named', vars: { name: klass.name } }),
    ...(klass.archived_at ? [h('p', { class: 'status warning', text: 'class_is_archived' })] : []),
    jump, ...sections);
  await refresh();
}
