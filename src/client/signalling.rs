//! The tasks behind a participant's signalling socket: the writer (with the keepalive ping),
//! the reader that routes replies to their requests and events to the participant, and the
//! negotiator that answers the server's subscriber offers in order.
//!
//! None of them panics on what the server sends: a message that does not parse is logged and
//! skipped, a failed negotiation is logged and the next offer is tried, so a load run against
//! an overloaded (or wrong) server counts failures instead of losing tasks. When the socket
//! closes, every request still waiting is told so at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCPeerConnectionIceEvent, RTCSessionDescription,
};

use super::media::new_pc_relayed;
use super::receive::{receive, Inbox};
use crate::config::IceServer;
use crate::sfu::peer::candidate_init;
use crate::signal::protocol::{Candidate, ClientMessage, ServerMessage, Target};

/// Requests waiting for their reply, by id.
pub(super) type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>>;

/// Received tracks by track id, to send feedback (keyframe requests) on them.
pub(super) type Remotes = Arc<Mutex<HashMap<String, Arc<dyn TrackRemote>>>>;

/// One of the participant's two connections, once made.
pub(super) type Connection = Arc<Mutex<Option<Arc<dyn PeerConnection>>>>;

/// A connection's events: candidates go out on the socket, received tracks are checked.
pub(super) struct Events {
    pub(super) target: Target,
    pub(super) out: mpsc::UnboundedSender<String>,
    pub(super) inbox: Inbox,
    pub(super) remotes: Remotes,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let candidate = Candidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            };
            let message = ClientMessage::Candidate {
                id: 0,
                target: self.target,
                candidate,
            };
            let _ = self.out.send(to_text(&message));
        }
    }

    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        let track_id = remote.track_id().await.to_string();
        self.remotes
            .lock()
            .unwrap()
            .insert(track_id, remote.clone());
        tokio::spawn(receive(remote, self.inbox.clone()));
    }
}

/// A client message as sent: our own types always serialize.
pub(super) fn to_text(message: &ClientMessage) -> String {
    serde_json::to_string(message).expect("client messages serialize")
}

/// Writes queued messages to the socket until every sender is gone, then closes it.
pub(super) fn spawn_writer(
    mut sink: impl Sink<Message> + Unpin + Send + 'static,
    mut out: mpsc::UnboundedReceiver<String>,
) {
    tokio::spawn(async move {
        while let Some(text) = out.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
}

/// A ping every 10 s, as the pages send: the server closes a socket silent for 30 s.
pub(super) fn spawn_keepalive(out: mpsc::UnboundedSender<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(10));
        every.tick().await;
        loop {
            every.tick().await;
            if out.send(to_text(&ClientMessage::Ping { id: 0 })).is_err() {
                break;
            }
        }
    })
}

/// Chooses, from the ICE servers `joined` hands out, the TURN servers a relay-only
/// participant uses (e.g. only the TCP one).
pub type RelayPick = Arc<dyn Fn(&[IceServer]) -> Vec<IceServer> + Send + Sync>;

/// The picked servers once `joined` came (`None` inside: not relay-only).
pub(super) type Relay = Arc<Mutex<Option<Vec<IceServer>>>>;

/// What the negotiator needs to answer subscriber offers.
pub(super) struct Negotiator {
    pub(super) relay: Relay,
    pub(super) subscriber: Connection,
    pub(super) remotes: Remotes,
    pub(super) bind: String,
    pub(super) out: mpsc::UnboundedSender<String>,
    pub(super) inbox: Inbox,
    pub(super) offers: Arc<Mutex<Vec<String>>>,
    pub(super) answering: Arc<AtomicBool>,
}

impl Negotiator {
    /// Answers offers in order, so reading the socket never waits on media work.
    pub(super) fn spawn(
        self,
        mut offers: mpsc::UnboundedReceiver<String>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(sdp) = offers.recv().await {
                self.offers.lock().unwrap().push(sdp.clone());
                if !self.answering.load(Ordering::Relaxed) {
                    continue;
                }
                match self.answer(sdp).await {
                    Ok(sdp) => {
                        let _ = self
                            .out
                            .send(to_text(&ClientMessage::Answer { id: 0, sdp }));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot answer a subscriber offer"),
                }
            }
        })
    }

    async fn answer(&self, sdp: String) -> Result<String, String> {
        let existing = self.subscriber.lock().unwrap().clone();
        let pc = match existing {
            Some(pc) => pc,
            None => {
                let handler = Arc::new(Events {
                    target: Target::Subscriber,
                    out: self.out.clone(),
                    inbox: self.inbox.clone(),
                    remotes: self.remotes.clone(),
                });
                let servers = self.relay.lock().unwrap().clone();
                let pc = new_pc_relayed(handler, &self.bind, servers).await?;
                *self.subscriber.lock().unwrap() = Some(pc.clone());
                pc
            }
        };
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
        pc.set_remote_description(offer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok(pc
            .local_description()
            .await
            .ok_or("no local description")?
            .sdp)
    }
}

/// Where the reader sends what it reads.
pub(super) struct Reader {
    pub(super) relay: Relay,
    pub(super) pick: Option<RelayPick>,
    pub(super) pending: Pending,
    /// Marked once the socket has ended, before the waiters are let go.
    pub(super) closed: Arc<AtomicBool>,
    pub(super) subscriber: Connection,
    pub(super) publisher: Connection,
    pub(super) offers: mpsc::UnboundedSender<String>,
    pub(super) events: mpsc::UnboundedSender<ServerMessage>,
}

impl Reader {
    /// Reads until the socket ends; then every waiting request learns it is closed.
    pub(super) fn spawn(
        self,
        mut stream: impl Stream<Item = Result<Message, WsError>> + Unpin + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(message) => self.route(message),
                    Err(e) => tracing::warn!(error = %e, "a server message that does not parse"),
                }
            }
            // Dropping the senders wakes every waiter with "closed".
            self.closed.store(true, Ordering::SeqCst);
            self.pending.lock().unwrap().clear();
        })
    }

    fn route(&self, message: ServerMessage) {
        // Before any offer is read: the subscriber connection needs the servers.
        if let (ServerMessage::Joined { ice_servers, .. }, Some(pick)) = (&message, &self.pick) {
            *self.relay.lock().unwrap() = Some(pick(ice_servers));
        }
        let id = match &message {
            ServerMessage::Joined { id, .. }
            | ServerMessage::Answer { id, .. }
            | ServerMessage::Ok { id }
            | ServerMessage::Pong { id } => Some(*id),
            ServerMessage::Error { id, .. } => *id,
            _ => None,
        };
        if let Some(waiter) = id.and_then(|id| self.pending.lock().unwrap().remove(&id)) {
            let _ = waiter.send(message);
            return;
        }
        match message {
            ServerMessage::Offer { sdp } => {
                let _ = self.offers.send(sdp);
            }
            ServerMessage::Candidate { target, candidate } => {
                let pc = match target {
                    Target::Subscriber => self.subscriber.lock().unwrap().clone(),
                    Target::Publisher => self.publisher.lock().unwrap().clone(),
                };
                if let Some(pc) = pc {
                    // The answer may still be being applied; candidates wait for it.
                    tokio::spawn(async move {
                        for _ in 0..200 {
                            if pc.remote_description().await.is_some() {
                                let _ = pc.add_ice_candidate(candidate_init(candidate)).await;
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    });
                }
            }
            other => {
                let _ = self.events.send(other);
            }
        }
    }
}
