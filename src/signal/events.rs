//! The SFU's events as wire messages: the one place where what a room or a participant's
//! media tells the participant (`sfu::event::Event`) becomes a `ServerMessage`.

use super::error::SignalError;
use super::protocol::ServerMessage;
use crate::sfu::event::Event;

impl From<Event> for ServerMessage {
    fn from(event: Event) -> ServerMessage {
        match event {
            Event::ParticipantJoined(participant) => {
                ServerMessage::ParticipantJoined { participant }
            }
            Event::ParticipantUpdated(participant) => {
                ServerMessage::ParticipantUpdated { participant }
            }
            Event::ParticipantLeft {
                participant_id,
                reason,
            } => ServerMessage::ParticipantLeft {
                participant_id,
                reason: reason.to_owned(),
            },
            Event::ParticipantCount(count) => ServerMessage::ParticipantCount { count },
            Event::TrackPublished(track) => ServerMessage::TrackPublished { track },
            Event::TrackUnpublished {
                track_id,
                participant_id,
            } => ServerMessage::TrackUnpublished {
                track_id,
                participant_id,
            },
            Event::TrackMuted {
                track_id,
                participant_id,
                muted,
            } => ServerMessage::TrackMuted {
                track_id,
                participant_id,
                muted,
            },
            Event::Chat {
                participant_id,
                display_name,
                text,
                at,
            } => ServerMessage::Chat {
                participant_id,
                display_name,
                text,
                at,
            },
            Event::Admitted => ServerMessage::Admitted,
            Event::RecordingStarted { by } => ServerMessage::Recording {
                recording: true,
                by,
                reason: None,
            },
            Event::RecordingStopped { by, reason } => ServerMessage::Recording {
                recording: false,
                by,
                reason: Some(reason.to_owned()),
            },
            Event::Kicked { reason } => ServerMessage::Kicked {
                reason: reason.to_owned(),
            },
            Event::Ended { reason } => ServerMessage::Ended {
                reason: reason.to_owned(),
            },
            Event::Offer { sdp } => ServerMessage::Offer { sdp },
            Event::Candidate { target, candidate } => {
                ServerMessage::Candidate { target, candidate }
            }
            Event::Reception {
                quality,
                video,
                weak,
                estimate_kbps,
                layers,
            } => ServerMessage::Reception {
                quality,
                video,
                weak,
                estimate_kbps,
                layers,
            },
            Event::Done { request } => ServerMessage::Ok { id: request },
            Event::Failed { request, error } => SignalError::from(error).to_message(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Candidate, Target};
    use crate::sfu::error::RoomError;

    /// Events come out as docs/signalling.md shows them.
    #[test]
    fn events_read_as_documented() {
        let cases = [
            (
                Event::ParticipantLeft {
                    participant_id: 9,
                    reason: "left",
                },
                r#"{"type": "participant_left", "participant_id": 9, "reason": "left"}"#,
            ),
            (
                Event::ParticipantCount(27),
                r#"{"type": "participant_count", "count": 27}"#,
            ),
            (
                Event::RecordingStarted {
                    by: "Ms Ada".into(),
                },
                r#"{"type": "recording", "recording": true, "by": "Ms Ada"}"#,
            ),
            (
                Event::RecordingStopped {
                    by: "Ms Ada".into(),
                    reason: "stopped",
                },
                r#"{"type": "recording", "recording": false, "by": "Ms Ada", "reason": "stopped"}"#,
            ),
            (
                Event::Kicked {
                    reason: "removed by the host",
                },
                r#"{"type": "kicked", "reason": "removed by the host"}"#,
            ),
            (
                Event::Candidate {
                    target: Target::Subscriber,
                    candidate: Candidate {
                        candidate: "candidate:2 1 udp 1 203.0.113.10 8443 typ host".into(),
                        sdp_mid: Some("0".into()),
                        sdp_mline_index: Some(0),
                    },
                },
                r#"{"type": "candidate", "target": "subscriber", "candidate": {"candidate": "candidate:2 1 udp 1 203.0.113.10 8443 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}"#,
            ),
            (Event::Done { request: 5 }, r#"{"type": "ok", "id": 5}"#),
            (
                Event::Failed {
                    request: Some(4),
                    error: RoomError::BadSdp("the answer was refused: no".into()),
                },
                r#"{"type": "error", "id": 4, "code": "bad_sdp", "message": "the answer was refused: no"}"#,
            ),
            (
                Event::Failed {
                    request: None,
                    error: RoomError::Internal,
                },
                r#"{"type": "error", "code": "internal", "message": "the server could not do this"}"#,
            ),
        ];
        for (event, documented) in cases {
            let documented: serde_json::Value = serde_json::from_str(documented).unwrap();
            let message = serde_json::to_value(ServerMessage::from(event)).unwrap();
            assert_eq!(message, documented);
        }
    }
}
