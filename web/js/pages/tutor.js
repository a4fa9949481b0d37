// A tutoring room: a grid for 2 to 8 people, microphone and camera toggles, a ring around
// whoever is speaking (from getStats audio levels), a tile pinned large with a click or its Pin
// button (the server then sends that camera at any quality, the others small), and for the host
// the people waiting to be let in, and mute or remove. The host's arrival starts the room;
// everyone else is told who hosts it and waits (the page joins by itself when it goes live),
// never a dead end.

import { h, mount, status } from '../dom.js';
import { setLabel, setText } from '../i18n.js';
import { LiveSession } from '../live.js';
import { AudioOut, backToClass, chatPanel, expose, followState, overPanel, recordButton, roomDetail, smallButton, openCamera, showTrack, toggle, videoElement } from '../components.js';
import { requireMe } from './account.js';

const SPEAKING = 0.04;

export async function tutor(roomId) {
  const user = await requireMe();
  const room = await roomDetail(roomId);
  const session = new LiveSession({ roomId });
  expose(session);
  const audio = new AudioOut();
  const grid = h('div', { class: 'grid', role: 'list', label: 'participants' });
  const waitingList = h('ul', { class: 'waiting-list' });
  const waitingBox = h('section', { class: 'waiting card', hidden: true, 'aria-labelledby': 'waiting-title' },
    h('h2', { id: 'waiting-title', text: 'waiting_to_join' }), waitingList);
  const tiles = new Map();
  let local = null;

  try {
    local = await openCamera();
  } catch {
    status('no_camera', null, 'warning');
  }
  if (local) {
    await session.publish(local.getTracks().map((track) => ({ track, stream: local, source: track.kind === 'audio' ? 'microphone' : 'camera' })));
  }

  const mic = toggle(['mute_microphone', 'unmute_microphone'], (muted) => {
    for (const t of local?.getAudioTracks() || []) t.enabled = !muted;
    render();
  });
  const cam = toggle(['turn_camera_off', 'turn_camera_on'], (off) => {
    for (const t of local?.getVideoTracks() || []) t.enabled = !off;
    render();
  });
  mic.disabled = cam.disabled = !local;
  const leave = h('a', { class: 'button', href: room ? `/class/${room.class_id}` : '/', text: 'leave' });
  leave.addEventListener('click', () => session.leave());
  const endButton = h('button', { type: 'button', class: 'danger', text: 'end_session', hidden: true, on: { click: () => session.request({ type: 'end' }).catch(() => {}) } });

  const controls = h('div', { class: 'controls', role: 'toolbar', label: 'controls' }, mic, cam, endButton, leave);

  function tile(id) {
    if (tiles.has(id)) return tiles.get(id);
    const video = videoElement('tile-video', 'video_of', { name: '' });
    const name = h('span', { class: 'name' });
    const badges = h('span', { class: 'badges' });
    const tools = h('span', { class: 'host-tools' });
    // Made once, so that it keeps the keyboard focus when pressed.
    const pinButton = smallButton('pin', 'pin_person', () => pin(id), { name: '' });
    pinButton.classList.add('pin');
    const el = h('div', { class: 'tile', role: 'listitem', dataset: { participant: String(id) } }, video,
      h('div', { class: 'tile-foot' }, name, badges, h('span', { class: 'tile-tools' }, pinButton, tools)));
    // A click anywhere on the picture pins it too.
    el.addEventListener('click', (e) => {
      if (!e.target.closest('button')) pin(id);
    });
    const entry = { el, video, name, badges, tools, pinButton };
    tiles.set(id, entry);
    return entry;
  }

  /** Someone's camera, the track a pin asks the server for. */
  const cameraOf = (id) => [...session.tracks.values()].find((t) => t.participant_id === id && t.kind === 'video' && t.source === 'camera');

  /** Pins `id`'s camera, or unpins it when it is pinned already (the server then follows whoever speaks). */
  async function pin(id) {
    const camera = id === session.meId ? null : cameraOf(id);
    if (!camera || session.state !== 'joined') return;
    try {
      await session.setFocus(session.focused === camera.track_id ? null : camera.track_id);
    } catch (e) {
      status('error_with_message', { message: e.message }, 'error');
    }
    render();
  }

  function render() {
    const people = [...session.participants.values()].filter((p) => !p.waiting);
    const present = new Set(people.map((p) => p.participant_id));
    if (session.meId !== undefined) present.add(session.meId);
    for (const [id, t] of tiles) {
      if (!present.has(id)) {
        showTrack(t.video, null);
        t.el.remove();
        tiles.delete(id);
      }
    }
    for (const id of present) {
      const mine = id === session.meId;
      const p = mine ? { display_name: user.user.display_name, ...session.me, participant_id: id } : session.participants.get(id);
      const t = tile(id);
      setText(t.name, mine ? 'name_you' : 'name_plain', { name: p.display_name });
      t.el.classList.toggle('mine', mine);
      let videoTrack = null;
      let audioMuted = false;
      if (mine) {
        const v = local?.getVideoTracks()[0];
        videoTrack = v && v.enabled ? v : null;
        audioMuted = !local?.getAudioTracks()[0]?.enabled;
      } else {
        for (const info of session.tracks.values()) {
          if (info.participant_id !== id) continue;
          if (info.kind === 'video' && !info.muted && session.remote.has(info.track_id)) videoTrack = session.remote.get(info.track_id);
          if (info.kind === 'audio' && info.muted) audioMuted = true;
        }
      }
      showTrack(t.video, videoTrack);
      t.video.dataset.i18nVars = JSON.stringify({ name: p.display_name });
      t.el.classList.toggle('no-video', !videoTrack);
      const camera = mine ? null : cameraOf(id);
      const pinned = Boolean(camera) && session.focused === camera.track_id;
      t.el.classList.toggle('pinnable', Boolean(camera));
      t.el.classList.toggle('pinned', pinned);
      t.badges.replaceChildren(...[
        pinned ? h('span', { class: 'badge pinned', text: 'pinned' }) : null,
        audioMuted ? h('span', { class: 'badge muted', text: 'muted' }) : null,
        p.hand_raised ? h('span', { class: 'badge', text: 'hand_raised' }) : null,
        (mine ? session.abilities.host : p.host) ? h('span', { class: 'badge', text: 'host' }) : null,
      ].filter(Boolean));
      t.pinButton.hidden = !camera;
      t.pinButton.setAttribute('aria-pressed', String(pinned));
      setLabel(t.pinButton, 'pin_person', { name: p.display_name });
      t.tools.replaceChildren(...(!mine && session.abilities.host ? [
        smallButton('mute', 'mute_person', () => session.request({ type: 'mute', participant_id: id, kind: 'audio' }).catch(() => {}), { name: p.display_name }),
        smallButton('remove', 'remove_person', () => session.request({ type: 'kick', participant_id: id }).catch(() => {}), { name: p.display_name }),
      ] : []));
      if (t.el.parentNode !== grid) grid.append(t.el);
    }
    grid.dataset.count = String(Math.min(Math.max(tiles.size, 1), 8));
    const waiting = [...session.participants.values()].filter((p) => p.waiting && p.participant_id !== session.meId);
    waitingBox.hidden = !session.abilities.host || waiting.length === 0;
    waitingList.replaceChildren(...waiting.map((p) => h('li', {}, h('span', {}, p.display_name), ' ',
      h('button', { type: 'button', class: 'primary', text: 'admit', vars: { name: p.display_name },
        on: { click: () => session.request({ type: 'admit', participant_id: p.participant_id }).catch(() => {}) } }))));
    endButton.hidden = !session.abilities.host || session.over;
    controls.hidden = session.over;
    audio.sync(session);
  }

  // Who is speaking: audio levels from the connections' statistics, a few times a second.
  const speaking = setInterval(async () => {
    if (session.state !== 'joined') return;
    try {
      const levels = await session.receiveStats();
      for (const [id, t] of tiles) {
        const level = id === session.meId ? (local?.getAudioTracks()[0]?.enabled ? await session.localAudioLevel() : 0) : levels[String(id)]?.audioLevel || 0;
        t.el.classList.toggle('speaking', level > SPEAKING);
      }
    } catch {
      // A connection closing in between; the next round will do.
    }
  }, 400);

  followState(session, {
    onOver: () => {
      clearInterval(speaking);
      audio.close();
      for (const t of local?.getTracks() || []) t.stop();
      render();
    },
  });
  // Before the host arrives: say who they are and that the page lets you in when they do.
  const hostName = room?.host_name;
  const notice = h('p', { class: 'waiting-notice card', role: 'status', hidden: true });
  session.addEventListener('state', () => {
    const state = session.state;
    notice.hidden = !['not_live', 'waiting'].includes(state);
    if (state === 'not_live') {
      const key = hostName ? 'waiting_for_host' : 'waiting_for_any_host';
      setText(notice, key, { name: hostName });
      status(key, { name: hostName });
    } else if (state === 'waiting') {
      const key = hostName ? 'waiting_to_be_let_in' : 'status_waiting';
      setText(notice, key, { name: hostName });
      status(key, { name: hostName });
    }
  });
  for (const event of ['state', 'tracks', 'participants', 'me']) session.addEventListener(event, render);
  window.addEventListener('pagehide', () => session.leave());
  const title = room ? h('h1', { class: 'room-title' }, room.name) : h('h1', { class: 'room-title', text: 'tutoring_room' });
  session.addEventListener('state', () => {
    if (!session.roomName) return;
    delete title.dataset.i18n;
    title.textContent = session.roomName;
  });

  mount('tutoring_room',
    h('div', { class: 'tutor' },
      h('div', { class: 'tutor-main' },
        h('div', { class: 'watch-head' }, h('div', { class: 'titles' }, title, room ? h('p', { class: 'class-name' }, backToClass(room)) : null), recordButton(session)),
        notice,
        waitingBox,
        h('div', { class: 'grid-wrap' }, grid, audio.unmuteButton),
        controls,
        overPanel(session, room)),
      chatPanel(session)));
  render();
  await session.start();
}
