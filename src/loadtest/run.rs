//! One run, phase by phase: set up (pin, sign in, publish), ramp the subscribers in, let them
//! settle until each has media, optionally stay idle (trickling media), then measure the
//! steady phase for `--duration`. A signal ends any phase; whatever was measured by then goes
//! into the summary.
//!
//! Every join runs on a task of its own within its own deadline, so a slow, refused or
//! panicking join costs that subscriber only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::figures::{Delivery, Sample, Totals};
use super::joins::{Client, Refusal};
use super::setup::{setup, Publisher, Setup};
use super::stop::Stop;
use super::usage::Process;
use super::weak_link::WeakLink;
use super::LoadTest;
use crate::signal::protocol::Layer;

/// Tracks the publisher sends (video and audio): a subscriber has media once all flow.
const TRACKS: usize = 2;

/// How long, once every join is done, the subscribers' media may take to flow before the run
/// goes on without it (those still without are then counted as without media).
const MEDIA_WAIT: Duration = Duration::from_secs(10);

/// How long after the steady phase its last packets may still arrive and count.
const DRAIN: Duration = Duration::from_secs(1);

/// A subscriber as the load tool tracks it.
pub(super) struct Viewer {
    /// The order it started in.
    pub(super) index: usize,
    pub(super) client: Client,
    pub(super) begun: Instant,
    pub(super) join: Duration,
    pub(super) first_packet: Option<Duration>,
    /// Whether every track has delivered.
    pub(super) flowing: bool,
    /// Why the server let it go during the run, if it did.
    pub(super) dropped: Option<String>,
    /// Whether it is on the weak link (`--throttle`).
    pub(super) throttled: bool,
    /// The best layer it receives, or `off`, as the server last said.
    pub(super) video: Option<Layer>,
}

/// Everything a run found out, for the summary.
pub(super) struct Record {
    pub(super) started: Instant,
    pub(super) stopped_by: &'static str,
    pub(super) error: Option<String>,
    pub(super) viewers: Vec<Viewer>,
    pub(super) refusals: BTreeMap<String, usize>,
    /// When the first and the last subscriber started, and how many did.
    pub(super) launches: Option<(Instant, Instant)>,
    pub(super) launched: usize,
    /// How many subscribers, from the first, are on the weak link (`--throttle`), and the
    /// namespace it is.
    pub(super) throttled: usize,
    pub(super) weak_link: Option<String>,
    /// Samples before the first subscriber, once all joined, when the steady phase began
    /// and at the end.
    pub(super) start: Option<Sample>,
    pub(super) joined: Option<Sample>,
    pub(super) steady: Option<Sample>,
    pub(super) end: Option<Sample>,
    /// The steady phase's packets by sequence number, once it ran.
    pub(super) delivery: Option<Delivery>,
}

/// What is left to close once the summary is out.
pub(super) struct Leftovers {
    viewers: Vec<Client>,
    publisher: Option<Publisher>,
    /// Removed once the subscribers on it are closed.
    weak_link: Option<Arc<WeakLink>>,
}

impl Leftovers {
    /// Takes over the subscribers of a run whose figures have been drawn.
    pub(super) fn add_viewers(&mut self, record: Record) {
        self.viewers
            .extend(record.viewers.into_iter().map(|v| v.client));
    }

    /// Closes everything at once, for at most `within`: one the server already let go must
    /// not hold up the exit. The weak link goes last.
    pub(super) async fn close(self, within: Duration) {
        let mut closing = JoinSet::new();
        for viewer in self.viewers {
            closing.spawn(viewer.close(within));
        }
        if let Some(publisher) = self.publisher {
            closing.spawn(publisher.close(within));
        }
        let _ = tokio::time::timeout(within, async {
            while closing.join_next().await.is_some() {}
        })
        .await;
    }
}

enum Phase {
    Ramp,
    /// All joins are done; waiting (at most `MEDIA_WAIT`) for everyone's media.
    Settling {
        since: Instant,
    },
    Idle {
        until: Instant,
    },
    Steady {
        until: Instant,
    },
}

pub(super) async fn run(args: &LoadTest, stop: &mut Stop) -> (Record, Leftovers) {
    let mut record = Record {
        started: Instant::now(),
        stopped_by: "duration",
        error: None,
        viewers: Vec::new(),
        refusals: BTreeMap::new(),
        launches: None,
        launched: 0,
        throttled: args.throttle.as_ref().map_or(0, |t| t.viewers),
        weak_link: None,
        start: None,
        joined: None,
        steady: None,
        end: None,
        delivery: None,
    };
    let mut leftovers = Leftovers {
        viewers: Vec::new(),
        publisher: None,
        weak_link: None,
    };
    let setup = tokio::select! {
        setup = setup(args) => setup,
        signal = stop.wait() => {
            record.stopped_by = signal;
            return (record, leftovers);
        }
    };
    let Setup {
        joining,
        publisher,
        throttle,
    } = match setup {
        Ok(setup) => setup,
        Err(e) => {
            record.stopped_by = "error";
            record.error = Some(format!("{e:#}"));
            return (record, leftovers);
        }
    };
    leftovers.weak_link = joining.weak_link.clone();
    record.weak_link = joining.weak_link.as_ref().map(|l| l.name().to_owned());
    let server = args.server_pid.map(Process::of);
    let sampler = Sampler {
        server,
        me: Process::me(),
        sent: publisher.sent(),
    };
    let mut joins = JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / args.ramp.max(0.1));
    let mut next_start = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let mut last_report = sampler.take(&record.viewers);
    record.start = Some(last_report);
    let mut phase = Phase::Ramp;
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        while matches!(phase, Phase::Ramp)
            && record.launched < args.subscribers
            && now >= next_start
        {
            let (joining, index) = (joining.clone(), record.launched);
            joins.spawn(async move {
                let begun = Instant::now();
                let outcome = joining.join(index).await;
                (index, begun, begun.elapsed(), outcome)
            });
            record.launched += 1;
            record.launches = Some((record.launches.map_or(now, |l| l.0), now));
            next_start += interval;
        }
        tokio::select! {
            Some(done) = joins.join_next(), if !joins.is_empty() => joined(&mut record, done),
            signal = stop.wait() => {
                record.stopped_by = signal;
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let now = Instant::now();
        if now < next_check {
            continue;
        }
        next_check = now + Duration::from_millis(50);
        note_media(&mut record.viewers);
        match phase {
            Phase::Ramp if record.launched == args.subscribers && joins.is_empty() => {
                phase = Phase::Settling { since: now };
            }
            Phase::Settling { since } => {
                let settled = record.viewers.iter().all(|v| v.flowing);
                if settled || now.duration_since(since) >= MEDIA_WAIT {
                    phase = match args.idle_secs {
                        0 => steady(&mut record, &sampler, &throttle, args.duration),
                        idle => Phase::Idle {
                            until: now + Duration::from_secs(idle),
                        },
                    };
                }
            }
            Phase::Idle { until } if now >= until => {
                phase = steady(&mut record, &sampler, &throttle, args.duration);
            }
            Phase::Steady { until } if now >= until => break,
            _ => {}
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            drain_events(&mut record.viewers);
            let sample = sampler.take(&record.viewers);
            progress(&record, args.subscribers, &last_report, &sample);
            last_report = sample;
        }
    }
    // Joins still under way are cut short (the set aborts them when dropped).
    let unfinished = joins.len();
    if unfinished > 0 {
        *record.refusals.entry("stopped".into()).or_default() += unfinished;
    }
    let end = sampler.take(&record.viewers);
    record.end = Some(end);
    // With simulcast each subscriber gets one layer of the three the publisher sends: what it
    // should get is not what was sent.
    if let Some(from) = record.steady.filter(|_| !args.simulcast) {
        // Packets of the phase still on their way get a moment to arrive.
        tokio::time::sleep(DRAIN).await;
        let range = |kind: usize| from.sent[kind] as u32..end.sent[kind] as u32;
        let delivered = record
            .viewers
            .iter()
            .map(|v| v.client.seen_between(range(1), range(0)))
            .sum();
        let per_viewer = range(0).len() + range(1).len();
        record.delivery = Some(Delivery {
            nominal: (per_viewer * record.viewers.len()) as u64,
            delivered,
        });
    }
    note_media(&mut record.viewers);
    drain_events(&mut record.viewers);
    record.viewers.sort_by_key(|v| v.index);
    leftovers.publisher = Some(publisher);
    (record, leftovers)
}

/// Takes the `joined` sample, releases the media to its full rate and starts measuring.
fn steady(
    record: &mut Record,
    sampler: &Sampler,
    throttle: &crate::client::Throttle,
    duration: u64,
) -> Phase {
    let sample = sampler.take(&record.viewers);
    record.joined = Some(sample);
    throttle.release();
    record.steady = Some(sample);
    Phase::Steady {
        until: sample.at + Duration::from_secs(duration),
    }
}

/// A finished join: a viewer, or a refusal counted by its reason.
fn joined(
    record: &mut Record,
    done: Result<(usize, Instant, Duration, Result<Client, Refusal>), tokio::task::JoinError>,
) {
    let refusal = match done {
        Ok((index, begun, join, Ok(client))) => {
            record.viewers.push(Viewer {
                index,
                client,
                begun,
                join,
                first_packet: None,
                flowing: false,
                dropped: None,
                throttled: record.throttled > index,
                video: None,
            });
            return;
        }
        Ok((_, _, _, Err(refusal))) => refusal,
        Err(e) => Refusal::new("panic", e),
    };
    let count = record.refusals.entry(refusal.reason.clone()).or_default();
    // The first of each reason is told; the rest are counted.
    if *count == 0 {
        eprintln!("a join failed ({}): {}", refusal.reason, refusal.detail);
    }
    *count += 1;
}

/// Notes first packets, and which subscribers have all their tracks flowing.
fn note_media(viewers: &mut [Viewer]) {
    for viewer in viewers.iter_mut().filter(|v| !v.flowing) {
        let tallies = viewer.client.tallies();
        if viewer.first_packet.is_none() {
            if let Some(first) = tallies.iter().filter_map(|t| t.first_at).min() {
                viewer.first_packet = Some(first.saturating_duration_since(viewer.begun));
            }
        }
        viewer.flowing = tallies.iter().filter(|t| t.packets > 0).count() >= TRACKS;
    }
}

/// Reads the subscribers' events, noting those the server let go and what each receives.
fn drain_events(viewers: &mut [Viewer]) {
    for viewer in viewers {
        let news = viewer.client.drain_events();
        if let Some(reason) = news.gone {
            viewer.dropped.get_or_insert(reason);
        }
        if news.video.is_some() {
            viewer.video = news.video;
        }
    }
}

/// The processes and counters a sample reads.
struct Sampler {
    server: Option<Process>,
    me: Process,
    sent: std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>,
}

impl Sampler {
    fn take(&self, viewers: &[Viewer]) -> Sample {
        let (mut received, mut intact, mut distinct) = (0, 0, 0);
        for tally in viewers.iter().flat_map(|v| v.client.tallies()) {
            received += tally.packets;
            intact += tally.intact;
            distinct += tally.distinct;
        }
        let sent = self
            .sent
            .each_ref()
            .map(|s| s.load(std::sync::atomic::Ordering::Relaxed));
        Sample {
            at: Instant::now(),
            server_cpu_s: self.server.as_ref().and_then(Process::cpu_seconds),
            tool_cpu_s: self.me.cpu_seconds(),
            server_rss_mb: self.server.as_ref().and_then(Process::rss_mb),
            server_fds: self.server.as_ref().and_then(Process::fds),
            received,
            intact,
            distinct,
            sent,
        }
    }
}

/// The line printed every second.
fn progress(record: &Record, requested: usize, last: &Sample, now: &Sample) {
    let second = super::figures::Phase::between(last, now);
    let mut totals = Totals::default();
    for tally in record.viewers.iter().flat_map(|v| v.client.tallies()) {
        totals.add(&tally);
    }
    let pct = |cpu: Option<f64>| match second.cpu_pct(cpu) {
        Some(pct) => format!("{pct:.0}%"),
        None => "-".into(),
    };
    let failed: usize = record.refusals.values().sum();
    println!(
        "t={:>3}s subscribers={}/{} failed={failed} with_media={} packets/s={:.0} loss={:.2}% server_cpu={} tool_cpu={} server_rss={}",
        record.started.elapsed().as_secs(),
        record.viewers.len(),
        requested,
        record.viewers.iter().filter(|v| v.first_packet.is_some()).count(),
        second.per_second(second.received).unwrap_or(0.0),
        totals.loss_pct(),
        pct(second.server_cpu_s),
        pct(second.tool_cpu_s),
        now.server_rss_mb
            .map(|m| format!("{m:.0}MB"))
            .unwrap_or_else(|| "-".into()),
    );
}
