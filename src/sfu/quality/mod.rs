//! What each viewer receives: which encoding (layer) of each simulcast track, or audio only,
//! chosen from a bandwidth estimate of the viewer's link (`estimate.rs`) by the rule in
//! `selector.rs`, applied per subscriber by `reception.rs`. docs/signalling.md ("Simulcast
//! and quality") is the contract.

pub mod estimate;
pub mod reception;
pub mod selector;

use serde::{Deserialize, Serialize};

/// The layers of a track, cheapest first, as viewers are told them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Low,
    Medium,
    High,
    /// No video of this track (audio only).
    Off,
}

impl Layer {
    /// The name of rank `rank` (0 = cheapest) among `count` live encodings: one is `high`,
    /// two are `low` and `high`.
    pub fn of_rank(rank: usize, count: usize) -> Layer {
        match (count, rank) {
            (0 | 1, _) => Layer::High,
            (2, 0) => Layer::Low,
            (2, _) => Layer::High,
            (_, 0) => Layer::Low,
            (_, 1) => Layer::Medium,
            _ => Layer::High,
        }
    }
}

/// What a viewer chose in the quality menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    #[default]
    Auto,
    High,
    Medium,
    Low,
    AudioOnly,
}

impl Quality {
    /// The rank a fixed choice asks for among `count` encodings: that layer, or the nearest
    /// the track has (medium of two is low: the cautious one). None for auto and audio only.
    pub fn fixed_rank(self, count: usize) -> Option<usize> {
        let top = count.saturating_sub(1);
        match self {
            Quality::High => Some(top),
            Quality::Medium => Some(if count >= 3 { 1 } else { 0 }),
            Quality::Low => Some(0),
            Quality::Auto | Quality::AudioOnly => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fixed_choices_follow_the_number_of_encodings() {
        assert_eq!(Layer::of_rank(0, 1), Layer::High);
        assert_eq!(Layer::of_rank(0, 2), Layer::Low);
        assert_eq!(Layer::of_rank(1, 3), Layer::Medium);
        assert_eq!(Quality::Medium.fixed_rank(2), Some(0));
        assert_eq!(Quality::Medium.fixed_rank(3), Some(1));
        assert_eq!(Quality::High.fixed_rank(1), Some(0));
        assert_eq!(Quality::Auto.fixed_rank(3), None);
    }
}
