//! The kind of a room and how a participant stands in it (admin, member role, guest; the
//! assigned host; promoted; waiting): every permission in the room is decided from this anew,
//! through the one permission function.

use crate::access::{decide, Action, Facts, Who};
pub use crate::domain::RoomKind;

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
