// Notifications: this device's push switch, what each class may notify about, quiet hours,
// the email digest, the list of devices that receive notifications, and "send me a test".
// Also the page a digest email's "stop these" link opens.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { requireMe } from './account.js';

const KINDS = [['live', 'notify_kind_live'], ['updates', 'notify_kind_updates'], ['comments', 'notify_kind_comments']];

/** Minutes after midnight as the value of an <input type=time>, and back. */
const toTime = (minutes) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
const fromTime = (text) => {
  const [hours, minutes] = text.split(':').map(Number);
  return hours * 60 + minutes;
};

/** The VAPID key (base64url) as the bytes `pushManager.subscribe` wants. */
function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration('/');
  return registration ? registration.pushManager.getSubscription() : null;
}

/** The "this device" card: turns push on or off here. */
function deviceCard(view, server, reload) {
  const message = h('p', { class: 'hint', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const button = h('button', { type: 'button', class: 'primary', id: 'push-toggle' });
  const card = h('section', { class: 'card', 'aria-labelledby': 'device-title' },
    h('h2', { id: 'device-title', text: 'notify_this_device' }), message, button, error);
  const show = async () => {
    const subscription = await currentSubscription().catch(() => null);
    const known = subscription && view.subscriptions.find((s) => s.endpoint === subscription.endpoint);
    button.hidden = !pushSupported();
    button.dataset.on = known ? 'true' : 'false';
    button.replaceChildren(h('span', { text: known ? 'notify_turn_off_here' : 'notify_turn_on_here' }));
    const key = !pushSupported() ? 'notify_unsupported'
      : Notification.permission === 'denied' ? 'notify_blocked'
        : known ? 'notify_on_here' : 'notify_off_here';
    message.replaceChildren(h('span', { text: key }));
    return known;
  };
  button.addEventListener('click', async () => {
    error.hidden = true;
    button.disabled = true;
    try {
      const known = await show();
      if (known) {
        await api('DELETE', `/api/v1/notifications/subscriptions/${known.id}`);
        await (await currentSubscription())?.unsubscribe();
      } else {
        if ((await Notification.requestPermission()) !== 'granted') throw new Error('permission');
        const registration = await navigator.serviceWorker.ready;
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(server.vapid_public_key),
        });
        await api('POST', '/api/v1/notifications/subscriptions', subscription.toJSON());
      }
      await reload();
    } catch (e) {
      showError(error, e.message === 'permission' ? 'notify_blocked' : { message: e.message });
    } finally {
      button.disabled = false;
    }
  });
  show();
  return card;
}

/** The settings form: switches per class, quiet hours, digest. */
function settingsForm(view, reload) {
  const boxes = view.classes.map((c) => {
    const inputs = Object.fromEntries(KINDS.map(([kind]) => [kind, h('input', { type: 'checkbox', name: `${kind}-${c.class_id}`, checked: c[kind] })]));
    return {
      class_id: c.class_id,
      inputs,
      el: h('fieldset', { class: 'switches', dataset: { classId: String(c.class_id) } },
        h('legend', {}, c.name),
        ...KINDS.map(([kind, key]) => h('label', { class: 'check' }, inputs[kind], h('span', { text: key })))),
    };
  });
  const s = view.settings;
  const quiet = h('input', { type: 'checkbox', name: 'quiet', checked: s.quiet_start !== null });
  const from = h('input', { type: 'time', name: 'quiet_from', value: toTime(s.quiet_start ?? 21 * 60) });
  const to = h('input', { type: 'time', name: 'quiet_to', value: toTime(s.quiet_end ?? 7 * 60) });
  const digest = h('select', { name: 'digest' },
    ...['off', 'daily', 'weekly'].map((value) => h('option', { value, text: `notify_digest_${value}`, selected: s.digest === value })));
  const canEmail = view.email_enabled && view.email;
  const saved = h('p', { class: 'ok', role: 'status', hidden: true, text: 'school_saved' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'primary', text: 'save' });
  const form = h('form', {
    class: 'card form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        saved.hidden = true;
        error.hidden = true;
        save.disabled = true;
        try {
          await api('PUT', '/api/v1/notifications/settings', {
            settings: {
              quiet_start: quiet.checked ? fromTime(from.value) : null,
              quiet_end: quiet.checked ? fromTime(to.value) : null,
              utc_offset: -new Date().getTimezoneOffset(),
              digest: canEmail ? digest.value : s.digest,
            },
            classes: boxes.map((b) => ({
              class_id: b.class_id, live: b.inputs.live.checked, updates: b.inputs.updates.checked, comments: b.inputs.comments.checked,
            })),
          });
          await reload({ saved: true });
        } catch (e) {
          showError(error, e);
        } finally {
          save.disabled = false;
        }
      },
    },
  },
  h('h2', { text: 'notify_what' }),
  boxes.length ? boxes.map((b) => b.el) : h('p', { class: 'hint', text: 'no_classes' }),
  h('h2', { text: 'notify_quiet_title' }),
  h('label', { class: 'check' }, quiet, h('span', { text: 'notify_quiet_on' })),
  field('notify_quiet_from', from),
  field('notify_quiet_to', to),
  h('p', { class: 'hint', text: 'notify_quiet_hint' }),
  h('h2', { text: 'notify_email_title' }),
  canEmail ? field('notify_digest', digest) : h('p', { class: 'hint', text: view.email_enabled ? 'notify_no_address' : 'notify_email_off' }),
  error, saved, save);
  return { form, saved };
}

/** What is turned on: the devices, and the test button. */
function devicesCard(view) {
  const result = h('p', { role: 'status', id: 'test-result' });
  const test = h('button', {
    type: 'button',
    id: 'send-test',
    text: 'notify_send_test',
    on: {
      click: async () => {
        test.disabled = true;
        try {
          const sent = await api('POST', '/api/v1/notifications/test');
          const key = sent.push ? (sent.email ? 'notify_test_sent_both' : 'notify_test_sent') : (sent.email ? 'notify_test_sent_email' : 'notify_test_nowhere');
          result.replaceChildren(h('span', { text: key, vars: { count: sent.push } }));
        } catch (e) {
          showError(result, e);
        } finally {
          test.disabled = false;
        }
      },
    },
  });
  const devices = view.subscriptions.map((s) => h('li', {}, new URL(s.endpoint).host, ' · ',
    h('span', { text: 'notify_since', vars: { date_ms: s.created_at } })));
  return h('section', { class: 'card', 'aria-labelledby': 'on-title' },
    h('h2', { id: 'on-title', text: 'notify_turned_on' }),
    devices.length ? h('ul', { id: 'devices' }, devices) : h('p', { class: 'hint', text: 'notify_no_devices' }),
    view.email_enabled && view.email ? h('p', { text: 'notify_email_to', vars: { email: view.email } }) : null,
    test, result);
}

export async function notificationsPage() {
  await requireMe();
  const server = await api('GET', '/api/v1/notifications/server');
  const render = async ({ saved = false } = {}) => {
    const view = await api('GET', '/api/v1/notifications/settings');
    const { form, saved: savedLine } = settingsForm(view, render);
    savedLine.hidden = !saved;
    mount('notify_title',
      h('h1', { text: 'notify_title' }),
      h('p', { class: 'hint', text: 'notify_intro' }),
      deviceCard(view, server, render),
      devicesCard(view),
      form);
  };
  await render();
}

/** A digest email's "stop these" link: one click (this page load) turns the digest off. */
export async function stopPage() {
  const token = new URLSearchParams(location.search).get('token') || '';
  const result = h('p', { role: 'status' });
  mount('notify_stop_title', h('h1', { text: 'notify_stop_title' }), result);
  try {
    await api('POST', `/api/v1/notifications/stop?token=${encodeURIComponent(token)}`);
    result.replaceChildren(h('span', { text: 'notify_stopped' }));
  } catch (e) {
    showError(result, e.status === 404 ? 'notify_stop_bad' : e);
  }
}

let emailOn = null;
const emailEnabled = () => {
  emailOn ??= api('GET', '/api/v1/notifications/server').then((s) => s.email_enabled).catch(() => false);
  return emailOn;
};

/** Under a new password link: send it to the account's own address (when email is on). */
export function emailResetButton(resetUrl, address) {
  const done = h('p', { class: 'ok', role: 'status', hidden: true, text: 'reset_email_sent', vars: { email: address } });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const button = h('button', {
    type: 'button',
    class: 'email-reset',
    hidden: true,
    text: 'reset_email_send',
    vars: { email: address },
    on: {
      click: async () => {
        error.hidden = true;
        try {
          await api('POST', '/api/v1/password-resets/email', { token: new URL(resetUrl).hash.slice(1) });
          done.hidden = false;
        } catch (e) {
          showError(error, e);
        }
      },
    },
  });
  emailEnabled().then((on) => { button.hidden = !on; });
  return h('div', { class: 'reset-email' }, button, done, error);
}

/** Under a new invite: send its link by email (shown only when the server sends email). */
export function emailInviteForm(classId, code) {
  const address = h('input', { type: 'email', name: 'invite_email', required: true, autocomplete: 'off' });
  const done = h('p', { class: 'ok', role: 'status', hidden: true });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', {
    class: 'form inline invite-email',
    hidden: true,
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        done.hidden = true;
        try {
          await api('POST', `/api/v1/classes/${classId}/invites/email`, { code, email: address.value });
          done.replaceChildren(h('span', { text: 'invite_email_sent', vars: { email: address.value } }));
          done.hidden = false;
          address.value = '';
        } catch (e) {
          showError(error, e);
        }
      },
    },
  }, field('invite_email_label', address), h('button', { type: 'submit', text: 'invite_email_send' }), done, error);
  emailEnabled().then((on) => { form.hidden = !on; });
  return form;
}
