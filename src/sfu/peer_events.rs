//! Events of a participant's two connections: candidates go out with the first media
//! section's mid (a subscriber's only after the offer they belong to), a track coming in is
//! placed by the room and forwarded, and a connection that fails ends the participation
//! (`connection_failed`); one that never comes up ends it too (`media_timeout`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::event::{Event, Outbox};
use super::room::{Command, RoomHandle};
use super::track::Incoming;
use crate::domain::{Candidate, MediaKind, Source, Target};

/// Server candidates on their way to the client. Each carries the mid of the first media
/// section (the WebRTC crate leaves it empty); while held, they wait, so a subscriber
/// candidate never arrives before the offer it belongs to.
pub(crate) struct Candidates {
    target: Target,
    outbox: Outbox,
    state: Mutex<(Option<String>, Option<Vec<Candidate>>)>,
}

impl Candidates {
    /// Held until the first `release`.
    fn new(target: Target, outbox: Outbox) -> Candidates {
        Candidates {
            target,
            outbox,
            state: Mutex::new((None, Some(Vec::new()))),
        }
    }

    fn send(&self, candidate: Candidate) {
        self.outbox.tell(Event::Candidate {
            target: self.target,
            candidate,
        });
    }

    fn push(&self, mut candidate: Candidate) {
        let mut state = self.state.lock().expect("candidates lock");
        let (mid, held) = &mut *state;
        candidate.sdp_mid = mid.clone();
        candidate.sdp_mline_index = Some(0);
        match held {
            Some(held) => held.push(candidate),
            None => self.send(candidate),
        }
    }

    /// Holds candidates from now on (a new offer is being made).
    pub(crate) fn hold(&self) {
        self.state
            .lock()
            .expect("candidates lock")
            .1
            .get_or_insert_with(Vec::new);
    }

    /// Sends what was held, with `mid`, and whatever comes next at once.
    pub(crate) fn release(&self, mid: Option<String>) {
        let mut state = self.state.lock().expect("candidates lock");
        if mid.is_some() {
            state.0 = mid;
        }
        for mut candidate in state.1.take().unwrap_or_default() {
            candidate.sdp_mid = state.0.clone();
            self.send(candidate);
        }
    }
}

/// Events from the webrtc stack, turned into messages and commands.
pub(crate) struct Events {
    pub(crate) target: Target,
    pub(crate) participant_id: u64,
    pub(crate) outbox: Outbox,
    pub(crate) room: RoomHandle,
    pub(crate) candidates: Candidates,
    /// What the client said each of its tracks shows, keyed by its track id.
    pub(crate) sources: Arc<Mutex<BTreeMap<String, Source>>>,
    /// Publisher side: our track id for each of the client's track ids.
    pub(crate) published: Arc<Mutex<BTreeMap<String, String>>>,
    /// Publisher side: the id of the audio level header extension in its offer (0: none).
    pub(crate) audio_level: Arc<std::sync::atomic::AtomicU8>,
    /// Subscriber side: told when the connection is up, so writers may start.
    pub(crate) connected: Option<mpsc::UnboundedSender<()>>,
    /// Told the first time the connection comes up (awaited by `drop_if_never_connected`).
    pub(crate) first_up: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Events {
    pub(crate) fn new(
        target: Target,
        participant_id: u64,
        outbox: Outbox,
        room: RoomHandle,
        first_up: tokio::sync::oneshot::Sender<()>,
    ) -> Events {
        Events {
            target,
            participant_id,
            candidates: Candidates::new(target, outbox.clone()),
            outbox,
            room,
            sources: Arc::default(),
            published: Arc::default(),
            audio_level: Arc::default(),
            connected: None,
            first_up: Mutex::new(Some(first_up)),
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            self.candidates.push(Candidate {
                candidate: init.candidate,
                sdp_mid: None,
                sdp_mline_index: None,
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(participant_id = self.participant_id, target = ?self.target, %state, "connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                if let Some(first_up) = self.first_up.lock().expect("first_up lock").take() {
                    let _ = first_up.send(());
                }
                if let Some(connected) = &self.connected {
                    let _ = connected.send(());
                }
            }
            // ICE gave up (an ICE restart did not come in time): the participant is gone, and
            // its attendance ends now rather than when its socket finally drops.
            RTCPeerConnectionState::Failed => {
                tracing::info!(participant_id = self.participant_id, target = ?self.target, "media connection failed");
                self.outbox.tell(Event::Kicked {
                    reason: "connection_failed",
                });
                self.room
                    .leave(self.participant_id, "connection_failed")
                    .await;
            }
            _ => {}
        }
    }

    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        if self.target != Target::Publisher {
            return;
        }
        let Some(media_ssrc) = remote.ssrcs().await.first().copied() else {
            return;
        };
        let Some(codec) = remote.codec(media_ssrc).await else {
            return;
        };
        let kind = match remote.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        let client_track_id = remote.track_id().await.to_string();
        let source = self
            .sources
            .lock()
            .expect("sources lock")
            .get(&client_track_id)
            .copied()
            .unwrap_or(match kind {
                MediaKind::Audio => Source::Microphone,
                MediaKind::Video => Source::Camera,
            });
        let incoming = Incoming {
            participant_id: self.participant_id,
            kind,
            source,
            codec,
            media_ssrc,
            rid: remote.rid(media_ssrc).await.map(|rid| rid.to_string()),
            audio_level: match self.audio_level.load(std::sync::atomic::Ordering::Relaxed) {
                0 => None,
                id => Some(id),
            },
            remote,
        };
        let (reply, placed) = tokio::sync::oneshot::channel();
        if self
            .room
            .send(Command::Published { incoming, reply })
            .await
            .is_err()
        {
            return;
        }
        // A refused track (the participant may not publish) is not forwarded at all.
        let Ok(Some((track, generation))) = placed.await else {
            tracing::info!(participant_id = self.participant_id, "track refused");
            return;
        };
        self.published
            .lock()
            .expect("published lock")
            .insert(client_track_id, track.id.clone());
        tracing::info!(participant_id = self.participant_id, track = %track.id, ?kind, generation, "track published");
        let room = self.room.clone();
        let participant_id = self.participant_id;
        tokio::spawn(async move {
            let track_id = track.id.clone();
            if track.forward(generation).await {
                let _ = room
                    .send(Command::Unpublished {
                        participant_id,
                        track_id,
                    })
                    .await;
            }
        });
    }
}

/// Drops the participant when its new connection has not come up within the media connect
/// timeout: a client that joins and never completes ICE/DTLS must not hold a port. The
/// participant is told `kicked` (`media_timeout`), which closes its socket (or ends its WHIP
/// session), and the room lets it go, which closes its connections.
pub(crate) fn drop_if_never_connected(
    timeout: std::time::Duration,
    up: tokio::sync::oneshot::Receiver<()>,
    participant_id: u64,
    outbox: Outbox,
    room: RoomHandle,
) {
    tokio::spawn(async move {
        // Ends as soon as the connection is up, or closed, or the participant gone.
        tokio::select! {
            _ = up => return,
            _ = outbox.closed() => return,
            _ = tokio::time::sleep(timeout) => {}
        }
        tracing::info!(participant_id, "media connection never came up; dropping");
        outbox.tell(Event::Kicked {
            reason: "media_timeout",
        });
        room.leave(participant_id, "media_timeout").await;
    });
}
