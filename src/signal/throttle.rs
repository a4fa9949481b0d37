//! How often one socket may send each kind of message: a token bucket per socket per message
//! type. A message over its rate is answered `error` `rate_limited` and goes no further: it
//! reaches no room, no session log and nobody else. The figures are in `docs/signalling.md`.

use std::collections::HashMap;
use std::time::Instant;

/// `(type, burst, per second)`: a socket may send `burst` messages of a type at once, then
/// `per second` of them on average. Generous where a browser's normal work sends bursts (ICE
/// candidates, subscriber answers), tight where each message reaches everyone (chat, hands).
pub const RATES: &[(&str, f64, f64)] = &[
    ("join", 5.0, 0.5),
    ("offer", 10.0, 1.0),
    ("answer", 20.0, 5.0),
    ("answer_failed", 10.0, 1.0),
    ("ice_restart", 5.0, 0.5),
    ("candidate", 100.0, 20.0),
    ("chat", 5.0, 0.5),
    ("hand", 5.0, 0.5),
    ("audio_only", 5.0, 0.5),
    ("quality", 5.0, 0.5),
    ("focus", 10.0, 2.0),
    ("keyframe", 10.0, 2.0),
    ("admit", 20.0, 5.0),
    ("promote", 10.0, 1.0),
    ("mute", 10.0, 1.0),
    ("kick", 10.0, 1.0),
    ("end", 5.0, 0.5),
    ("start_recording", 5.0, 0.5),
    ("stop_recording", 5.0, 0.5),
    ("leave", 5.0, 0.5),
    ("ping", 10.0, 2.0),
    // Messages that do not parse: answered with an error each, so they are bounded too.
    ("invalid", 20.0, 5.0),
];

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One socket's buckets.
#[derive(Default)]
pub struct Throttle {
    buckets: HashMap<&'static str, Bucket>,
}

impl Throttle {
    /// Takes a token for a message of type `kind` (`"invalid"` for one that did not parse),
    /// or says it is over its rate. Types without a rate are treated as `"invalid"`.
    pub fn allow(&mut self, kind: &str) -> bool {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&mut self, kind: &str, now: Instant) -> bool {
        let &(name, burst, per_second) = RATES
            .iter()
            .find(|(name, ..)| *name == kind)
            .or_else(|| RATES.iter().find(|(name, ..)| *name == "invalid"))
            .expect("an invalid rate");
        let bucket = self.buckets.entry(name).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_type() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert!(throttle.allow_at("hand", start));
        }
        assert!(!throttle.allow_at("hand", start), "the burst is spent");
        assert!(
            throttle.allow_at("chat", start),
            "each type has its own bucket"
        );
        assert!(!throttle.allow_at("hand", start + Duration::from_millis(1500)));
        assert!(throttle.allow_at("hand", start + Duration::from_millis(2100)));
        assert!(!throttle.allow_at("hand", start + Duration::from_millis(2200)));
        // Refill stops at the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(throttle.allow_at("hand", later));
        }
        assert!(!throttle.allow_at("hand", later));
        assert!(
            throttle.allow_at("no_such_type", start),
            "counted as invalid"
        );
    }
}
