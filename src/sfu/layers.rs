//! The encodings of a published track. A browser sending simulcast sends one video track as up
//! to three encodings (each its own SSRC, named by a `rid`); anything else sends one. The SFU
//! keeps them in slots in the order they appeared, measures each one's bitrate, and ranks them
//! by it: whatever the rids are called, the cheapest is `low` and the richest `high`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::sfu::quality::Layer;

/// At most this many encodings of one track are forwarded (what browsers send).
pub const MAX_LAYERS: usize = 3;
/// Below this a layer counts as stopped (a browser drops its top layer when its own uplink is
/// short): no viewer is switched to it.
const ALIVE_BPS: u64 = 8_000;
/// What a packet costs on the wire beyond its payload (RTP 12, SRTP 10, UDP 8, IPv4 20
/// bytes): a stream of small audio packets needs about half as much again as its payload.
const PACKET_OVERHEAD: usize = 50;
/// How often the measured rates are brought up to date.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

/// One encoding.
#[derive(Debug)]
pub struct Encoding {
    pub ssrc: u32,
    pub rid: Option<String>,
    bytes: AtomicU64,
    bps: AtomicU64,
    /// Width × height its last keyframe stated (VP8), 0 while unknown.
    pixels: AtomicU32,
}

/// The encodings of one track, by slot.
#[derive(Debug)]
pub struct Encodings {
    slots: RwLock<Vec<Encoding>>,
    measured_at: std::sync::Mutex<Instant>,
}

impl Encodings {
    pub fn new(ssrc: u32, rid: Option<String>) -> Encodings {
        let encodings = Encodings {
            slots: RwLock::default(),
            measured_at: std::sync::Mutex::new(Instant::now()),
        };
        encodings.add(ssrc, rid);
        encodings
    }

    /// The slot of `ssrc`, adding it when it is new and there is room.
    pub fn slot_of(&self, ssrc: u32) -> Option<usize> {
        self.slots
            .read()
            .expect("slots lock")
            .iter()
            .position(|e| e.ssrc == ssrc)
    }

    /// Adds an encoding; its slot, or none when the track already has [`MAX_LAYERS`].
    pub fn add(&self, ssrc: u32, rid: Option<String>) -> Option<usize> {
        let mut slots = self.slots.write().expect("slots lock");
        if let Some(slot) = slots.iter().position(|e| e.ssrc == ssrc) {
            return Some(slot);
        }
        if slots.len() >= MAX_LAYERS {
            return None;
        }
        slots.push(Encoding {
            ssrc,
            rid,
            bytes: AtomicU64::new(0),
            bps: AtomicU64::new(0),
            pixels: AtomicU32::new(0),
        });
        Some(slots.len() - 1)
    }

    /// Starts over with one encoding (the publisher reconnected).
    pub fn reset(&self, ssrc: u32, rid: Option<String>) {
        self.slots.write().expect("slots lock").clear();
        self.add(ssrc, rid);
    }

    pub fn ssrc(&self, slot: usize) -> Option<u32> {
        self.slots
            .read()
            .expect("slots lock")
            .get(slot)
            .map(|e| e.ssrc)
    }

    pub fn ssrcs(&self) -> Vec<u32> {
        let slots = self.slots.read().expect("slots lock");
        slots.iter().map(|e| e.ssrc).collect()
    }

    /// Counts a packet of `slot` with `payload` bytes.
    pub fn count(&self, slot: usize, payload: usize) {
        if let Some(e) = self.slots.read().expect("slots lock").get(slot) {
            e.bytes
                .fetch_add((payload + PACKET_OVERHEAD) as u64, Ordering::Relaxed);
        }
    }

    /// Notes the picture size a keyframe of `slot` stated.
    pub fn sized(&self, slot: usize, width: u16, height: u16) {
        if let Some(e) = self.slots.read().expect("slots lock").get(slot) {
            e.pixels
                .store(u32::from(width) * u32::from(height), Ordering::Relaxed);
        }
    }

    /// Turns the bytes counted since the last call into rates, at most once per window.
    pub fn measure(&self, now: Instant) {
        let mut at = self.measured_at.lock().expect("measured lock");
        let elapsed = now.saturating_duration_since(*at);
        if elapsed < RATE_WINDOW {
            return;
        }
        *at = now;
        for e in self.slots.read().expect("slots lock").iter() {
            let bits = e.bytes.swap(0, Ordering::Relaxed) * 8;
            let sample = (bits as f64 / elapsed.as_secs_f64()) as u64;
            // Smoothed over about two windows: a keyframe does not make a layer look richer.
            let old = e.bps.load(Ordering::Relaxed);
            let smoothed = if old == 0 || sample == 0 {
                sample
            } else {
                (old + sample) / 2
            };
            e.bps.store(smoothed, Ordering::Relaxed);
        }
    }

    /// The live encodings from smallest to largest picture (by bitrate where the codec does
    /// not say: a browser ramping its encodings up can send them at similar rates for a
    /// while, and the order must not swap under the viewers): `(slot, bits per second)`. A
    /// track sent once whose rate is not known yet still has its one layer.
    pub fn ranked(&self) -> Vec<(usize, u64)> {
        let slots = self.slots.read().expect("slots lock");
        let mut ranked: Vec<(u32, u64, usize)> = slots
            .iter()
            .enumerate()
            .map(|(slot, e)| {
                let pixels = e.pixels.load(Ordering::Relaxed);
                (pixels, e.bps.load(Ordering::Relaxed), slot)
            })
            .filter(|(_, bps, _)| *bps >= ALIVE_BPS || slots.len() == 1)
            .collect();
        // Sizes only once every live encoding has stated one, or a stated size would rank its
        // encoding above one whose keyframe has not come yet.
        if ranked.iter().any(|(pixels, _, _)| *pixels == 0) {
            ranked.iter_mut().for_each(|(pixels, _, _)| *pixels = 0);
        }
        ranked.sort();
        ranked
            .into_iter()
            .map(|(_, bps, slot)| (slot, bps))
            .collect()
    }

    /// The layer name of `slot` among the live encodings.
    pub fn layer_of(&self, slot: usize) -> Option<Layer> {
        let ranked = self.ranked();
        let rank = ranked.iter().position(|(s, _)| *s == slot)?;
        Some(Layer::of_rank(rank, ranked.len()))
    }

    /// The richest live encoding (what a recording keeps).
    pub fn top(&self) -> usize {
        self.ranked().last().map_or(0, |(slot, _)| *slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_ranked_by_what_they_carry_not_by_name() {
        let start = Instant::now();
        let encodings = Encodings::new(10, Some("h".into()));
        assert_eq!(
            encodings.ranked(),
            vec![(0, 0)],
            "one layer counts before it is measured"
        );
        assert_eq!(encodings.add(20, Some("l".into())), Some(1));
        assert_eq!(encodings.add(30, Some("m".into())), Some(2));
        assert_eq!(encodings.add(40, Some("x".into())), None, "at most three");
        assert_eq!(encodings.slot_of(30), Some(2));
        encodings.count(0, 100_000);
        encodings.count(1, 10_000);
        encodings.count(2, 30_000);
        encodings.measure(start + Duration::from_secs(1));
        let ranked: Vec<usize> = encodings.ranked().iter().map(|(slot, _)| *slot).collect();
        assert_eq!(ranked, vec![1, 2, 0]);
        assert_eq!(encodings.layer_of(1), Some(Layer::Low));
        assert_eq!(encodings.layer_of(2), Some(Layer::Medium));
        assert_eq!(encodings.layer_of(0), Some(Layer::High));
        assert_eq!(encodings.top(), 0);
        // Picture sizes rank before rates: the largest picture is high even while it is cheap.
        encodings.sized(1, 320, 180);
        encodings.sized(2, 640, 360);
        encodings.sized(0, 1280, 720);
        encodings.count(0, 1_000);
        encodings.count(1, 10_000);
        encodings.count(2, 30_000);
        encodings.measure(start + Duration::from_millis(1500));
        assert_eq!(encodings.layer_of(0), Some(Layer::High));
        assert_eq!(encodings.layer_of(1), Some(Layer::Low));
        // The top layer stops (the browser's uplink is short): two layers are left.
        encodings.count(1, 10_000);
        encodings.count(2, 30_000);
        encodings.measure(start + Duration::from_secs(3));
        assert_eq!(encodings.layer_of(0), None);
        assert_eq!(encodings.layer_of(2), Some(Layer::High));
    }
}
