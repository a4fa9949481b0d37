//! Homeroom: live classrooms, tutoring rooms and class timelines for one school.
//!
//! # Layout
//! - `config`: the TOML file and `HOMEROOM_*` overrides.
//! - `server`: opens the store and serves HTTPS until shutdown; `main` is a thin wrapper.
//! - `access`: the one permission function (the role table of ARCHITECTURE.md).
//! - `http`: one router per resource (accounts, classes, invites, rooms, posts, attachments,
//!   timeline, session logs, feeds, notifications, emailed links, WHIP, WHEP), the door of the
//!   signalling socket, the error type, the OpenAPI document, the security headers, and the
//!   browser app from `web/` (`http::web`; `build.rs` builds it in).
//! - `events`: the class event hub that pushes sessions starting and ending, posts and
//!   comments to open class pages (`http::class_events` serves it).
//! - `notify`: Web Push and email notifications: who hears of what (through `access`), the
//!   durable outbox and its delivery worker, preferences and quiet hours, digests, VAPID.
//! - `domain`: the vocabulary of live rooms that `http`, `signal` and `sfu` share.
//! - `signal`: the WebSocket signalling protocol, who may enter which room, how often each
//!   message type may be sent, and the SFU's events and refusals as wire messages.
//! - `sfu`: rooms, participants' peer connections, published tracks and their fan-out, and
//!   ending a participation when its right ends (`sfu::revocation`). It tells participants
//!   `sfu::event::Event`s and refuses with `sfu::error::RoomError`; it knows nothing of the wire.
//! - `recording`: recording live sessions (taps on published tracks, frame journals, WebM
//!   muxing, finalising after a crash, retention).
//! - `auth`: passwords and the random tokens behind sessions, invites, links and rooms.
//! - `store`: the database (SQLite or PostgreSQL), one file of queries per concept.
//! - `client`: a WebRTC participant, WHIP publisher and WHEP player for tests and `loadtest`.
//! - `loadtest`: the load-test command and its figures.
//! - `bench`: `homeroom bench timeline`, the timeline at school scale and its figures.
//! - `markdown`, `names`: safe HTML from Markdown; names checked at the edge.
//! - `tls`: the configured or self-signed certificate.
//! - `turn`: the built-in TURN relay (off by default): credentials, limits, never an open relay.
//! - `metrics`, `telemetry`: Prometheus counters and logging.

pub mod access;
pub mod auth;
pub mod bench;
pub mod client;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod loadtest;
pub mod markdown;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod recording;
pub mod server;
pub mod sfu;
pub mod signal;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod turn;

pub use server::run;
