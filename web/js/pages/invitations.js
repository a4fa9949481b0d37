// The invitations section of a class's Manage page: invite a family (for one or more
// students), a tutor, a student or a co-teacher; each new invite shows its link, short code and
// QR code once (the server keeps only a hash). Below, every invite with who joined through it,
// and revoking. Per-student printable sheets are made from the students list (sheet.js).

import { api } from '../api.js';
import { field, h, showError } from '../dom.js';
import { roleKey } from '../components.js';
import { copyField } from '../copy.js';
import { emailInviteForm } from './notifications.js';

const when = (ms) => new Date(ms).toLocaleDateString();

function stateKey(invite) {
  if (invite.revoked_at) return 'invite_state_revoked';
  if (invite.expires_at <= Date.now()) return 'invite_state_expired';
  if (invite.uses >= invite.max_uses) return 'invite_state_used_up';
  return 'invite_state_open';
}

/** The SVG from the server as an image (the CSP allows data: images, not inline SVG styles). */
export function qrImage(svg, className = 'qr') {
  return h('img', { class: className, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`, label: 'qr_code' });
}

/** What a new invite shows once: the link (with Copy), the short code and the QR code. */
function createdCard(classId, made, students) {
  const names = made.invite.student_ids.map((id) => students.find((s) => s.id === id)?.name).filter(Boolean).join(', ');
  return h('section', { class: 'card new-invite', 'aria-live': 'polite', dataset: { role: made.invite.role } },
    h('h3', {}, h('span', { text: 'invite_made' }), ' ', h('span', { class: 'badge', text: roleKey(made.invite.role) }), names ? ` · ${names}` : ''),
    h('p', { class: 'hint', text: 'invite_shown_once' }),
    copyField('invite_link', made.join_url, { className: 'join-url' }),
    h('p', { class: 'invite-code' }, h('span', { text: 'invite_code' }), ': ', h('strong', { class: 'code' }, made.code)),
    qrImage(made.qr_svg),
    emailInviteForm(classId, made.code));
}

export function invitationsSection(classId, ctx) {
  const list = h('ul', { class: 'invite-list' });
  const created = h('div', { class: 'created-invites' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const role = h('select', { name: 'invite_role' },
    ['family', 'tutor', 'student', 'teacher'].map((r) => h('option', { value: r, text: r === 'teacher' ? 'role_coteacher' : roleKey(r) })));
  const pickBox = h('fieldset', { class: 'student-picks' }, h('legend', { text: 'invite_for_students' }));
  const picks = h('div', { class: 'picks' });
  pickBox.append(picks);

  function renderPicks() {
    const many = role.value === 'family';
    pickBox.hidden = !['family', 'student'].includes(role.value);
    picks.replaceChildren(...ctx.students.map((s) => h('label', { class: 'pick' },
      h('input', { type: many ? 'checkbox' : 'radio', name: 'invite_student', value: String(s.id) }), ' ', s.name)));
    if (!ctx.students.length) picks.replaceChildren(h('p', { class: 'hint', text: 'add_students_first' }));
  }
  role.addEventListener('change', renderPicks);

  const form = h('form', {
    class: 'card form inline new-invite-form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        const chosen = [...picks.querySelectorAll('input:checked')].map((i) => Number(i.value));
        const body = { role: role.value };
        if (!pickBox.hidden && chosen.length) {
          body.student_id = chosen[0];
          if (chosen.length > 1) body.student_ids = chosen;
        }
        try {
          const made = await api('POST', `/api/v1/classes/${classId}/invites`, body);
          created.prepend(createdCard(classId, made, ctx.students));
          for (const input of picks.querySelectorAll('input')) input.checked = false;
          await refresh();
        } catch (e) {
          showError(error, e);
        }
      },
    },
  }, field('invite_for', role), pickBox, h('button', { type: 'submit', class: 'primary', text: 'make_invite' }), error);

  async function refresh() {
    const invites = await api('GET', `/api/v1/classes/${classId}/invites`);
    list.replaceChildren(...invites.map((invite) => {
      const names = invite.student_ids.map((id) => ctx.students.find((s) => s.id === id)?.name || '?').join(', ');
      const key = stateKey(invite);
      const open = key === 'invite_state_open';
      return h('li', { class: 'card invite', dataset: { inviteId: String(invite.id), role: invite.role } },
        h('div', { class: 'invite-head' },
          h('span', { class: 'badge', text: invite.role === 'teacher' ? 'role_coteacher' : roleKey(invite.role) }), ' ',
          names ? h('strong', {}, names) : null, ' ',
          h('span', { class: open ? 'badge' : 'badge off', text: key }), ' ',
          h('span', { class: 'hint', text: 'invite_uses', vars: { uses: invite.uses, max: invite.max_uses, date: when(invite.expires_at) } })),
        invite.joined.length
          ? h('p', { class: 'joined' }, h('span', { text: 'joined_through' }), ' ', invite.joined.map((j) => j.display_name).join(', '))
          : h('p', { class: 'hint', text: 'nobody_joined' }),
        open ? h('button', { type: 'button', class: 'danger', text: 'revoke', on: { click: async () => {
          await api('DELETE', `/api/v1/classes/${classId}/invites/${invite.id}`);
          await refresh();
        } } }) : null);
    }));
    if (!invites.length) list.replaceChildren(h('li', { text: 'no_invites' }));
  }

  renderPicks();
  const section = h('section', { id: 'invitations', 'aria-labelledby': 'invitations-title' },
    h('h2', { id: 'invitations-title', text: 'invitations' }), form, created,
    h('h3', { text: 'all_invites' }), list);
  section.refresh = async () => {
    renderPicks();
    await refresh();
  };
  return section;
}
