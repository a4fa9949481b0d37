//! The figures of a run: delivery and loss over every received track, the figures of a phase
//! between two samples, and percentiles.

use std::time::Instant;

use super::run::Viewer;
use crate::client::Tally;

/// Join times in milliseconds, sorted.
pub(super) fn sorted_joins<'a>(viewers: impl Iterator<Item = &'a Viewer>) -> Vec<u64> {
    let mut joins: Vec<u64> = viewers.map(|v| v.join.as_millis() as u64).collect();
    joins.sort_unstable();
    joins
}

/// Delivery so far over a set of received tracks.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Totals {
    pub(super) packets: u64,
    /// Checked sequence numbers seen, and the ranges they span, summed over tracks.
    distinct: u64,
    span: u64,
    /// When the first packet of all arrived.
    since: Option<Instant>,
    jitter_sum: f64,
    tracks: u64,
}

impl Totals {
    pub(super) fn add(&mut self, tally: &Tally) {
        self.packets += tally.packets;
        self.distinct += tally.distinct;
        self.span += tally.span;
        self.since = match (self.since, tally.first_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.jitter_sum += tally.jitter_ms;
        self.tracks += 1;
    }

    /// The share of each track's sequence range that did not arrive intact, in %.
    pub(super) fn loss_pct(&self) -> f64 {
        match self.span {
            0 => 0.0,
            span => 100.0 * span.saturating_sub(self.distinct) as f64 / span as f64,
        }
    }

    /// Packets per second since the first one arrived.
    pub(super) fn per_second(&self) -> f64 {
        match self.since {
            Some(since) if since.elapsed().as_secs_f64() > 0.5 => {
                self.packets as f64 / since.elapsed().as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// The mean of the tracks' RFC 3550 jitter.
    pub(super) fn jitter_ms(&self) -> f64 {
        match self.tracks {
            0 => 0.0,
            n => self.jitter_sum / n as f64,
        }
    }
}

/// Figures taken at one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) at: Instant,
    pub(super) server_cpu_s: Option<f64>,
    pub(super) tool_cpu_s: Option<f64>,
    pub(super) server_rss_mb: Option<f64>,
    pub(super) server_fds: Option<u64>,
    /// Packets received by every subscriber together (repeats included), the intact ones
    /// among them, and the distinct intact ones.
    pub(super) received: u64,
    pub(super) intact: u64,
    pub(super) distinct: u64,
    /// The publisher's packets so far (audio, video): the next sequence number each track
    /// writes into its payloads.
    pub(super) sent: [u64; 2],
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy)]
pub(super) struct Phase {
    pub(super) seconds: f64,
    pub(super) server_cpu_s: Option<f64>,
    pub(super) tool_cpu_s: Option<f64>,
    pub(super) received: u64,
    pub(super) intact: u64,
    pub(super) distinct: u64,
    pub(super) sent: u64,
}

impl Phase {
    pub(super) fn between(from: &Sample, to: &Sample) -> Phase {
        let delta = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
        let sent = |s: &Sample| s.sent[0] + s.sent[1];
        Phase {
            seconds: to.at.duration_since(from.at).as_secs_f64(),
            server_cpu_s: delta(from.server_cpu_s, to.server_cpu_s),
            tool_cpu_s: delta(from.tool_cpu_s, to.tool_cpu_s),
            received: to.received.saturating_sub(from.received),
            intact: to.intact.saturating_sub(from.intact),
            distinct: to.distinct.saturating_sub(from.distinct),
            sent: sent(to).saturating_sub(sent(from)),
        }
    }

    /// CPU seconds as a share of one core, in %.
    pub(super) fn cpu_pct(&self, cpu_s: Option<f64>) -> Option<f64> {
        match self.seconds > 0.0 {
            true => Some(100.0 * cpu_s? / self.seconds),
            false => None,
        }
    }

    /// CPU microseconds per packet.
    pub(super) fn us_per_packet(&self, cpu_s: Option<f64>, packets: u64) -> Option<f64> {
        match packets > 0 {
            true => Some(1e6 * cpu_s? / packets as f64),
            false => None,
        }
    }

    pub(super) fn per_second(&self, packets: u64) -> Option<f64> {
        (self.seconds > 0.0).then(|| packets as f64 / self.seconds)
    }

    /// Intact packets that arrived more than once, as a share of those received, in %.
    pub(super) fn repeated_pct(&self) -> Option<f64> {
        self.share(self.intact.saturating_sub(self.distinct))
    }

    /// Packets whose payload failed its check, as a share of those received, in %.
    pub(super) fn corrupt_pct(&self) -> Option<f64> {
        self.share(self.received.saturating_sub(self.intact))
    }

    fn share(&self, packets: u64) -> Option<f64> {
        (self.received > 0).then(|| 100.0 * packets as f64 / self.received as f64)
    }
}

/// The steady phase's packets, counted by the sequence numbers in their payloads: what the
/// publisher sent between the phase's two samples, to every subscriber (`nominal`), and how
/// many of those reached a subscriber intact (`delivered`, each at most once). Counting by
/// sequence number rather than by arrival time keeps packets still queued in the tool at
/// either end of the phase from counting in the wrong phase.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delivery {
    pub(super) nominal: u64,
    pub(super) delivered: u64,
}

impl Delivery {
    pub(super) fn ratio(&self) -> Option<f64> {
        (self.nominal > 0).then(|| self.delivered as f64 / self.nominal as f64)
    }
}

pub(super) fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100).min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[10, 20, 30, 40], 50), 30);
        assert_eq!(percentile(&[10, 20, 30, 40], 95), 40);
    }

    #[test]
    fn loss_is_the_share_of_the_ranges_not_seen() {
        let mut totals = Totals::default();
        assert_eq!(totals.loss_pct(), 0.0);
        totals.add(&Tally {
            distinct: 99,
            span: 100,
            ..Default::default()
        });
        totals.add(&Tally {
            distinct: 100,
            span: 100,
            ..Default::default()
        });
        assert!((totals.loss_pct() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_phase_counts_cpu_per_packet() {
        let at = Instant::now();
        let from = Sample {
            at,
            server_cpu_s: Some(1.0),
            tool_cpu_s: None,
            server_rss_mb: None,
            server_fds: None,
            received: 1000,
            intact: 1000,
            distinct: 1000,
            sent: [5, 5],
        };
        let to = Sample {
            at: at + std::time::Duration::from_secs(2),
            server_cpu_s: Some(1.5),
            received: 11_000,
            intact: 10_990,
            distinct: 10_890,
            sent: [55, 65],
            ..from
        };
        let phase = Phase::between(&from, &to);
        assert_eq!(phase.cpu_pct(phase.server_cpu_s), Some(25.0));
        assert_eq!(phase.us_per_packet(phase.server_cpu_s, 10_000), Some(50.0));
        assert_eq!(phase.us_per_packet(phase.tool_cpu_s, 10_000), None);
        assert_eq!(phase.per_second(phase.received), Some(5000.0));
        assert_eq!(phase.sent, 110);
        assert_eq!(phase.repeated_pct(), Some(1.0));
        assert_eq!(phase.corrupt_pct(), Some(0.1));
    }
}
