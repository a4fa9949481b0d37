//! The Selective Forwarding Unit: rooms → participants → published tracks → subscribers.
//! It forwards RTP and never transcodes.
//!
//! `Sfu` is the node's registry of live rooms. A room's task starts when its host starts a
//! live session and ends when the session does; see `room.rs` for the actor; `peer.rs`,
//! `peer_events.rs` and `subscriber.rs` for a participant's two connections; `track.rs` for
//! a published track, `layers.rs` for its encodings (simulcast) and `fanout.rs` for handing
//! its packets to subscribers, `history.rs` for the recent packets lost ones are resent from; `quality/` for which layer each viewer gets; `check.rs` for
//! the connection check's test stream; `event.rs` for what it tells a participant and
//! `error.rs` for what a room refuses (the signalling and HTTP say both to clients); `output.rs` and `outgoing.rs` for one receiver's copy
//! of a track and its numbering (`payload.rs` reads codec payloads); `media_port/` for the one UDP port all of it travels on; `sdp.rs` for
//! what is read in and added to SDP; `forward.rs` for the rules; `paths.rs` for which way
//! each connection took; `admission.rs` for who gets in when the server is full; and
//! `revocation.rs` for ending participations whose right ended.

pub mod admission;
pub mod check;
pub mod error;
pub mod event;
pub mod event_log;
pub mod fanout;
pub mod forward;
pub mod history;
pub mod keyframe_requests;
pub mod layers;
pub mod media;
pub mod media_port;
pub mod outgoing;
pub mod output;
pub mod paths;
pub mod payload;
pub mod peer;
pub mod peer_events;
pub mod quality;
pub mod revocation;
pub mod room;
pub mod rtcp_filter;
pub mod sdp;
pub mod subscriber;
pub mod track;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use error::RoomError;
use event_log::EventLog;
use media::MediaSettings;
use revocation::Revocation;
use room::{Command, Room, RoomHandle, RoomSpec};

use crate::config::Config;
use crate::events::{ClassEvent, ClassEvents};
use crate::metrics::Metrics;
use crate::recording::Recorder;
use crate::store::Store;

#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Mutex<HashMap<i64, RoomHandle>>,
    /// Participants per live room, for metrics and the room list.
    occupancy: Mutex<HashMap<i64, usize>>,
    media: Arc<MediaSettings>,
    store: Store,
    log: EventLog,
    metrics: Arc<Metrics>,
    max_rooms: usize,
    max_participants: usize,
    admission: admission::Admission,
    max_guests: usize,
    next_participant: AtomicU64,
    /// Told when a session starts and ends, for the class pages.
    events: ClassEvents,
    recorder: Recorder,
}

impl Sfu {
    /// Binds the media port (see `media_port/`); `https` is the bound HTTPS address.
    pub fn new(
        config: &Config,
        https: std::net::SocketAddr,
        store: Store,
        metrics: Arc<Metrics>,
        events: ClassEvents,
    ) -> std::io::Result<Sfu> {
        let media = MediaSettings::new(&config.media, &config.limits, https)?;
        Ok(Sfu {
            inner: Arc::new(Inner {
                rooms: Mutex::default(),
                occupancy: Mutex::default(),
                media: Arc::new(media),
                log: EventLog::start(store.clone()),
                recorder: Recorder::new(config, store.clone()),
                store,
                metrics,
                max_rooms: config.limits.max_rooms_per_node,
                max_participants: config.limits.max_participants_per_room,
                admission: admission::Admission::new(
                    config.limits.max_participants_per_node,
                    std::time::Duration::from_millis(config.limits.max_media_lag_ms),
                ),
                max_guests: config.limits.max_guests_per_room,
                next_participant: AtomicU64::new(first_participant_id()),
                events,
            }),
        })
    }

    /// Who gets in, and how many were refused (for /metrics).
    pub fn admission(&self) -> &admission::Admission {
        &self.inner.admission
    }

    /// Where recordings are written and how.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    pub fn media(&self) -> Arc<MediaSettings> {
        self.inner.media.clone()
    }

    /// A participant id never given out before, by this process or an earlier one (see
    /// [`first_participant_id`]).
    pub fn next_participant_id(&self) -> u64 {
        self.inner.next_participant.fetch_add(1, Ordering::Relaxed)
    }

    /// The room's live task, if a session is on.
    pub fn live_room(&self, room_id: i64) -> Option<RoomHandle> {
        let rooms = self.inner.rooms.lock().expect("rooms lock");
        rooms.get(&room_id).filter(|h| !h.is_closed()).cloned()
    }

    /// The live room, starting a new session when the host arrives at an idle room. The
    /// room's class is told when the session starts and when it ends.
    pub async fn room_for(
        &self,
        room: &crate::store::rooms::Room,
        host_user: Option<i64>,
        is_host: bool,
    ) -> Result<RoomHandle, RoomError> {
        let (room_id, class_id) = (room.id, room.class_id);
        self.admit(is_host)?;
        if let Some(handle) = self.live_room(room_id) {
            return Ok(handle);
        }
        if !is_host {
            return Err(RoomError::NotLive);
        }
        let live = {
            let rooms = self.inner.rooms.lock().expect("rooms lock");
            rooms.values().filter(|h| !h.is_closed()).count()
        };
        if live >= self.inner.max_rooms {
            return Err(RoomError::NodeFull);
        }
        let session_id = self
            .inner
            .store
            .start_live_session(room_id, host_user)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start a live session");
                RoomError::Internal
            })?;
        let mut rooms = self.inner.rooms.lock().expect("rooms lock");
        // Another host may have started it meanwhile; the session row just made ends at once.
        if let Some(handle) = rooms.get(&room_id).filter(|h| !h.is_closed()) {
            self.inner.log.send(event_log::LogEntry::End {
                session_id,
                reason: "superseded".into(),
                peak: 0,
            });
            return Ok(handle.clone());
        }
        let inner = Arc::downgrade(&self.inner);
        let on_change = Arc::new(move |room_id: i64, count: usize| {
            if let Some(inner) = inner.upgrade() {
                inner.occupancy_changed(room_id, count);
            }
        });
        let spec = RoomSpec {
            room_id,
            class_id,
            session_id,
            max_participants: self.inner.max_participants,
            max_guests: self.inner.max_guests,
            recorder: self.inner.recorder.clone(),
            record_sessions: room.record_sessions != 0,
        };
        let handle = Room::start(spec, self.inner.log.clone(), on_change);
        rooms.insert(room_id, handle.clone());
        drop(rooms);
        tracing::info!(room_id, session_id, "live session started");
        let events = self.inner.events.clone();
        events.publish(
            class_id,
            ClassEvent::SessionStarted {
                room_id,
                session_id,
            },
        );
        let ended = handle.clone();
        tokio::spawn(async move {
            ended.ended().await;
            events.publish(
                class_id,
                ClassEvent::SessionEnded {
                    room_id,
                    session_id,
                },
            );
        });
        Ok(handle)
    }

    /// Refuses a new participant with `node_full` when the server carries as many as it may
    /// or its media plane is saturated (`admission.rs`): the families already watching keep
    /// their media rather than everyone's degrading. A room's host always gets in.
    pub fn admit(&self, is_host: bool) -> Result<(), RoomError> {
        let participants: usize = self
            .inner
            .occupancy
            .lock()
            .expect("occupancy lock")
            .values()
            .sum();
        let lag = self.inner.media.port().lag();
        self.inner
            .admission
            .admit(is_host, participants, lag, std::time::Instant::now())
    }

    /// Ends, in every live room it concerns, the participations the revocation reaches; the
    /// rooms drop them at once (see `revocation.rs`).
    pub async fn revoke(&self, revocation: Revocation) {
        let handles: Vec<RoomHandle> = self
            .inner
            .rooms
            .lock()
            .expect("rooms lock")
            .values()
            .filter(|h| !h.is_closed())
            .filter(|h| revocation.class_id.is_none_or(|c| c == h.class_id))
            .cloned()
            .collect();
        for handle in handles {
            let _ = handle.send(Command::Revoke(revocation.clone())).await;
        }
    }

    /// Participants in each live room.
    pub fn occupancy(&self) -> HashMap<i64, usize> {
        self.inner.occupancy.lock().expect("occupancy lock").clone()
    }

    /// Ends every live session and waits until their logs are written.
    pub async fn shutdown(&self) {
        let handles: Vec<RoomHandle> = self
            .inner
            .rooms
            .lock()
            .expect("rooms lock")
            .values()
            .cloned()
            .collect();
        for handle in handles {
            let _ = handle.send(Command::Close).await;
        }
        for _ in 0..50 {
            if self
                .inner
                .rooms
                .lock()
                .expect("rooms lock")
                .values()
                .all(RoomHandle::is_closed)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.inner.log.flush().await;
    }

    /// Waits until every session event sent so far is in the store.
    pub async fn flush_log(&self) {
        self.inner.log.flush().await;
    }
}

impl Inner {
    fn occupancy_changed(&self, room_id: i64, count: usize) {
        let mut occupancy = self.occupancy.lock().expect("occupancy lock");
        if count == 0 {
            occupancy.remove(&room_id);
            let mut rooms = self.rooms.lock().expect("rooms lock");
            if rooms.get(&room_id).is_some_and(RoomHandle::is_closed) {
                rooms.remove(&room_id);
            }
        } else {
            occupancy.insert(room_id, count);
        }
        let participants: usize = occupancy.values().sum();
        self.metrics.set_gauge(
            "homeroom_live_rooms",
            "Rooms with a live session.",
            occupancy.len() as i64,
        );
        self.metrics.set_gauge(
            "homeroom_participants",
            "Participants in live rooms.",
            participants as i64,
        );
    }
}

/// Where this process's participant ids start: the start time in unix ms times 1,000, so a
/// restarted server never hands out an id an earlier run gave (that would need more than
/// 1,000 joins per millisecond of uptime), and ids stay below 2^53 (exact in JavaScript)
/// until the year 2255.
fn first_participant_id() -> u64 {
    crate::store::now_ms().max(0) as u64 * 1_000
}
