// Watching a classroom or open house: the presentation full-size (the screen when one is
// shared, with the presenter's camera small in a corner), chat, raise hand, and a choice of
// video quality (automatic by default, down to audio only for weak connections), with a notice
// while the server finds the connection too weak for any video. Guests of an open house come
// in through /guest#CODE.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { setText } from '../i18n.js';
import { LiveSession } from '../live.js';
import { AudioOut, backToClass, chatPanel, expose, followState, noVideoHint, openCamera, overPanel, recordingBadge, roomDetail, showTrack, toggle, videoElement } from '../components.js';
import { requireMe } from './account.js';

export async function watch(roomId) {
  await requireMe();
  const room = await roomDetail(roomId);
  const session = new LiveSession({ roomId });
  watchView(session, { guest: false, room });
  await session.start();
}

export async function guest() {
  const code = decodeURIComponent(location.hash.slice(1)).trim();
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const name = h('input', { name: 'display_name', required: true, maxLength: 60, autocomplete: 'name', autofocus: true });
  const form = h('form', {
    class: 'card form',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        try {
          const body = { code, display_name: name.value.trim() };
          const first = await api('POST', '/api/v1/guest-token', body);
          let token = first.token;
          const session = new LiveSession({
            roomId: first.room_id,
            // A room token is short-lived: every later attempt asks for a fresh one.
            socketUrl: async () => {
              const use = token || (await api('POST', '/api/v1/guest-token', body)).token;
              token = null;
              return `wss://${location.host}/api/v1/ws?token=${encodeURIComponent(use)}`;
            },
          });
          watchView(session, { guest: true });
          await session.start();
        } catch (e) {
          showError(error, e);
        }
      },
    },
  }, field('your_name', name), error, h('button', { type: 'submit', class: 'primary', text: 'enter_open_house' }));
  mount('open_house', h('h1', { text: 'open_house' }), h('p', { text: 'guest_intro' }), form);
}

function watchView(session, { guest, room = null }) {
  expose(session);
  const mainVideo = videoElement('main-video', 'presentation');
  const pip = videoElement('pip-video', 'presenter_camera');
  const overlayText = h('p', { text: 'connecting' });
  const overlay = h('div', { class: 'overlay' }, overlayText);
  const audio = new AudioOut();
  const player = h('div', { class: 'player', tabIndex: 0, label: 'player' }, mainVideo, pip, overlay, audio.unmuteButton);
  // With the automatic quality, the server stops video while the connection is too weak for it.
  const weak = () => session.reception?.weak === true && session.reception.quality === 'auto';
  const audioOnly = () => session.quality === 'audio_only' || weak();

  const fullscreen = h('button', {
    type: 'button', text: 'full_screen',
    on: {
      click: () => {
        if (document.fullscreenElement) document.exitFullscreen();
        else if (player.requestFullscreen) player.requestFullscreen().catch(() => {});
        else if (mainVideo.webkitEnterFullscreen) mainVideo.webkitEnterFullscreen();
      },
    },
  });
  player.addEventListener('dblclick', () => fullscreen.click());
  player.addEventListener('keydown', (e) => e.key === 'f' && fullscreen.click());
  const hand = toggle(['raise_hand', 'lower_hand'], (raised) => session.request({ type: 'hand', raised }));
  hand.classList.add('hand');
  const quality = qualityMenu(session, render);
  const weakNotice = h('p', { class: 'weak-notice', role: 'status', text: 'reception_weak', hidden: true });

  // A student the teacher promotes may present their camera. When the teacher takes it back,
  // the session stops the camera (and can publish again at the next promotion).
  let presenting = null;
  const present = toggle(['present_camera', 'stop_presenting'], async (on) => {
    if (on) {
      const stream = await openCamera();
      presenting = stream;
      await session.publish(stream.getTracks().map((track) => ({ track, stream, source: track.kind === 'audio' ? 'microphone' : 'camera' })));
    } else if (presenting) {
      const stream = presenting;
      presenting = null;
      for (const track of stream.getTracks()) {
        track.stop();
        await session.unpublish(track);
      }
    }
  });
  present.hidden = true;
  session.addEventListener('me', (e) => {
    const me = e.detail || {};
    hand.set(Boolean(me.hand_raised));
    present.hidden = !me.presenter;
    if (!me.presenter && presenting) {
      for (const track of presenting.getTracks()) track.stop();
      presenting = null;
      present.set(false);
    }
  });

  const leave = h('a', { class: 'button', href: guest ? '/guest' + location.hash : '/', text: 'leave' });
  leave.addEventListener('click', () => session.leave());
  const title = h('h1', { class: 'room-title' }, room?.name || '');
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const controls = h('div', { class: 'controls', role: 'toolbar', label: 'controls' }, fullscreen, quality.field, hand, present, leave);
  const over = overPanel(session, room);
  const stalled = noVideoHint(session, mainVideo, () => !audioOnly() && [...session.tracks.values()].some((t) => t.kind === 'video' && !t.muted));
  const checkLink = h('p', { class: 'hint' }, h('a', { class: 'check-link', href: '/check', target: '_blank', rel: 'noopener', text: 'check_link_hint' }));

  function render() {
    if (session.roomName) title.textContent = session.roomName;
    const videos = [...session.tracks.values()].filter((t) => t.kind === 'video' && !t.muted && session.remote.has(t.track_id));
    const screen = videos.find((t) => t.source === 'screen');
    const camera = videos.find((t) => t.source === 'camera');
    const main = screen || camera;
    showTrack(mainVideo, !audioOnly() && main ? session.remote.get(main.track_id) : null);
    showTrack(pip, !audioOnly() && screen && camera ? session.remote.get(camera.track_id) : null);
    audio.sync(session);
    setText(count, 'people_here', { count: session.count });
    let key = null;
    if (session.state === 'ended') key = 'session_ended';
    else if (session.state === 'kicked') key = 'you_were_removed';
    else if (session.state === 'not_live') key = 'not_live_yet';
    else if (session.state === 'full') key = 'server_full';
    else if (session.state === 'reconnecting') key = 'status_reconnecting_short';
    else if (session.state === 'connecting') key = 'connecting';
    else if (session.quality === 'audio_only') key = 'audio_only_on';
    else if (!main) key = 'waiting_for_presenter';
    overlay.hidden = !key;
    overlay.dataset.state = session.state;
    if (key) setText(overlayText, key);
    // Once it is over there is nothing to raise a hand to: the controls give way to the
    // links to the log and the class.
    controls.hidden = session.over;
    count.hidden = session.over;
    weakNotice.hidden = session.over || !weak();
    for (const el of [hand, quality.select, present]) el.disabled = session.over || session.state !== 'joined';
  }

  followState(session, {
    onOver: () => {
      audio.close();
      if (presenting) for (const track of presenting.getTracks()) track.stop();
    },
  });
  for (const event of ['state', 'tracks', 'participants', 'reception']) session.addEventListener(event, render);
  window.addEventListener('pagehide', () => session.leave());

  mount('watch_title',
    h('div', { class: 'watch' },
      h('div', { class: 'watch-main' },
        h('div', { class: 'watch-head' }, h('div', { class: 'titles' }, title, room ? h('p', { class: 'class-name' }, backToClass(room)) : null), recordingBadge(session), count),
        player,
        weakNotice,
        stalled,
        controls,
        checkLink,
        over),
      chatPanel(session)));
  render();
}

/**
 * "Video quality": Auto (what the connection carries), High, Medium, Low, or Audio only.
 * A refused choice puts the menu back. Leaving audio only asks for keyframes, so the picture
 * comes back at once rather than at the publisher's next one.
 */
function qualityMenu(session, render) {
  const select = h('select', { class: 'quality', name: 'quality' },
    ['auto', 'high', 'medium', 'low', 'audio_only'].map((value) =>
      h('option', { value, text: `quality_${value}`, selected: value === session.quality })));
  select.addEventListener('change', async () => {
    const was = session.quality;
    try {
      await session.setQuality(select.value);
    } catch {
      select.value = was;
      return;
    }
    render();
    if (was !== 'audio_only') return;
    for (const track of session.tracks.values()) {
      if (track.kind === 'video') session.request({ type: 'keyframe', track_id: track.track_id }).catch(() => {});
    }
  });
  return { select, field: field('video_quality', select) };
}
