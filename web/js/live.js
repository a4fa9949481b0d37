// A live session in one room: the signalling socket, the publisher connection (our camera,
// microphone, screen) and the subscriber connection (everyone else's tracks), as the server
// expects them (src/signal/protocol.rs). When a connection goes `disconnected` or `failed`
// (a network change) it restarts ICE on it and stays the same participant; when the socket
// drops, or a restart does not bring the connection back, it joins again by itself,
// republishing what was published, and says so with `state` events. A subscriber offer it
// cannot answer is reported (`answer_failed`) and the server offers afresh.
//
// Events (CustomEvent, details in `event.detail`): state, participants, tracks, chat, me,
// recording (whether the session is being recorded, and by whom), reception (what video this
// connection gets and whether the link is weak), error. `session.remote` maps the server's track
// ids to the MediaStreamTracks we receive. The video quality and the pinned camera chosen with
// `setQuality` and `setFocus` are chosen again after joining again.
// Hosts get the list of participants; everyone else gets `session.count` (people here, us
// included) and `participants` holds only what the server shows them.

import { Signal } from './signal.js';
import { sendEncodings } from './simulcast.js';

const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const PING_MS = 10000;
const NOT_LIVE_RETRY_MS = 3000;
/** A full server is asked again after 10 to 20 s: spread out, so the families it turned away
 *  do not all come back at the same moment. */
const FULL_RETRY_MS = 10000;
/** How long an ICE restart may take before joining again instead. */
const ICE_RESTART_MS = 8000;
/** Errors that another attempt will not fix. */
const FATAL = new Set(['not_allowed', 'room_not_found', 'token_invalid', 'unauthorized', 'room_full', 'guests_full', 'removed']);

/** mid → {stream, track} from an SDP's `a=msid:` lines. */
export function msidsByMid(sdp) {
  const result = {};
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /\r?\na=mid:(\S+)/.exec(section)?.[1];
    const msid = /\r?\na=msid:(\S+) (\S+)/.exec(section) || /\r?\na=ssrc:\d+ msid:(\S+) (\S+)/.exec(section);
    if (mid !== undefined && msid) result[mid] = { stream: msid[1], track: msid[2] };
  }
  return result;
}

export class LiveSession extends EventTarget {
  /** `socketUrl` is an async function: guests fetch a fresh room token for every attempt. */
  constructor({ roomId, socketUrl }) {
    super();
    this.roomId = roomId;
    this.socketUrl = socketUrl || (async () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws`);
    this.state = 'idle';
    this.participants = new Map();
    this.count = 0;
    this.tracks = new Map();
    this.remote = new Map();
    this.local = [];
    this.mids = {};
    this.me = null;
    this.abilities = { publish: false, host: false, chat: false };
    /** The latest `reception` message, null until the subscriber connection is up. */
    this.reception = null;
    this.quality = 'auto';
    /** The track pinned with `setFocus`, or null to follow whoever speaks. */
    this.focused = null;
    this.attempt = 0;
    this.subChain = Promise.resolve();
    this.pubChain = Promise.resolve();
    this.onOnline = () => this.state === 'reconnecting' && this.retryNow();
    window.addEventListener('online', this.onOnline);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit('state', { state, ...detail });
  }

  get over() {
    return ['ended', 'kicked', 'left', 'failed'].includes(this.state);
  }

  async start() {
    this.setState('connecting');
    try {
      await this.connect();
    } catch (error) {
      this.connectFailed(error);
    }
  }

  async connect() {
    const signal = new Signal(await this.socketUrl());
    this.signal = signal;
    signal.addEventListener('message', (e) => this.onMessage(e.detail));
    signal.addEventListener('close', () => this.onSocketClosed(signal));
    await signal.open();
    const joined = await signal.request({ type: 'join', room_id: this.roomId });
    this.attempt = 0;
    this.roomKind = joined.room_kind;
    this.roomName = joined.room_name;
    this.abilities = joined.abilities;
    this.iceServers = (joined.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
    this.meId = joined.participant_id;
    // The session's log is at /session/{sessionId} once it ends.
    this.sessionId = joined.session_id;
    // `participants` holds the others; `me` is this participant.
    const mine = joined.participants.find((p) => p.participant_id === this.meId);
    this.participants = new Map(joined.participants.filter((p) => p !== mine).map((p) => [p.participant_id, p]));
    this.count = joined.participant_count ?? this.participants.size + 1;
    this.me = mine || { participant_id: this.meId, waiting: joined.waiting };
    this.tracks = new Map(joined.tracks.map((t) => [t.track_id, t]));
    this.recording = { recording: joined.recording === true, by: '' };
    this.emit('recording', this.recording);
    this.setState(joined.waiting ? 'waiting' : 'joined', { rejoined: this.wasJoined === true });
    this.wasJoined = true;
    this.emit('participants');
    this.emit('tracks');
    this.emit('me', this.me);
    clearInterval(this.pinger);
    this.pinger = setInterval(() => {
      signal.request({ type: 'ping' }, 5000).catch(() => signal === this.signal && signal.close());
    }, PING_MS);
    if (!joined.waiting) this.chooseAgain();
    if (!joined.waiting && this.local.length && this.abilities.publish) await this.negotiatePublisher();
  }

  /** A new participation starts with the server's defaults: tell it what was chosen before. */
  chooseAgain() {
    if (this.quality !== 'auto') this.request({ type: 'quality', quality: this.quality }).catch(() => {});
    if (this.focused && !this.tracks.has(this.focused)) this.focused = null;
    if (this.focused) this.request({ type: 'focus', track_id: this.focused }).catch(() => {});
  }

  /** What video this connection receives: `auto`, `high`, `medium`, `low` or `audio_only`. */
  async setQuality(quality) {
    await this.request({ type: 'quality', quality });
    this.quality = quality;
  }

  /** Pins a camera (a track id) to receive at any layer, or with null follows whoever speaks. */
  async setFocus(trackId) {
    await this.request({ type: 'focus', track_id: trackId });
    this.focused = trackId;
  }

  connectFailed(error) {
    if (FATAL.has(error?.code)) {
      this.teardown();
      this.setState('failed', { code: error.code, message: error.message });
      return;
    }
    if (this.signal) this.signal.close();
    if (error?.code === 'not_live' || error?.code === 'node_full') {
      // Nobody is presenting yet, or the server carries all it can: nothing is wrong with
      // this connection, so look again calmly rather than as after a lost one.
      const full = error.code === 'node_full';
      this.setState(full ? 'full' : 'not_live');
      clearTimeout(this.retryTimer);
      const delay = full ? FULL_RETRY_MS * (1 + Math.random()) : NOT_LIVE_RETRY_MS;
      this.retryTimer = setTimeout(() => this.retryNow(), delay);
      return;
    }
    this.scheduleRetry();
  }

  onSocketClosed(signal) {
    if (signal !== this.signal || this.over || ['not_live', 'full'].includes(this.state)) return;
    this.teardown();
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.over) return;
    this.setState('reconnecting', { attempt: this.attempt + 1 });
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.retryNow(), delay);
  }

  async retryNow() {
    clearTimeout(this.retryTimer);
    if (this.over) return;
    try {
      await this.connect();
    } catch (error) {
      this.connectFailed(error);
    }
  }

  /** Closes both connections (our own tracks stay, to publish again on rejoin). */
  teardown() {
    clearInterval(this.pinger);
    for (const timer of Object.values(this.iceTimers || {})) clearTimeout(timer);
    this.iceTimers = {};
    for (const pc of [this.pub, this.sub]) if (pc) pc.close();
    this.pub = null;
    this.sub = null;
    this.pubQueue = [];
    this.subQueue = [];
    this.pubReady = false;
    this.mids = {};
    this.remote.clear();
    this.reception = null;
    for (const entry of this.local) entry.sender = null;
    this.emit('tracks');
    this.emit('reception', null);
  }

  request(message) {
    if (!this.signal) return Promise.reject(new Error('not connected'));
    return this.signal.request(message);
  }

  onMessage(m) {
    switch (m.type) {
      case 'offer':
        this.subChain = this.subChain.then(() => this.answerSubscriber(m.sdp)).catch((e) => this.answerFailed(e));
        break;
      case 'candidate':
        this.addRemoteCandidate(m.target, m.candidate);
        break;
      case 'participant_joined':
      case 'participant_updated': {
        const p = m.participant;
        if (p.participant_id === this.meId) {
          const wasPresenter = this.me?.presenter;
          this.me = p;
          if (p.presenter && !wasPresenter) this.abilities = { ...this.abilities, publish: true };
          if (!p.presenter && wasPresenter && !this.abilities.host) this.stopPublishing();
          this.emit('me', p);
        } else {
          if (!this.participants.has(p.participant_id)) this.count += 1;
          this.participants.set(p.participant_id, p);
          this.emit('participants');
        }
        break;
      }
      case 'participant_left':
        if (this.participants.delete(m.participant_id)) this.count -= 1;
        this.emit('participants');
        break;
      case 'participant_count':
        this.count = m.count;
        this.emit('participants');
        break;
      case 'track_published':
        this.tracks.set(m.track.track_id, m.track);
        this.emit('tracks');
        break;
      case 'track_unpublished':
        this.tracks.delete(m.track_id);
        this.remote.delete(m.track_id);
        if (this.focused === m.track_id) this.focused = null;
        this.emit('tracks');
        break;
      case 'track_muted': {
        const track = this.tracks.get(m.track_id);
        if (track) track.muted = m.muted;
        this.emit('tracks');
        break;
      }
      case 'chat':
        this.emit('chat', m);
        break;
      case 'reception':
        this.reception = m;
        this.emit('reception', m);
        break;
      case 'recording':
        this.recording = { recording: m.recording, by: m.by, reason: m.reason };
        this.emit('recording', this.recording);
        break;
      case 'admitted':
        this.me = { ...this.me, waiting: false };
        this.setState('joined', { admitted: true });
        this.emit('me', this.me);
        this.chooseAgain();
        if (this.local.length) this.negotiatePublisher().catch((e) => this.emit('error', e));
        break;
      case 'kicked':
        // The server saw our media connection fail: the socket closes and we join again.
        if (m.reason === 'connection_failed') break;
        this.finish(m.type, m.reason);
        break;
      case 'ended':
        this.finish(m.type, m.reason);
        break;
      case 'error':
        this.emit('error', m);
        break;
    }
  }

  /** Host: start or stop recording the session. */
  record(on) {
    return this.request({ type: on ? 'start_recording' : 'stop_recording' });
  }

  finish(state, reason) {
    this.setState(state, { reason });
    this.teardown();
    if (this.signal) this.signal.close();
    window.removeEventListener('online', this.onOnline);
  }

  newConnection(target) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      if (!c || !c.candidate) return;
      const candidate = { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined };
      const send = () => this.request({ type: 'candidate', target, candidate }).catch(() => {});
      if (target === 'publisher' && !this.pubOfferSent) this.pubOutbox.push(send);
      else send();
    };
    pc.onconnectionstatechange = () => {
      if ((pc !== this.pub && pc !== this.sub) || this.over) return;
      if (pc.connectionState === 'disconnected' || pc.connectionState === 'failed') this.restartIce(target, pc);
      if (pc.connectionState === 'connected') {
        clearTimeout(this.iceTimers?.[target]);
        if (this.iceTimers) this.iceTimers[target] = null;
      }
    };
    return pc;
  }

  /** Restarts ICE on one connection (the participant, its tracks and its attendance stay);
   *  if it is not connected again within ICE_RESTART_MS, joins again. */
  restartIce(target, pc) {
    this.iceTimers ||= {};
    if (this.iceTimers[target]) return;
    this.iceTimers[target] = setTimeout(() => {
      this.iceTimers[target] = null;
      if ((pc === this.pub || pc === this.sub) && pc.connectionState !== 'connected') this.signal?.close();
    }, ICE_RESTART_MS);
    if (target === 'subscriber') {
      this.request({ type: 'ice_restart' }).catch(() => {});
    } else {
      pc.restartIce();
      this.negotiatePublisher().catch((e) => this.emit('error', e));
    }
  }

  /** A subscriber offer we could not answer: back to a stable state, and the server offers again. */
  async answerFailed(error) {
    this.emit('error', error);
    if (this.sub?.signalingState === 'have-remote-offer') await this.sub.setRemoteDescription({ type: 'rollback' }).catch(() => {});
    this.request({ type: 'answer_failed', reason: String(error?.message || error).slice(0, 200) }).catch(() => {});
  }

  async addRemoteCandidate(target, candidate) {
    const ready = target === 'publisher' ? this.pubReady : this.sub?.remoteDescription;
    const pc = target === 'publisher' ? this.pub : this.sub;
    if (!pc || !ready) {
      (target === 'publisher' ? (this.pubQueue ||= []) : (this.subQueue ||= [])).push(candidate);
      return;
    }
    try {
      await pc.addIceCandidate(candidate);
    } catch (e) {
      console.warn('candidate refused', e);
    }
  }

  async answerSubscriber(sdp) {
    if (!this.sub) {
      this.sub = this.newConnection('subscriber');
      this.sub.ontrack = () => this.mapRemote();
    }
    const pc = this.sub;
    this.mids = msidsByMid(sdp);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    for (const c of this.subQueue || []) await pc.addIceCandidate(c).catch(() => {});
    this.subQueue = [];
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.mapRemote();
    await this.request({ type: 'answer', sdp: answer.sdp });
  }

  /** Which MediaStreamTrack carries which server track, from the transceivers' mids. */
  mapRemote() {
    if (!this.sub) return;
    this.remote.clear();
    for (const t of this.sub.getTransceivers()) {
      const ids = this.mids[t.mid];
      const receiving = t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv';
      if (ids && receiving && !t.stopped) this.remote.set(ids.track, t.receiver.track);
    }
    this.emit('tracks');
  }

  /** Publishes (or, while not yet joined, prepares) tracks: [{track, source, stream}]. */
  async publish(entries) {
    for (const entry of entries) this.local.push({ ...entry, offeredId: entry.track.id, sender: null });
    if (this.state === 'joined' && this.abilities.publish) await this.negotiatePublisher();
  }

  async unpublish(track) {
    const entry = this.local.find((e) => e.track === track);
    if (!entry) return;
    this.local = this.local.filter((e) => e !== entry);
    if (entry.sender && this.pub) {
      this.pub.removeTrack(entry.sender);
      if (this.abilities.publish) await this.negotiatePublisher();
    }
  }

  /**
   * Presenting was taken back: the server already stopped forwarding our tracks. Our camera
   * and microphone stop (readyState "ended"); the publisher connection stays, without
   * senders, so a later promotion publishes on it with a fresh offer.
   */
  stopPublishing() {
    this.abilities = { ...this.abilities, publish: false };
    for (const entry of this.local.splice(0)) {
      if (entry.sender && this.pub) this.pub.removeTrack(entry.sender);
      entry.track.stop();
    }
  }

  /** Swaps the device behind a published track without a new offer. */
  async replace(oldTrack, newTrack) {
    const entry = this.local.find((e) => e.track === oldTrack);
    if (!entry) return;
    entry.track = newTrack;
    if (entry.sender) await entry.sender.replaceTrack(newTrack);
  }

  /** Offers in turn; one refused offer does not stop the next. */
  negotiatePublisher() {
    const offered = this.pubChain.catch(() => {}).then(() => this.offerPublisher());
    this.pubChain = offered;
    return offered;
  }

  async offerPublisher() {
    if (this.state !== 'joined') return;
    if (!this.pub) {
      this.pub = this.newConnection('publisher');
      this.pubOfferSent = false;
      this.pubOutbox = [];
    }
    const pc = this.pub;
    for (const entry of this.local) {
      if (entry.sender) continue;
      const transceiver = pc.addTransceiver(entry.track, { direction: 'sendonly', streams: [entry.stream], sendEncodings: sendEncodings(entry) });
      entry.sender = transceiver.sender;
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const sources = {};
    // The server knows a track by the id it was first offered with (replaceTrack keeps it).
    for (const entry of this.local) sources[entry.offeredId] = entry.source;
    const reply = this.request({ type: 'offer', sdp: offer.sdp, sources });
    this.pubOfferSent = true;
    for (const send of this.pubOutbox.splice(0)) send();
    let answer;
    try {
      answer = await reply;
    } catch (error) {
      // Back to stable, so the next offer starts clean.
      if (pc === this.pub && pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      throw error;
    }
    if (pc !== this.pub) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    this.pubReady = true;
    for (const c of this.pubQueue || []) await pc.addIceCandidate(c).catch(() => {});
    this.pubQueue = [];
  }

  chat(text) {
    return this.request({ type: 'chat', text });
  }

  async leave() {
    if (this.over) return;
    try {
      await this.request({ type: 'leave' });
    } catch {
      // Closing the socket leaves too.
    }
    this.finish('left');
  }

  /** Per participant: video frames decoded, audio packets received, audio level. */
  async receiveStats() {
    const result = {};
    if (!this.sub) return result;
    const stats = await this.sub.getStats();
    stats.forEach((report) => {
      if (report.type !== 'inbound-rtp') return;
      const ids = this.mids[report.mid];
      const who = ids?.stream ?? 'unknown';
      const entry = (result[who] ||= { framesDecoded: 0, videoTracks: 0, audioPackets: 0, audioLevel: 0 });
      if (report.kind === 'video') {
        entry.framesDecoded += report.framesDecoded || 0;
        if (report.framesDecoded > 0) entry.videoTracks += 1;
      }
      if (report.kind === 'audio') {
        entry.audioPackets += report.packetsReceived || 0;
        entry.audioLevel = Math.max(entry.audioLevel, report.audioLevel || 0);
      }
    });
    return result;
  }

  /** Our own microphone's level, 0 to 1. */
  async localAudioLevel() {
    if (!this.pub) return 0;
    let level = 0;
    (await this.pub.getStats()).forEach((report) => {
      if (report.type === 'media-source' && report.kind === 'audio') level = Math.max(level, report.audioLevel || 0);
    });
    return level;
  }
}
