//! The vocabulary of live rooms that the SFU, the signalling and the HTTP API share: kinds of
//! room, kinds and sources of media, a published track as others see it, and the layers and
//! quality choices of simulcast. The wire protocol (`signal::protocol`) carries these as they
//! are; nothing here knows of the wire.

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
