//! The reading side of session logs: a class's live sessions, their events, and attendance
//! worked out from join and leave events.

use serde::Serialize;
use sqlx::FromRow;

use super::Store;

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct SessionRow {
    pub id: i64,
    pub room_id: i64,
    pub room_name: String,
    pub room_kind: String,
    pub class_id: i64,
    #[serde(skip)]
    pub host_user_id: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub peak_participants: i64,
    pub recording_path: Option<String>,
    /// The session's latest recording that can be watched (`/recording/{id}`).
    pub recording_id: Option<i64>,
    /// When the cleaner deleted the session's recording (past retention), if it did.
    pub recording_deleted_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub at: i64,
    pub user_id: Option<i64>,
    pub actor_name: String,
    pub kind: String,
    pub detail: String,
}

const COLUMNS: &str =
    "s.id, s.room_id, r.name AS room_name, r.kind AS room_kind, r.class_id, r.host_user_id,
     s.started_at, s.ended_at, s.end_reason, s.peak_participants, s.recording_path,
     (SELECT MAX(x.id) FROM recordings x WHERE x.session_id = s.id AND x.state = 'ready') AS recording_id,
     (SELECT MAX(x.deleted_at) FROM recordings x WHERE x.session_id = s.id AND x.state = 'deleted') AS recording_deleted_at";

impl Store {
    /// A class's sessions started in [from, to), newest first.
    pub async fn class_sessions(
        &self,
        class_id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM live_sessions s JOIN rooms r ON r.id = s.room_id
             WHERE r.class_id = $1 AND s.started_at >= $2 AND s.started_at < $3
             ORDER BY s.started_at DESC, s.id DESC"
        ))
        .bind(class_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
    }

    pub async fn session_log(&self, session_id: i64) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM live_sessions s JOIN rooms r ON r.id = s.room_id WHERE s.id = $1"))
            .bind(session_id)
            .fetch_optional(self.pool())
            .await
    }

    /// Whether the user joined the session, or (when `as_family`: the caller is a family
    /// member of the class) is family of a student of the class who did. Only a family's link
    /// counts: an invite may link a tutor to a student as well.
    pub async fn took_part(
        &self,
        session_id: i64,
        class_id: i64,
        user_id: i64,
        as_family: bool,
    ) -> Result<bool, sqlx::Error> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM session_events e
             WHERE e.session_id = $1 AND e.kind = 'join' AND e.user_id IS NOT NULL AND (
                 e.user_id = $2 OR (EXISTS (
                     SELECT 1 FROM students s JOIN family_students f ON f.student_id = s.id
                     WHERE s.user_id = e.user_id AND s.class_id = $3 AND f.user_id = $2) AND $4 = 1))",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(class_id)
        .bind(as_family as i64)
        .fetch_one(self.pool())
        .await?;
        Ok(count > 0)
    }

    pub async fn session_events(&self, session_id: i64) -> Result<Vec<EventRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT seq, at, user_id, actor_name, kind, detail FROM session_events WHERE session_id = $1 ORDER BY seq",
        )
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }
}

/// One person's presence in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Attendance {
    /// None for open-house guests.
    pub user_id: Option<i64>,
    pub name: String,
    /// [joined_at, left_at] in unix ms; a person may come and go several times.
    pub intervals: Vec<[i64; 2]>,
    pub total_ms: i64,
}

/// Attendance from the events of one session, in order of first arrival. Someone on two
/// devices at once counts once; presence still open at `until` (the end of the session, or
/// now while it is live) counts until then.
pub fn attendance(events: &[EventRow], until: i64) -> Vec<Attendance> {
    let mut people: Vec<(String, Attendance, u32, i64)> = Vec::new();
    for event in events
        .iter()
        .filter(|e| e.kind == "join" || e.kind == "leave")
    {
        let key = match event.user_id {
            Some(id) => format!("user:{id}"),
            None => format!("guest:{}", event.actor_name),
        };
        let index = match people.iter().position(|(k, ..)| *k == key) {
            Some(index) => index,
            None => {
                let new = Attendance {
                    user_id: event.user_id,
                    name: event.actor_name.clone(),
                    intervals: Vec::new(),
                    total_ms: 0,
                };
                people.push((key, new, 0, 0));
                people.len() - 1
            }
        };
        let (_, person, open, since) = &mut people[index];
        if event.kind == "join" {
            if *open == 0 {
                *since = event.at;
            }
            *open += 1;
        } else if *open > 0 {
            *open -= 1;
            if *open == 0 {
                person.intervals.push([*since, event.at]);
            }
        }
    }
    people
        .into_iter()
        .map(|(_, mut person, open, since)| {
            if open > 0 {
                person.intervals.push([since, until.max(since)]);
            }
            person.total_ms = person.intervals.iter().map(|[a, b]| b - a).sum();
            person
        })
        .collect()
}

impl Store {
    /// A class's sessions older than `before` (sessions rank below posts at the same time).
    pub async fn sessions_before(
        &self,
        class_id: i64,
        before: super::posts::Position,
        limit: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM live_sessions s JOIN rooms r ON r.id = s.room_id
             WHERE r.class_id = $1 AND (s.started_at < $2 OR (s.started_at = $2 AND ($3 = 1 OR s.id < $4)))
             ORDER BY s.started_at DESC, s.id DESC LIMIT $5"
        ))
        .bind(class_id)
        .bind(before.at)
        .bind(before.rank)
        .bind(before.id)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, at: i64, user: Option<i64>, name: &str, kind: &str) -> EventRow {
        EventRow {
            seq,
            at,
            user_id: user,
            actor_name: name.into(),
            kind: kind.into(),
            detail: "{}".into(),
        }
    }

    #[test]
    fn comings_goings_two_devices_and_guests() {
        let events = [
            event(1, 0, Some(1), "Teacher", "join"),
            event(2, 1_000, Some(2), "Ana", "join"),
            event(3, 2_000, Some(2), "Ana", "join"), // a second device
            event(4, 3_000, Some(2), "Ana", "leave"),
            event(5, 4_000, Some(2), "Ana", "leave"),
            event(6, 5_000, None, "Grandma (guest)", "join"),
            event(7, 6_000, Some(2), "Ana", "join"),
            event(8, 6_500, Some(1), "Teacher", "chat"),
            event(9, 7_000, Some(2), "Ana", "leave"),
        ];
        let people = attendance(&events, 10_000);
        assert_eq!(people.len(), 3);
        assert_eq!(
            people[0].intervals,
            vec![[0, 10_000]],
            "still there at the end"
        );
        assert_eq!(people[1].intervals, vec![[1_000, 4_000], [6_000, 7_000]]);
        assert_eq!(people[1].total_ms, 4_000);
        assert_eq!(people[2].user_id, None);
        assert_eq!(people[2].total_ms, 5_000);
    }
}
