//! Per-key attempt counting for sign-in, invite codes, guest codes, set-up and reset links:
//! after `max` failed attempts within the window, further attempts are refused until the
//! window has passed. Keys are an IP address or an account, so one guessing laptop cannot lock
//! out a whole school behind one NAT by guessing one parent's account, and cannot guess freely
//! by switching accounts either.
//!
//! An attempt is reserved *before* the guess is checked (an argon2 verification takes a long
//! time), under the same lock that reads the count. Were the count only raised after a failed
//! check, a hundred guesses sent at once would all pass the check while the count was still
//! zero. A reservation that turns out not to be a wrong guess (the right password, a known
//! code, a request refused for another reason) is given back when its [`Attempt`] is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds until a rate-limited key may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

pub struct RateLimiter {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<String, Counts>>,
}

/// One key's attempts.
struct Counts {
    /// When the current window began.
    start: Instant,
    /// Wrong guesses in the current window.
    failures: u32,
    /// Attempts reserved and not yet settled (they outlive a window that ends meanwhile).
    in_flight: u32,
}

/// One reserved attempt. Dropping it gives the attempt back; [`Attempt::failed`] counts it
/// as a wrong guess.
#[must_use = "an attempt is given back when dropped; call `failed` for a wrong guess"]
pub struct Attempt<'a> {
    limiter: &'a RateLimiter,
    key: String,
    failed: bool,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves one attempt for the key, or refuses when its failures and the attempts still
    /// in flight reach the limit, saying how long to wait: until the window ends when the
    /// failures alone reach it, else a second (the attempts in flight settle soon). Checking
    /// and counting happen under one lock.
    pub fn reserve(&self, key: &str) -> Result<Attempt<'_>, RetryAfter> {
        let mut counts = self.counts.lock().expect("rate limit lock");
        if counts.len() > 100_000 {
            // A flood of distinct keys must not grow memory without bound.
            counts.retain(|_, c| c.in_flight > 0 || c.start.elapsed() < self.window);
        }
        let entry = counts.entry(key.to_owned()).or_insert(Counts {
            start: Instant::now(),
            failures: 0,
            in_flight: 0,
        });
        if entry.start.elapsed() >= self.window {
            entry.start = Instant::now();
            entry.failures = 0;
        }
        if entry.failures >= self.max {
            let left = self.window.saturating_sub(entry.start.elapsed());
            return Err(RetryAfter(left.as_secs() + 1));
        }
        if entry.failures + entry.in_flight >= self.max {
            return Err(RetryAfter(1));
        }
        entry.in_flight += 1;
        Ok(Attempt {
            limiter: self,
            key: key.to_owned(),
            failed: false,
        })
    }

    /// Clears the key's failures, e.g. an account's after its owner signed in.
    pub fn forget(&self, key: &str) {
        if let Some(entry) = self.counts.lock().expect("rate limit lock").get_mut(key) {
            entry.failures = 0;
        }
    }

    fn settle(&self, key: &str, failed: bool) {
        let mut counts = self.counts.lock().expect("rate limit lock");
        if let Some(entry) = counts.get_mut(key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if failed {
                if entry.start.elapsed() >= self.window {
                    entry.start = Instant::now();
                    entry.failures = 0;
                }
                entry.failures += 1;
            }
        }
    }
}

impl Attempt<'_> {
    /// The guess was wrong: it counts until the window has passed.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.limiter.settle(&self.key, self.failed);
    }
}

/// The limits in force; one per kind of guessing.
pub struct RateLimits {
    pub login_ip: RateLimiter,
    pub login_account: RateLimiter,
    /// Invite codes, guest codes, set-up and reset links, per IP.
    pub invite_ip: RateLimiter,
}

impl Default for RateLimits {
    fn default() -> Self {
        let window = Duration::from_secs(15 * 60);
        RateLimits {
            login_ip: RateLimiter::new(30, window),
            login_account: RateLimiter::new(10, window),
            invite_ip: RateLimiter::new(10, window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_then_recovers() {
        let limiter = RateLimiter::new(2, Duration::from_millis(50));
        limiter.reserve("a").unwrap().failed();
        assert!(
            limiter.reserve("a").is_ok(),
            "a dropped attempt is given back"
        );
        limiter.reserve("a").unwrap().failed();
        assert!(limiter.reserve("a").is_err());
        assert!(limiter.reserve("b").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.reserve("a").is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_they_fail() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        // A hundred guesses arrive together: each holds its reservation while it is checked.
        let in_flight: Vec<_> = (0..100)
            .filter_map(|_| limiter.reserve("acct").ok())
            .collect();
        assert_eq!(in_flight.len(), 10);
        for attempt in in_flight {
            attempt.failed();
        }
        assert!(
            limiter.reserve("acct").is_err(),
            "the right password waits too"
        );
    }

    #[test]
    fn parallel_reservations_never_exceed_the_limit() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10, Duration::from_secs(60)));
        let granted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, granted) = (limiter.clone(), granted.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        if let Ok(attempt) = limiter.reserve("acct") {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            attempt.failed();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(granted.load(std::sync::atomic::Ordering::SeqCst), 10);
    }

    #[test]
    fn in_flight_attempts_wait_a_second_failures_wait_the_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let first = limiter.reserve("a").unwrap();
        let second = limiter.reserve("a").unwrap();
        assert_eq!(limiter.reserve("a").err(), Some(RetryAfter(1)));
        drop(first);
        second.failed();
        limiter.reserve("a").unwrap().failed();
        assert!(limiter.reserve("a").err().expect("refused").0 > 50);
        limiter.forget("a");
        assert!(limiter.reserve("a").is_ok());
    }
}
