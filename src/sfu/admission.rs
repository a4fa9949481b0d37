//! Whether the server takes one more viewer. A count of participants
//! (`limits.max_participants_per_node`) is a ceiling, but what a machine carries depends on
//! the machine, so the media plane's own lateness decides below it (`media_port/lag.rs`):
//! past `limits.max_media_lag_ms` no new viewer gets in, and past half of it only a few a
//! second. The lateness shows a viewer's cost only once its media flows, a moment after its
//! join, so without that slow start a class arriving at once would all be let in before the
//! first of them showed, and everyone's media would suffer. A room's host always gets in.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::RoomError;

/// Viewers let in per second while the media plane runs more than half its allowed lateness.
const SLOW_START_PER_SECOND: u32 = 10;

/// Why a viewer was refused, for /metrics.
#[derive(Clone, Copy)]
enum Refusal {
    Count,
    Lag,
    SlowStart,
}

const REASONS: [&str; 3] = ["count", "lag", "slow_start"];

pub struct Admission {
    max_participants: usize,
    max_lag: Duration,
    /// When the current second of slow start began, and the viewers let in since.
    slow: Mutex<(Instant, u32)>,
    /// Viewers refused, by [`Refusal`]: counted, and logged only when refusing starts and
    /// ends, since a full server may refuse dozens a second.
    refused: [AtomicU64; 3],
    refusing: AtomicBool,
}

impl Admission {
    pub fn new(max_participants: usize, max_lag: Duration) -> Admission {
        Admission {
            max_participants,
            max_lag,
            slow: Mutex::new((Instant::now(), 0)),
            refused: Default::default(),
            refusing: AtomicBool::new(false),
        }
    }

    /// `participants` on the server now, the media plane's `lag`, at `now`.
    pub fn admit(
        &self,
        is_host: bool,
        participants: usize,
        lag: Duration,
        now: Instant,
    ) -> Result<(), RoomError> {
        if is_host {
            return Ok(());
        }
        if participants >= self.max_participants {
            return self.refuse(Refusal::Count, lag);
        }
        if lag > self.max_lag {
            return self.refuse(Refusal::Lag, lag);
        }
        if lag > self.max_lag / 2 {
            let mut slow = self.slow.lock().expect("admission lock");
            if now.saturating_duration_since(slow.0) >= Duration::from_secs(1) {
                *slow = (now, 0);
            }
            if slow.1 >= SLOW_START_PER_SECOND {
                return self.refuse(Refusal::SlowStart, lag);
            }
            slow.1 += 1;
        }
        if self.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!(lag_ms = lag.as_millis() as u64, "taking new viewers again");
        }
        Ok(())
    }

    fn refuse(&self, why: Refusal, lag: Duration) -> Result<(), RoomError> {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        if !self.refusing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                reason = REASONS[why as usize],
                lag_ms = lag.as_millis() as u64,
                "the server is full: refusing new viewers"
            );
        }
        Err(RoomError::NodeFull)
    }

    /// `homeroom_viewers_refused_total` by reason, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut text = String::from(
            "# HELP homeroom_viewers_refused_total Viewers refused with node_full: the participant count, the media plane's lateness, or its slow start.\n\
             # TYPE homeroom_viewers_refused_total counter\n",
        );
        for (reason, count) in REASONS.iter().zip(&self.refused) {
            text.push_str(&format!(
                "homeroom_viewers_refused_total{{reason=\"{reason}\"}} {}\n",
                count.load(Ordering::Relaxed)
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_count_and_the_lateness_both_bound_viewers_never_hosts() {
        let admission = Admission::new(3, 10 * MS);
        let now = Instant::now();
        assert!(admission.admit(false, 2, MS, now).is_ok());
        assert!(admission.admit(false, 3, MS, now).is_err());
        assert!(admission.admit(false, 0, 11 * MS, now).is_err());
        assert!(admission.admit(true, 3, 100 * MS, now).is_ok());
    }

    #[test]
    fn past_half_the_lateness_only_a_few_viewers_a_second_get_in() {
        let admission = Admission::new(1000, 10 * MS);
        let start = Instant::now();
        // Below half: no limit on the rate.
        for _ in 0..50 {
            assert!(admission.admit(false, 0, 4 * MS, start).is_ok());
        }
        let busy = 6 * MS;
        let let_in = (0..50)
            .filter(|_| admission.admit(false, 0, busy, start).is_ok())
            .count();
        assert_eq!(let_in, SLOW_START_PER_SECOND as usize);
        // A second later, a few more.
        let later = start + Duration::from_secs(1);
        let let_in = (0..50)
            .filter(|_| admission.admit(false, 0, busy, later).is_ok())
            .count();
        assert_eq!(let_in, SLOW_START_PER_SECOND as usize);
        // Hosts are never held back.
        assert!(admission.admit(true, 0, busy, later).is_ok());
        let metrics = admission.render_metrics();
        assert!(
            metrics.contains("homeroom_viewers_refused_total{reason=\"slow_start\"} 80"),
            "{metrics}"
        );
    }
}
