//! Homeroom: live classrooms, tutoring rooms and class timelines for one school.
//!
//! # Layout
//! - `config`: the TOML file and `HOMEROOM_*` overrides.
//! - `server`: opens the store and serves HTTPS until shutdown; `main` is a thin wrapper.
//! - `http`: one router per resource, the error type, the OpenAPI document, the security
//!   headers, and the browser app from `web/` (`http::web`; `build.rs` builds it in).
//! - `auth`: passwords and the random tokens behind sessions, invites and links.
//! - `store`: the database (SQLite or PostgreSQL), one file of queries per concept.
//! - `tls`: the configured or self-signed certificate.
//! - `metrics`, `telemetry`: Prometheus counters and logging.

pub mod access;
pub mod auth;
pub mod client;
pub mod config;
pub mod http;
pub mod loadtest;
pub mod markdown;
pub mod metrics;
pub mod names;
pub mod server;
pub mod sfu;
pub mod signal;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use server::run;
