//! End-to-end tests of the HTTP server: a real process, real HTTPS, real SQLite and PostgreSQL.

mod class_events;
mod helpers;
mod live;
mod live_room;
mod loadtest;
mod media_port;
mod netns;
mod notify;
mod notify_email;
mod peer;
mod posts;
mod push_service;
mod recordings;
mod recovery;
mod rooms;
mod schemathesis;
mod security_accounts;
mod security_content;
mod security_edge;
mod security_live;
mod simulcast;
mod storage;
mod timeline_scale;
mod turn;
mod turn_bridge;
mod whip;

mod accounts;
mod check;
mod foundation;
mod school_admin;
mod web;
