//! End-to-end tests of the HTTP server: a real process, real HTTPS, real SQLite and PostgreSQL.

mod helpers;
mod live;
mod loadtest;
mod peer;
mod posts;
mod security_accounts;
mod whip;

mod accounts;
mod foundation;
mod web;
