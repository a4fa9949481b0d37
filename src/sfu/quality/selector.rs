//! The rule that picks a viewer's layers from its bandwidth estimate (docs/signalling.md,
//! "Simulcast and quality"), as plain data so it can be tested without a network.
//!
//! The estimate of a link that is not filled cannot be checked without filling it, and the SFU
//! has no padding to probe with (padding-only RTP is at most a few bytes per packet here), so
//! going up is a trial: after the estimate has left room for the next layer for a while, that
//! layer is tried; if the estimate then falls below it, the viewer steps straight back and the
//! next trial waits longer. Going down is quick, because GCC only lowers its estimate on real
//! signs of congestion (queueing delay or loss).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Quality;

/// Room the next layer needs in the estimate before it is tried.
const UP_MARGIN: f64 = 1.15;
/// How long the estimate must leave that room.
const UP_AFTER: Duration = Duration::from_secs(2);
/// How long the estimate may stay below the current layer before stepping down.
const DOWN_AFTER: Duration = Duration::from_millis(250);
/// The same, for a layer just tried: congestion right after a switch up ends the trial at once.
const TRIAL: Duration = Duration::from_secs(10);
/// No trial sooner than this after a step down; doubled after each failed trial.
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Below the lowest layer this long (at once when below half of it): audio only. Back once it
/// fits for `STRONG_AFTER`.
const WEAK_AFTER: Duration = Duration::from_secs(2);
const STRONG_AFTER: Duration = Duration::from_secs(4);

/// One video track a viewer receives.
#[derive(Debug, Clone)]
pub struct Demand {
    pub track_id: String,
    /// Measured bitrate of each live layer, cheapest first.
    pub layers: Vec<u64>,
    /// The highest rank it may have (a small tile: 0).
    pub cap: usize,
}

#[derive(Debug, Default)]
struct TrackState {
    rank: Option<usize>,
    over_since: Option<Instant>,
    room_since: Option<Instant>,
}

/// The rank (0 = cheapest) each track gets, none for no video; and whether the link is weak.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub ranks: HashMap<String, Option<usize>>,
    pub weak: bool,
}

#[derive(Debug)]
pub struct Selector {
    tracks: HashMap<String, TrackState>,
    weak: bool,
    short_since: Option<Instant>,
    fits_since: Option<Instant>,
    last_up: Option<Instant>,
    no_trial_before: Option<Instant>,
    backoff: Duration,
    /// Switches made (up, down), for /metrics.
    pub switches: (u64, u64),
}

impl Default for Selector {
    fn default() -> Self {
        Selector {
            tracks: HashMap::new(),
            weak: false,
            short_since: None,
            fits_since: None,
            last_up: None,
            no_trial_before: None,
            backoff: FIRST_BACKOFF,
            switches: (0, 0),
        }
    }
}

impl Selector {
    /// Decides for `demands`, most important first (what the viewer shows large).
    pub fn decide(
        &mut self,
        now: Instant,
        choice: Quality,
        estimate_bps: u64,
        audio_bps: u64,
        demands: &[Demand],
    ) -> Decision {
        self.tracks
            .retain(|id, _| demands.iter().any(|d| &d.track_id == id));
        let budget = estimate_bps.saturating_sub(audio_bps);
        let weak = self.weak_link(now, budget, demands.first());
        let mut decision = Decision {
            weak,
            ..Decision::default()
        };
        let mut left = budget;
        for demand in demands.iter().filter(|d| !d.layers.is_empty()) {
            let top = demand.cap.min(demand.layers.len() - 1);
            let rank = match choice {
                Quality::AudioOnly => None,
                Quality::Auto if weak => None,
                Quality::Auto => Some(self.auto_rank(now, demand, top, left)),
                fixed => fixed.fixed_rank(demand.layers.len()).map(|r| r.min(top)),
            };
            let state = self.tracks.entry(demand.track_id.clone()).or_default();
            if choice != Quality::Auto {
                // A fixed choice, or audio only: auto starts afresh from what is sent now.
                *state = TrackState {
                    rank,
                    ..TrackState::default()
                };
            }
            if let Some(rank) = rank {
                left = left.saturating_sub(demand.layers[rank]);
            }
            decision.ranks.insert(demand.track_id.clone(), rank);
        }
        decision
    }

    /// Whether even the lowest layer of the main track has not fitted for a while.
    fn weak_link(&mut self, now: Instant, budget: u64, main: Option<&Demand>) -> bool {
        let Some(lowest) = main.and_then(|d| d.layers.first().copied()) else {
            return self.weak;
        };
        if self.weak {
            if budget as f64 >= lowest as f64 * UP_MARGIN {
                let since = *self.fits_since.get_or_insert(now);
                if now.duration_since(since) >= STRONG_AFTER {
                    self.weak = false;
                    self.fits_since = None;
                    // Video comes back at the lowest layer.
                    for state in self.tracks.values_mut() {
                        *state = TrackState {
                            rank: Some(0),
                            ..TrackState::default()
                        };
                    }
                    self.switches.0 += 1;
                }
            } else {
                self.fits_since = None;
            }
        } else if budget < lowest {
            let since = *self.short_since.get_or_insert(now);
            // Far below (a link that collapsed): at once, before the video floods it further.
            if budget < lowest / 2 || now.duration_since(since) >= WEAK_AFTER {
                self.weak = true;
                self.short_since = None;
                self.tracks.clear();
                self.switches.1 += 1;
            }
        } else {
            self.short_since = None;
        }
        self.weak
    }

    fn auto_rank(&mut self, now: Instant, demand: &Demand, top: usize, budget: u64) -> usize {
        let layers = &demand.layers;
        let fitting = |limit: usize, margin: f64| {
            (0..=limit)
                .rev()
                .find(|r| layers[*r] as f64 * margin <= budget as f64)
                .unwrap_or(0)
        };
        let state = self.tracks.entry(demand.track_id.clone()).or_default();
        let Some(current) = state.rank.map(|r| r.min(top)) else {
            // A new track starts at what fits now.
            let rank = fitting(top, 1.0);
            state.rank = Some(rank);
            return rank;
        };
        let mut rank = current;
        if current > 0 && layers[current] > budget {
            let since = *state.over_since.get_or_insert(now);
            let in_trial = self
                .last_up
                .is_some_and(|up| now.duration_since(up) < TRIAL);
            if in_trial || now.duration_since(since) >= DOWN_AFTER {
                rank = fitting(current - 1, 1.0);
                state.over_since = None;
                state.room_since = None;
                self.switches.1 += 1;
                if in_trial {
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.last_up = None;
                }
                self.no_trial_before = Some(now + self.backoff);
            }
        } else {
            state.over_since = None;
        }
        if rank == current
            && current < top
            && layers[current + 1] as f64 * UP_MARGIN <= budget as f64
        {
            let since = *state.room_since.get_or_insert(now);
            let allowed = self.no_trial_before.is_none_or(|at| now >= at);
            if allowed && now.duration_since(since) >= UP_AFTER {
                rank = current + 1;
                state.room_since = None;
                self.last_up = Some(now);
                self.switches.0 += 1;
            }
        } else if rank == current {
            state.room_since = None;
        }
        // A trial that held for its whole length was no trial: the next one waits less.
        if self
            .last_up
            .is_some_and(|up| now.duration_since(up) >= TRIAL)
        {
            self.last_up = None;
            self.backoff = FIRST_BACKOFF;
        }
        let state = self.tracks.get_mut(&demand.track_id).expect("just used");
        state.rank = Some(rank);
        rank
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: [u64; 3] = [150_000, 500_000, 1_500_000];
    const AUDIO: u64 = 40_000;

    fn demand() -> Vec<Demand> {
        vec![Demand {
            track_id: "cam".into(),
            layers: LAYERS.to_vec(),
            cap: 2,
        }]
    }

    /// Runs the selector every 200 ms for `secs` at a fixed estimate; the last decision.
    fn run(selector: &mut Selector, at: &mut Instant, secs: f64, estimate: u64) -> Decision {
        let mut last = Decision::default();
        for _ in 0..(secs * 5.0) as usize {
            *at += Duration::from_millis(200);
            last = selector.decide(*at, Quality::Auto, estimate, AUDIO, &demand());
        }
        last
    }

    fn rank(decision: &Decision) -> Option<usize> {
        decision.ranks["cam"]
    }

    #[test]
    fn a_good_link_climbs_one_layer_at_a_time_and_a_weak_one_steps_down_fast() {
        let mut selector = Selector::default();
        let mut at = Instant::now();
        let first = selector.decide(at, Quality::Auto, 1_500_000, AUDIO, &demand());
        assert_eq!(rank(&first), Some(1), "starts at what fits");
        assert_eq!(
            rank(&run(&mut selector, &mut at, 1.0, 2_000_000)),
            Some(1),
            "not before 2 s"
        );
        assert_eq!(rank(&run(&mut selector, &mut at, 1.2, 2_000_000)), Some(2));
        // Congestion: the estimate falls to 400 kbit/s; down within a quarter second.
        assert_eq!(rank(&run(&mut selector, &mut at, 0.4, 400_000)), Some(0));
    }

    #[test]
    fn a_failed_trial_waits_longer_each_time_but_never_more_than_ten_seconds() {
        let mut selector = Selector::default();
        let mut at = Instant::now();
        selector.decide(at, Quality::Auto, 400_000, AUDIO, &demand());
        // The estimate drifts up while the link carries only the low layer: a trial.
        let mut trials = Vec::new();
        let started = at;
        for _ in 0..300 {
            at += Duration::from_millis(200);
            let estimate = if selector.tracks["cam"].rank == Some(1) {
                // The trial congests the link: GCC backs off.
                340_000
            } else {
                700_000
            };
            let d = selector.decide(at, Quality::Auto, estimate, AUDIO, &demand());
            if rank(&d) == Some(1) {
                trials.push(at.duration_since(started).as_secs_f64());
            }
        }
        let gaps: Vec<f64> = trials.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 3, "trials go on: {trials:?}");
        assert!(gaps[0] < gaps[1] + 0.01, "the wait grows: {gaps:?}");
        assert!(
            gaps.iter().all(|g| *g <= 12.5),
            "at most ten seconds (plus the 2 s of room): {gaps:?}"
        );
        assert!(selector.switches.1 >= 3);
    }

    #[test]
    fn below_the_lowest_layer_is_audio_only_until_the_link_recovers() {
        let mut selector = Selector::default();
        let mut at = Instant::now();
        selector.decide(at, Quality::Auto, 400_000, AUDIO, &demand());
        // A little short of the lowest layer: audio only after 2 s.
        assert!(
            !run(&mut selector, &mut at, 1.0, 150_000).weak,
            "not at once"
        );
        let weak = run(&mut selector, &mut at, 1.2, 150_000);
        assert!(weak.weak);
        assert_eq!(rank(&weak), None);
        assert!(
            run(&mut selector, &mut at, 3.0, 400_000).weak,
            "back only after 4 s"
        );
        let strong = run(&mut selector, &mut at, 1.2, 400_000);
        assert!(!strong.weak);
        assert_eq!(
            rank(&strong),
            Some(0),
            "video comes back at the lowest layer"
        );
        // A link that collapses goes to audio only at once.
        assert!(run(&mut selector, &mut at, 0.2, 60_000).weak);
    }

    #[test]
    fn fixed_choices_ignore_the_estimate_and_tiles_stay_low() {
        let mut selector = Selector::default();
        let at = Instant::now();
        let low = selector.decide(at, Quality::Low, 5_000_000, AUDIO, &demand());
        assert_eq!(rank(&low), Some(0));
        let high = selector.decide(at, Quality::High, 100_000, AUDIO, &demand());
        assert_eq!(rank(&high), Some(2));
        let off = selector.decide(at, Quality::AudioOnly, 5_000_000, AUDIO, &demand());
        assert_eq!(rank(&off), None);
        let mut tiles = demand();
        tiles.push(Demand {
            track_id: "tile".into(),
            layers: LAYERS.to_vec(),
            cap: 0,
        });
        let d = Selector::default().decide(at, Quality::Auto, 10_000_000, AUDIO, &tiles);
        assert_eq!(d.ranks["cam"], Some(2));
        assert_eq!(d.ranks["tile"], Some(0));
    }
}
