//! The kind of a room and how a participant stands in it (admin, member role, guest; the
//! assigned host; promoted; waiting): every permission in the room is decided from this anew,
//! through the one permission function.

use crate::access::{decide, Action, Facts, Who};

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

/// How a participant stands, from which every permission in the room is decided anew.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub who: Who,
    pub kind: RoomKind,
    /// The tutor assigned to host this tutoring room.
    pub assigned_host: bool,
    pub promoted: bool,
    pub waiting: bool,
}

impl Standing {
    fn facts(&self) -> Facts {
        Facts {
            promoted: self.promoted,
            assigned_host: self.assigned_host,
            admitted: !self.waiting,
        }
    }

    /// May moderate: the teacher (or admin) of a broadcast, the host of a tutoring room.
    pub fn host(&self) -> bool {
        let plain = Facts {
            promoted: false,
            ..self.facts()
        };
        match self.kind {
            RoomKind::Classroom | RoomKind::OpenHouse => {
                decide(self.who, Action::GoLive, plain).allowed()
            }
            RoomKind::Tutoring => decide(self.who, Action::HostTutoring, plain).allowed(),
        }
    }

    pub fn may_publish(&self) -> bool {
        match self.kind {
            RoomKind::Classroom | RoomKind::OpenHouse => {
                decide(self.who, Action::GoLive, self.facts()).allowed()
            }
            RoomKind::Tutoring => {
                self.host() || decide(self.who, Action::JoinTutoring, self.facts()).allowed()
            }
        }
    }
}
