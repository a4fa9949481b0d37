//! `homeroom loadtest`: one synthetic publisher and N subscribers over real WebRTC against a
//! running server, with a progress line each second and a JSON summary at the end.
//!
//! The teacher publishes; the subscribers join as a family account (`--viewer-login`) or as
//! open-house guests (`--guest-link`), never as the teacher, so the room treats them as it
//! treats an audience.
//!
//! The run survives an overloaded server: each join has its own deadline and a failed one is
//! counted by its reason. Whatever ends the run (its duration, Ctrl-C, SIGTERM, an error while
//! setting up) ends it the same way: the summary is printed, then the connections are closed
//! within a bound, then the exit status says whether the run was clean.
//!
//! - `setup.rs`: pinning, signing in (`accounts.rs`) and the publisher;
//! - `run.rs`: the phases (ramp, settle, idle, steady) and the per-second progress line;
//! - `joins.rs`: one subscriber's join and the naming of failures;
//! - `figures.rs`, `summary.rs`: the figures and the verdict;
//! - `usage.rs`: CPU, memory and file descriptors from `/proc`; `pinning.rs`: CPU affinity;
//! - `weak_link.rs`: `--throttle`, subscribers on a shaped link;
//! - `stop.rs`: signals.
//!
//! The server's figures are read from `/proc/<pid>`, the tool's own from `/proc/self`: on a
//! small machine the two compete, and neither is inferred from the other.

use std::time::Duration;

mod accounts;
mod figures;
mod joins;
mod pinning;
mod run;
mod setup;
mod stop;
mod summary;
mod usage;
mod weak_link;

pub use summary::Summary;
pub use weak_link::Throttling;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadTest {
    /// A Homeroom server, e.g. https://127.0.0.1:8443, for its own signalling.
    #[arg(long)]
    pub server: Option<String>,
    /// The room to load (a classroom or open house).
    #[arg(long)]
    pub room: Option<i64>,
    /// A teacher's login: it starts the session and publishes.
    #[arg(long)]
    pub login: Option<String>,
    #[arg(long, env = "LOADTEST_PASSWORD")]
    pub password: Option<String>,
    /// A family's login: every subscriber joins as this account.
    #[arg(long)]
    pub viewer_login: Option<String>,
    /// The family's password (the teacher's when not given).
    #[arg(long, env = "LOADTEST_VIEWER_PASSWORD")]
    pub viewer_password: Option<String>,
    /// An open-house guest link's code: every subscriber joins as a guest of it (the server
    /// takes `limits.max_guests_per_ip` guests from one address).
    #[arg(long)]
    pub guest_link: Option<String>,
    /// Publish over WHIP to this URL instead (any WHIP server).
    #[arg(long)]
    pub whip: Option<String>,
    #[arg(long, env = "LOADTEST_WHIP_KEY")]
    pub whip_key: Option<String>,
    /// Subscribe over WHEP from this URL instead (any WHEP server).
    #[arg(long)]
    pub whep: Option<String>,
    #[arg(long, env = "LOADTEST_WHEP_TOKEN")]
    pub whep_token: Option<String>,
    /// Subscribers to connect.
    #[arg(long, default_value_t = 20)]
    pub subscribers: usize,
    /// Subscribers started per second.
    #[arg(long, default_value_t = 10.0)]
    pub ramp: f64,
    /// Seconds one subscriber's join (socket, TLS, `join` to `joined`, or a WHEP exchange)
    /// may take before it counts as failed (`timeout`).
    #[arg(long, default_value_t = 10.0)]
    pub join_timeout: f64,
    /// Seconds to hold the publisher to a trickle (one one-packet frame a second per track)
    /// once every subscriber is in, before the full rate: the `joined` memory and file
    /// descriptor figures are then those of idle viewers.
    #[arg(long, default_value_t = 0)]
    pub idle_secs: u64,
    /// Seconds to measure at the full rate once every subscriber is in and has media.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Video bitrate in kbit/s.
    #[arg(long, default_value_t = 1000)]
    pub bitrate: u32,
    /// Publish the video as three simulcast layers (`l`, `m`, `h` at about 150, 500 and 1500
    /// kbit/s, 30 fps) instead of one encoding of `--bitrate`. Each subscriber then gets one
    /// layer, so the delivery figures against what the publisher sent are left out.
    #[arg(long)]
    pub simulcast: bool,
    /// Put the first N subscribers on a link of RATE, e.g. `10:400kbit`: they run inside one
    /// network namespace whose link to the host is shaped to RATE both ways. Needs root and
    /// iproute2, subscribers over Homeroom's signalling, and a server that listens and offers
    /// media on every address.
    #[arg(long)]
    pub throttle: Option<Throttling>,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Exit non-zero when the loss, or the shortfall against the nominal rate, exceeds this
    /// percentage.
    #[arg(long, default_value_t = 1.0)]
    pub max_loss: f64,
    /// The server's process id, to read its CPU, memory and file descriptors.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Pin the server (every thread of `--server-pid`) to these CPUs, e.g. `0` or `0,1`.
    #[arg(long, value_delimiter = ',')]
    pub server_cpu: Option<Vec<usize>>,
    /// Pin the load tool itself to these CPUs.
    #[arg(long, value_delimiter = ',')]
    pub tool_cpu: Option<Vec<usize>>,
    /// The server's certificate (PEM), e.g. certs/self-signed.crt
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Local address for the client's media sockets.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
}

/// Runs the load test and prints the summary as JSON, however the run ends; fails when the
/// run was not clean (see `Summary::verdict`).
pub async fn main(args: LoadTest) -> anyhow::Result<()> {
    let mut stop = stop::Stop::install();
    let (record, mut leftovers) = run::run(&args, &mut stop).await;
    let summary = Summary::of(&record, &args);
    leftovers.add_viewers(record);
    println!("{}", serde_json::to_string_pretty(&summary)?);
    leftovers.close(Duration::from_secs(5)).await;
    summary.verdict(args.max_loss)
}
