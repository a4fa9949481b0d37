//! Who may do what: the one function every HTTP handler and signalling message asks.
//!
//! The table below is ARCHITECTURE.md's role table, row for row. Nothing else in the crate
//! compares roles; handlers gather the facts (is the student promoted, is the tutor the room's
//! host) and this function decides.

use serde::{Deserialize, Serialize};

/// A member's role in one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Teacher,
    Family,
    Tutor,
    Student,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Family => "family",
            Role::Tutor => "tutor",
            Role::Student => "student",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "teacher" => Some(Role::Teacher),
            "family" => Some(Role::Family),
            "tutor" => Some(Role::Tutor),
            "student" => Some(Role::Student),
            _ => None,
        }
    }
}

/// Who is asking, as seen from one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    Member(Role),
    /// Holds an open-house guest link of this class, and nothing else.
    Guest,
    /// Signed in, but not a member of this class.
    Outsider,
}

/// Everything the role table has a row for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Edit the class, its members, students and rooms.
    ManageClass,
    CreateInvite,
    ReadTimeline,
    Comment,
    PublishPost,
    /// Publish media in a classroom or open-house room.
    GoLive,
    WatchClassroom,
    HostTutoring,
    JoinTutoring,
    WatchOpenHouse,
    SeeAttendance,
    ExportLogs,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::ManageClass,
        Action::CreateInvite,
        Action::ReadTimeline,
        Action::Comment,
        Action::PublishPost,
        Action::GoLive,
        Action::WatchClassroom,
        Action::HostTutoring,
        Action::JoinTutoring,
        Action::WatchOpenHouse,
        Action::SeeAttendance,
        Action::ExportLogs,
    ];
}

/// Facts about the situation that some rows depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The teacher promoted this student to presenter in the live room.
    pub promoted: bool,
    /// This tutor is the assigned host of the tutoring room.
    pub assigned_host: bool,
    /// The host admitted this family member or student into the tutoring room.
    pub admitted: bool,
}

/// The answer: whether, and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    Denied,
    Allowed,
    /// Students may write posts, but only as drafts a teacher approves.
    DraftOnly,
    /// Families see their own attendance only; tutors the logs of their own rooms.
    OwnOnly,
}

impl Grant {
    pub fn allowed(self) -> bool {
        self != Grant::Denied
    }
}

/// The role table. Read a row as "may `who` do `action`, given `facts`?".
pub fn decide(who: Who, action: Action, facts: Facts) -> Grant {
    use Action::*;
    use Grant::*;
    use Role::*;
    let yes_if = |cond: bool| if cond { Allowed } else { Denied };
    match who {
        Who::Admin => Allowed,
        Who::Outsider => Denied,
        Who::Guest => yes_if(action == WatchOpenHouse),
        Who::Member(Teacher) => Allowed,
        Who::Member(Family) => match action {
            ReadTimeline | Comment | WatchClassroom | WatchOpenHouse => Allowed,
            JoinTutoring => yes_if(facts.admitted),
            SeeAttendance | ExportLogs => OwnOnly,
            _ => Denied,
        },
        Who::Member(Tutor) => match action {
            HostTutoring => yes_if(facts.assigned_host),
            JoinTutoring | WatchOpenHouse => Allowed,
            SeeAttendance | ExportLogs => OwnOnly,
            _ => Denied,
        },
        Who::Member(Student) => match action {
            ReadTimeline | WatchClassroom | WatchOpenHouse => Allowed,
            PublishPost => DraftOnly,
            GoLive => yes_if(facts.promoted),
            JoinTutoring => yes_if(facts.admitted),
            _ => Denied,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_rows_need_their_fact() {
        let none = Facts::default();
        let student = Who::Member(Role::Student);
        assert_eq!(decide(student, Action::GoLive, none), Grant::Denied);
        assert_eq!(
            decide(
                student,
                Action::GoLive,
                Facts {
                    promoted: true,
                    ..none
                }
            ),
            Grant::Allowed
        );
        let tutor = Who::Member(Role::Tutor);
        assert_eq!(decide(tutor, Action::HostTutoring, none), Grant::Denied);
        assert_eq!(
            decide(
                tutor,
                Action::HostTutoring,
                Facts {
                    assigned_host: true,
                    ..none
                }
            ),
            Grant::Allowed
        );
        let family = Who::Member(Role::Family);
        assert_eq!(decide(family, Action::JoinTutoring, none), Grant::Denied);
        assert_eq!(decide(family, Action::SeeAttendance, none), Grant::OwnOnly);
        for action in Action::ALL {
            assert_eq!(
                decide(Who::Outsider, action, none),
                Grant::Denied,
                "{action:?}"
            );
            let guest = decide(Who::Guest, action, none);
            assert_eq!(
                guest.allowed(),
                action == Action::WatchOpenHouse,
                "{action:?}"
            );
        }
    }
}
