//! What each viewer receives: which encoding (layer) of each simulcast track, or audio only,
//! chosen from a bandwidth estimate of the viewer's link (`estimate.rs`) by the rule in
//! `selector.rs`, applied per subscriber by `reception.rs`. docs/signalling.md ("Simulcast
//! and quality") is the contract.

mod collapse;
pub mod estimate;
pub mod reception;
pub mod resend;
pub mod selector;

pub use crate::domain::{Layer, Quality};

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
