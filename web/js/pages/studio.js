// The teacher's studio: choose camera and microphone, preview, share the screen as a second
// video track, go live and end (after a confirmation, with the button apart from the others),
// a running timer while live, see who watches (hands raised), chat, and promote a student,
// mute or remove someone. After the end: the link to the session's log and back to the class.

import { h, mount, status } from '../dom.js';
import { setText } from '../i18n.js';
import { LiveSession } from '../live.js';
import { AudioOut, backToClass, chatPanel, expose, followState, overPanel, recordButton, roomDetail, smallButton, openCamera, roleKey, showTrack, videoElement } from '../components.js';
import { requireMe } from './account.js';
import { api } from '../api.js';
import { copyButton } from '../copy.js';

/** OBS (or any WHIP encoder) publishes here with a stream key made on the spot. */
function encoderPanel(roomId) {
  const keys = h('ul', { class: 'stream-keys' });
  const made = h('div', { class: 'stream-key-made', hidden: true });
  const readOnly = (value, cls) => h('input', { class: cls, value, readonly: true, on: { focus: (e) => e.target.select() } });
  async function refresh() {
    const list = await api('GET', `/api/v1/rooms/${roomId}/stream-keys`);
    keys.replaceChildren(...list.map((key) => h('li', {},
      h('span', { text: 'encoder_key_made', vars: { date: { date_ms: key.created_at } } }), ' ',
      key.revoked_at ? h('span', { class: 'badge', text: 'encoder_revoked' })
        : smallButton('encoder_revoke', 'encoder_revoke', async () => {
          await api('DELETE', `/api/v1/rooms/${roomId}/stream-keys/${key.id}`);
          made.hidden = true;
          await refresh();
        }))));
  }
  const create = h('button', { type: 'button', class: 'create-stream-key', text: 'encoder_create',
    on: { click: async () => {
      const key = await api('POST', `/api/v1/rooms/${roomId}/stream-keys`, {});
      made.replaceChildren(
        h('label', { class: 'field' }, h('span', { text: 'encoder_server' }), readOnly(key.whip_url, 'whip-url')),
        copyButton(key.whip_url, { labelKey: 'copy_encoder_server' }),
        h('label', { class: 'field' }, h('span', { text: 'encoder_key' }), readOnly(key.stream_key, 'stream-key')),
        copyButton(key.stream_key, { labelKey: 'copy_encoder_key' }));
      made.hidden = false;
      await refresh();
    } } });
  refresh().catch(() => {});
  return h('details', { class: 'encoder' },
    h('summary', { text: 'encoder_title' }),
    h('p', { class: 'hint', text: 'encoder_help' }), create, made, keys);
}

/** Elapsed time as 4:05 or 1:02:03, the same in every language. */
function clock(ms) {
  const total = Math.floor(ms / 1000);
  const [hours, minutes, seconds] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const two = (n) => String(n).padStart(2, '0');
  return hours ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

export async function studio(roomId) {
  await requireMe();
  const room = await roomDetail(roomId);
  const preview = videoElement('preview', 'camera_preview');
  const screenPreview = videoElement('screen-preview', 'screen_preview');
  screenPreview.hidden = true;
  const cameraSelect = h('select', { id: 'camera-select' });
  const micSelect = h('select', { id: 'mic-select' });
  const shareButton = h('button', { type: 'button', class: 'share', text: 'share_screen' });
  const liveButton = h('button', { type: 'button', class: 'primary go-live', text: 'go_live' });
  const endButton = h('button', { type: 'button', class: 'danger end', text: 'end_session', hidden: true, 'aria-expanded': 'false', 'aria-controls': 'end-confirm' });
  const confirmEnd = h('button', { type: 'button', class: 'danger confirm-end', text: 'end_session_confirm' });
  const keepGoing = h('button', { type: 'button', class: 'keep-going', text: 'end_session_cancel' });
  const endConfirm = h('div', { id: 'end-confirm', class: 'end-confirm card', role: 'alertdialog', 'aria-labelledby': 'end-question', hidden: true },
    h('p', { id: 'end-question', text: 'end_session_question' }), h('div', { class: 'actions' }, confirmEnd, keepGoing));
  const liveBadge = h('span', { class: 'badge live', text: 'on_air', hidden: true });
  const timer = h('span', { class: 'live-timer', role: 'timer', label: 'live_for', hidden: true }, '0:00');
  let liveSince = 0;
  let ticking = null;
  const tick = () => {
    timer.textContent = clock(Date.now() - liveSince);
  };
  const viewerCount = h('p', { class: 'viewer-count', 'aria-live': 'polite' });
  const viewers = h('ul', { class: 'viewers' });
  const chatBox = h('div', { class: 'chat-slot' });
  const overSlot = h('div', { class: 'over-slot' });
  const recordSlot = h('span', { class: 'record-slot' });
  const audience = h('section', { class: 'audience', 'aria-labelledby': 'viewers-title' },
    h('h2', { id: 'viewers-title', text: 'viewers' }), viewerCount, viewers);
  const unmuteSlot = h('div', { class: 'unmute-slot' });
  const stageFromOthers = videoElement('guest-video', 'presenter_video');
  stageFromOthers.hidden = true;
  let camera = null;
  let devicesReady = Promise.resolve();
  let screen = null;
  let session = null;
  let audio = null;

  async function openDevices() {
    const constraints = {
      video: cameraSelect.value ? { deviceId: { exact: cameraSelect.value } } : true,
      audio: micSelect.value ? { deviceId: { exact: micSelect.value } } : true,
    };
    const next = await openCamera(constraints);
    const old = camera;
    camera = next;
    showTrack(preview, next.getVideoTracks()[0]);
    if (session && old) {
      for (const track of old.getTracks()) {
        const replacement = next.getTracks().find((t) => t.kind === track.kind);
        if (replacement) await session.replace(track, replacement);
      }
    }
    if (old) for (const track of old.getTracks()) track.stop();
    await listDevices();
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, track) => {
      const current = track?.getSettings().deviceId;
      select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) =>
        h('option', { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind} ${i + 1}`)));
    };
    fill(cameraSelect, 'videoinput', camera?.getVideoTracks()[0]);
    fill(micSelect, 'audioinput', camera?.getAudioTracks()[0]);
  }

  cameraSelect.addEventListener('change', () => openDevices().catch(showDeviceError));
  micSelect.addEventListener('change', () => openDevices().catch(showDeviceError));

  shareButton.addEventListener('click', async () => {
    if (screen) return stopSharing();
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    } catch {
      return;
    }
    const track = screen.getVideoTracks()[0];
    track.contentHint = 'detail';
    track.addEventListener('ended', stopSharing);
    showTrack(screenPreview, track);
    setText(shareButton, 'stop_sharing');
    shareButton.setAttribute('aria-pressed', 'true');
    if (session && !session.over) await session.publish([{ track, stream: screen, source: 'screen' }]);
  });

  async function stopSharing() {
    if (!screen) return;
    const old = screen;
    screen = null;
    showTrack(screenPreview, null);
    setText(shareButton, 'share_screen');
    shareButton.setAttribute('aria-pressed', 'false');
    for (const track of old.getTracks()) {
      if (session && !session.over) await session.unpublish(track);
      track.stop();
    }
  }

  function renderViewers() {
    if (!session) return;
    const others = [...session.participants.values()].filter((p) => p.participant_id !== session.meId);
    setText(viewerCount, 'viewer_count', { count: others.length });
    viewers.replaceChildren(...others.map((p) => {
      const id = p.participant_id;
      const act = (message) => session.request({ ...message, participant_id: id }).catch((e) => status('error_with_message', { message: e.message }, 'error'));
      const hasTrack = (kind) => [...session.tracks.values()].some((t) => t.participant_id === id && t.kind === kind && !t.muted);
      return h('li', { class: 'viewer' },
        h('span', { class: 'who' }, p.display_name), ' ',
        h('span', { class: 'badge', text: roleKey(p.role) }),
        p.hand_raised ? h('span', { class: 'hand-raised', text: 'hand_raised' }) : null,
        p.presenter ? h('span', { class: 'badge', text: 'presenter' }) : null,
        h('span', { class: 'viewer-actions' },
          p.role === 'student' ? h('button', {
            type: 'button', 'aria-pressed': String(p.presenter), text: p.presenter ? 'take_back' : 'promote',
            vars: { name: p.display_name },
            on: { click: () => act({ type: 'promote', presenter: !p.presenter }) },
          }) : null,
          hasTrack('audio') ? smallButton('mute', 'mute_person', () => act({ type: 'mute', kind: 'audio' }), { name: p.display_name }) : null,
          hasTrack('video') ? smallButton('stop_video', 'stop_video_person', () => act({ type: 'mute', kind: 'video' }), { name: p.display_name }) : null,
          smallButton('remove', 'remove_person', () => act({ type: 'kick' }), { name: p.display_name })));
    }));
    const presenterVideo = [...session.tracks.values()].find((t) => t.kind === 'video' && t.participant_id !== session.meId && session.remote.has(t.track_id));
    showTrack(stageFromOthers, presenterVideo ? session.remote.get(presenterVideo.track_id) : null);
    audio?.sync(session);
  }

  liveButton.addEventListener('click', async () => {
    liveButton.disabled = true;
    // A quick click must not go live before the camera is open: it would publish nothing.
    await devicesReady;
    session = new LiveSession({ roomId });
    expose(session);
    audio = new AudioOut();
    unmuteSlot.replaceChildren(audio.unmuteButton);
    followState(session, {
      onOver: () => {
        liveButton.hidden = false;
        liveButton.disabled = false;
        setText(liveButton, 'go_live_again');
        endButton.hidden = true;
        endConfirm.hidden = true;
        liveBadge.hidden = true;
        timer.hidden = true;
        clearInterval(ticking);
        // Nobody is watching any more: the list of viewers and their hands go.
        audience.hidden = true;
        audio.close();
      },
    });
    session.addEventListener('state', (e) => {
      const on = e.detail.state === 'joined';
      if (on) {
        liveButton.hidden = true;
        endButton.hidden = false;
        liveBadge.hidden = false;
        audience.hidden = false;
        if (!e.detail.rejoined) {
          liveSince = Date.now();
          clearInterval(ticking);
          ticking = setInterval(tick, 1000);
        }
        tick();
        timer.hidden = false;
      }
    });
    for (const event of ['participants', 'tracks']) session.addEventListener(event, renderViewers);
    chatBox.replaceChildren(chatPanel(session));
    recordSlot.replaceChildren(recordButton(session));
    overSlot.replaceChildren(overPanel(session, room));
    const entries = camera ? camera.getTracks().map((track) => ({ track, stream: camera, source: track.kind === 'audio' ? 'microphone' : 'camera' })) : [];
    if (screen) entries.push({ track: screen.getVideoTracks()[0], stream: screen, source: 'screen' });
    await session.publish(entries);
    await session.start();
  });

  // Ending is for everyone and cannot be undone: it asks first.
  const askToEnd = (open) => {
    endConfirm.hidden = !open;
    endButton.setAttribute('aria-expanded', String(open));
    (open ? keepGoing : endButton).focus();
  };
  endButton.addEventListener('click', () => askToEnd(endConfirm.hidden));
  keepGoing.addEventListener('click', () => askToEnd(false));
  confirmEnd.addEventListener('click', async () => {
    confirmEnd.disabled = true;
    try {
      await session.request({ type: 'end' });
    } catch {
      await session.leave();
    } finally {
      confirmEnd.disabled = false;
      endConfirm.hidden = true;
    }
  });
  window.addEventListener('pagehide', () => session?.leave());

  function showDeviceError() {
    status('no_camera', null, 'warning');
  }

  const heading = room
    ? h('h1', { text: 'studio_heading', vars: { room: room.name, class_name: room.class_name } })
    : h('h1', { text: 'studio_title' });
  mount('studio_title',
    h('div', { class: 'studio' },
      h('div', { class: 'studio-main' },
        h('div', { class: 'watch-head' },
          h('div', { class: 'titles' }, heading, room ? h('p', { class: 'class-name' }, backToClass(room)) : null),
          h('div', { class: 'on-air' }, liveBadge, timer, recordSlot, endButton)),
        endConfirm,
        h('div', { class: 'stage' }, preview, screenPreview, stageFromOthers, unmuteSlot),
        h('div', { class: 'controls devices', role: 'toolbar', label: 'controls' },
          h('label', { class: 'field' }, h('span', { text: 'camera' }), cameraSelect),
          h('label', { class: 'field' }, h('span', { text: 'microphone' }), micSelect),
          shareButton, liveButton),
        overSlot),
      h('aside', { class: 'side' },
        audience,
        chatBox,
        encoderPanel(roomId))));
  setText(viewerCount, 'viewer_count', { count: 0 });
  devicesReady = openDevices().catch(showDeviceError);
  await devicesReady;
}
