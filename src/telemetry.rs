//! Logging with `tracing`: human-readable text by default, JSON for log collectors.
//! `RUST_LOG` chooses what is logged; logs go to standard error.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The media stack is chatty at info level about every ICE check; keep it to warnings. The
/// TURN crate logs every refused request as an error, so anyone could fill the log: its
/// refusals are counted in `/metrics` instead (`turn::gate`).
const DEFAULT_FILTER: &str = "info,sqlx=warn,webrtc=warn,rtc=warn,webrtc_ice=warn,turn=off";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
