//! `homeroom loadtest`: one synthetic publisher and N subscribers over real WebRTC against a
//! running server, with a progress line each second and a JSON summary at the end.
//!
//! The teacher publishes; the subscribers join as a family account (`--viewer-login`) or as
//! open-house guests (`--guest-link`), never as the teacher, so the room treats them as it
//! treats an audience. How long a join takes as the room fills is reported for the first and
//! the last 50 joins: a room whose joins cost more as it grows shows it there.
//!
//! `accounts.rs` signs the tool in, `figures.rs` computes the summary's figures and
//! `usage.rs` reads the server's CPU and memory.
//!
//! The client costs about as much CPU per packet as the server, so on a small machine the two
//! compete: the server's own CPU and memory are read from `/proc/<pid>`, never inferred.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

mod accounts;
mod figures;
mod usage;

use accounts::{guest_token, sign_in};
use figures::{percentile, sorted_joins, totals};
use usage::CpuMeter;

use crate::client::whep::WhepViewer;
use crate::client::whip::WhipPublisher;
use crate::client::{Credential, Participant, Received, VideoShape};
use crate::signal::protocol::ServerMessage;

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
    /// Seconds to measure once every subscriber has started.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Video bitrate in kbit/s.
    #[arg(long, default_value_t = 1000)]
    pub bitrate: u32,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Exit non-zero when the loss exceeds this percentage.
    #[arg(long, default_value_t = 1.0)]
    pub max_loss: f64,
    /// The server's process id, to read its CPU and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's certificate (PEM), e.g. certs/self-signed.crt
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Local address for the client's media sockets.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
}

/// The final figures.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub subscribers_requested: usize,
    pub subscribers_connected: usize,
    pub subscribers_with_media: usize,
    pub join_ms_p50: u64,
    pub join_ms_p95: u64,
    pub join_ms_max: u64,
    /// Join times of the first 50 subscribers to start, and of the last 50: flat if a join
    /// costs the same in a full room as in an empty one.
    pub join_ms_first50_p50: u64,
    pub join_ms_first50_p95: u64,
    pub join_ms_last50_p50: u64,
    pub join_ms_last50_p95: u64,
    pub first_packet_ms_p50: u64,
    pub first_packet_ms_p95: u64,
    pub packets_per_second: f64,
    pub loss_pct: f64,
    pub jitter_ms: f64,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub seconds: f64,
}

/// A subscriber as the load tool tracks it.
struct Viewer {
    /// The order it started in.
    index: usize,
    client: Client,
    begun: Instant,
    join: Duration,
    first_packet: Option<Duration>,
}

/// A subscriber, over Homeroom's signalling or WHEP.
enum Client {
    Signalling(Participant),
    Whep(WhepViewer),
}

impl Client {
    fn received(&self) -> std::collections::HashMap<String, Received> {
        match self {
            Client::Signalling(p) => p.received(),
            Client::Whep(w) => w.received(),
        }
    }

    async fn close(self) {
        match self {
            Client::Signalling(p) => p.leave().await,
            Client::Whep(w) => {
                let _ = w.stop().await;
            }
        }
    }
}

/// The publisher, over Homeroom's signalling or WHIP.
enum Publisher {
    Signalling(Participant),
    Whip(WhipPublisher),
}

impl Publisher {
    async fn close(self) {
        match self {
            Publisher::Signalling(p) => p.leave().await,
            Publisher::Whip(w) => {
                let _ = w.stop().await;
            }
        }
    }
}

/// What the tool needs to speak Homeroom's signalling.
struct Homeroom {
    server: String,
    room: i64,
    /// The teacher's session.
    cookie: String,
    /// None when the subscribers come over WHEP.
    viewers: Option<Audience>,
}

/// How the subscribers come in.
enum Audience {
    Family { cookie: String },
    Guests { code: String },
}

pub async fn run(args: LoadTest) -> anyhow::Result<Summary> {
    let pem =
        std::fs::read(&args.ca).with_context(|| format!("cannot read {}", args.ca.display()))?;
    let tls = crate::client::tls_trusting(&pem).map_err(anyhow::Error::msg)?;
    let homeroom = match (&args.server, args.room, &args.login, &args.password) {
        (Some(server), Some(room), Some(login), Some(password)) => {
            let viewers = match (&args.viewer_login, &args.guest_link) {
                (Some(viewer), None) => {
                    let password = args.viewer_password.as_deref().unwrap_or(password);
                    Some(Audience::Family {
                        cookie: sign_in(server, viewer, password, &pem).await?,
                    })
                }
                (None, Some(code)) => Some(Audience::Guests { code: code.clone() }),
                // Subscribers come over WHEP.
                (None, None) if args.whep.is_some() => None,
                _ => bail!(
                    "subscribers join as a family (--viewer-login) or as open-house guests \
                     (--guest-link), never as the teacher: give one of them"
                ),
            };
            Some(Homeroom {
                server: server.trim_end_matches('/').to_owned(),
                room,
                cookie: sign_in(server, login, password, &pem).await?,
                viewers,
            })
        }
        _ => None,
    };
    if homeroom.is_none() && (args.whip.is_none() || args.whep.is_none()) {
        bail!("give --server, --room, --login and a password, or both --whip and --whep");
    }
    let homeroom = homeroom.map(std::sync::Arc::new);
    // The teacher (`viewer` false) or one subscriber, joined. On a task of its own, so that a
    // join the server never answers fails that subscriber, not the run.
    let connect = |viewer: bool, index: usize| {
        let tls = tls.clone();
        let (homeroom, bind, pem) = (homeroom.clone(), args.bind.clone(), pem.clone());
        let joining = async move {
            let homeroom = homeroom.expect("checked above");
            let token;
            let credential = match (viewer, &homeroom.viewers) {
                (false, _) => Credential::Cookie(&homeroom.cookie),
                (true, Some(Audience::Family { cookie })) => Credential::Cookie(cookie),
                (true, Some(Audience::Guests { code })) => {
                    token = guest_token(&homeroom.server, code, index, &pem).await?;
                    Credential::Token(&token)
                }
                (true, None) => bail!("the subscribers come over WHEP"),
            };
            let mut participant = Participant::connect(&homeroom.server, tls, credential, &bind)
                .await
                .map_err(anyhow::Error::msg)?;
            expect_joined(participant.join(homeroom.room).await)?;
            Ok::<_, anyhow::Error>(participant)
        };
        async move { tokio::spawn(joining).await.context("the join failed")? }
    };
    let shape = VideoShape {
        fps: args.fps,
        bitrate_bps: args.bitrate * 1000,
    };
    let publisher = match &args.whip {
        Some(url) => {
            let key = args
                .whip_key
                .as_deref()
                .context("--whip needs a key (LOADTEST_WHIP_KEY)")?;
            let publisher = WhipPublisher::start(url, key, &pem, &args.bind, shape)
                .await
                .map_err(anyhow::Error::msg)?;
            // A WHIP publisher's tracks exist once its media arrives, and WHEP viewers take the
            // tracks there are when they come: let the media start first.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Publisher::Whip(publisher)
        }
        None => {
            let mut participant = connect(false, 0).await?;
            match participant.publish_shaped(shape).await {
                ServerMessage::Answer { .. } => {}
                other => bail!("the server refused to publish: {other:?}"),
            }
            Publisher::Signalling(participant)
        }
    };

    let started = Instant::now();
    let mut cpu = args.server_pid.map(CpuMeter::new);
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let interval = Duration::from_secs_f64(1.0 / args.ramp.max(0.1));
    let mut next_start = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let mut measuring_since: Option<Instant> = None;
    let mut launched = 0;
    loop {
        let now = Instant::now();
        if launched < args.subscribers && now >= next_start {
            let index = launched;
            launched += 1;
            next_start += interval;
            let connecting = connect(true, index);
            let (whep, pem, bind) = (args.whep.clone(), pem.clone(), args.bind.clone());
            let token = args.whep_token.clone().unwrap_or_default();
            pending.push(async move {
                let begun = Instant::now();
                let client = match whep {
                    Some(url) => Client::Whep(
                        WhepViewer::start(&url, &token, &pem, &bind)
                            .await
                            .map_err(anyhow::Error::msg)?,
                    ),
                    None => Client::Signalling(connecting.await?),
                };
                Ok::<_, anyhow::Error>(Viewer {
                    index,
                    client,
                    begun,
                    join: begun.elapsed(),
                    first_packet: None,
                })
            });
        }
        tokio::select! {
            Some(done) = futures_util::StreamExt::next(&mut pending), if !pending.is_empty() => match done {
                Ok(viewer) => viewers.push(viewer),
                Err(e) => eprintln!("a subscriber could not join: {e:#}"),
            },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        for viewer in viewers.iter_mut().filter(|v| v.first_packet.is_none()) {
            if let Some(first) = viewer
                .client
                .received()
                .values()
                .filter_map(|r| r.first_at)
                .min()
            {
                viewer.first_packet = Some(first.saturating_duration_since(viewer.begun));
            }
        }
        if launched == args.subscribers && pending.is_empty() && measuring_since.is_none() {
            measuring_since = Some(Instant::now());
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(1);
            let (rate, loss) = totals(&viewers);
            let usage = cpu.as_mut().map(|c| c.sample()).unwrap_or_default();
            println!(
                "t={:>3}s subscribers={}/{} with_media={} packets/s={:.0} loss={:.2}% server_cpu={} server_rss={}",
                started.elapsed().as_secs(),
                viewers.len(),
                args.subscribers,
                viewers.iter().filter(|v| v.first_packet.is_some()).count(),
                rate.per_second(),
                loss,
                usage.0.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "-".into()),
                usage.1.map(|m| format!("{m:.0}MB")).unwrap_or_else(|| "-".into()),
            );
        }
        if measuring_since.is_some_and(|t| t.elapsed() >= Duration::from_secs(args.duration)) {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    viewers.sort_by_key(|v| v.index);
    let (first50, last50) = (
        sorted_joins(viewers.iter().take(50)),
        sorted_joins(viewers.iter().rev().take(50)),
    );
    let mut joins: Vec<u64> = viewers.iter().map(|v| v.join.as_millis() as u64).collect();
    let mut firsts: Vec<u64> = viewers
        .iter()
        .filter_map(|v| v.first_packet.map(|d| d.as_millis() as u64))
        .collect();
    joins.sort_unstable();
    firsts.sort_unstable();
    let (rate, loss) = totals(&viewers);
    let all: Vec<Received> = viewers
        .iter()
        .flat_map(|v| v.client.received().into_values())
        .collect();
    let jitter = if all.is_empty() {
        0.0
    } else {
        all.iter().map(|r| r.jitter_ms).sum::<f64>() / all.len() as f64
    };
    let whole = cpu.as_ref().map(|c| c.since_start());
    let summary = Summary {
        subscribers_requested: args.subscribers,
        subscribers_connected: viewers.len(),
        subscribers_with_media: viewers.iter().filter(|v| v.first_packet.is_some()).count(),
        join_ms_p50: percentile(&joins, 50),
        join_ms_p95: percentile(&joins, 95),
        join_ms_max: joins.last().copied().unwrap_or(0),
        join_ms_first50_p50: percentile(&first50, 50),
        join_ms_first50_p95: percentile(&first50, 95),
        join_ms_last50_p50: percentile(&last50, 50),
        join_ms_last50_p95: percentile(&last50, 95),
        first_packet_ms_p50: percentile(&firsts, 50),
        first_packet_ms_p95: percentile(&firsts, 95),
        packets_per_second: rate.per_second(),
        loss_pct: loss,
        jitter_ms: jitter,
        server_cpu_pct: whole.and_then(|w| w.0),
        server_rss_mb: whole.and_then(|w| w.1),
        seconds,
    };
    // Each leaves on a task of its own: one the server already let go must not cost the
    // figures.
    for viewer in viewers {
        let _ = tokio::spawn(viewer.client.close()).await;
    }
    let _ = tokio::spawn(publisher.close()).await;
    Ok(summary)
}

fn expect_joined(reply: ServerMessage) -> anyhow::Result<()> {
    match reply {
        ServerMessage::Joined { .. } => Ok(()),
        other => bail!("join refused: {other:?}"),
    }
}

/// Runs the load test, prints the summary as JSON, and fails when loss exceeds the limit.
pub async fn main(args: LoadTest) -> anyhow::Result<()> {
    let max_loss = args.max_loss;
    let summary = run(args).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.loss_pct > max_loss {
        bail!("loss {:.2}% exceeds {max_loss}%", summary.loss_pct);
    }
    if summary.subscribers_with_media < summary.subscribers_requested {
        bail!(
            "{} of {} subscribers got media",
            summary.subscribers_with_media,
            summary.subscribers_requested
        );
    }
    Ok(())
}
