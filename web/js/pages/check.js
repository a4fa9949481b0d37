// The connection check (/check): what works between this browser and the school's server,
// one step at a time, and in plain words what to try when something does not. Each media path
// gets its own receive-only connection to the server (POST /api/v1/check/offer), which sends a
// test stream at a known rate: direct UDP, ICE over TCP, and the school's relay
// (iceTransportPolicy 'relay' with the servers from GET /api/v1/ice-servers). The round trip
// comes from the selected candidate pair, the rate from the bytes received. The server side
// needs a signed-in person; signed out, the page says so and offers the sign-in link.

import { api, me } from '../api.js';
import { h, mount } from '../dom.js';
import { setText, t } from '../i18n.js';
import { copyButton } from '../copy.js';
import { openCamera } from '../components.js';

/** How long a path may take to connect before it counts as blocked. */
const CONNECT_MS = 7000;
/** How long the browser may take to gather its own candidates (the relay's among them). */
const GATHER_MS = 5000;
/** Under this the test stream did not arrive in full: too slow for the class's video. */
const SLOW_BPS = 700000;
/** Over this round trip, talking in a tutoring room lags. */
const SLOW_RTT_MS = 400;

const PATHS = ['udp', 'tcp', 'relay'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves true once the connection is up, false when it fails or `ms` pass. */
function connected(pc, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const look = () => {
      if (pc.connectionState === 'connected') {
        clearTimeout(timer);
        resolve(true);
      } else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
        clearTimeout(timer);
        resolve(false);
      }
    };
    pc.addEventListener('connectionstatechange', look);
    look();
  });
}

/** Waits until the browser has gathered its candidates (or `ms` pass). */
function gathered(pc, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const look = () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    };
    pc.addEventListener('icegatheringstatechange', look);
    look();
  });
}

/** Bytes of video received, and the selected pair's round trip and local candidate. */
async function sample(pc) {
  const stats = await pc.getStats();
  let bytes = 0;
  let pairId = null;
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') bytes += r.bytesReceived || 0;
    if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
  });
  const pair = pairId && stats.get(pairId);
  const local = pair && stats.get(pair.localCandidateId);
  return {
    at: performance.now(),
    bytes,
    rttMs: typeof pair?.currentRoundTripTime === 'number' ? Math.round(pair.currentRoundTripTime * 1000) : null,
    via: local ? { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol } : null,
  };
}

/** Reads the test stream while it runs: its rate (bits per second) and the round trip. */
async function measure(pc, streamMs) {
  const samples = [];
  const started = performance.now();
  while (performance.now() - started < streamMs + 2500) {
    await sleep(400);
    const s = await sample(pc);
    samples.push(s);
    const flowing = samples.filter((x) => x.bytes > 0);
    // Done once the stream has run its length (bytes stopped growing after it began).
    if (flowing.length > 2 && s.bytes === flowing[flowing.length - 2].bytes && s.at - flowing[0].at > streamMs / 2) break;
  }
  const flowing = samples.filter((x) => x.bytes > 0);
  const first = flowing[0];
  const last = flowing.reduce((a, b) => (b.bytes > a.bytes ? b : a), first || { bytes: 0, at: 0 });
  const seconds = first && last !== first ? (last.at - first.at) / 1000 : 0;
  const rtts = samples.map((x) => x.rttMs).filter((x) => x !== null);
  return {
    bitsPerSecond: seconds > 0 ? Math.round(((last.bytes - first.bytes) * 8) / seconds) : 0,
    rttMs: rtts.length ? Math.min(...rtts) : null,
    via: samples.map((x) => x.via).filter(Boolean).pop() || null,
    received: last?.bytes || 0,
  };
}

/**
 * One path: 'ok' with its figures, 'blocked' (no connection within CONNECT_MS), 'off' (the
 * server does not offer it, or the school has no relay), or 'error' with a message.
 */
async function runPath(transport, iceServers) {
  if (transport === 'relay' && !iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)))) return { result: 'off' };
  const pc = new RTCPeerConnection(transport === 'relay' ? { iceServers, iceTransportPolicy: 'relay' } : {});
  try {
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    if (transport === 'relay' && !/ typ relay /.test(pc.localDescription.sdp)) return { result: 'blocked' };
    let answer;
    try {
      answer = await api('POST', '/api/v1/check/offer', { sdp: pc.localDescription.sdp, transport });
    } catch (e) {
      if (e.code === 'transport_unavailable') return { result: 'off' };
      throw e;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    if (!(await connected(pc, CONNECT_MS))) return { result: 'blocked' };
    const figures = await measure(pc, answer.stream_ms);
    return figures.received > 0 ? { result: 'ok', ...figures } : { result: 'blocked' };
  } catch (e) {
    return { result: 'error', message: e.message || String(e) };
  } finally {
    pc.close();
  }
}

/** The relay's servers with fresh credentials, or none when the school has no relay. */
async function iceServers() {
  try {
    const { ice_servers: servers } = await api('GET', '/api/v1/ice-servers');
    return Array.isArray(servers) ? servers : [];
  } catch {
    return [];
  }
}

/** Catalogue keys of the verdict and the advice, from the results of every step. */
function verdict(results) {
  const { udp, tcp, relay, camera } = results;
  const advice = [];
  let key;
  if (udp?.result === 'ok') key = 'check_verdict_good';
  else if (tcp?.result === 'ok') key = 'check_verdict_tcp';
  else if (relay?.result === 'ok') key = 'check_verdict_relay';
  else key = 'check_verdict_blocked';
  if (udp?.result !== 'ok' && relay?.result === 'off') advice.push('check_advice_enable_relay');
  const best = [udp, tcp, relay].find((r) => r?.result === 'ok');
  if (best && best.bitsPerSecond < SLOW_BPS) advice.push('check_advice_slow');
  if (best && best.rttMs !== null && best.rttMs > SLOW_RTT_MS) advice.push('check_advice_delay');
  if (camera?.result === 'denied') advice.push('check_advice_camera');
  return { key, advice };
}

/** A step's result as a short line (catalogue key and values). */
function resultText(step, r) {
  if (!r) return { key: 'check_not_run' };
  if (step === 'camera') return { key: `check_camera_${r.result}` };
  if (r.result === 'ok') {
    return {
      key: r.rttMs === null ? 'check_works_rate' : 'check_works',
      vars: { rtt: r.rttMs ?? 0, rate: Math.round(r.bitsPerSecond / 100000) / 10 },
    };
  }
  if (r.result === 'off') return { key: step === 'relay' ? 'check_relay_off' : 'check_path_off' };
  if (r.result === 'error') return { key: 'check_error', vars: { message: r.message } };
  return { key: 'check_blocked' };
}

export async function checkPage() {
  const user = await me().catch(() => null);
  const results = {};
  // For the page's tests (and curious developers), as live pages expose their session.
  window.homeroom = { check: results };
  const rows = {};
  const list = h('ol', { class: 'check-steps' });
  for (const step of ['camera', ...PATHS]) {
    const outcome = h('span', { class: 'check-result', 'data-result': 'waiting', text: step === 'camera' ? 'check_optional' : 'check_waiting' });
    rows[step] = outcome;
    list.append(h('li', { class: 'check-step', 'data-step': step }, h('span', { class: 'check-name', text: `check_step_${step}` }), ' ', outcome));
  }
  const show = (step, state) => {
    const el = rows[step];
    el.dataset.result = state?.result || 'running';
    if (!state) return setText(el, 'check_running');
    const { key, vars } = resultText(step, state);
    setText(el, key, vars);
  };

  const verdictBox = h('section', { class: 'card check-verdict', hidden: true, 'aria-live': 'polite', 'aria-labelledby': 'check-verdict-title' });
  const report = () => {
    const lines = [t('check_report_title', { when: { date_ms: Date.now() } })];
    for (const step of ['camera', ...PATHS]) {
      const { key, vars } = resultText(step, results[step]);
      lines.push(`${t(`check_step_${step}`)}: ${t(key, vars)}`);
    }
    const { key, advice } = verdict(results);
    lines.push(t(key), ...advice.map((a) => t(a)));
    lines.push(navigator.userAgent);
    return lines.join('\n');
  };
  const showVerdict = () => {
    const { key, advice } = verdict(results);
    verdictBox.replaceChildren(...[
      h('h2', { id: 'check-verdict-title', text: 'check_verdict_title' }),
      h('p', { class: 'check-verdict-text', 'data-verdict': key, text: key }),
      advice.length ? h('ul', { class: 'check-advice' }, advice.map((a) => h('li', { 'data-advice': a, text: a }))) : null,
      h('p', { class: 'hint', text: 'check_copy_hint' }),
      copyButton(report, { labelKey: 'check_copy' }),
    ].filter(Boolean));
    verdictBox.hidden = false;
  };

  const cameraButton = h('button', {
    type: 'button', class: 'check-camera', text: 'check_camera_button',
    on: {
      click: async () => {
        show('camera', null);
        try {
          const stream = await openCamera();
          const kinds = stream.getTracks().map((track) => track.kind);
          for (const track of stream.getTracks()) track.stop();
          results.camera = { result: kinds.includes('video') && kinds.includes('audio') ? 'allowed' : 'partial' };
        } catch (e) {
          results.camera = { result: e?.name === 'NotFoundError' ? 'missing' : 'denied' };
        }
        show('camera', results.camera);
        if (!verdictBox.hidden) showVerdict();
      },
    },
  });

  const start = h('button', { type: 'button', class: 'primary check-start', text: 'check_start' });
  start.addEventListener('click', async () => {
    start.disabled = true;
    verdictBox.hidden = true;
    for (const step of PATHS) {
      delete results[step];
      rows[step].dataset.result = 'waiting';
      setText(rows[step], 'check_waiting');
    }
    const servers = await iceServers();
    for (const step of PATHS) {
      show(step, null);
      results[step] = await runPath(step, servers);
      show(step, results[step]);
    }
    showVerdict();
    start.disabled = false;
  });

  const signIn = h('p', { class: 'card check-signin' },
    h('span', { text: 'check_sign_in_first' }), ' ',
    h('a', { class: 'button primary', href: `/signin?next=${encodeURIComponent('/check')}`, text: 'sign_in' }));

  mount('check_title',
    h('h1', { text: 'check_title' }),
    h('p', { text: 'check_intro' }),
    list,
    h('div', { class: 'actions' }, cameraButton, user ? start : null),
    user ? null : signIn,
    verdictBox);
}
