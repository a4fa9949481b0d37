//! The recent packets of a published video track, per encoding: the one buffer the SFU
//! resends from when a viewer reports loss (NACK). The webrtc stack would keep a buffer of
//! 1024 packets for every track of every viewer (about 115 KiB a viewer, allocated in full
//! whether anything is ever resent); the packets are the same for all of them, only their
//! numbering differs, and each viewer's `OutgoingTrack` knows its numbering.
//!
//! Packets are kept as received (their payload shared, not copied), in a ring indexed by
//! sequence number; a slot holds only the packet whose number it was given, so a lookup never
//! returns a packet from a lap before, nor one of an earlier input of the track.

use std::sync::Mutex;

use rtc::rtp;

use super::fanout::slot_of;
use super::layers::MAX_LAYERS;

/// Packets kept per encoding: about 1.5 s of a 1.5 Mbit/s camera, far longer than a NACK
/// is worth answering (a receiver gives up on a packet after a few round trips).
const KEPT: usize = 512;

#[derive(Default)]
pub struct History {
    encodings: Mutex<[Vec<Option<Kept>>; MAX_LAYERS]>,
}

struct Kept {
    source: u32,
    packet: rtp::Packet,
}

impl History {
    /// Keeps `packet` of `source` (see [`super::fanout::source`]).
    pub fn keep(&self, source: u32, packet: &rtp::Packet) {
        let mut encodings = self.encodings.lock().expect("history lock");
        let Some(ring) = encodings.get_mut(slot_of(source)) else {
            return;
        };
        if ring.is_empty() {
            ring.resize_with(KEPT, || None);
        }
        let seq = packet.header.sequence_number;
        ring[seq as usize % KEPT] = Some(Kept {
            source,
            packet: packet.clone(),
        });
    }

    /// The packet of `source` numbered `seq` (the publisher's number), if it is still kept.
    pub fn get(&self, source: u32, seq: u16) -> Option<rtp::Packet> {
        let encodings = self.encodings.lock().expect("history lock");
        let kept = encodings
            .get(slot_of(source))?
            .get(seq as usize % KEPT)?
            .as_ref()?;
        (kept.source == source && kept.packet.header.sequence_number == seq)
            .then(|| kept.packet.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::fanout::source;

    /// A packet whose payload says its number.
    fn packet(seq: u16) -> rtp::Packet {
        let mut packet = rtp::Packet {
            payload: bytes::Bytes::from(vec![seq as u8; 10]),
            ..Default::default()
        };
        packet.header.sequence_number = seq;
        packet
    }

    #[test]
    fn a_packet_is_found_by_source_and_number_until_it_is_overwritten() {
        let history = History::default();
        let camera_medium = source(7, 1);
        for seq in 65_000..65_000 + KEPT as u32 + 100 {
            history.keep(camera_medium, &packet(seq as u16));
        }
        let newest = (65_000 + KEPT as u32 + 99) as u16;
        let found = history.get(camera_medium, newest).expect("kept");
        assert_eq!(found.payload[0], newest as u8);
        assert!(history
            .get(camera_medium, newest.wrapping_sub(KEPT as u16 - 1))
            .is_some());
        // A lap behind: its slot holds a newer packet now.
        assert!(history
            .get(camera_medium, newest.wrapping_sub(KEPT as u16))
            .is_none());
        // Another encoding, or another input of the track (a reconnected publisher).
        assert!(history.get(source(7, 0), newest).is_none());
        assert!(history.get(source(8, 1), newest).is_none());
        // No encoding past the last: nothing kept, nothing found.
        history.keep(source(7, MAX_LAYERS as u8), &packet(1));
        assert!(history.get(source(7, MAX_LAYERS as u8), 1).is_none());
    }
}
