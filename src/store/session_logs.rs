//! The reading side of session logs: a class's live sessions a page at a time, their events,
//! and attendance, worked out from join and leave events (stored once a session ends, see
//! `live_sessions`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{bind_ids, Store};

/// What a session list is filtered to, in SQL, so a page is one query whoever reads it.
/// The role table's finer answer (how much attendance, the chat) is then decided per row by
/// `http::session_logs::visibility` from the row's `took_part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFilter {
    /// Teachers and admins: every session of the class.
    All,
    /// Readers of the timeline: every session, but tutoring sessions only when they host
    /// them or took part (themselves or, for a family, their child).
    Reader,
    /// Tutors: the rooms they host, and tutoring sessions they took part in.
    Host,
}

/// The reader a session list is read for.
#[derive(Debug, Clone, Copy)]
pub struct SessionReader {
    pub user_id: i64,
    /// The reader is family in the class: their children's taking part counts as theirs.
    pub family: bool,
    pub filter: SessionFilter,
}

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
    /// People who attended, counted when the session ended; None while it is open.
    #[serde(skip)]
    pub attendees: Option<i64>,
    /// The reader joined this tutoring session, or is family of a student who did (only
    /// asked of tutoring sessions).
    #[serde(skip)]
    #[sqlx(default)]
    pub took_part: i64,
    /// The reader is in the stored attendance.
    #[serde(skip)]
    #[sqlx(default)]
    pub attended: i64,
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
     s.started_at, s.ended_at, s.end_reason, s.peak_participants, s.recording_path, s.attendees,
     (SELECT MAX(x.id) FROM recordings x WHERE x.session_id = s.id AND x.state = 'ready') AS recording_id,
     (SELECT MAX(x.deleted_at) FROM recordings x WHERE x.session_id = s.id AND x.state = 'deleted') AS recording_deleted_at";

/// The reader-specific columns of a session row (`$1` is the reader's id, `$2` 1 when the
/// reader is family).
const READER_COLUMNS: &str = ",
     CAST(CASE WHEN r.kind = 'tutoring' AND EXISTS (
         SELECT 1 FROM session_events e WHERE e.session_id = s.id AND e.kind = 'join' AND (
             e.user_id = $1 OR ($2 = 1 AND e.user_id IN (
                 SELECT st.user_id FROM students st JOIN family_students fs ON fs.student_id = st.id
                 WHERE st.class_id = r.class_id AND fs.user_id = $1))))
     THEN 1 ELSE 0 END AS BIGINT) AS took_part,
     CAST(CASE WHEN EXISTS (SELECT 1 FROM session_attendance a WHERE a.session_id = s.id AND a.user_id = $1)
     THEN 1 ELSE 0 END AS BIGINT) AS attended";

/// The filter of a session list over the rows of `READER_COLUMNS`.
fn filter_sql(filter: SessionFilter) -> &'static str {
    match filter {
        SessionFilter::All => "",
        SessionFilter::Reader => {
            "AND (room_kind <> 'tutoring' OR host_user_id = $1 OR took_part = 1)"
        }
        SessionFilter::Host => {
            "AND (host_user_id = $1 OR (room_kind = 'tutoring' AND took_part = 1))"
        }
    }
}

/// The query of [`Store::sessions_before`] for a filter (the plan tests read the same text).
pub fn sessions_before_sql(filter: SessionFilter) -> String {
    // The filter reads the computed `took_part`, so the rows are filtered one level up.
    format!(
        "SELECT * FROM (
             SELECT {COLUMNS}{READER_COLUMNS} FROM live_sessions s JOIN rooms r ON r.id = s.room_id
             WHERE r.class_id = $3 AND s.started_at >= $4 AND s.started_at < $5
               AND (s.started_at < $6 OR (s.started_at = $6 AND ($7 = 1 OR s.id < $8)))
         ) page WHERE 1 = 1 {} ORDER BY started_at DESC, id DESC LIMIT $9",
        filter_sql(filter)
    )
}

impl Store {
    /// A page of a class's sessions older than `before` (sessions rank below posts at the same
    /// time) and started in [from, to), newest first, as `reader` may list them.
    pub async fn sessions_before(
        &self,
        class_id: i64,
        reader: SessionReader,
        range: (i64, i64),
        before: super::posts::Position,
        limit: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        sqlx::query_as(&sessions_before_sql(reader.filter))
            .bind(reader.user_id)
            .bind(reader.family as i64)
            .bind(class_id)
            .bind(range.0)
            .bind(range.1)
            .bind(before.at)
            .bind(before.rank)
            .bind(before.id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
    }

    /// One session, with the reader's `took_part` and `attended`.
    pub async fn session_log(
        &self,
        session_id: i64,
        user_id: i64,
        family: bool,
    ) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS}{READER_COLUMNS} FROM live_sessions s JOIN rooms r ON r.id = s.room_id WHERE s.id = $3"
        ))
        .bind(user_id)
        .bind(family as i64)
        .bind(session_id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn session_events(&self, session_id: i64) -> Result<Vec<EventRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT seq, at, user_id, actor_name, kind, detail FROM session_events WHERE session_id = $1 ORDER BY seq",
        )
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }

    /// Attendance of the given sessions: stored for those that ended, worked out from their
    /// comings and goings for those still open (at `now`). Two queries, however many sessions.
    pub async fn attendance_of(
        &self,
        sessions: &[&SessionRow],
        now: i64,
    ) -> Result<HashMap<i64, Vec<Attendance>>, sqlx::Error> {
        let mut out: HashMap<i64, Vec<Attendance>> = HashMap::new();
        let ended: Vec<i64> = sessions
            .iter()
            .filter(|s| s.attendees.is_some())
            .map(|s| s.id)
            .collect();
        for chunk in ended.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT session_id, user_id, name, intervals, total_ms FROM session_attendance
                 WHERE session_id IN ({}) ORDER BY session_id, position",
                super::placeholders(1, chunk.len())
            );
            let rows = bind_ids::<(i64, Option<i64>, String, String, i64)>(&sql, chunk)
                .fetch_all(self.pool())
                .await?;
            for (session_id, user_id, name, intervals, total_ms) in rows {
                out.entry(session_id).or_default().push(Attendance {
                    user_id,
                    name,
                    intervals: serde_json::from_str(&intervals).unwrap_or_default(),
                    total_ms,
                });
            }
        }
        let open: Vec<i64> = sessions
            .iter()
            .filter(|s| s.attendees.is_none())
            .map(|s| s.id)
            .collect();
        for chunk in open.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT session_id, seq, at, user_id, actor_name, kind, detail FROM session_events
                 WHERE session_id IN ({}) AND kind IN ('join', 'leave') ORDER BY session_id, seq",
                super::placeholders(1, chunk.len())
            );
            let rows =
                bind_ids::<(i64, i64, i64, Option<i64>, String, String, String)>(&sql, chunk)
                    .fetch_all(self.pool())
                    .await?;
            let mut events: HashMap<i64, Vec<EventRow>> = HashMap::new();
            for (session_id, seq, at, user_id, actor_name, kind, detail) in rows {
                events.entry(session_id).or_default().push(EventRow {
                    seq,
                    at,
                    user_id,
                    actor_name,
                    kind,
                    detail,
                });
            }
            for (session_id, events) in events {
                out.insert(session_id, attendance(&events, now));
            }
        }
        for session in sessions {
            out.entry(session.id).or_default();
        }
        Ok(out)
    }
}

/// Sessions or posts asked about in one `IN (...)` list at most (a page is smaller).
pub(super) const IN_CHUNK: usize = 500;

/// One person's presence in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
