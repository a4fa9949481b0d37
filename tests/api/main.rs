//! End-to-end tests of the HTTP server: a real process, real HTTPS, real SQLite and PostgreSQL.

mod helpers;

mod accounts;
mod foundation;
