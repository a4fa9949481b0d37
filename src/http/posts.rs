//! Class updates: teachers post about student work and learning targets; students write drafts
//! that a teacher approves or returns with a note; families read and comment, and teachers see
//! how many families have seen each post. A post that is not the caller's to see answers 404,
//! exactly as one that does not exist.
//!
//! Every route decides through the caller's membership of the post's class first: being a
//! post's author never stands in for it, so someone removed from the class loses their posts,
//! drafts and uploads with everything else. A handed-in post is frozen for its author until it
//! is returned or approved, and approval names the revision the teacher read.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::classes::{require, who_in};
use super::extract::{ApiJson, CurrentUser};
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Grant, Role, Who};
use crate::events::ClassEvent;
use crate::markdown::{attachment_refs, to_safe_html};
use crate::state::AppState;
use crate::store::attachments::Attachment;
use crate::store::posts::{Comment, NewPost, Post, PostError};
use crate::store::users::User;

/// Longest post body and comment, in characters.
const MAX_BODY: usize = 20_000;
const MAX_COMMENT: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/classes/{class_id}/posts",
            get(list_posts).post(create_post),
        )
        .route(
            "/api/v1/posts/{post_id}",
            get(get_post).put(edit_post).delete(delete_post),
        )
        .route("/api/v1/posts/{post_id}/submit", post(submit))
        .route("/api/v1/posts/{post_id}/approve", post(approve))
        .route("/api/v1/posts/{post_id}/return", post(return_post))
        .route("/api/v1/posts/{post_id}/comments", post(comment))
}

/// What a post says and whom it is for; sent whole when creating or editing.
#[derive(Deserialize, ToSchema)]
pub struct PostContent {
    /// Markdown.
    pub body: String,
    /// `class` (every family of the class) or `students` (only the featured students' families).
    #[serde(default = "class_visibility")]
    pub visibility: String,
    #[serde(default)]
    pub student_ids: Vec<i64>,
    /// Learning targets, e.g. "Adds fractions with unlike denominators"; kept per class.
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreatePost {
    #[serde(flatten)]
    pub content: PostContent,
    /// Teachers may keep a draft instead of publishing.
    #[serde(default)]
    pub draft: bool,
    /// Files uploaded first with POST /api/v1/classes/{class_id}/attachments.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
}

fn class_visibility() -> String {
    "class".into()
}

#[derive(Deserialize, ToSchema)]
pub struct ApproveRequest {
    /// The `revision` of the post as the teacher read it.
    pub revision: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct ReturnRequest {
    pub note: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CommentRequest {
    pub body: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PostFilter {
    /// `published` (default) or `pending` (the approval queue, for teachers).
    pub state: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StudentRef {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct PostView {
    #[serde(flatten)]
    pub post: Post,
    /// The body rendered and sanitized.
    pub html: String,
    pub students: Vec<StudentRef>,
    pub targets: Vec<String>,
    /// Download each at /api/v1/attachments/{id}.
    pub attachments: Vec<Attachment>,
    pub comments: Vec<Comment>,
    /// Families of the class who have seen the post; teachers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_views: Option<i64>,
}

impl From<PostError> for Error {
    fn from(e: PostError) -> Error {
        match e {
            PostError::UnknownAttachment => Error::bad_request(
                "unknown_attachment",
                "attach only your own new uploads to this class",
            ),
            PostError::WrongState => {
                Error::conflict("wrong_state", "the post is not in a state that allows this")
            }
            PostError::Changed => Error::conflict(
                "post_changed",
                "the post changed since you read it; read it again",
            ),
            PostError::Database(e) => Error::Database(e),
        }
    }
}

/// Whether the caller wrote the post and may still write posts in its class (their role is
/// asked, not just their name on the post).
fn writes(who: Who, user: &User, post: &Post) -> bool {
    post.author_id == Some(user.id) && decide(who, Action::PublishPost, Facts::default()).allowed()
}

/// The caller's standing in the post's class, if the post is theirs to see.
pub async fn visible(state: &AppState, user: &User, post: &Post) -> Result<Who> {
    // Membership decides first: an outsider (someone removed, too) is denied every action.
    let who = who_in(state, user, post.class_id).await?;
    let sees = if manages(who) || writes(who, user, post) {
        true
    } else if post.state != "published"
        || !decide(who, Action::ReadTimeline, Facts::default()).allowed()
    {
        false
    } else {
        post.visibility == "class" || state.store.featured_for(post.id, user.id).await?
    };
    if sees {
        Ok(who)
    } else {
        Err(Error::NotFound)
    }
}

pub(super) async fn view(state: &AppState, who: Who, user: &User, post: Post) -> Result<PostView> {
    let teaches = manages(who);
    // Images may show only the class's own attachments (see `markdown`).
    let own_images = state
        .store
        .class_attachment_ids(post.class_id, &attachment_refs(&post.body))
        .await?
        .into_iter()
        .collect();
    if who == Who::Member(Role::Family) && post.state == "published" {
        state.store.record_view(post.id, user.id).await?;
    }
    let students = state
        .store
        .post_students(post.id)
        .await?
        .into_iter()
        .map(|(id, name)| StudentRef { id, name })
        .collect();
    Ok(PostView {
        html: to_safe_html(&post.body, &own_images),
        students,
        targets: state.store.post_targets(post.id).await?,
        attachments: state.store.post_attachments(post.id).await?,
        comments: state.store.comments(post.id).await?,
        family_views: match teaches {
            true => Some(state.store.family_views(post.id, post.class_id).await?),
            false => None,
        },
        post,
    })
}

async fn load(state: &AppState, user: &User, post_id: i64) -> Result<(Post, Who)> {
    let post = state.store.post(post_id).await?.ok_or(Error::NotFound)?;
    let who = visible(state, user, &post).await?;
    Ok((post, who))
}

/// Tells the class's open pages that the post changed state; answers 204.
fn changed(state: &AppState, post: &Post) -> StatusCode {
    state
        .events
        .publish(post.class_id, ClassEvent::Post { post_id: post.id });
    StatusCode::NO_CONTENT
}

fn manages(who: Who) -> bool {
    decide(who, Action::ManageClass, Facts::default()).allowed()
}

/// Writes a post: published for teachers (or a draft if asked), a draft for students. When
/// an attachment id is refused, nothing is stored and the uploads stay free to attach.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/posts", tag = "posts", params(("class_id" = i64, Path)),
    request_body = CreatePost, responses((status = 201, body = PostView), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_post(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<CreatePost>,
) -> Result<(StatusCode, Json<PostView>)> {
    let (who, grant) = require(&state, &current.user, class_id, Action::PublishPost).await?;
    let (body, targets) = checked(&state, class_id, &request.content).await?;
    let post_state = match (grant, request.draft) {
        (Grant::Allowed, false) => "published",
        _ => "draft",
    };
    let id = state
        .store
        .create_post(NewPost {
            class_id,
            author_id: current.user.id,
            body: &body,
            visibility: &request.content.visibility,
            state: post_state,
            student_ids: &request.content.student_ids,
            targets: &targets,
            attachment_ids: &request.attachment_ids,
        })
        .await?;
    let post = state.store.post(id).await?.ok_or(Error::NotFound)?;
    state
        .events
        .publish(class_id, ClassEvent::Post { post_id: post.id });
    Ok((
        StatusCode::CREATED,
        Json(view(&state, who, &current.user, post).await?),
    ))
}

/// The class's published posts the caller may see, or (teachers) the approval queue.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/posts", tag = "posts", params(("class_id" = i64, Path), PostFilter),
    responses((status = 200, body = [PostView]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_posts(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    Query(filter): Query<PostFilter>,
) -> Result<Json<Vec<PostView>>> {
    let wanted = filter.state.as_deref().unwrap_or("published");
    let action = match wanted {
        "published" => Action::ReadTimeline,
        "pending" => Action::ManageClass,
        _ => {
            return Err(Error::bad_request(
                "invalid_state",
                "state is published or pending",
            ))
        }
    };
    let (who, _) = require(&state, &current.user, class_id, action).await?;
    let mut views = Vec::new();
    for post in state.store.class_posts(class_id, wanted).await? {
        if visible(&state, &current.user, &post).await.is_ok() {
            views.push(view(&state, who, &current.user, post).await?);
        }
    }
    Ok(Json(views))
}

/// Checks a post's content against the class; returns the trimmed body and targets.
async fn checked(
    state: &AppState,
    class_id: i64,
    content: &PostContent,
) -> Result<(String, Vec<String>)> {
    let body = plain_text(&content.body)?;
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY {
        return Err(Error::bad_request(
            "invalid_body",
            format!("a post is 1 to {MAX_BODY} characters"),
        ));
    }
    if !["class", "students"].contains(&content.visibility.as_str()) {
        return Err(Error::bad_request(
            "invalid_visibility",
            "visibility is class or students",
        ));
    }
    if content.visibility == "students" && content.student_ids.is_empty() {
        return Err(Error::bad_request(
            "students_required",
            "a post for the featured students' families names them",
        ));
    }
    for id in &content.student_ids {
        state.store.student(class_id, *id).await?.ok_or_else(|| {
            Error::bad_request("unknown_student", "no student with that id in this class")
        })?;
    }
    let mut targets = Vec::new();
    for target in &content.targets {
        let target = plain_text(target)?.trim().to_owned();
        if !target.is_empty() {
            targets.push(target);
        }
    }
    if targets.iter().any(|t| t.chars().count() > 120) || targets.len() > 10 {
        return Err(Error::bad_request(
            "invalid_targets",
            "at most 10 learning targets of at most 120 characters",
        ));
    }
    Ok((body.to_owned(), targets))
}

/// Text as people type it: line ends made `\n`, and no other control character than tab and
/// newline (they would break the class's feed for every reader, and no one types them).
fn plain_text(text: &str) -> Result<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::bad_request(
            "invalid_characters",
            "text may not hold control characters",
        ));
    }
    Ok(text)
}

/// Every state a post can be in.
const ALL_STATES: &[&str] = &["draft", "pending", "returned", "published"];
/// The states in which a student author may still change their post; once handed in, it is
/// frozen until the teacher returns it.
const AUTHOR_EDITS: &[&str] = &["draft", "returned"];

/// Edits a post (sent whole): a teacher, or its author while it is a draft or returned.
/// Every edit bumps the post's `revision`.
#[utoipa::path(put, path = "/api/v1/posts/{post_id}", tag = "posts", params(("post_id" = i64, Path)),
    request_body = PostContent, responses((status = 200, body = PostView), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn edit_post(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    ApiJson(content): ApiJson<PostContent>,
) -> Result<Json<PostView>> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    let editable_in = if manages(who) {
        ALL_STATES
    } else if writes(who, &current.user, &post) && post.state != "published" {
        AUTHOR_EDITS
    } else {
        return Err(Error::forbidden(
            "not_allowed",
            "only the author (before publication) or a teacher edits a post",
        ));
    };
    if !editable_in.contains(&post.state.as_str()) {
        return Err(Error::conflict(
            "wrong_state",
            "a handed-in post is frozen until the teacher returns it",
        ));
    }
    let (body, targets) = checked(&state, post.class_id, &content).await?;
    state
        .store
        .update_post(
            post.id,
            post.class_id,
            editable_in,
            &body,
            &content.visibility,
            &content.student_ids,
            &targets,
        )
        .await?;
    let post = state.store.post(post.id).await?.ok_or(Error::NotFound)?;
    state
        .events
        .publish(post.class_id, ClassEvent::Post { post_id: post.id });
    Ok(Json(view(&state, who, &current.user, post).await?))
}

/// One post with its comments.
#[utoipa::path(get, path = "/api/v1/posts/{post_id}", tag = "posts", params(("post_id" = i64, Path)),
    responses((status = 200, body = PostView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_post(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
) -> Result<Json<PostView>> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    Ok(Json(view(&state, who, &current.user, post).await?))
}

/// Deletes a post: its author (while a member who writes posts) or a teacher.
#[utoipa::path(delete, path = "/api/v1/posts/{post_id}", tag = "posts", params(("post_id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_post(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
) -> Result<StatusCode> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if !(manages(who) || writes(who, &current.user, &post)) {
        return Err(Error::forbidden(
            "not_allowed",
            "only the author or a teacher deletes a post",
        ));
    }
    state.store.delete_post(post.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A student hands in a draft (or a returned post) for the teacher to review.
#[utoipa::path(post, path = "/api/v1/posts/{post_id}/submit", tag = "posts", params(("post_id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
) -> Result<StatusCode> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if !writes(who, &current.user, &post) {
        return Err(Error::forbidden(
            "not_allowed",
            "only the author hands in a draft",
        ));
    }
    match state
        .store
        .set_post_state(post.id, &["draft", "returned"], "pending", None)
        .await?
    {
        true => Ok(changed(&state, &post)),
        false => Err(Error::conflict(
            "wrong_state",
            "only drafts and returned posts are handed in",
        )),
    }
}

/// A teacher publishes a handed-in draft, exactly as read: `revision` is the one the teacher
/// saw, and if the post changed since, nothing is published (`409 post_changed`).
#[utoipa::path(post, path = "/api/v1/posts/{post_id}/approve", tag = "posts", params(("post_id" = i64, Path)),
    request_body = ApproveRequest,
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    ApiJson(request): ApiJson<ApproveRequest>,
) -> Result<StatusCode> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if !manages(who) {
        return Err(Error::forbidden("not_allowed", "teachers approve posts"));
    }
    state.store.approve_post(post.id, request.revision).await?;
    Ok(changed(&state, &post))
}

/// A teacher returns a handed-in draft with a note.
#[utoipa::path(post, path = "/api/v1/posts/{post_id}/return", tag = "posts", params(("post_id" = i64, Path)),
    request_body = ReturnRequest, responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn return_post(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    ApiJson(request): ApiJson<ReturnRequest>,
) -> Result<StatusCode> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if !manages(who) {
        return Err(Error::forbidden("not_allowed", "teachers return posts"));
    }
    let note = plain_text(&request.note)?;
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_COMMENT {
        return Err(Error::bad_request(
            "invalid_note",
            format!("a note is 1 to {MAX_COMMENT} characters"),
        ));
    }
    match state
        .store
        .set_post_state(post.id, &["pending"], "returned", Some(note))
        .await?
    {
        true => Ok(changed(&state, &post)),
        false => Err(Error::conflict(
            "wrong_state",
            "only handed-in posts are returned",
        )),
    }
}

/// Families comment, teachers reply.
#[utoipa::path(post, path = "/api/v1/posts/{post_id}/comments", tag = "posts", params(("post_id" = i64, Path)),
    request_body = CommentRequest, responses((status = 201, body = Comment), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn comment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    ApiJson(request): ApiJson<CommentRequest>,
) -> Result<(StatusCode, Json<Comment>)> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if post.state != "published" || !decide(who, Action::Comment, Facts::default()).allowed() {
        return Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not comment",
        ));
    }
    let body = plain_text(&request.body)?;
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_COMMENT {
        return Err(Error::bad_request(
            "invalid_body",
            format!("a comment is 1 to {MAX_COMMENT} characters"),
        ));
    }
    let id = state
        .store
        .add_comment(post.id, current.user.id, body)
        .await?;
    state.events.publish(
        post.class_id,
        ClassEvent::Comment {
            post_id: post.id,
            comment_id: id,
        },
    );
    let comment = state
        .store
        .comments(post.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound)?;
    Ok((StatusCode::CREATED, Json(comment)))
}
