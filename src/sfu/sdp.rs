//! What the SFU reads in and adds to SDP text itself: which tracks a publisher's offer sends,
//! whether it sends something viewers can decode (and simulcast the SFU can take), the first media
//! section's mid (for candidates), the session-level `a=msid-semantic` line and the audio
//! packet length asked of publishers.

use std::collections::BTreeSet;

use super::layers::MAX_LAYERS;

/// The codecs every viewer can decode, as said in errors.
pub const ACCEPTED_CODECS: &str = "Opus, VP8 or H.264 constrained baseline";

/// Why a publisher's offer is refused before it reaches the WebRTC stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the {kind} track offers no codec every viewer can decode; send {ACCEPTED_CODECS}")]
    NoCodec { kind: String },
    #[error(
        "simulcast is taken as up to three encodings of a video track, each with a rid \
         (a=rid, a=simulcast), not as an SSRC group"
    )]
    Simulcast,
}

/// The media sections (after the first line) of an SDP.
fn sections(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split("\nm=").skip(1)
}

/// Whether a section sends media: not rejected (port 0), not recvonly or inactive.
fn sends(section: &str) -> bool {
    let rejected = section.split_whitespace().nth(1) == Some("0");
    !rejected
        && !section
            .lines()
            .map(str::trim_end)
            .any(|l| l == "a=recvonly" || l == "a=inactive")
}

/// The client track ids (`a=msid:<stream> <track>`) of the media sections an offer sends on.
pub fn sending_track_ids(sdp: &str) -> BTreeSet<String> {
    sections(sdp)
        .filter(|s| sends(s))
        .filter_map(|section| {
            section.lines().map(str::trim_end).find_map(|line| {
                line.strip_prefix("a=msid:")
                    .and_then(|msid| msid.split_whitespace().nth(1))
                    .map(str::to_owned)
            })
        })
        .collect()
}

/// The RTP header extension id an SDP gives `uri` in its audio section, if any.
pub fn audio_extension_id(sdp: &str, uri: &str) -> Option<u8> {
    sections(sdp)
        .filter(|s| s.starts_with("audio"))
        .flat_map(str::lines)
        .filter_map(|l| l.trim_end().strip_prefix("a=extmap:"))
        .find_map(|map| {
            let (id, rest) = map.split_once(' ')?;
            let id = id.split('/').next()?;
            (rest.split_whitespace().next()? == uri).then(|| id.parse().ok())?
        })
}

/// Refuses an offer that sends audio or video in no codec viewers can decode, or sends
/// simulcast the SFU cannot tell apart: audio, more than three encodings, or encodings
/// without rids (an SSRC group).
pub fn check_offer(sdp: &str) -> Result<(), OfferError> {
    for section in sections(sdp).filter(|s| sends(s)) {
        let kind = section.split_whitespace().next().unwrap_or_default();
        if kind != "audio" && kind != "video" {
            continue;
        }
        let lines: Vec<&str> = section.lines().map(str::trim_end).collect();
        let rids = lines.iter().filter(|l| l.starts_with("a=rid:")).count();
        let unnamed = lines.iter().any(|l| l.starts_with("a=ssrc-group:SIM"));
        if unnamed || rids > MAX_LAYERS || (kind == "audio" && rids > 0) {
            return Err(OfferError::Simulcast);
        }
        let decodable = lines
            .iter()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .any(|map| {
                let (pt, codec) = map.split_once(' ').unwrap_or((map, ""));
                let name = codec
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match name.as_str() {
                    "opus" => kind == "audio",
                    "vp8" => kind == "video",
                    "h264" => kind == "video" && constrained_baseline(&lines, pt),
                    _ => false,
                }
            });
        if !decodable {
            return Err(OfferError::NoCodec {
                kind: kind.to_owned(),
            });
        }
    }
    Ok(())
}

/// Whether payload type `pt`'s fmtp names H.264 constrained baseline (profile-level-id 42e0xx,
/// or 42c0xx / 4200xx which constrained-baseline decoders also play).
fn constrained_baseline(lines: &[&str], pt: &str) -> bool {
    let prefix = format!("a=fmtp:{pt} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .flat_map(|fmtp| fmtp.split(';'))
        .filter_map(|p| p.trim().strip_prefix("profile-level-id="))
        .any(|id| {
            let id = id.to_ascii_lowercase();
            id.starts_with("42e0") || id.starts_with("42c0") || id.starts_with("4200")
        })
}

/// The mid of the first media section: every candidate of a bundled connection belongs to it.
pub fn first_mid(sdp: &str) -> Option<String> {
    sections(sdp).next().and_then(|section| {
        section
            .lines()
            .map(str::trim_end)
            .find_map(|l| l.strip_prefix("a=mid:").map(str::to_owned))
    })
}

/// Adds `a=msid-semantic: WMS *` at session level when missing (the WebRTC crate leaves it out
/// of a connection's first offer, and some clients then ignore the `a=msid` lines).
pub fn with_msid_semantic(sdp: String) -> String {
    if sdp.contains("a=msid-semantic") {
        return sdp;
    }
    match sdp.find("\nm=") {
        Some(at) => format!(
            "{}\r\na=msid-semantic: WMS *\r{}",
            sdp[..at].trim_end_matches('\r'),
            &sdp[at..]
        ),
        None => sdp,
    }
}

/// The audio packet length publishers are asked for, in ms. At Chrome's default of 20 ms,
/// headers (IP, UDP, RTP, SRTP: about 60 bytes) cost 25 kbit/s, as much as the voice; 40 ms halves
/// that, so audio alone takes about 35 kbit/s and a 60 kbit/s home link carries it with room
/// left for signalling. Opus is made for 40 ms frames; 20 ms more delay goes unnoticed in a
/// class stream or a tutoring call.
pub const AUDIO_PTIME_MS: u32 = 40;

/// Adds `a=ptime` to each audio section of an answer that has none: the publisher sends what
/// the answer asks for.
pub fn with_audio_ptime(sdp: String) -> String {
    let Some(first) = sdp.find("\nm=") else {
        return sdp;
    };
    let mut out = sdp[..first + 1].to_owned();
    for section in sections(&sdp) {
        out.push_str("m=");
        out.push_str(section.trim_end_matches(['\r', '\n']));
        out.push_str("\r\n");
        if section.starts_with("audio") && !section.contains("\na=ptime:") {
            out.push_str(&format!("a=ptime:{AUDIO_PTIME_MS}\r\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    #[test]
    fn only_sending_sections_count() {
        let sdp = format!(
            "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=msid:s mic\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:s cam\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\na=msid:s screen\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendonly\r\na=msid:s gone\r\n"
        );
        let ids: Vec<String> = sending_track_ids(&sdp).into_iter().collect();
        assert_eq!(ids, ["cam", "mic"]);
        assert_eq!(first_mid(&sdp).as_deref(), Some("0"));
    }

    #[test]
    fn codecs_viewers_cannot_decode_are_refused() {
        let good = format!(
            "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=mid:1\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
        );
        assert_eq!(check_offer(&good), Ok(()));
        let vp9_only =
            format!("{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:0\r\na=rtpmap:98 VP9/90000\r\n");
        assert_eq!(
            check_offer(&vp9_only),
            Err(OfferError::NoCodec {
                kind: "video".into()
            })
        );
        let h264_high = format!(
            "{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 packetization-mode=1;profile-level-id=640c1f\r\n"
        );
        assert!(check_offer(&h264_high).is_err());
        // A section that only receives needs no codec of ours.
        let receiving = format!(
            "{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:0\r\na=recvonly\r\na=rtpmap:98 VP9/90000\r\n"
        );
        assert_eq!(check_offer(&receiving), Ok(()));
    }

    #[test]
    fn simulcast_is_taken_with_rids_only() {
        let sdp = format!(
            "{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n\
            a=rid:h send\r\na=rid:l send\r\na=simulcast:send h;l\r\n"
        );
        assert_eq!(check_offer(&sdp), Ok(()));
        let four = sdp.replace("a=simulcast", "a=rid:m send\r\na=rid:x send\r\na=simulcast");
        assert_eq!(check_offer(&four), Err(OfferError::Simulcast));
        let ssrcs = format!(
            "{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n\
            a=ssrc-group:SIM 1 2 3\r\n"
        );
        assert_eq!(check_offer(&ssrcs), Err(OfferError::Simulcast));
    }

    #[test]
    fn the_audio_level_extension_is_found_in_the_audio_section() {
        let sdp = format!(
            "{HEAD}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:3 urn:x\r\na=extmap:7/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
        );
        assert_eq!(
            audio_extension_id(&sdp, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            Some(7)
        );
        assert_eq!(audio_extension_id(&sdp, "urn:y"), None);
    }

    #[test]
    fn msid_semantic_is_added_once() {
        let sdp = format!("{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n");
        let with = with_msid_semantic(sdp);
        assert!(
            with.contains("t=0 0\r\na=msid-semantic: WMS *\r\nm=audio"),
            "{with}"
        );
        assert_eq!(with_msid_semantic(with.clone()), with);
    }

    #[test]
    fn audio_sections_of_an_answer_ask_for_40_ms_packets() {
        let sdp = format!(
            "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=ptime:20\r\n"
        );
        let asked = with_audio_ptime(sdp);
        assert_eq!(
            asked,
            format!(
                "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\na=ptime:40\r\n\
                m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=ptime:20\r\n"
            )
        );
        assert_eq!(with_audio_ptime(HEAD.to_owned()), HEAD);
    }
}
