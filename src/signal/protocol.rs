//! The signalling protocol: JSON objects with a `type` field over one WebSocket.
//!
//! Requests carry an `id` that the answer (or an `error`) echoes; events the server sends on
//! its own have no `id`. Each participant has two peer connections: `publisher` (the client
//! offers, to send its camera, microphone and screen) and `subscriber` (the server offers, and
//! offers again whenever tracks come and go). `docs/signalling.md` shows one example of each
//! message; the tests and the load tool use these same types.

use serde::{Deserialize, Serialize};

use crate::config::IceServer;
pub use crate::domain::{
    Abilities, Candidate, Layer, MediaKind, ParticipantInfo, Quality, Source, Target, TrackInfo,
};

/// Messages from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room. A guest's room token already names the room.
    Join {
        id: u64,
        room_id: i64,
    },
    /// An SDP offer for the publisher connection; `sources` maps the browser's track ids to
    /// what they show (default: audio is the microphone, video the camera).
    Offer {
        id: u64,
        sdp: String,
        #[serde(default)]
        sources: std::collections::BTreeMap<String, Source>,
    },
    /// The answer to the server's subscriber offer.
    Answer {
        id: u64,
        sdp: String,
    },
    /// The client could not apply the last subscriber offer or make its answer; the server
    /// rolls that offer back and sends a fresh one.
    AnswerFailed {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The client's network changed: the server restarts ICE on the subscriber connection
    /// (a new offer with new credentials); the client re-offers its publisher connection
    /// with new credentials itself. The participant stays.
    IceRestart {
        id: u64,
    },
    Candidate {
        id: u64,
        target: Target,
        candidate: Candidate,
    },
    Chat {
        id: u64,
        text: String,
    },
    Hand {
        id: u64,
        raised: bool,
    },
    /// Receive audio only (weak connections), or video again.
    AudioOnly {
        id: u64,
        enabled: bool,
    },
    /// Choose what video to receive: auto, a fixed layer, or audio only.
    Quality {
        id: u64,
        quality: Quality,
    },
    /// Show a camera large (a pinned tile), or none to follow the room.
    Focus {
        id: u64,
        track_id: Option<String>,
    },
    /// Ask the publisher of a video track for a fresh keyframe (e.g. after a video stalls).
    Keyframe {
        id: u64,
        track_id: String,
    },
    /// Host: let a waiting family member or student into a tutoring room.
    Admit {
        id: u64,
        participant_id: u64,
    },
    /// Host: let a student present in a classroom, or take it back.
    Promote {
        id: u64,
        participant_id: u64,
        presenter: bool,
    },
    /// Host: stop forwarding a participant's audio or video (`muted`, the default), or
    /// forward it again.
    Mute {
        id: u64,
        participant_id: u64,
        kind: MediaKind,
        #[serde(default = "yes")]
        muted: bool,
    },
    /// Host: remove a participant from the room.
    Kick {
        id: u64,
        participant_id: u64,
    },
    /// Host: end the live session for everyone.
    End {
        id: u64,
    },
    /// Host: start recording the session (everyone is told), or stop.
    StartRecording {
        id: u64,
    },
    StopRecording {
        id: u64,
    },
    Leave {
        id: u64,
    },
    Ping {
        id: u64,
    },
}

fn yes() -> bool {
    true
}

impl ClientMessage {
    /// The `type` on the wire (rates are kept per type).
    pub fn kind(&self) -> &'static str {
        use ClientMessage::*;
        match self {
            Join { .. } => "join",
            Offer { .. } => "offer",
            Answer { .. } => "answer",
            AnswerFailed { .. } => "answer_failed",
            IceRestart { .. } => "ice_restart",
            Candidate { .. } => "candidate",
            Chat { .. } => "chat",
            Hand { .. } => "hand",
            AudioOnly { .. } => "audio_only",
            Quality { .. } => "quality",
            Focus { .. } => "focus",
            Keyframe { .. } => "keyframe",
            Admit { .. } => "admit",
            Promote { .. } => "promote",
            Mute { .. } => "mute",
            Kick { .. } => "kick",
            End { .. } => "end",
            StartRecording { .. } => "start_recording",
            StopRecording { .. } => "stop_recording",
            Leave { .. } => "leave",
            Ping { .. } => "ping",
        }
    }

    pub fn id(&self) -> u64 {
        use ClientMessage::*;
        match self {
            Join { id, .. }
            | Offer { id, .. }
            | Answer { id, .. }
            | AnswerFailed { id, .. }
            | IceRestart { id }
            | Candidate { id, .. }
            | Chat { id, .. }
            | Hand { id, .. }
            | AudioOnly { id, .. }
            | Quality { id, .. }
            | Focus { id, .. }
            | Keyframe { id, .. }
            | Admit { id, .. }
            | Promote { id, .. }
            | Mute { id, .. }
            | Kick { id, .. }
            | End { id }
            | StartRecording { id }
            | StopRecording { id }
            | Leave { id }
            | Ping { id } => *id,
        }
    }
}

/// Messages from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        id: u64,
        participant_id: u64,
        room_id: i64,
        room_kind: String,
        room_name: String,
        session_id: i64,
        abilities: Abilities,
        /// Waiting to be admitted; no media flows until `admitted`.
        waiting: bool,
        ice_servers: Vec<IceServer>,
        /// The others, for those who see the list (hosts, and everyone admitted to a
        /// tutoring room); empty for everyone else, who get `participant_count`.
        participants: Vec<ParticipantInfo>,
        /// How many people are here, this participant included.
        participant_count: u64,
        tracks: Vec<TrackInfo>,
        /// The session is being recorded.
        #[serde(default)]
        recording: bool,
    },
    /// The answer to a publisher offer.
    Answer {
        id: u64,
        sdp: String,
    },
    /// A subscriber offer; the client replies with `answer`.
    Offer {
        sdp: String,
    },
    Candidate {
        target: Target,
        candidate: Candidate,
    },
    /// A request succeeded and has nothing else to say.
    Ok {
        id: u64,
    },
    Pong {
        id: u64,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantUpdated {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: u64,
        reason: String,
    },
    /// How many people are here, to those who do not get the list; at most one a second.
    ParticipantCount {
        count: u64,
    },
    TrackPublished {
        track: TrackInfo,
    },
    TrackUnpublished {
        track_id: String,
        participant_id: u64,
    },
    /// What this subscriber receives now; sent when it changes.
    Reception {
        quality: Quality,
        /// The best layer of any track, or `off`.
        video: Layer,
        /// The link does not carry the lowest layer.
        weak: bool,
        estimate_kbps: u64,
        layers: std::collections::BTreeMap<String, Layer>,
    },
    TrackMuted {
        track_id: String,
        participant_id: u64,
        muted: bool,
    },
    Chat {
        participant_id: u64,
        display_name: String,
        text: String,
        at: i64,
    },
    Admitted,
    /// Recording started or stopped: `by` names the host who did it (empty when it stopped on
    /// its own), `reason` says why it stopped.
    Recording {
        recording: bool,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// You were removed from the room; the server closes the connection.
    Kicked {
        reason: String,
    },
    /// The live session is over; the server closes the connection.
    Ended {
        reason: String,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        code: String,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_snake_case() {
        let message: ClientMessage =
            serde_json::from_str(r#"{"type":"join","id":1,"room_id":7}"#).unwrap();
        assert_eq!(message, ClientMessage::Join { id: 1, room_id: 7 });
        let candidate = r#"{"type":"candidate","id":2,"target":"publisher","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        assert!(matches!(
            serde_json::from_str::<ClientMessage>(candidate).unwrap(),
            ClientMessage::Candidate { .. }
        ));
        assert!(serde_json::from_str::<ClientMessage>(
            r#"{"type":"join","id":1,"room_id":7,"x":1}"#
        )
        .is_err());
        let error = ServerMessage::Error {
            id: Some(3),
            code: "not_allowed".into(),
            message: "no".into(),
        };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","id":3,"code":"not_allowed","message":"no"}"#
        );
    }
}

/// `docs/signalling.md` shows one example of every message; each must parse with these types.
#[cfg(test)]
mod documented {
    use super::*;

    #[test]
    fn every_message_has_a_parsing_example() {
        let doc = include_str!("../../docs/signalling.md");
        let (client_part, server_part) =
            doc.split_once("## Server → client").expect("two sections");
        let examples = |part: &str| -> Vec<serde_json::Value> {
            part.split("```json")
                .skip(1)
                .map(|b| serde_json::from_str(b.split("```").next().unwrap()).expect("valid JSON"))
                .collect()
        };
        let mut client_types = std::collections::BTreeSet::new();
        for example in examples(client_part) {
            let message: ClientMessage = serde_json::from_value(example.clone())
                .unwrap_or_else(|e| panic!("{example}: {e}"));
            client_types.insert(
                serde_json::to_value(&message).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let mut server_types = std::collections::BTreeSet::new();
        for example in examples(server_part) {
            let message: ServerMessage = serde_json::from_value(example.clone())
                .unwrap_or_else(|e| panic!("{example}: {e}"));
            server_types.insert(
                serde_json::to_value(&message).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        // Adding a message type without documenting it fails here.
        assert_eq!(
            client_types.len(),
            crate::signal::connection::KNOWN_TYPES.len(),
            "{client_types:?}"
        );
        assert_eq!(server_types.len(), 20, "{server_types:?}");
    }
}
