//! Session logs: every live session of a class with its attendance and chat, and attendance
//! exports as CSV. What a caller sees follows the role table: teachers everything, families
//! their own attendance, students the log without attendance, tutors the rooms they host.
//!
//! A tutoring session is a small private room, so its log and chat belong to the people in it:
//! its participants, the families of the students who took part, its host, and the class's
//! teachers (and admins). Everyone else gets the answer a missing session gets.

use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::classes::who_in;
use super::extract::CurrentUser;
use super::page::{split, PageQuery, Paged};
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Grant, Role, Who};
use crate::domain::RoomKind;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::posts::Position;
use crate::store::session_logs::{
    attendance, Attendance, SessionFilter, SessionReader, SessionRow,
};
use crate::store::users::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/classes/{class_id}/sessions", get(list_sessions))
        .route(
            "/api/v1/classes/{class_id}/attendance.csv",
            get(super::attendance_csv::class_csv),
        )
        .route("/api/v1/sessions/{session_id}", get(session_log))
        .route(
            "/api/v1/sessions/{session_id}/attendance.csv",
            get(super::attendance_csv::session_csv),
        )
}

/// How much of a session's attendance the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visible {
    All,
    Own,
    None,
}

/// What the caller may see of one session (how much attendance, and whether the chat), or
/// `None` if nothing. `took_part`: the caller joined the session, or is family of a student
/// who did; it opens tutoring sessions, which are closed to everyone else outside the host
/// and the class's teachers.
pub(super) fn visibility(
    who: Who,
    user: &User,
    session: &SessionRow,
    action: Action,
    took_part: bool,
) -> Option<(Visible, bool)> {
    let hosts = session.host_user_id == Some(user.id);
    let private = session.room_kind == RoomKind::Tutoring.as_str();
    let manages = decide(who, Action::ManageClass, Facts::default()).allowed();
    if private && !(manages || hosts || took_part) {
        return None;
    }
    // In a tutoring session the people in it read the log and chat; elsewhere, the readers
    // of the timeline.
    let reads = decide(who, Action::ReadTimeline, Facts::default()).allowed() || private;
    let attendance = match decide(
        who,
        action,
        Facts {
            assigned_host: hosts,
            ..Facts::default()
        },
    ) {
        Grant::Allowed => Visible::All,
        // A tutor's "own rooms": everything of a room they host.
        Grant::OwnOnly if hosts => Visible::All,
        Grant::OwnOnly => Visible::Own,
        Grant::Denied | Grant::DraftOnly => Visible::None,
    };
    let sees_log = reads || (attendance == Visible::All);
    sees_log.then_some((attendance, reads || hosts))
}

/// [`visibility`] of a session row read for this caller (its `took_part` asked in SQL).
pub(super) fn row_visibility(
    who: Who,
    user: &User,
    session: &SessionRow,
    action: Action,
) -> Option<(Visible, bool)> {
    visibility(who, user, session, action, session.took_part == 1)
}

/// How a session list is filtered in SQL for the caller: the rows [`visibility`] lets them
/// see, and no others.
pub(super) fn reader(who: Who, user: &User) -> SessionReader {
    let filter = if decide(who, Action::ManageClass, Facts::default()).allowed() {
        SessionFilter::All
    } else if decide(who, Action::ReadTimeline, Facts::default()).allowed() {
        SessionFilter::Reader
    } else {
        SessionFilter::Host
    };
    SessionReader {
        user_id: user.id,
        family: who == Who::Member(Role::Family),
        filter,
    }
}

/// The summaries of a page of sessions, in order (None for one the caller may not see): the
/// attendance of sessions that ended is counted in their rows; only open ones, and only when
/// the caller sees all of it, cost one more query for the whole page.
pub(super) async fn summaries(
    state: &AppState,
    who: Who,
    user: &User,
    sessions: Vec<SessionRow>,
    action: Action,
) -> Result<Vec<Option<SessionSummary>>> {
    let seen: Vec<Option<Visible>> = sessions
        .iter()
        .map(|s| row_visibility(who, user, s, action).map(|(v, _)| v))
        .collect();
    let open: Vec<&SessionRow> = sessions
        .iter()
        .zip(&seen)
        .filter(|(s, v)| s.attendees.is_none() && v.is_some_and(|v| v != Visible::None))
        .map(|(s, _)| s)
        .collect();
    let live = match open.is_empty() {
        true => Default::default(),
        false => state.store.attendance_of(&open, now_ms()).await?,
    };
    Ok(sessions
        .into_iter()
        .zip(seen)
        .map(|(session, seen)| {
            let seen = seen?;
            let attendees = match (&live.get(&session.id), seen) {
                (_, Visible::None) => 0,
                (Some(people), _) => only_own((*people).clone(), seen, user).len(),
                (None, Visible::All) => session.attendees.unwrap_or(0) as usize,
                (None, Visible::Own) => session.attended as usize,
            };
            Some(SessionSummary {
                duration_ms: until(&session) - session.started_at,
                attendees,
                session,
            })
        })
        .collect())
}

#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    #[serde(flatten)]
    pub session: SessionRow,
    pub duration_ms: i64,
    pub attendees: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ChatLine {
    pub at: i64,
    pub name: String,
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionLog {
    #[serde(flatten)]
    pub session: SessionRow,
    pub duration_ms: i64,
    pub attendance_visible: Visible,
    pub attendance: Vec<Attendance>,
    pub chat: Vec<ChatLine>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct Range {
    /// From this day (YYYY-MM-DD, UTC) or unix millisecond, inclusive.
    pub from: Option<String>,
    /// Until this day (inclusive) or unix millisecond (exclusive).
    pub to: Option<String>,
}

impl Range {
    pub(super) fn bounds(&self) -> Result<(i64, i64)> {
        let parse = |text: &Option<String>, end: bool| -> Result<Option<i64>> {
            let Some(text) = text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            if let Ok(ms) = text.parse::<i64>() {
                return Ok(Some(ms));
            }
            let day = parse_day(text)
                .ok_or_else(|| Error::bad_request("invalid_range", "dates are YYYY-MM-DD"))?;
            Ok(Some((day + end as i64) * 86_400_000))
        };
        Ok((
            parse(&self.from, false)?.unwrap_or(0),
            parse(&self.to, true)?.unwrap_or(i64::MAX),
        ))
    }
}

pub(super) fn until(session: &SessionRow) -> i64 {
    session.ended_at.unwrap_or_else(now_ms)
}

pub(super) fn only_own(
    mut people: Vec<Attendance>,
    visible: Visible,
    user: &User,
) -> Vec<Attendance> {
    match visible {
        Visible::All => people,
        Visible::Own => {
            people.retain(|p| p.user_id == Some(user.id));
            people
        }
        Visible::None => Vec::new(),
    }
}

/// The class's sessions the caller may see, newest first, a page at a time
/// (`Link: rel="next"`), optionally only those started in a date range.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/sessions", tag = "session logs", params(("class_id" = i64, Path), Range, PageQuery),
    responses((status = 200, body = [SessionSummary], headers(("link" = String, description = "The next page, absent on the last"))),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    Query(range): Query<Range>,
    Query(page): Query<PageQuery>,
    uri: Uri,
) -> Result<Paged<SessionSummary>> {
    let who = who_in(&state, &current.user, class_id).await?;
    if who == Who::Outsider {
        return Err(Error::NotFound);
    }
    let range = range.bounds()?;
    let limit = page.limit()?;
    let start = page.start(Position::START)?;
    let rows = state
        .store
        .sessions_before(
            class_id,
            reader(who, &current.user),
            range,
            start,
            limit + 1,
        )
        .await?;
    let (rows, next) = split(rows, limit, |s: &SessionRow| Position {
        at: s.started_at,
        rank: 0,
        id: s.id,
    });
    let items = summaries(&state, who, &current.user, rows, Action::SeeAttendance)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(Paged { items, next, uri })
}

pub(super) async fn visible_session(
    state: &AppState,
    user: &User,
    session_id: i64,
    action: Action,
) -> Result<(SessionRow, Visible, bool)> {
    let session = state
        .store
        .session_log(session_id, user.id, false)
        .await?
        .ok_or(Error::NotFound)?;
    let who = who_in(state, user, session.class_id).await?;
    if who == Who::Outsider {
        return Err(Error::NotFound);
    }
    // A family member's child taking part counts as theirs: asked once the role is known.
    let session = match who == Who::Member(Role::Family) && session.took_part == 0 {
        true => state
            .store
            .session_log(session_id, user.id, true)
            .await?
            .ok_or(Error::NotFound)?,
        false => session,
    };
    match row_visibility(who, user, &session, action) {
        Some((visible, chat)) => Ok((session, visible, chat)),
        // Someone outside a tutoring session does not learn that it exists.
        None if session.room_kind == RoomKind::Tutoring.as_str() => Err(Error::NotFound),
        None => Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not show session logs",
        )),
    }
}

/// One session: attendance as far as the caller may see it, and the chat transcript.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "session logs", params(("session_id" = i64, Path)),
    responses((status = 200, body = SessionLog), (status = 404, body = super::error::ErrorBody)))]
pub async fn session_log(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(session_id): Path<i64>,
) -> Result<Json<SessionLog>> {
    let (session, visible, sees_chat) =
        visible_session(&state, &current.user, session_id, Action::SeeAttendance).await?;
    let events = state.store.session_events(session.id).await?;
    let chat = match sees_chat {
        true => events
            .iter()
            .filter(|e| e.kind == "chat")
            .map(|e| ChatLine {
                at: e.at,
                name: e.actor_name.clone(),
                text: serde_json::from_str::<serde_json::Value>(&e.detail)
                    .ok()
                    .and_then(|d| d["text"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
            })
            .collect(),
        false => Vec::new(),
    };
    let people = only_own(attendance(&events, until(&session)), visible, &current.user);
    Ok(Json(SessionLog {
        duration_ms: until(&session) - session.started_at,
        attendance_visible: visible,
        attendance: people,
        chat,
        session,
    }))
}

/// Days since 1970-01-01 of a YYYY-MM-DD date.
fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Unix milliseconds as an ISO 8601 UTC time, e.g. 2026-11-24T09:30:00Z.
pub(super) fn iso8601(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(
            parse_day("2026-11-18"),
            Some(1_795_000_000_000 / 86_400_000)
        );
        assert_eq!(parse_day("2026-13-01"), None);
    }
}
