// Pieces the live pages share: chat, remote audio with the autoplay unlock, video elements, and
// the status line that follows a session's state (including reconnecting).

import { h, showError, status } from './dom.js';
import { setLabel, setText } from './i18n.js';
import { api } from './api.js';

/** Shows `track` in `video` (or nothing), reusing the element. */
export function showTrack(video, track) {
  if (video.currentTrack === track) return;
  video.currentTrack = track || null;
  video.srcObject = track ? new MediaStream([track]) : null;
  video.hidden = !track;
  if (track) video.play().catch(() => {});
}

export function videoElement(className, labelKey, vars) {
  return h('video', { class: className, autoplay: true, playsInline: true, muted: true, label: labelKey, vars });
}

/**
 * Plays every remote audio track in hidden <audio> elements. Browsers may refuse to start
 * sound without a tap; then `unmuteButton` appears over the player and a tap starts it all.
 */
export class AudioOut {
  constructor() {
    this.elements = new Map();
    this.box = h('div', { class: 'audio-out', hidden: true });
    this.unmuteButton = h('button', { type: 'button', class: 'unmute', text: 'tap_to_unmute', hidden: true, on: { click: () => this.unlock() } });
    document.body.append(this.box);
  }

  sync(session) {
    const wanted = new Map();
    for (const [trackId, track] of session.remote) {
      if (track.kind === 'audio' && session.tracks.has(trackId)) wanted.set(trackId, track);
    }
    for (const [trackId, el] of this.elements) {
      if (wanted.get(trackId) !== el.currentTrack) {
        el.srcObject = null;
        el.remove();
        this.elements.delete(trackId);
      }
    }
    for (const [trackId, track] of wanted) {
      if (this.elements.has(trackId)) continue;
      const el = h('audio', { autoplay: true });
      el.currentTrack = track;
      el.srcObject = new MediaStream([track]);
      this.box.append(el);
      this.elements.set(trackId, el);
      el.play().catch(() => {
        this.unmuteButton.hidden = false;
      });
    }
  }

  unlock() {
    for (const el of this.elements.values()) el.play().catch(() => {});
    this.unmuteButton.hidden = true;
  }

  close() {
    for (const el of this.elements.values()) el.srcObject = null;
    this.box.remove();
  }
}

/** The chat panel: the log (announced to screen readers) and a form to send. */
export function chatPanel(session) {
  const log = h('ol', { class: 'chat-log', 'aria-live': 'polite', label: 'chat_log' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const input = h('input', { type: 'text', name: 'message', maxLength: 1000, autocomplete: 'off', placeholder: 'chat_placeholder', label: 'chat_message' });
  const send = h('button', { type: 'submit', text: 'send' });
  const form = h('form', {
    class: 'chat-form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        error.hidden = true;
        send.disabled = true;
        try {
          await session.chat(text);
          input.value = '';
        } catch (e) {
          error.hidden = false;
          setText(error, e.code === 'rate_limited' || e.code === 'too_fast' ? 'chat_too_fast' : 'chat_failed');
        } finally {
          send.disabled = false;
          input.focus();
        }
      },
    },
  }, input, send);
  session.addEventListener('chat', (event) => {
    const m = event.detail;
    log.append(h('li', { class: m.participant_id === session.meId ? 'mine' : '' },
      h('span', { class: 'who' }, m.display_name),
      h('time', { dateTime: new Date(m.at).toISOString(), text: 'date_value', vars: { when: { time_ms: m.at } } }),
      h('span', { class: 'text' }, m.text)));
    log.scrollTop = log.scrollHeight;
  });
  const panel = h('section', { class: 'chat', 'aria-labelledby': 'chat-title' }, h('h2', { id: 'chat-title', text: 'chat' }), log, error, form);
  // After the end nobody is listening: the input goes, the conversation stays readable.
  const allowed = () => {
    form.hidden = !session.abilities.chat || session.over;
  };
  session.addEventListener('state', allowed);
  return panel;
}

/** Mirrors a session's state in the status line and on `<body data-session-state>`. */
export function followState(session, { onOver } = {}) {
  session.addEventListener('state', (event) => {
    const { state, attempt, rejoined, reason, message } = event.detail;
    document.body.dataset.sessionState = state;
    switch (state) {
      case 'connecting':
        status('status_connecting');
        break;
      case 'reconnecting':
        status('status_reconnecting', { attempt }, 'warning');
        break;
      case 'joined':
        if (rejoined) {
          status('status_reconnected', null, 'ok');
          setTimeout(() => session.state === 'joined' && status(null), 3000);
        } else status(null);
        break;
      case 'not_live':
        status('status_not_live');
        break;
      case 'full':
        status('status_full', null, 'warning');
        break;
      case 'waiting':
        status('status_waiting');
        break;
      case 'ended':
        status('status_ended', null, 'info');
        onOver?.(state, reason);
        break;
      case 'kicked':
        status('status_kicked', null, 'warning');
        onOver?.(state, reason);
        break;
      case 'left':
        status('status_left');
        onOver?.(state, reason);
        break;
      case 'failed':
        status('error_with_message', { message: message || '' }, 'error');
        onOver?.(state, reason);
        break;
    }
  });
}

/** A toggle button with `aria-pressed`; `keys` = [label when off, label when on]. */
export function toggle(keys, onChange, pressed = false) {
  const button = h('button', { type: 'button', class: 'toggle' });
  const render = () => {
    button.setAttribute('aria-pressed', String(pressed));
    setText(button, pressed ? keys[1] : keys[0]);
  };
  button.addEventListener('click', async () => {
    pressed = !pressed;
    render();
    try {
      await onChange(pressed);
    } catch {
      pressed = !pressed;
      render();
    }
  });
  render();
  button.set = (value) => {
    pressed = value;
    render();
  };
  return button;
}

/** A small button: short visible text, and a label that names whom it acts on. */
export function smallButton(textKey, labelKey, onClick, vars) {
  const button = h('button', { type: 'button', class: 'icon', text: textKey, vars, on: { click: onClick } });
  setLabel(button, labelKey, vars);
  return button;
}

export function roleKey(role) {
  return `role_${role}`;
}

/** Camera and microphone, or whatever of them the browser gives. */
export async function openCamera({ video = true, audio = true } = {}) {
  return navigator.mediaDevices.getUserMedia({
    video: video === true ? { width: { ideal: 1280 }, height: { ideal: 720 } } : video,
    audio: audio === true ? { echoCancellation: true, noiseSuppression: true } : audio,
  });
}

/** The room as its page needs it (class, host, whether the caller hosts it), or null. */
export async function roomDetail(roomId) {
  try {
    return await api('GET', `/api/v1/rooms/${roomId}`);
  } catch {
    return null;
  }
}

/** A link back to the room's class (empty until the class is known). */
export function backToClass(room) {
  return room ? h('a', { class: 'back-link', href: `/class/${room.class_id}`, text: 'back_to_class' }) : null;
}

/**
 * What a live page shows once its session is over: where the session's log is, and the way
 * back to the class. Hidden until then.
 */
export function overPanel(session, room) {
  const panel = h('nav', { class: 'over-links card', hidden: true, label: 'session_over_links' },
    h('p', { text: 'session_over_hint' }));
  const log = h('a', { class: 'button primary session-log-link', text: 'session_open' });
  panel.append(log, backToClass(room) || '');
  session.addEventListener('state', () => {
    if (!session.over) return;
    if (session.sessionId !== undefined) log.href = `/session/${session.sessionId}`;
    log.hidden = session.sessionId === undefined;
    panel.hidden = false;
  });
  return panel;
}

/** "Recording": shown to everyone in the room while the session is being recorded. */
export function recordingBadge(session) {
  const badge = h('span', { class: 'badge recording', role: 'status', text: 'recording_on', hidden: true });
  const show = () => {
    badge.hidden = session.over || session.recording?.recording !== true;
  };
  session.addEventListener('recording', show);
  session.addEventListener('state', show);
  return badge;
}

/** Host: starts and stops recording; a refusal (the server's disk is full) shows beside it. */
export function recordButton(session) {
  const button = h('button', { type: 'button', class: 'record', text: 'recording_start', hidden: true, 'aria-pressed': 'false' });
  const error = h('p', { class: 'error record-error', role: 'alert', hidden: true });
  const show = () => {
    const on = session.recording?.recording === true;
    button.hidden = session.state !== 'joined' || !session.abilities.host;
    setText(button, on ? 'recording_stop' : 'recording_start');
    button.setAttribute('aria-pressed', String(on));
  };
  session.addEventListener('recording', show);
  session.addEventListener('state', show);
  button.addEventListener('click', async () => {
    error.hidden = true;
    button.disabled = true;
    try {
      await session.record(session.recording?.recording !== true);
    } catch (e) {
      showError(error, e);
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'record-control' }, button, recordingBadge(session), error);
}

/** How long a live page waits for a picture before it offers the connection check. */
const NO_VIDEO_MS = 10000;

/**
 * "Video does not start? Check your connection": shown while the session is joined (or
 * reconnecting) and
 * `wantsVideo()` (a video track is on) but `video` has shown no picture for NO_VIDEO_MS, as
 * happens on networks that block video calls. The check opens beside the live page.
 */
export function noVideoHint(session, video, wantsVideo) {
  const hint = h('p', { class: 'no-video-hint', role: 'status', hidden: true },
    h('span', { text: 'check_no_video' }), ' ',
    h('a', { href: '/check', target: '_blank', rel: 'noopener', text: 'check_link' }));
  let since = null;
  const timer = setInterval(() => {
    if (session.over) {
      clearInterval(timer);
      hint.hidden = true;
      return;
    }
    const stuck = ['joined', 'reconnecting'].includes(session.state) && wantsVideo() && !(video.videoWidth > 0);
    since = stuck ? since ?? Date.now() : null;
    hint.hidden = since === null || Date.now() - since < NO_VIDEO_MS;
  }, 1000);
  return hint;
}

/** Exposes the live session to the page's tests (and curious developers). */
export function expose(session) {
  window.homeroom = { session };
}
