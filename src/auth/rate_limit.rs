//! Per-key failure counting for sign-in and invite codes: after `max` failures within the
//! window, further attempts are refused until the window has passed. Keys are an IP address
//! or an account, so one guessing laptop cannot lock out a whole school behind one NAT by
//! guessing one parent's account, and cannot guess freely by switching accounts either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds until a rate-limited key may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

pub struct RateLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses a key that has used up its failures, saying how long to wait.
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        let failures = self.failures.lock().expect("rate limit lock");
        match failures.get(key) {
            Some((start, count)) if start.elapsed() < self.window && *count >= self.max => {
                Err(RetryAfter((self.window - start.elapsed()).as_secs() + 1))
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, key: &str) {
        let mut failures = self.failures.lock().expect("rate limit lock");
        if failures.len() > 100_000 {
            // A flood of distinct keys must not grow memory without bound.
            failures.retain(|_, (start, _)| start.elapsed() < self.window);
        }
        let entry = failures
            .entry(key.to_owned())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    pub fn forget(&self, key: &str) {
        self.failures.lock().expect("rate limit lock").remove(key);
    }
}

/// The limits in force; one per kind of guessing.
pub struct RateLimits {
    pub login_ip: RateLimiter,
    pub login_account: RateLimiter,
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
        limiter.fail("a");
        assert!(limiter.check("a").is_ok());
        limiter.fail("a");
        assert!(limiter.check("a").is_err());
        assert!(limiter.check("b").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check("a").is_ok());
    }
}
