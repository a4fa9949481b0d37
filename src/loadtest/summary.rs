//! The JSON summary a run always ends with, and the verdict (the exit status) drawn from it.
//!
//! Fields are flat and named with their unit. Figures that a run could not take (no
//! `--server-pid`, no steady phase because it was stopped early) are `null`, never zero.

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use super::figures::{percentile, sorted_joins, Phase, Totals};
use super::run::{Record, Viewer};
use super::usage::Process;
use super::LoadTest;
use crate::signal::protocol::Layer;

/// The final figures.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Why the run ended: `duration`, `signal` (SIGINT or SIGTERM) or `error`.
    pub stopped_by: String,
    /// What went wrong when `stopped_by` is `error` (signing in, publishing, pinning…).
    pub error: Option<String>,
    pub seconds: f64,
    pub subscribers_requested: usize,
    pub subscribers_started: usize,
    pub subscribers_connected: usize,
    pub subscribers_with_media: usize,
    /// Joins that failed, by reason: the server's error code (`node_full`, `room_full`…),
    /// `http_<status>`, `timeout`, `closed`, `connect`, `stopped` (still joining at the end).
    pub joins_failed: BTreeMap<String, usize>,
    /// Subscribers the server let go during the run, by reason: `kicked_<reason>` (e.g.
    /// `kicked_connection_failed`) or `ended_<reason>`.
    pub subscribers_dropped: BTreeMap<String, usize>,
    /// Subscribers started per second: as asked (`--ramp`) and as it happened.
    pub arrival_per_second_requested: f64,
    pub arrival_per_second: Option<f64>,
    pub join_ms_p50: u64,
    pub join_ms_p95: u64,
    pub join_ms_p99: u64,
    pub join_ms_max: u64,
    /// Join times of the first 50 subscribers to start, and of the last 50: flat if a join
    /// costs the same in a full room as in an empty one.
    pub join_ms_first50_p50: u64,
    pub join_ms_first50_p95: u64,
    pub join_ms_last50_p50: u64,
    pub join_ms_last50_p95: u64,
    pub first_packet_ms_p50: u64,
    pub first_packet_ms_p95: u64,
    /// Packets received per second by all subscribers, from the first packet on (ramp
    /// included).
    pub packets_per_second: f64,
    /// The share of each received track's sequence range that did not arrive intact, over
    /// the subscribers not on the weak link.
    pub loss_pct: f64,
    pub jitter_ms: f64,
    /// The steady phase: every subscriber in, the media at full rate, for `--duration`.
    pub steady_seconds: Option<f64>,
    /// Packets the publisher sent per second, and that times the subscribers in the room:
    /// what should have arrived.
    pub publisher_packets_per_second: Option<f64>,
    pub nominal_packets_per_second: Option<f64>,
    /// The packets of the steady phase that reached the subscribers (intact, each counted
    /// once), per second, all subscribers together: what the server forwarded.
    pub forwarded_packets_per_second: Option<f64>,
    /// Those packets over the nominal ones, and the shortfall in %. Packets are counted by
    /// the sequence numbers the publisher wrote during the phase, arriving up to a second
    /// after it. Not with `--simulcast` (a subscriber gets one layer of the three sent).
    pub delivered_ratio: Option<f64>,
    pub delivered_loss_pct: Option<f64>,
    /// Packets received more than once (retransmissions of packets that had arrived), as a
    /// share of those received in the steady phase.
    pub repeated_pct: Option<f64>,
    /// Packets whose payload failed its check (sequence number and checksum), as a share of
    /// those received in the steady phase.
    pub corrupt_pct: Option<f64>,
    /// CPU in % of one core over the steady phase, and in µs per forwarded packet.
    pub server_cpu_pct_steady: Option<f64>,
    pub tool_cpu_pct_steady: Option<f64>,
    pub server_cpu_us_per_packet: Option<f64>,
    pub tool_cpu_us_per_packet: Option<f64>,
    /// CPU in % of one core over the whole run.
    pub server_cpu_pct: Option<f64>,
    pub tool_cpu_pct: Option<f64>,
    /// The server's memory before the first subscriber, once all had joined (after
    /// `--idle-secs` of trickling media when given), and at the end.
    pub server_rss_mb_start: Option<f64>,
    pub server_rss_mb_joined: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub server_rss_mb_per_viewer: Option<f64>,
    /// The server's open file descriptors before the first subscriber and once all had
    /// joined.
    pub server_fds_start: Option<u64>,
    pub server_fds_joined: Option<u64>,
    pub server_fds_per_viewer: Option<f64>,
    /// Subscribers by the video the server last said each receives (`reception`): `high`,
    /// `medium`, `low` or `off` (audio only); one it never told is not counted.
    pub video_at_end: BTreeMap<Layer, usize>,
    pub audio_only_at_end: usize,
    /// The subscribers on the weak link (`--throttle`), their counts by video, and their
    /// loss, which the verdict leaves out: a shaped link loses packets until the server has
    /// found its rate.
    pub throttled: usize,
    /// The weak link's network namespace, removed when the run ends.
    pub throttled_namespace: Option<String>,
    pub throttled_video_at_end: BTreeMap<Layer, usize>,
    pub throttled_loss_pct: Option<f64>,
    /// Seconds of trickling media before the full rate (`--idle-secs`): when not zero, the
    /// `joined` figures are those of idle viewers.
    pub idle_secs: u64,
    /// The CPUs the server and the tool were pinned to (`--server-cpu`, `--tool-cpu`), and
    /// the CPUs their threads may run on at the end, as the kernel lists them.
    pub server_cpus: Option<Vec<usize>>,
    pub tool_cpus: Option<Vec<usize>>,
    pub server_cpus_allowed: Option<Vec<String>>,
    pub tool_cpus_allowed: Vec<String>,
}

impl Summary {
    /// The figures of a run as `record` has them.
    pub(super) fn of(record: &Record, args: &LoadTest) -> Summary {
        let viewers = &record.viewers;
        let connected = viewers.len();
        let (first50, last50) = (
            sorted_joins(viewers.iter().take(50)),
            sorted_joins(viewers.iter().rev().take(50)),
        );
        let joins = sorted_joins(viewers.iter());
        let mut firsts: Vec<u64> = viewers
            .iter()
            .filter_map(|v| v.first_packet.map(|d| d.as_millis() as u64))
            .collect();
        firsts.sort_unstable();
        let totals = totals_of(viewers.iter().filter(|v| !v.throttled));
        let throttled: Vec<&Viewer> = viewers.iter().filter(|v| v.throttled).collect();
        let arrival_per_second = match record.launches {
            Some((first, last)) if record.launched > 1 && last > first => {
                Some((record.launched - 1) as f64 / last.duration_since(first).as_secs_f64())
            }
            _ => None,
        };
        let whole = record
            .start
            .zip(record.end)
            .map(|(from, to)| Phase::between(&from, &to));
        let steady = record
            .steady
            .zip(record.end)
            .map(|(from, to)| Phase::between(&from, &to));
        let delivery = record.delivery;
        let ratio = delivery.and_then(|d| d.ratio());
        let delivered = delivery.map_or(0, |d| d.delivered);
        let per_viewer = |before: Option<f64>, after: Option<f64>| match connected {
            0 => None,
            n => Some((after? - before?) / n as f64),
        };
        let (start, joined) = (record.start.as_ref(), record.joined.as_ref());
        let rss = |s: Option<&super::figures::Sample>| s.and_then(|s| s.server_rss_mb);
        let fds = |s: Option<&super::figures::Sample>| s.and_then(|s| s.server_fds);
        Summary {
            stopped_by: record.stopped_by.to_owned(),
            error: record.error.clone(),
            seconds: record.started.elapsed().as_secs_f64(),
            subscribers_requested: args.subscribers,
            subscribers_started: record.launched,
            subscribers_connected: connected,
            subscribers_with_media: viewers.iter().filter(|v| v.first_packet.is_some()).count(),
            joins_failed: record.refusals.clone(),
            subscribers_dropped: viewers.iter().filter_map(|v| v.dropped.clone()).fold(
                BTreeMap::new(),
                |mut by, reason| {
                    *by.entry(reason).or_default() += 1;
                    by
                },
            ),
            arrival_per_second_requested: args.ramp,
            arrival_per_second,
            join_ms_p50: percentile(&joins, 50),
            join_ms_p95: percentile(&joins, 95),
            join_ms_p99: percentile(&joins, 99),
            join_ms_max: joins.last().copied().unwrap_or(0),
            join_ms_first50_p50: percentile(&first50, 50),
            join_ms_first50_p95: percentile(&first50, 95),
            join_ms_last50_p50: percentile(&last50, 50),
            join_ms_last50_p95: percentile(&last50, 95),
            first_packet_ms_p50: percentile(&firsts, 50),
            first_packet_ms_p95: percentile(&firsts, 95),
            packets_per_second: totals.per_second(),
            loss_pct: totals.loss_pct(),
            jitter_ms: totals.jitter_ms(),
            steady_seconds: steady.map(|s| s.seconds),
            publisher_packets_per_second: steady.and_then(|s| s.per_second(s.sent)),
            nominal_packets_per_second: steady
                .zip(delivery)
                .and_then(|(s, d)| s.per_second(d.nominal)),
            forwarded_packets_per_second: steady.and_then(|s| s.per_second(delivered)),
            delivered_ratio: ratio,
            delivered_loss_pct: ratio.map(|r| (100.0 * (1.0 - r)).max(0.0)),
            repeated_pct: steady.and_then(|s| s.repeated_pct()),
            corrupt_pct: steady.and_then(|s| s.corrupt_pct()),
            server_cpu_pct_steady: steady.and_then(|s| s.cpu_pct(s.server_cpu_s)),
            tool_cpu_pct_steady: steady.and_then(|s| s.cpu_pct(s.tool_cpu_s)),
            server_cpu_us_per_packet: steady
                .and_then(|s| s.us_per_packet(s.server_cpu_s, delivered)),
            tool_cpu_us_per_packet: steady.and_then(|s| s.us_per_packet(s.tool_cpu_s, delivered)),
            server_cpu_pct: whole.and_then(|w| w.cpu_pct(w.server_cpu_s)),
            tool_cpu_pct: whole.and_then(|w| w.cpu_pct(w.tool_cpu_s)),
            server_rss_mb_start: rss(start),
            server_rss_mb_joined: rss(joined),
            server_rss_mb: rss(record.end.as_ref()),
            server_rss_mb_per_viewer: per_viewer(rss(start), rss(joined)),
            server_fds_start: fds(start),
            server_fds_joined: fds(joined),
            server_fds_per_viewer: per_viewer(
                fds(start).map(|f| f as f64),
                fds(joined).map(|f| f as f64),
            ),
            video_at_end: by_video(viewers.iter()),
            audio_only_at_end: by_video(viewers.iter())
                .get(&Layer::Off)
                .copied()
                .unwrap_or(0),
            throttled: throttled.len(),
            throttled_namespace: record.weak_link.clone(),
            throttled_video_at_end: by_video(throttled.iter().copied()),
            throttled_loss_pct: (!throttled.is_empty())
                .then(|| totals_of(throttled.iter().copied()).loss_pct()),
            idle_secs: args.idle_secs,
            server_cpus: args.server_cpu.clone(),
            tool_cpus: args.tool_cpu.clone(),
            server_cpus_allowed: args.server_pid.map(|pid| Process::of(pid).allowed_cpus()),
            tool_cpus_allowed: Process::me().allowed_cpus(),
        }
    }

    /// Ok when the run went to its end, every subscriber joined and got media, and neither
    /// the loss nor the shortfall against the nominal rate exceeds `max_loss` %.
    pub fn verdict(&self, max_loss: f64) -> anyhow::Result<()> {
        if let Some(error) = &self.error {
            bail!("{error}");
        }
        let mut problems = Vec::new();
        if self.stopped_by != "duration" {
            problems.push(format!("stopped by a {} before the end", self.stopped_by));
        }
        let failed: usize = self.joins_failed.values().sum();
        if failed > 0 {
            problems.push(format!(
                "{failed} of {} joins failed ({})",
                self.subscribers_requested,
                reasons(&self.joins_failed)
            ));
        }
        let dropped: usize = self.subscribers_dropped.values().sum();
        if dropped > 0 {
            problems.push(format!(
                "the server let {dropped} subscribers go ({})",
                reasons(&self.subscribers_dropped)
            ));
        }
        if self.subscribers_with_media < self.subscribers_connected {
            problems.push(format!(
                "{} of {} joined subscribers got media",
                self.subscribers_with_media, self.subscribers_connected
            ));
        }
        if self.loss_pct > max_loss {
            problems.push(format!("loss {:.2}% exceeds {max_loss}%", self.loss_pct));
        }
        if let Some(short) = self.delivered_loss_pct.filter(|s| *s > max_loss) {
            problems.push(format!(
                "{short:.2}% of the nominal packets were not delivered (more than {max_loss}%)"
            ));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => bail!("{}", problems.join("; ")),
        }
    }
}

/// The delivery over the tracks `viewers` received.
fn totals_of<'a>(viewers: impl Iterator<Item = &'a Viewer>) -> Totals {
    let mut totals = Totals::default();
    for tally in viewers.flat_map(|v| v.client.tallies()) {
        totals.add(&tally);
    }
    totals
}

/// How many of `viewers` the server last told each layer.
fn by_video<'a>(viewers: impl Iterator<Item = &'a Viewer>) -> BTreeMap<Layer, usize> {
    let mut by = BTreeMap::new();
    for video in viewers.filter_map(|v| v.video) {
        *by.entry(video).or_default() += 1;
    }
    by
}

/// "reason: count, …"
fn reasons(by: &BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = by.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Summary {
        Summary {
            stopped_by: "duration".into(),
            subscribers_requested: 4,
            subscribers_connected: 4,
            subscribers_with_media: 4,
            delivered_loss_pct: Some(0.2),
            ..Default::default()
        }
    }

    #[test]
    fn a_clean_run_passes() {
        assert!(good().verdict(1.0).is_ok());
    }

    #[test]
    fn refused_joins_a_signal_a_shortfall_and_a_drop_each_fail_it() {
        let mut refused = good();
        refused.joins_failed.insert("room_full".into(), 2);
        let error = refused.verdict(1.0).unwrap_err().to_string();
        assert!(error.contains("room_full: 2"), "{error}");
        let stopped = Summary {
            stopped_by: "signal".into(),
            ..good()
        };
        assert!(stopped.verdict(1.0).is_err());
        let short = Summary {
            delivered_loss_pct: Some(3.0),
            ..good()
        };
        assert!(short.verdict(1.0).is_err());
        let mut dropped = good();
        dropped
            .subscribers_dropped
            .insert("kicked_connection_failed".into(), 1);
        let error = dropped.verdict(1.0).unwrap_err().to_string();
        assert!(error.contains("kicked_connection_failed: 1"), "{error}");
    }
}
