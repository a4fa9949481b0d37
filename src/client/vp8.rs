//! The synthetic VP8 packet, written by the test publisher and read back by the receiver.
//!
//! Every packet opens with a real VP8 payload descriptor (RFC 7741 §4.2: a 15-bit picture
//! id, the start bit on a frame's first packet), so the SFU's keyframe logic and picture-id
//! rewriting work on it as on a browser's. The first packet of a keyframe then carries a real
//! keyframe header (RFC 6386 §9.1: the frame tag with the key-frame bit, the start code
//! 9d 01 2a, 14-bit width and height), which says what resolution the picture has: a receiver
//! of a simulcast track tells the layers apart by it, as a browser's decoder does. Every other
//! packet has one header byte (key frame or not). The checked payload follows.

/// Bytes before the checked payload: the descriptor (4) and the one header byte.
const PREFIX: usize = 5;

/// Bytes before the checked payload on a keyframe's first packet: the descriptor (4), the
/// frame tag (3), the start code (3), width and height (2 each).
const KEYFRAME_PREFIX: usize = 14;

const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// A video payload: the descriptor with `picture_id` (start bit on a frame's first packet),
/// the header (a keyframe's first packet states `size`), then the checked payload.
pub(crate) fn vp8_payload(
    start: bool,
    keyframe: bool,
    picture_id: u16,
    size: (u16, u16),
    checked: &[u8],
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(KEYFRAME_PREFIX + checked.len());
    payload.push(0x80 | if start { 0x10 } else { 0 });
    payload.push(0x80);
    payload.push(0x80 | ((picture_id >> 8) as u8 & 0x7f));
    payload.push(picture_id as u8);
    match (start, keyframe) {
        (true, true) => {
            // Frame tag: key frame (bit 0 clear), version 0, shown; partition size unused.
            payload.extend_from_slice(&[0x10, 0x00, 0x00]);
            payload.extend_from_slice(&START_CODE);
            payload.extend_from_slice(&(size.0 & 0x3fff).to_le_bytes());
            payload.extend_from_slice(&(size.1 & 0x3fff).to_le_bytes());
        }
        _ => payload.push(if keyframe { 0x00 } else { 0x01 }),
    }
    payload.extend_from_slice(checked);
    payload
}

/// What a receiver reads in a synthetic VP8 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Vp8View<'a> {
    /// The first packet of a frame.
    pub(super) start: bool,
    pub(super) keyframe: bool,
    pub(super) picture_id: u16,
    /// The picture's size, on a keyframe's first packet.
    pub(super) size: Option<(u16, u16)>,
    pub(super) checked: &'a [u8],
}

/// Reads a payload `vp8_payload` wrote; none when it is too short to be one.
pub(super) fn read(payload: &[u8]) -> Option<Vp8View<'_>> {
    let start = payload.first()? & 0x10 != 0;
    let picture_id = u16::from_be_bytes([payload.get(2)? & 0x7f, *payload.get(3)?]);
    let keyframe = payload.get(4)? & 0x01 == 0;
    let (size, prefix) = match start && keyframe {
        true => {
            let header = payload.get(4..KEYFRAME_PREFIX)?;
            if header[3..6] != START_CODE {
                return None;
            }
            let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
            let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
            (Some((width, height)), KEYFRAME_PREFIX)
        }
        false => (None, PREFIX),
    };
    Some(Vp8View {
        start,
        keyframe,
        picture_id,
        size,
        checked: payload.get(prefix..)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_states_its_size_and_every_packet_reads_back() {
        let first = vp8_payload(true, true, 0x1234, (1280, 720), b"checked");
        assert_eq!(first.len(), KEYFRAME_PREFIX + 7);
        // What the recorder and browsers read: the start code and the size after the tag.
        assert_eq!(first[7..10], START_CODE);
        assert_eq!(
            read(&first),
            Some(Vp8View {
                start: true,
                keyframe: true,
                picture_id: 0x1234,
                size: Some((1280, 720)),
                checked: b"checked",
            })
        );
        let rest = vp8_payload(false, true, 0x1234, (1280, 720), b"more");
        let view = read(&rest).unwrap();
        assert!(view.keyframe && !view.start && view.size.is_none());
        assert_eq!(view.checked, b"more");
        let delta = vp8_payload(true, false, 7, (320, 180), b"d");
        let delta = read(&delta).unwrap();
        assert!(delta.start && !delta.keyframe && delta.size.is_none());
        assert_eq!((delta.picture_id, delta.checked), (7, &b"d"[..]));
    }

    #[test]
    fn a_keyframe_without_its_start_code_is_not_read() {
        let mut bad = vp8_payload(true, true, 1, (640, 360), b"x");
        bad[8] = 0;
        assert_eq!(read(&bad), None);
        assert_eq!(read(&[0x90, 0x80]), None);
    }
}
