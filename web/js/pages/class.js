// A class's home: what is live now, its rooms, and (for those who manage it) new rooms and
// open-house guest links, and the class timeline (timeline.js). The page stays current through
// the class's event stream (GET /api/v1/classes/{id}/events): events carry ids only, and the
// page fetches what changed.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { roleKey } from '../components.js';
import { copyButton } from '../copy.js';
import { requireMe } from './account.js';
import { timelineSection } from './timeline.js';

const allowed = (klass, action) => ['allowed', 'draft_only', 'own_only'].includes(klass.permissions?.[action]);

/** Where a room is entered from, for this caller. */
function roomLinks(klass, room) {
  if (room.kind === 'tutoring') return [h('a', { class: 'button primary', href: `/tutor/${room.id}`, text: 'join_room' })];
  const links = [h('a', { class: 'button primary', href: `/watch/${room.id}`, text: 'watch' })];
  if (allowed(klass, 'go_live')) links.push(h('a', { class: 'button', href: `/studio/${room.id}`, text: 'open_studio' }));
  return links;
}

/**
 * Opens the class's event stream. The browser reconnects a dropped stream by itself; events
 * missed meanwhile are made up for by `onReconnect`. `body[data-events]` says whether it is open.
 */
function listen(classId, handlers) {
  const source = new EventSource(`/api/v1/classes/${classId}/events`);
  let dropped = false;
  const data = (e) => JSON.parse(e.data);
  for (const name of ['session_started', 'session_ended', 'post', 'comment']) {
    source.addEventListener(name, (e) => handlers[name]?.(data(e)));
  }
  source.addEventListener('open', () => {
    document.body.dataset.events = 'open';
    if (dropped) handlers.reconnected?.();
    dropped = false;
  });
  source.addEventListener('error', () => {
    dropped = true;
    document.body.dataset.events = source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
  });
  window.addEventListener('pagehide', () => source.close());
  return source;
}

export async function classHome(classId) {
  await requireMe();
  const klass = await api('GET', `/api/v1/classes/${classId}`);
  const banner = h('section', { class: 'live-banner', 'aria-live': 'polite', hidden: true });
  const list = h('ul', { class: 'rooms' });
  const manage = allowed(klass, 'manage_class');

  async function refresh() {
    const rooms = await api('GET', `/api/v1/classes/${classId}/rooms`);
    const live = rooms.filter((r) => r.live);
    banner.hidden = live.length === 0;
    banner.replaceChildren(...live.map((room) => h('p', {},
      h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
      h('strong', { text: 'live_now', vars: { room: room.name } }), ' ',
      ...roomLinks(klass, room).slice(0, 1))));
    list.replaceChildren(...rooms.map((room) => {
      const extra = [];
      if (manage && room.kind === 'open_house') {
        const out = h('div', { class: 'guest-link' });
        extra.push(h('button', {
          type: 'button', text: 'make_guest_link',
          on: {
            click: async () => {
              const link = await api('POST', `/api/v1/rooms/${room.id}/guest-link`);
              const input = h('input', { readOnly: true, value: link.guest_url, label: 'guest_link' });
              out.replaceChildren(input, copyButton(link.guest_url));
              input.select();
            },
          },
        }), out);
      }
      return h('li', { class: 'card room', dataset: { roomId: String(room.id) } },
        h('div', { class: 'room-head' },
          h('strong', {}, room.name), ' ',
          h('span', { class: 'badge', text: `kind_${room.kind}` }),
          room.live ? h('span', { class: 'badge live', text: 'live_people', vars: { count: room.participants } }) : null,
          room.kind === 'tutoring' && room.host_name ? h('span', { class: 'hint host-name', text: 'hosted_by', vars: { name: room.host_name } }) : null),
        h('div', { class: 'actions' }, ...roomLinks(klass, room), ...extra));
    }));
    if (!rooms.length) list.replaceChildren(h('li', { text: 'no_rooms' }));
  }

  const children = [
    h('h1', {}, klass.name),
    klass.role ? h('p', {}, h('span', { class: 'badge', text: roleKey(klass.role) })) : null,
    manage ? h('p', {}, h('a', { class: 'button manage-link', href: `/class/${classId}/manage`, text: 'manage_class' })) : null,
    banner,
    h('section', { 'aria-labelledby': 'rooms-title' }, h('h2', { id: 'rooms-title', text: 'rooms' }), list),
  ];
  if (manage) {
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const kind = h('select', { name: 'kind' },
      ['classroom', 'tutoring', 'open_house'].map((k) => h('option', { value: k, text: `kind_${k}` })));
    const name = h('input', { name: 'name', required: true, maxLength: 100 });
    children.push(h('section', { 'aria-labelledby': 'new-room-title' },
      h('h2', { id: 'new-room-title', text: 'new_room' }),
      h('form', {
        class: 'card form inline',
        on: {
          submit: async (event) => {
            event.preventDefault();
            error.hidden = true;
            try {
              await api('POST', `/api/v1/classes/${classId}/rooms`, { kind: kind.value, name: name.value });
              name.value = '';
              await refresh();
            } catch (e) {
              showError(error, e);
            }
          },
        },
      }, field('room_kind', kind), field('room_name', name), h('button', { type: 'submit', class: 'primary', text: 'add_room' }), error)));
  }
  const timeline = timelineSection(klass);
  children.push(timeline);
  mount('class_home', ...children);
  document.body.dataset.titleKey = '';
  document.title = `${klass.name} · Homeroom`;
  await refresh();
  const quietly = (work) => () => work().catch(() => {});
  if (allowed(klass, 'read_timeline')) {
    listen(classId, {
      session_started: quietly(refresh),
      // The session's log joins the timeline as it ends.
      session_ended: quietly(async () => {
        await refresh();
        await timeline.reload();
      }),
      post: ({ post_id }) => timeline.postChanged(post_id).catch(() => {}),
      comment: ({ post_id }) => timeline.commentsChanged(post_id).catch(() => {}),
      reconnected: quietly(async () => {
        await refresh();
        await timeline.reload();
      }),
    });
  } else {
    // Those who do not read the timeline (tutors) have no stream: look now and then.
    setInterval(quietly(refresh), 15000);
  }
}
