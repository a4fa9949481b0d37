//! A link that collapses at once (a phone leaving the Wi-Fi's range, a home link shared with a
//! download) queues and then loses most of what is sent to it. GCC lowers its target by at
//! most half every 200 ms from a smoothed loss, and its delay signal is slow to trust a queue,
//! so it needs seconds to get from a high layer down to such a link; all that time video floods
//! it, the audio behind it is lost and the family's signalling socket backs off for seconds
//! more. The receiver's feedback shows it within a second: 15 % of the packets lost, or
//! a queue growing by 100 ms while less arrives than was sent, twice in a row. What arrived in
//! that time is the link's rate: [`Collapse`] tells it, and the estimate is capped there.
//!
//! A receiver starved of CPU (a busy phone, a loaded test machine) delays and loses packets
//! much as such a link does, but a link delivers its packets one after the other at its rate,
//! while a receiver that stalls reads what waited in its socket all at once: feedback where
//! most bytes arrived in bursts tells nothing of the link, and is not judged.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Packets sent in this span (by departure) are judged together.
const WINDOW: Duration = Duration::from_millis(500);
/// A window is judged only when it spans this much, with at least this many packets.
const MIN_SPAN: Duration = Duration::from_millis(250);
const MIN_PACKETS: usize = 10;
/// This share lost is a collapse, not the few per cent a wireless link loses anyway.
const LOSS: f64 = 0.15;
/// A queue growing this much within the window, while under this share of what was sent
/// arrives, is a link filled past its rate (Wi-Fi holding packets for a moment grows the
/// queue, but delivers the backlog at once).
const QUEUE_GROWTH: Duration = Duration::from_millis(100);
const DELIVERED: f64 = 0.85;
/// A packet that arrived this many times faster than the window's rate came in a burst.
const BURST: f64 = 4.0;

/// One packet the receiver reported on.
#[derive(Debug, Clone, Copy)]
struct Sent {
    departure: Instant,
    size: usize,
    /// On the receiver's clock; none when lost.
    arrival: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Collapse {
    sent: VecDeque<Sent>,
    /// The rate of a first window that looked collapsed. A receiver starved of CPU for a
    /// moment (a phone, a busy laptop) loses or delays a window's packets too; a link that
    /// collapsed still looks so in the next window.
    suspect: Option<f64>,
}

impl Collapse {
    /// Takes the receiver's feedback; returns the rate that arrived, in bits per second, when
    /// the link collapsed: two windows in a row, each judged on fresh packets.
    pub fn on_reports(&mut self, reports: &[PacketReport]) -> Option<f64> {
        self.sent.extend(reports.iter().map(|r| Sent {
            departure: r.departure,
            size: r.size,
            arrival: r.arrival.filter(|_| r.arrived),
        }));
        let newest = self.sent.iter().map(|s| s.departure).max()?;
        self.sent
            .retain(|s| newest.saturating_duration_since(s.departure) <= WINDOW);
        let seen = match self.lossy(newest).or_else(|| self.queued()) {
            Some(bps) => bps,
            None => {
                if self.judged(newest) {
                    self.suspect = None;
                }
                return None;
            }
        };
        self.sent.clear();
        match self.suspect.take() {
            Some(first) => Some(first.min(seen)),
            None => {
                self.suspect = Some(seen);
                None
            }
        }
    }

    /// Whether the window holds enough to say the link is fine.
    fn judged(&self, newest: Instant) -> bool {
        let oldest = self
            .sent
            .iter()
            .map(|s| s.departure)
            .min()
            .unwrap_or(newest);
        enough(newest.saturating_duration_since(oldest), self.sent.len())
    }

    /// The rate delivered from the window's first loss on (what arrived before it says nothing
    /// of the link now), if [`LOSS`] of it was lost.
    fn lossy(&self, newest: Instant) -> Option<f64> {
        let first_loss = self
            .sent
            .iter()
            .filter(|s| s.arrival.is_none())
            .map(|s| s.departure)
            .min()?;
        let since: Vec<Sent> = self
            .sent
            .iter()
            .filter(|s| s.departure >= first_loss)
            .copied()
            .collect();
        let lost = since.iter().filter(|s| s.arrival.is_none()).count();
        let judged = enough(newest.saturating_duration_since(first_loss), since.len());
        (judged && lost as f64 >= LOSS * since.len() as f64)
            .then(|| delivered(&since))
            .flatten()
    }

    /// The rate delivered over the window, if its queue grew while less arrived than was sent.
    fn queued(&self) -> Option<f64> {
        let mut arrived: Vec<Sent> = self
            .sent
            .iter()
            .filter(|s| s.arrival.is_some())
            .copied()
            .collect();
        arrived.sort_by_key(|s| s.departure);
        let (first, last) = (arrived.first()?, arrived.last()?);
        let left = last.departure.saturating_duration_since(first.departure);
        if !enough(left, arrived.len()) {
            return None;
        }
        let took = last.arrival?.saturating_sub(first.arrival?);
        if took.saturating_sub(left) < QUEUE_GROWTH {
            return None;
        }
        let sent_bytes: usize = self.sent.iter().skip(1).map(|s| s.size).sum();
        let sent_bps = sent_bytes as f64 * 8.0 / left.as_secs_f64();
        let delivered_bps = delivered(&arrived)?;
        (delivered_bps < DELIVERED * sent_bps).then_some(delivered_bps)
    }
}

/// Whether packets sent over `span` are enough to judge a link by.
fn enough(span: Duration, packets: usize) -> bool {
    span >= MIN_SPAN && packets >= MIN_PACKETS
}

/// The rate at which the link delivered `packets`: bytes over the time they took to arrive
/// (not to leave: a queue in front of the link spreads them out); none when most of them
/// arrived in bursts, read by a receiver catching up rather than delivered by a link.
fn delivered(packets: &[Sent]) -> Option<f64> {
    let mut arrived: Vec<(Duration, usize)> = packets
        .iter()
        .filter_map(|s| s.arrival.map(|at| (at, s.size)))
        .collect();
    arrived.sort_unstable();
    let (first, last) = (arrived.first()?.0, arrived.last()?.0);
    let took = last.saturating_sub(first).max(MIN_SPAN / 2);
    let bytes: usize = arrived[1..].iter().map(|a| a.1).sum();
    let bps = bytes as f64 * 8.0 / took.as_secs_f64();
    let burst: usize = arrived
        .windows(2)
        .filter(|w| {
            let gap = w[1].0.saturating_sub(w[0].0).as_secs_f64();
            w[1].1 as f64 * 8.0 > BURST * bps * gap
        })
        .map(|w| w[1].1)
        .sum();
    (burst * 2 < bytes).then_some(bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet sent at `departure`, arriving 30 ms later if it arrives at all (the receiver's
    /// clock starts at `epoch`).
    fn report(
        id: u64,
        epoch: Instant,
        departure: Instant,
        size: usize,
        arrived: bool,
    ) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size,
            arrived,
            departure,
            arrival: arrived.then(|| departure.duration_since(epoch) + Duration::from_millis(30)),
            ecn: Default::default(),
        }
    }

    /// Feeds `batches` reports of ten packets, numbered on from 0, as `packet(id)` makes them;
    /// the collapses told.
    fn feed(
        collapse: &mut Collapse,
        batches: std::ops::Range<u64>,
        mut packet: impl FnMut(u64) -> PacketReport,
    ) -> Vec<f64> {
        let mut told = Vec::new();
        for batch in batches {
            let reports: Vec<_> = (0..10).map(|i| packet(batch * 10 + i)).collect();
            told.extend(collapse.on_reports(&reports));
        }
        told
    }

    /// 100 packets of 1,000 bytes a second (800 kbit/s), of which `kept` in ten arrive; the
    /// collapses told.
    fn second(collapse: &mut Collapse, epoch: Instant, start: Instant, kept: u64) -> Vec<f64> {
        feed(collapse, 0..10, |id| {
            let departure = start + Duration::from_millis(10 * id);
            report(id, epoch, departure, 1000, id % 10 < kept)
        })
    }

    #[test]
    fn a_link_losing_most_packets_is_told_at_the_rate_that_arrived() {
        let start = Instant::now();
        let mut collapse = Collapse::default();
        // A few per cent lost is an ordinary wireless link.
        assert!(second(&mut collapse, start, start, 9).is_empty());
        // One packet in ten arrives: about 80 kbit/s gets through, told within the second
        // (a window that still held some of the good link carried too much to be judged).
        let told = second(&mut collapse, start, start + Duration::from_secs(1), 1);
        assert!((1..=3).contains(&told.len()), "{told:?}");
        assert!(
            (50_000.0..100_000.0).contains(told.last().unwrap()),
            "{told:?}"
        );
        // The link recovers.
        let told = second(&mut collapse, start, start + Duration::from_secs(2), 10);
        assert!(
            told.len() <= 1,
            "only the window still holding the loss: {told:?}"
        );
    }

    /// Two seconds of 800 kbit/s into a link of `bps` with a deep buffer (nothing lost); the
    /// collapses told.
    fn queue_into(collapse: &mut Collapse, start: Instant, bps: u64) -> Vec<f64> {
        let per_packet = Duration::from_micros(8_000 * 1_000_000 / bps);
        let mut free_at = Duration::ZERO;
        feed(collapse, 0..20, |id| {
            let departure = start + Duration::from_millis(10 * id);
            let mut sent = report(id, start, departure, 1000, true);
            let at = sent.arrival.unwrap().max(free_at) + per_packet;
            free_at = at;
            sent.arrival = Some(at);
            sent
        })
    }

    #[test]
    fn a_link_filled_past_its_rate_is_told_by_its_growing_queue() {
        let start = Instant::now();
        let told = queue_into(&mut Collapse::default(), start, 100_000);
        assert!(!told.is_empty(), "a queue growing 875 ms a second is told");
        assert!(
            told.iter().all(|bps| (80_000.0..120_000.0).contains(bps)),
            "{told:?}"
        );
        // At the link's rate, the queue stays as it is.
        let mut collapse = Collapse::default();
        let told = feed(&mut collapse, 0..20, |id| {
            report(
                id,
                start,
                start + Duration::from_millis(20 * id),
                1000,
                true,
            )
        });
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn a_receiver_reading_in_bursts_is_not_a_collapse() {
        let start = Instant::now();
        // A 400 kbit/s link is told.
        let told = queue_into(&mut Collapse::default(), start, 400_000);
        assert!(!told.is_empty());
        assert!(
            told.iter().all(|bps| (350_000.0..450_000.0).contains(bps)),
            "{told:?}"
        );
        // A receiver that gets the CPU every 100 ms and then reads six packets at once falls
        // behind just as far, but that is not its link.
        let tick = Duration::from_millis(100);
        let (mut wake, mut read) = (Duration::ZERO, 0);
        let told = feed(&mut Collapse::default(), 0..20, |id| {
            let departure = start + Duration::from_millis(10 * id);
            let mut sent = report(id, start, departure, 1000, true);
            let waiting_since = sent.arrival.unwrap();
            let next = tick * waiting_since.as_millis().div_ceil(tick.as_millis()) as u32;
            if next > wake {
                (wake, read) = (next, 0);
            } else if read == 6 {
                (wake, read) = (wake + tick, 0);
            }
            sent.arrival = Some(wake + Duration::from_micros(10 * read));
            read += 1;
            sent
        });
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn a_receiver_stalled_for_a_moment_is_not_a_collapse() {
        let start = Instant::now();
        let mut collapse = Collapse::default();
        // Most of 300 ms lost between good windows.
        let told = feed(&mut collapse, 0..30, |id| {
            let kept = if (100..130).contains(&id) { 2 } else { 10 };
            let departure = start + Duration::from_millis(10 * id);
            report(id, start, departure, 1000, id % 10 < kept)
        });
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn too_little_to_judge_is_not_a_collapse() {
        let start = Instant::now();
        let mut collapse = Collapse::default();
        let reports: Vec<_> = (0..5)
            .map(|i| {
                report(
                    i,
                    start,
                    start + Duration::from_millis(100 * i),
                    1000,
                    false,
                )
            })
            .collect();
        assert_eq!(collapse.on_reports(&reports), None);
    }
}
