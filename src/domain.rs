//! The vocabulary of live rooms that the SFU, the signalling and the HTTP API share: kinds of
//! room, kinds and sources of media, a published track and a participant as others see them,
//! what a participant may do, a participant's two connections and their ICE candidates, and
//! the layers and quality choices of simulcast. The wire protocol (`signal::protocol`) carries
//! these as they are; nothing here knows of the wire.

use serde::{Deserialize, Serialize};

/// The three kinds of room of ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    Classroom,
    Tutoring,
    OpenHouse,
}

impl RoomKind {
    pub fn parse(text: &str) -> Option<RoomKind> {
        match text {
            "classroom" => Some(RoomKind::Classroom),
            "tutoring" => Some(RoomKind::Tutoring),
            "open_house" => Some(RoomKind::OpenHouse),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Classroom => "classroom",
            RoomKind::Tutoring => "tutoring",
            RoomKind::OpenHouse => "open_house",
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// What a published track shows, so viewers can lay out camera and screen differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Camera,
    Microphone,
    Screen,
}

/// A published track. On the subscriber connection its MediaStream id is the
/// `participant_id` and its track id is `track_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub track_id: String,
    pub participant_id: u64,
    pub kind: MediaKind,
    pub source: Source,
    pub muted: bool,
}

/// A person in the room, as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub participant_id: u64,
    pub display_name: String,
    /// teacher, family, tutor, student, guest or admin.
    pub role: String,
    pub host: bool,
    pub presenter: bool,
    pub hand_raised: bool,
    /// Waiting for the host to admit them (tutoring rooms).
    pub waiting: bool,
}

/// What a participant may do in the room, decided by the permission function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abilities {
    pub publish: bool,
    pub host: bool,
    pub chat: bool,
}

/// Which of a participant's two peer connections something is about: the one it publishes on
/// (the client offers) or the one it receives on (the server offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Publisher,
    Subscriber,
}

/// An ICE candidate as the browser's `RTCIceCandidateInit` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "sdpMLineIndex"
    )]
    pub sdp_mline_index: Option<u16>,
}

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
