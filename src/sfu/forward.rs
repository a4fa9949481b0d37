//! Forwarding bookkeeping as plain data, with no I/O: when a publisher is asked for a
//! keyframe, and whether a subscriber missed packets. The media code asks; this file decides,
//! and is unit-tested on its own.

use std::time::{Duration, Instant};

/// Keyframe requests (PLI) to one publisher track, at most one per `interval`. A request
/// that arrives too early is remembered and sent when the interval has passed, so a late
/// joiner always gets its keyframe within one interval, however many join at once.
#[derive(Debug)]
pub struct PliLimiter {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl PliLimiter {
    pub fn new(interval: Duration) -> PliLimiter {
        PliLimiter {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// Registers a request; true when a PLI should go out now.
    pub fn request(&mut self, now: Instant) -> bool {
        self.pending = true;
        self.poll(now)
    }

    /// Call periodically; true when a remembered request may go out now.
    pub fn poll(&mut self, now: Instant) -> bool {
        let ready = self
            .last_sent
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if self.pending && ready {
            self.pending = false;
            self.last_sent = Some(now);
            return true;
        }
        false
    }
}

/// Per-subscriber state of one forwarded track: whether packets were skipped for it (audio
/// only, a muted track, a full queue), so the next one it gets must resume its numbering.
#[derive(Debug, Default)]
pub struct DropState {
    dropped: u64,
    resync: bool,
}

impl DropState {
    /// A packet was not forwarded to this subscriber on purpose.
    pub fn skipped(&mut self) {
        self.resync = true;
    }

    /// A packet could not be queued for this subscriber.
    pub fn dropped(&mut self) {
        self.dropped += 1;
        self.resync = true;
    }

    /// Whether the next packet queued follows a skip.
    pub fn resync(&self) -> bool {
        self.resync
    }

    /// A packet was queued.
    pub fn delivered(&mut self) {
        self.resync = false;
    }

    pub fn total_dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pli_is_rate_limited_but_never_forgotten() {
        let start = Instant::now();
        let mut limiter = PliLimiter::new(Duration::from_millis(300));
        assert!(limiter.request(start));
        assert!(!limiter.request(start + Duration::from_millis(100)));
        assert!(!limiter.poll(start + Duration::from_millis(200)));
        assert!(
            limiter.poll(start + Duration::from_millis(300)),
            "the held request goes out"
        );
        assert!(
            !limiter.poll(start + Duration::from_millis(700)),
            "nothing pending"
        );
    }

    #[test]
    fn a_skip_or_a_drop_marks_the_next_packet() {
        let mut state = DropState::default();
        assert!(!state.resync());
        state.dropped();
        state.dropped();
        assert!(state.resync());
        state.delivered();
        assert!(!state.resync());
        state.skipped();
        assert!(state.resync());
        assert_eq!(state.total_dropped(), 2);
    }
}
