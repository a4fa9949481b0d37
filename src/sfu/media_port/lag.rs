//! How late the media reactors run. A reactor given more media work than its core carries
//! runs every task late, and that delay is what viewers get as loss. Unlike a count of
//! participants it holds on any machine, so it is what tells the server to stop admitting
//! viewers (`sfu/admission.rs`) before the ones already watching suffer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a reactor's probe wakes: often enough to see a second of overload within it,
/// rarely enough to cost nothing.
const PERIOD: Duration = Duration::from_millis(20);

/// Samples averaged (exponentially): about a second, so one keyframe's burst to every viewer
/// does not read as overload, a sustained backlog does.
const SMOOTHING: f64 = 50.0;

/// One reactor's smoothed lateness, in microseconds.
#[derive(Default)]
pub struct Lag(AtomicU64);

impl Lag {
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    /// Runs on the reactor it measures, for the life of the process.
    pub async fn probe(self: Arc<Self>) {
        let mut smoothed = 0.0;
        loop {
            let start = Instant::now();
            tokio::time::sleep(PERIOD).await;
            let late = start.elapsed().saturating_sub(PERIOD).as_micros() as f64;
            smoothed += (late - smoothed) / SMOOTHING;
            self.0.store(smoothed as u64, Ordering::Relaxed);
        }
    }
}
