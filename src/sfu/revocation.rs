//! Ending someone's live participation because their right to it ended: a membership removed,
//! a sign-in session deleted (sign-out, password change or reset), an account deactivated.
//!
//! One mechanism for all of them: `Sfu::revoke` hands a `Revocation` to every live room it
//! concerns; each room tells the matching participants `kicked` (their socket closes, a WHIP or
//! WHEP session ends) and drops them, so their peer connections close at once. Admission at
//! join and the signalling's re-check of every message cover the moments in between.

/// Which of the user's participations a revocation reaches, by the credential they were
/// opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every one, stream-key encoders too (a membership removed, an account deactivated).
    Everything,
    /// Those opened with this sign-in session (signing out).
    Session(String),
    /// Those opened with any sign-in session but this one (a password change keeps the
    /// session that made it).
    SessionsExcept(String),
    /// Those opened with any sign-in session (a password reset).
    AnySession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub user_id: i64,
    /// Only rooms of this class; every class when `None`.
    pub class_id: Option<i64>,
    pub reach: Reach,
    /// Told to the participant in `kicked`.
    pub reason: &'static str,
}

impl Revocation {
    /// The user is no longer a member of the class.
    pub fn membership(user_id: i64, class_id: i64) -> Revocation {
        Revocation {
            user_id,
            class_id: Some(class_id),
            reach: Reach::Everything,
            reason: "removed_from_class",
        }
    }

    /// The account may no longer be used at all (deactivated or deleted).
    pub fn account(user_id: i64) -> Revocation {
        Revocation {
            user_id,
            class_id: None,
            reach: Reach::Everything,
            reason: "account_deactivated",
        }
    }

    /// Sign-in sessions of the user ended.
    pub fn sessions(user_id: i64, reach: Reach) -> Revocation {
        Revocation {
            user_id,
            class_id: None,
            reach,
            reason: "signed_out",
        }
    }

    /// Whether a participant of a room of `class_id`, opened by `user_id` with the sign-in
    /// session `session` (none for guests and stream keys), is reached.
    pub fn reaches(&self, class_id: i64, user_id: Option<i64>, session: Option<&str>) -> bool {
        if user_id != Some(self.user_id) || self.class_id.is_some_and(|c| c != class_id) {
            return false;
        }
        match (&self.reach, session) {
            (Reach::Everything, _) => true,
            (Reach::Session(ended), Some(session)) => ended == session,
            (Reach::SessionsExcept(kept), Some(session)) => kept != session,
            (Reach::AnySession, Some(_)) => true,
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_the_right_participations() {
        let removed = Revocation::membership(7, 1);
        assert!(removed.reaches(1, Some(7), Some("s")));
        assert!(removed.reaches(1, Some(7), None), "their encoder too");
        assert!(!removed.reaches(2, Some(7), Some("s")), "another class");
        assert!(!removed.reaches(1, Some(8), Some("s")), "another user");
        assert!(!removed.reaches(1, None, None), "guests");

        let out = Revocation::sessions(7, Reach::Session("a".into()));
        assert!(out.reaches(3, Some(7), Some("a")));
        assert!(!out.reaches(3, Some(7), Some("b")), "another device");
        assert!(
            !out.reaches(3, Some(7), None),
            "a stream key is not a session"
        );

        let changed = Revocation::sessions(7, Reach::SessionsExcept("a".into()));
        assert!(!changed.reaches(3, Some(7), Some("a")));
        assert!(changed.reaches(3, Some(7), Some("b")));

        let reset = Revocation::sessions(7, Reach::AnySession);
        assert!(reset.reaches(3, Some(7), Some("a")) && !reset.reaches(3, Some(7), None));
        assert!(Revocation::account(7).reaches(9, Some(7), None));
    }
}
