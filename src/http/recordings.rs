//! Recordings of live sessions: the list of a session's recordings, one recording for the replay
//! page, its files played with range requests (seeking), downloads, and publishing a recording
//! to the class timeline as a post with a note.
//!
//! Access follows the session log's rules through `access::decide`: whoever may read the
//! session's log and may `WatchRecording` watches; only teachers and admins
//! (`DownloadRecording`) download and publish. Anyone else, signed in or not, gets the answer a
//! missing recording gets.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::ToSchema;

use super::classes::who_in;
use super::extract::{ApiJson, CurrentUser, MaybeUser};
use super::session_logs::visible_session;
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Grant};
use crate::state::AppState;
use crate::store::posts::NewPost;
use crate::store::recordings::{RecordingFile, RecordingRow};
use crate::store::session_logs::SessionRow;
use crate::store::users::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sessions/{session_id}/recordings",
            get(list_recordings),
        )
        .route("/api/v1/recordings/{recording_id}", get(get_recording))
        .route(
            "/api/v1/recordings/{recording_id}/publish",
            post(publish_recording),
        )
        .route("/api/v1/recording-files/{file_id}", get(play_file))
        .route(
            "/api/v1/recording-files/{file_id}/download",
            get(download_file),
        )
}

#[derive(Serialize, ToSchema)]
pub struct RecordingView {
    #[serde(flatten)]
    pub recording: RecordingRow,
    pub class_id: i64,
    pub room_name: String,
    pub session_started_at: i64,
    /// Camera files first, then screens; play each at `offset_ms` on the recording's clock.
    pub files: Vec<RecordingFile>,
    /// The caller may download the files and publish the recording to the timeline.
    pub may_download: bool,
}

/// What the caller may do with a session's recordings.
struct Rights {
    session: SessionRow,
    download: bool,
}

/// Whether `user` may watch the session's recordings (and download them); otherwise the
/// answer a missing recording gets.
async fn rights(state: &AppState, user: Option<&User>, session_id: i64) -> Result<Rights> {
    let user = user.ok_or(Error::NotFound)?;
    let (session, _, reads) = visible_session(state, user, session_id, Action::SeeAttendance)
        .await
        .map_err(|_| Error::NotFound)?;
    let who = who_in(state, user, session.class_id).await?;
    let facts = Facts {
        assigned_host: session.host_user_id == Some(user.id),
        ..Facts::default()
    };
    if !reads || !decide(who, Action::WatchRecording, facts).allowed() {
        return Err(Error::NotFound);
    }
    let download = decide(who, Action::DownloadRecording, facts) == Grant::Allowed;
    Ok(Rights { session, download })
}

async fn view(state: &AppState, recording: RecordingRow, rights: &Rights) -> Result<RecordingView> {
    let mut files = state.store.recording_files(recording.id).await?;
    files.sort_by_key(|f| (f.source != "camera", f.id));
    Ok(RecordingView {
        recording,
        class_id: rights.session.class_id,
        room_name: rights.session.room_name.clone(),
        session_started_at: rights.session.started_at,
        files,
        may_download: rights.download,
    })
}

/// A session's recordings, deleted ones included (they say when they were deleted).
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/recordings", tag = "recordings", params(("session_id" = i64, Path)),
    responses((status = 200, body = [RecordingView]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_recordings(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    Path(session_id): Path<i64>,
) -> Result<Json<Vec<RecordingView>>> {
    let rights = rights(&state, current.as_ref().map(|c| &c.user), session_id).await?;
    let mut out = Vec::new();
    for recording in state.store.session_recordings(session_id).await? {
        out.push(view(&state, recording, &rights).await?);
    }
    Ok(Json(out))
}

async fn readable(
    state: &AppState,
    user: Option<&User>,
    recording_id: i64,
) -> Result<(RecordingRow, Rights)> {
    let recording = state
        .store
        .recording(recording_id)
        .await?
        .ok_or(Error::NotFound)?;
    let rights = rights(state, user, recording.session_id).await?;
    Ok((recording, rights))
}

/// One recording with its files, for the replay page.
#[utoipa::path(get, path = "/api/v1/recordings/{recording_id}", tag = "recordings", params(("recording_id" = i64, Path)),
    responses((status = 200, body = RecordingView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_recording(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    Path(recording_id): Path<i64>,
) -> Result<Json<RecordingView>> {
    let (recording, rights) =
        readable(&state, current.as_ref().map(|c| &c.user), recording_id).await?;
    Ok(Json(view(&state, recording, &rights).await?))
}

async fn file_of(
    state: &AppState,
    user: Option<&User>,
    file_id: i64,
) -> Result<(std::path::PathBuf, RecordingFile, Rights)> {
    let file = state
        .store
        .recording_file(file_id)
        .await?
        .ok_or(Error::NotFound)?;
    let (recording, rights) = readable(state, user, file.recording_id).await?;
    let path = state
        .sfu
        .recorder()
        .root()
        .join(&recording.dir)
        .join(&file.file_name);
    Ok((path, file, rights))
}

async fn serve(path: std::path::PathBuf, request: Request) -> Result<Response> {
    let mut response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/webm"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(response)
}

/// A recorded file, played in the page: range requests let the player seek.
#[utoipa::path(get, path = "/api/v1/recording-files/{file_id}", tag = "recordings", params(("file_id" = i64, Path)),
    responses((status = 200, content_type = "video/webm", description = "the file"), (status = 206, content_type = "video/webm", description = "the range asked for"),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn play_file(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    Path(file_id): Path<i64>,
    request: Request,
) -> Result<Response> {
    let (path, _, _) = file_of(&state, current.as_ref().map(|c| &c.user), file_id).await?;
    serve(path, request).await
}

/// A recorded file as a download: teachers and admins only.
#[utoipa::path(get, path = "/api/v1/recording-files/{file_id}/download", tag = "recordings", params(("file_id" = i64, Path)),
    responses((status = 200, content_type = "video/webm", description = "the file"), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn download_file(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    Path(file_id): Path<i64>,
    request: Request,
) -> Result<Response> {
    let (path, file, rights) = file_of(&state, current.as_ref().map(|c| &c.user), file_id).await?;
    if !rights.download {
        return Err(Error::forbidden(
            "not_allowed",
            "only the class's teachers download recordings",
        ));
    }
    let mut response = serve(path, request).await?;
    let name = format!(
        "attachment; filename=\"session-{}-{}-{}.webm\"",
        rights.session.id, file.source, file.id
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&name).expect("ASCII"),
    );
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRecording {
    /// A note for the families (Markdown), shown above the link to the recording.
    pub note: String,
}

#[derive(Serialize, ToSchema)]
pub struct Published {
    pub post_id: i64,
}

/// Publishes the recording to the class timeline: a post with the note and a link to replay it.
#[utoipa::path(post, path = "/api/v1/recordings/{recording_id}/publish", tag = "recordings", params(("recording_id" = i64, Path)),
    request_body = PublishRecording,
    responses((status = 201, body = Published), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn publish_recording(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(recording_id): Path<i64>,
    ApiJson(body): ApiJson<PublishRecording>,
) -> Result<impl IntoResponse> {
    let (recording, rights) = readable(&state, Some(&current.user), recording_id).await?;
    let who = who_in(&state, &current.user, rights.session.class_id).await?;
    if !rights.download || decide(who, Action::PublishPost, Facts::default()) != Grant::Allowed {
        return Err(Error::forbidden(
            "not_allowed",
            "only the class's teachers publish recordings",
        ));
    }
    if recording.state != "ready" {
        return Err(Error::bad_request(
            "not_ready",
            "this recording has no files to watch",
        ));
    }
    let note = body.note.trim();
    if note.chars().count() > 2000 {
        return Err(Error::bad_request(
            "note_too_long",
            "at most 2000 characters",
        ));
    }
    let text = format!(
        "{note}\n\n[▶ {} ({})](/recording/{})",
        rights.session.room_name,
        super::session_logs::iso8601(recording.started_at),
        recording.id
    );
    let html = super::post_view::render(&state.store, rights.session.class_id, text.trim()).await?;
    let post_id = state
        .store
        .create_post(NewPost {
            class_id: rights.session.class_id,
            author_id: current.user.id,
            body: text.trim(),
            html: &html,
            visibility: "class",
            state: "published",
            student_ids: &[],
            targets: &[],
            attachment_ids: &[],
        })
        .await?;
    state.events.publish(
        rights.session.class_id,
        crate::events::ClassEvent::Post { post_id },
    );
    Ok((axum::http::StatusCode::CREATED, Json(Published { post_id })))
}
