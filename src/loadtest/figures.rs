//! The figures of a run: delivery rate and loss over every received track, and percentiles.

use std::time::Instant;

use super::Viewer;

/// Join times in milliseconds, sorted.
pub(super) fn sorted_joins<'a>(viewers: impl Iterator<Item = &'a Viewer>) -> Vec<u64> {
    let mut joins: Vec<u64> = viewers.map(|v| v.join.as_millis() as u64).collect();
    joins.sort_unstable();
    joins
}

/// Packets delivered so far and when counting began, for a rate.
pub(super) struct Rate {
    packets: u64,
    since: Option<Instant>,
}

impl Rate {
    pub(super) fn per_second(&self) -> f64 {
        match self.since {
            Some(since) if since.elapsed().as_secs_f64() > 0.5 => {
                self.packets as f64 / since.elapsed().as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Delivery so far: the packet rate, and the loss as the share of each track's sequence range
/// that did not arrive intact.
pub(super) fn totals(viewers: &[Viewer]) -> (Rate, f64) {
    let (mut packets, mut expected, mut intact) = (0u64, 0u64, 0u64);
    let mut since: Option<Instant> = None;
    for viewer in viewers {
        for received in viewer.client.received().values() {
            packets += received.packets;
            since = match (since, received.first_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let (Some(min), Some(max)) = (received.distinct.first(), received.distinct.last()) {
                expected += (max - min + 1) as u64;
                intact += received.distinct.len() as u64;
            }
        }
    }
    let loss = if expected == 0 {
        0.0
    } else {
        100.0 * (expected - intact) as f64 / expected as f64
    };
    (Rate { packets, since }, loss)
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
}
