//! Who may do what: the one place every HTTP handler and signalling message asks.
//!
//! [`decide`] is ARCHITECTURE.md's role table, row for row. [`decide_member_change`] and
//! [`decide_reset`] add the rules about other people's accounts, which "manage the class" alone
//! does not settle: a teacher manages the families, tutors and students of their class, never a
//! site admin or a fellow teacher, because a role change or a reset link for such an account
//! would hand the teacher that account. Nothing else in the crate compares roles; handlers
//! gather the facts (is the student promoted, what are the target's memberships) and these
//! functions decide.

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
    /// Watch a session's recording (where the session's log may be read at all).
    WatchRecording,
    /// Download a recording's files, and publish one to the timeline.
    DownloadRecording,
}

impl Action {
    pub const ALL: [Action; 14] = [
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
        Action::WatchRecording,
        Action::DownloadRecording,
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
            ReadTimeline | Comment | WatchClassroom | WatchOpenHouse | WatchRecording => Allowed,
            JoinTutoring => yes_if(facts.admitted),
            SeeAttendance | ExportLogs => OwnOnly,
            _ => Denied,
        },
        Who::Member(Tutor) => match action {
            HostTutoring => yes_if(facts.assigned_host),
            JoinTutoring | WatchOpenHouse => Allowed,
            // The recordings of the tutoring rooms they host (the session log's rule).
            WatchRecording => yes_if(facts.assigned_host),
            SeeAttendance | ExportLogs => OwnOnly,
            _ => Denied,
        },
        Who::Member(Student) => match action {
            ReadTimeline | WatchClassroom | WatchOpenHouse | WatchRecording => Allowed,
            PublishPost => DraftOnly,
            GoLive => yes_if(facts.promoted),
            JoinTutoring => yes_if(facts.admitted),
            _ => Denied,
        },
    }
}

/// A change to someone's membership of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    SetRole(Role),
    Remove,
}

/// The account a membership change or a reset link is aimed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub is_admin: bool,
    /// Every membership of the account: (class id, role).
    pub memberships: Vec<(i64, Role)>,
}

impl Target {
    pub fn role_in(&self, class_id: i64) -> Option<Role> {
        self.memberships
            .iter()
            .find(|(class, _)| *class == class_id)
            .map(|(_, role)| *role)
    }
}

/// May `who` (as seen in `class_id`) make `change` to `target`'s membership of that class?
/// Admins may do anything. A teacher may change the role of, or remove, only the families,
/// tutors and students of the class, never make anyone a teacher, and never add someone who
/// is not a member (people join through invites).
pub fn decide_member_change(
    who: Who,
    class_id: i64,
    target: &Target,
    change: MemberChange,
) -> Grant {
    let teacher_may = || {
        let managed = matches!(
            target.role_in(class_id),
            Some(Role::Family | Role::Tutor | Role::Student)
        );
        managed && !target.is_admin && change != MemberChange::SetRole(Role::Teacher)
    };
    match who {
        Who::Admin => Grant::Allowed,
        Who::Member(Role::Teacher) if teacher_may() => Grant::Allowed,
        _ => Grant::Denied,
    }
}

/// May the caller make a password-reset link for `target`? `taught` are the classes the caller
/// teaches. Admins may for anyone. Anyone else only for an account that is not an admin and
/// whose every membership is a family, tutor or student membership of a class the caller
/// teaches: a link for someone who is also elsewhere (or a teacher) would reach beyond the
/// caller's classes.
pub fn decide_reset(caller_is_admin: bool, taught: &[i64], target: &Target) -> Grant {
    let allowed = caller_is_admin
        || (!target.is_admin
            && target
                .memberships
                .iter()
                .all(|(class, role)| *role != Role::Teacher && taught.contains(class)));
    match allowed {
        true => Grant::Allowed,
        false => Grant::Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teachers_manage_only_the_families_tutors_and_students_of_their_class() {
        let teacher = Who::Member(Role::Teacher);
        let member = |role| Target {
            is_admin: false,
            memberships: vec![(1, role)],
        };
        let family = member(Role::Family);
        let change = |who, target: &Target, change| decide_member_change(who, 1, target, change);
        use MemberChange::*;
        assert_eq!(
            change(teacher, &family, SetRole(Role::Tutor)),
            Grant::Allowed
        );
        assert_eq!(change(teacher, &family, Remove), Grant::Allowed);
        assert_eq!(
            change(teacher, &family, SetRole(Role::Teacher)),
            Grant::Denied
        );
        let co_teacher = member(Role::Teacher);
        assert_eq!(
            change(teacher, &co_teacher, SetRole(Role::Family)),
            Grant::Denied
        );
        assert_eq!(change(teacher, &co_teacher, Remove), Grant::Denied);
        let admin = Target {
            is_admin: true,
            ..member(Role::Student)
        };
        assert_eq!(
            change(teacher, &admin, SetRole(Role::Family)),
            Grant::Denied
        );
        assert_eq!(change(teacher, &admin, Remove), Grant::Denied);
        let stranger = Target {
            is_admin: false,
            memberships: vec![(2, Role::Family)],
        };
        assert_eq!(
            change(teacher, &stranger, SetRole(Role::Family)),
            Grant::Denied
        );
        for target in [&family, &co_teacher, &admin, &stranger] {
            assert_eq!(
                change(Who::Admin, target, SetRole(Role::Teacher)),
                Grant::Allowed
            );
            for who in [
                Who::Member(Role::Family),
                Who::Member(Role::Tutor),
                Who::Outsider,
            ] {
                assert_eq!(change(who, target, Remove), Grant::Denied);
            }
        }
    }

    #[test]
    fn reset_links_reach_only_accounts_wholly_inside_the_callers_classes() {
        let target = |is_admin, memberships: &[(i64, Role)]| Target {
            is_admin,
            memberships: memberships.to_vec(),
        };
        let family = target(false, &[(1, Role::Family), (2, Role::Family)]);
        assert_eq!(decide_reset(false, &[1, 2], &family), Grant::Allowed);
        assert_eq!(
            decide_reset(false, &[1], &family),
            Grant::Denied,
            "also elsewhere"
        );
        let admin = target(true, &[(1, Role::Family)]);
        assert_eq!(decide_reset(false, &[1], &admin), Grant::Denied);
        let co_teacher = target(false, &[(1, Role::Teacher)]);
        assert_eq!(decide_reset(false, &[1], &co_teacher), Grant::Denied);
        for t in [&family, &admin, &co_teacher] {
            assert_eq!(decide_reset(true, &[], t), Grant::Allowed);
        }
    }

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
