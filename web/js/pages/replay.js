// The replay of a recorded session (/recording/{id}): the camera with its sound and, beside it,
// the screen share, both on the recording's one clock; speed 1x, 1.5x, 2x; the session's chat
// beside the video, following playback (a click on a line jumps to it). The server answers
// range requests, so the player seeks without downloading the whole file. Teachers download
// the files and publish the recording to the class timeline with a note.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { setText } from '../i18n.js';
import { requireMe } from './account.js';

const SPEEDS = [1, 1.5, 2];

/** 65 s as 1:05, 3725 s as 1:02:05. */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  return hours ? `${hours}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${Math.floor(s / 60)}:${two(s % 60)}`;
}

/** Keeps `other` at the same moment of the recording as `main` (files start at their offsets). */
function follow(main, mainFile, other, otherFile) {
  const sync = () => {
    const at = main.currentTime + (mainFile.offset_ms - otherFile.offset_ms) / 1000;
    const inside = at >= 0 && at <= otherFile.duration_ms / 1000;
    other.playbackRate = main.playbackRate;
    if (inside && Math.abs(other.currentTime - at) > 0.3) other.currentTime = at;
    if (inside && !main.paused && other.paused) other.play().catch(() => {});
    if ((!inside || main.paused) && !other.paused) other.pause();
  };
  for (const event of ['play', 'pause', 'seeked', 'ratechange', 'timeupdate']) main.addEventListener(event, sync);
}

/** The chat beside the video: the line being played is marked and kept in view. */
function transcript(chat, main, startMs) {
  const lines = chat.map((c) => {
    const at = (c.at - startMs) / 1000;
    const li = h('li', { class: 'chat-line', dataset: { at: String(at) } },
      h('button', { type: 'button', class: 'chat-seek', on: { click: () => { main.currentTime = Math.max(0, at); } } },
        h('span', { class: 'chat-time' }, clock(at)), ' ', h('strong', {}, c.name), ' ', c.text));
    return { li, at };
  });
  let current = null;
  main.addEventListener('timeupdate', () => {
    const now = [...lines].reverse().find((l) => l.at <= main.currentTime + 0.25) || null;
    if (now === current) return;
    current?.li.classList.remove('current');
    current?.li.removeAttribute('aria-current');
    current = now;
    if (!now) return;
    now.li.classList.add('current');
    now.li.setAttribute('aria-current', 'true');
    now.li.scrollIntoView({ block: 'nearest' });
  });
  return h('section', { class: 'replay-chat', 'aria-labelledby': 'replay-chat-title' },
    h('h2', { id: 'replay-chat-title', text: 'recording_chat' }),
    lines.length ? h('ol', { class: 'chat-lines' }, lines.map((l) => l.li)) : h('p', { class: 'hint', text: 'recording_no_chat' }));
}

function speedControls(videos) {
  const buttons = SPEEDS.map((rate) => h('button', {
    type: 'button', class: 'speed', dataset: { rate: String(rate) }, 'aria-pressed': String(rate === 1),
    on: { click: () => {
      for (const v of videos) v.playbackRate = rate;
      for (const b of buttons) b.setAttribute('aria-pressed', String(b === buttons[SPEEDS.indexOf(rate)]));
    } },
  }, `${rate}×`));
  return h('div', { class: 'speeds', role: 'group', label: 'recording_speed' }, buttons);
}

function teacherTools(rec) {
  const note = h('textarea', { name: 'note', rows: 3, maxLength: 2000 });
  const done = h('p', { class: 'hint published-note', role: 'status', hidden: true });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'publish-recording card', on: { submit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      await api('POST', `/api/v1/recordings/${rec.id}/publish`, { note: note.value });
      done.hidden = false;
      setText(done, 'recording_published');
      note.value = '';
    } catch (err) {
      showError(error, err);
    }
  } } }, field('recording_publish_note', note), h('button', { type: 'submit', class: 'primary', text: 'recording_publish' }), done, error);
  const downloads = h('ul', { class: 'downloads' }, rec.files.map((f) => h('li', {},
    h('a', { href: `/api/v1/recording-files/${f.id}/download`, download: '', text: 'recording_download', vars: { source: f.source, name: f.participant_name } }))));
  return h('section', { class: 'replay-tools' }, downloads, form);
}

export async function replay(recordingId) {
  await requireMe();
  const rec = await api('GET', `/api/v1/recordings/${recordingId}`);
  const log = await api('GET', `/api/v1/sessions/${rec.session_id}`).catch(() => ({ chat: [] }));
  const heading = h('h1', { text: 'recording_heading', vars: { room: rec.room_name } });
  const back = h('p', { class: 'class-name' },
    h('a', { class: 'back-link', href: `/class/${rec.class_id}`, text: 'back_to_class' }), ' · ',
    h('a', { href: `/session/${rec.session_id}`, text: 'session_open' }));
  const notice = {
    deleted: h('p', { class: 'notice recording-deleted', text: 'recording_deleted', vars: { date: { date_ms: rec.deleted_at || 0 } } }),
    empty: h('p', { class: 'notice', text: 'recording_empty' }),
    recording: h('p', { class: 'notice', text: 'recording_in_progress' }),
  }[rec.state];
  if (notice || !rec.files.length) {
    mount('recording_title', h('div', { class: 'titles' }, heading, back), notice || h('p', { class: 'notice', text: 'recording_empty' }));
    return;
  }
  const [mainFile, ...others] = rec.files;
  const main = h('video', { class: 'replay-main', src: `/api/v1/recording-files/${mainFile.id}`, controls: true, preload: 'metadata', playsInline: true });
  const beside = others.map((f) => {
    const video = h('video', { class: 'replay-beside', src: `/api/v1/recording-files/${f.id}`, muted: true, preload: 'metadata', playsInline: true, label: 'recording_screen' });
    follow(main, mainFile, video, f);
    return video;
  });
  mount('recording_title',
    h('div', { class: 'replay' },
      h('div', { class: 'replay-main-column' },
        h('div', { class: 'titles' }, heading, back),
        h('div', { class: 'replay-stage' }, main, beside),
        speedControls([main, ...beside]),
        rec.may_download ? teacherTools(rec) : null),
      transcript(log.chat || [], main, rec.started_at + mainFile.offset_ms)));
}
