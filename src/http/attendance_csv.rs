//! Attendance exports as CSV: one row per stay, for one session or every session of a class in
//! a date range, as far as the caller may see attendance (the rules of `session_logs`).
//! Attendance comes from what was stored when each session ended, read in batches.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::classes::who_in;
use super::extract::CurrentUser;
use super::session_logs::iso8601;
use super::session_logs::{only_own, reader, row_visibility, visible_session, Range, Visible};
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Who};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::posts::Position;
use crate::store::session_logs::{Attendance, SessionRow};

const CSV_HEADER: &str = "session_id,room,session_started,participant,joined,left,minutes\r\n";

fn csv_rows(out: &mut String, session: &SessionRow, people: &[Attendance]) {
    for person in people {
        for [joined, left] in &person.intervals {
            out.push_str(&format!(
                "{},{},{},{},{},{},{:.1}\r\n",
                session.id,
                csv_field(&session.room_name),
                iso8601(session.started_at),
                csv_field(&person.name),
                iso8601(*joined),
                iso8601(*left),
                (left - joined) as f64 / 60_000.0
            ));
        }
    }
}

fn csv_response(body: String, name: &str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
}

/// Attendance of one session as CSV (one row per stay).
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/attendance.csv", tag = "session logs", params(("session_id" = i64, Path)),
    responses((status = 200, content_type = "text/csv"), (status = 404, body = super::error::ErrorBody)))]
pub async fn session_csv(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(session_id): Path<i64>,
) -> Result<impl IntoResponse> {
    let (session, visible, _) =
        visible_session(&state, &current.user, session_id, Action::ExportLogs).await?;
    if visible == Visible::None {
        return Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not export attendance",
        ));
    }
    let mut people = state.store.attendance_of(&[&session], now_ms()).await?;
    let mut body = CSV_HEADER.to_owned();
    csv_rows(
        &mut body,
        &session,
        &only_own(
            people.remove(&session.id).unwrap_or_default(),
            visible,
            &current.user,
        ),
    );
    Ok(csv_response(
        body,
        &format!("attendance-session-{session_id}.csv"),
    ))
}

/// Attendance of every session of the class in a date range, as CSV.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/attendance.csv", tag = "session logs", params(("class_id" = i64, Path), Range),
    responses((status = 200, content_type = "text/csv"), (status = 404, body = super::error::ErrorBody)))]
pub async fn class_csv(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    Query(range): Query<Range>,
) -> Result<impl IntoResponse> {
    let who = who_in(&state, &current.user, class_id).await?;
    if who == Who::Outsider {
        return Err(Error::NotFound);
    }
    if !decide(who, Action::ExportLogs, Facts::default()).allowed() {
        return Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not export attendance",
        ));
    }
    // Every session in the range, oldest first, with attendance read in batches.
    let mut sessions = state
        .store
        .sessions_before(
            class_id,
            reader(who, &current.user),
            range.bounds()?,
            Position::START,
            i64::MAX,
        )
        .await?;
    sessions.reverse();
    let mut body = CSV_HEADER.to_owned();
    for chunk in sessions.chunks(500) {
        let shown: Vec<(&SessionRow, Visible)> = chunk
            .iter()
            .filter_map(|s| {
                Some((
                    s,
                    row_visibility(who, &current.user, s, Action::ExportLogs)?.0,
                ))
            })
            .collect();
        let rows: Vec<&SessionRow> = shown.iter().map(|(s, _)| *s).collect();
        let mut people = state.store.attendance_of(&rows, now_ms()).await?;
        for (session, visible) in shown {
            let all = people.remove(&session.id).unwrap_or_default();
            csv_rows(&mut body, session, &only_own(all, visible, &current.user));
        }
    }
    Ok(csv_response(
        body,
        &format!("attendance-class-{class_id}.csv"),
    ))
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas (a name starting with `=`).
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(csv_field("Ana, Leo's mum"), "\"Ana, Leo's mum\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
