//! What the SFU reads in codec payloads: where a keyframe starts (VP8, H.264) and the VP8
//! payload descriptor's picture id and TL0PICIDX, which each subscriber's outgoing track
//! renumbers (RFC 7741 §4.2, RFC 6184).

use rtc::rtp;

use super::outgoing::Codec;

/// Whether a payload begins a keyframe: where a decoder can start.
pub fn is_keyframe_start(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Opus => true,
        Codec::Vp8 => Vp8Descriptor::parse(payload).is_some_and(|d| d.keyframe_start(payload)),
        Codec::H264 => h264_keyframe(payload),
    }
}

/// The picture size a VP8 keyframe's first packet states (RFC 6386 §9.1: after the 3-byte
/// frame tag, the start code 9d 01 2a and two 14-bit little-endian sizes).
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let descriptor = Vp8Descriptor::parse(payload)?;
    if !descriptor.keyframe_start(payload) {
        return None;
    }
    let header = payload.get(descriptor.len..descriptor.len + 10)?;
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let size = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]) & 0x3fff;
    Some((size(6), size(8)))
}

/// An H.264 payload (RFC 6184) carrying an IDR slice or a sequence parameter set, the start
/// of a decodable picture: whole, in a STAP-A, or the first fragment of an FU-A.
fn h264_keyframe(payload: &[u8]) -> bool {
    let starts = |nal_type: u8| nal_type == 5 || nal_type == 7;
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        24 => {
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = u16::from_be_bytes([payload[at], payload[at + 1]]) as usize;
                if starts(payload[at + 2] & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && starts(fu & 0x1f)),
        nal_type => starts(nal_type),
    }
}

/// Where the fields of a VP8 payload descriptor (RFC 7741 §4.2) are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vp8Descriptor {
    start: bool,
    partition: u8,
    /// Offset of the picture id and whether it is the 15-bit form.
    picture_id_at: Option<(usize, bool)>,
    tl0_at: Option<usize>,
    len: usize,
}

impl Vp8Descriptor {
    pub(super) fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
        let first = *payload.first()?;
        let mut descriptor = Vp8Descriptor {
            start: first & 0x10 != 0,
            partition: first & 0x07,
            picture_id_at: None,
            tl0_at: None,
            len: 1,
        };
        if first & 0x80 == 0 {
            return Some(descriptor);
        }
        let extensions = *payload.get(1)?;
        let mut at = 2;
        if extensions & 0x80 != 0 {
            let wide = *payload.get(at)? & 0x80 != 0;
            descriptor.picture_id_at = Some((at, wide));
            at += if wide { 2 } else { 1 };
        }
        if extensions & 0x40 != 0 {
            descriptor.tl0_at = Some(at);
            at += 1;
        }
        if extensions & 0x30 != 0 {
            at += 1;
        }
        descriptor.len = at;
        (at <= payload.len()).then_some(descriptor)
    }

    /// The first packet of a frame whose VP8 header says key frame (its P bit is 0).
    fn keyframe_start(&self, payload: &[u8]) -> bool {
        self.start && self.partition == 0 && payload.get(self.len).is_some_and(|b| b & 0x01 == 0)
    }

    pub(super) fn picture_id(&self, payload: &[u8]) -> Option<u16> {
        let (at, wide) = self.picture_id_at?;
        Some(match wide {
            true => u16::from_be_bytes([payload[at] & 0x7f, payload[at + 1]]),
            false => (payload[at] & 0x7f) as u16,
        })
    }

    pub(super) fn tl0(&self, payload: &[u8]) -> Option<u8> {
        self.tl0_at.map(|at| payload[at])
    }
}

/// Shifts a VP8 packet's picture id and TL0PICIDX by the run's offsets, keeping their widths;
/// returns the new values.
pub(super) fn rewrite_vp8(
    packet: &mut rtp::Packet,
    pid_offset: u16,
    tl0_offset: u8,
) -> (Option<u16>, Option<u8>) {
    let Some(descriptor) = Vp8Descriptor::parse(&packet.payload) else {
        return (None, None);
    };
    let (Some(pid), tl0) = (
        descriptor.picture_id(&packet.payload),
        descriptor.tl0(&packet.payload),
    ) else {
        let Some(tl0) = descriptor.tl0(&packet.payload) else {
            return (None, None);
        };
        let mut payload = packet.payload.to_vec();
        let out = tl0.wrapping_add(tl0_offset);
        payload[descriptor.tl0_at.expect("has tl0")] = out;
        packet.payload = payload.into();
        return (None, Some(out));
    };
    if pid_offset == 0 && tl0_offset == 0 {
        return (Some(pid), tl0);
    }
    let mut payload = packet.payload.to_vec();
    let (at, wide) = descriptor.picture_id_at.expect("has a picture id");
    let out = match wide {
        true => {
            let out = pid.wrapping_add(pid_offset) & 0x7fff;
            payload[at] = 0x80 | (out >> 8) as u8;
            payload[at + 1] = out as u8;
            out
        }
        false => {
            let out = pid.wrapping_add(pid_offset) & 0x7f;
            payload[at] = out as u8;
            out
        }
    };
    let tl0 = descriptor.tl0_at.map(|tl0_at| {
        payload[tl0_at] = payload[tl0_at].wrapping_add(tl0_offset);
        payload[tl0_at]
    });
    packet.payload = payload.into();
    (Some(out), tl0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_keyframes() {
        assert!(h264_keyframe(&[0x65, 0]), "IDR slice");
        assert!(h264_keyframe(&[0x67, 0]), "SPS");
        assert!(!h264_keyframe(&[0x41, 0]), "non-IDR slice");
        assert!(
            h264_keyframe(&[0x18, 0, 2, 0x67, 0, 0, 2, 0x68, 0]),
            "STAP-A with SPS"
        );
        assert!(
            h264_keyframe(&[0x7c, 0x85]),
            "first FU-A fragment of an IDR"
        );
        assert!(!h264_keyframe(&[0x7c, 0x05]), "a later fragment");
    }

    #[test]
    fn a_vp8_keyframe_states_its_size() {
        // Descriptor (X, S; 7-bit picture id), frame tag (key frame), start code, 640 x 360.
        let mut payload = vec![0x90, 0x80, 0x05, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a];
        payload.extend_from_slice(&640u16.to_le_bytes());
        payload.extend_from_slice(&360u16.to_le_bytes());
        assert_eq!(vp8_keyframe_size(&payload), Some((640, 360)));
        payload[3] |= 0x01; // an inter frame
        assert_eq!(vp8_keyframe_size(&payload), None);
        assert_eq!(
            vp8_keyframe_size(&[0x90, 0x80, 0x05, 0x50]),
            None,
            "too short"
        );
    }

    #[test]
    fn vp8_keyframes_and_picture_ids() {
        // X, S; I and L; 15-bit picture id 0x1234; TL0PICIDX 9; VP8 header with P = 0.
        let mut packet = rtp::Packet {
            payload: vec![0x90, 0xc0, 0x92, 0x34, 9, 0x00, 0xff].into(),
            ..Default::default()
        };
        assert!(is_keyframe_start(Codec::Vp8, &packet.payload));
        assert_eq!(rewrite_vp8(&mut packet, 2, 1), (Some(0x1236), Some(10)));
        assert_eq!(
            &packet.payload[..],
            &[0x90, 0xc0, 0x92, 0x36, 10, 0x00, 0xff]
        );
        let inter = [0x90, 0x80, 0x12, 0x01];
        assert!(
            !is_keyframe_start(Codec::Vp8, &inter),
            "P bit set: an inter frame"
        );
        assert!(
            !is_keyframe_start(Codec::Vp8, &[0x80, 0x80, 0x12, 0x00]),
            "not a frame start"
        );
    }
}
