//! Invites: made by teachers, printed on the note that goes home (link, short code, QR code),
//! and accepted by families, tutors and students on their phones.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::{hash_password, parse_login, parse_name, signed_in, Me};
use super::classes::{require, require_active};
use super::extract::{ApiJson, ClientIp, CurrentUser, MaybeUser};
use super::{Error, Result};
use crate::access::{Action, Role};
use crate::auth::token;
use crate::state::AppState;
use crate::store::invites::{AcceptError, Invite, InviteProblem, InviteUse, Joiner, NewInvite};
use crate::store::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/classes/{class_id}/invites",
            get(list_invites).post(create_invite),
        )
        .route(
            "/api/v1/classes/{class_id}/invites/{invite_id}",
            delete(revoke_invite),
        )
        .route("/api/v1/invites/lookup", post(lookup))
        .route("/api/v1/invites/accept", post(accept))
        .route("/api/v1/invites/qr", post(qr_code))
}

const HOUR_MS: i64 = 60 * 60 * 1000;

#[derive(Deserialize, ToSchema)]
pub struct CreateInviteRequest {
    pub role: Role,
    /// The child a family (or a student login) is linked to; required for families.
    pub student_id: Option<i64>,
    /// Families only: every child the family is linked to (siblings in the class), instead of
    /// or besides `student_id`.
    #[serde(default)]
    pub student_ids: Vec<i64>,
    /// Default 14 days; at most 90 days.
    pub expires_in_hours: Option<i64>,
    /// Default 2 for families (two parents), 1 otherwise; at most 100.
    pub max_uses: Option<i64>,
}

/// A new invite. `code`, the link and the QR codes are shown only now: the server keeps
/// only the code's hash.
#[derive(Serialize, ToSchema)]
pub struct CreatedInvite {
    pub invite: Invite,
    /// Short code to type on a phone, e.g. `K7PM-3QXD-ABCE`.
    pub code: String,
    pub join_url: String,
    /// The join link as a QR code, an SVG document.
    pub qr_svg: String,
    /// The join link as a QR code, a PNG image in base64.
    pub qr_png_base64: String,
}

#[derive(Serialize, ToSchema)]
pub struct InviteWithUses {
    #[serde(flatten)]
    pub invite: Invite,
    /// Who joined through this invite, and when.
    pub joined: Vec<InviteUse>,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitePreview {
    pub class_name: String,
    pub role: String,
    pub student_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptRequest {
    pub code: String,
    /// For a new account; ignored when signed in.
    pub login: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Makes an invite for a role in the class.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/invites", tag = "invites", params(("class_id" = i64, Path)),
    request_body = CreateInviteRequest,
    responses((status = 201, body = CreatedInvite), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn create_invite(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<CreateInviteRequest>,
) -> Result<(StatusCode, Json<CreatedInvite>)> {
    require(&state, &current.user, class_id, Action::CreateInvite).await?;
    require_active(&state, class_id).await?;
    let mut students: Vec<i64> = request.student_id.into_iter().collect();
    for id in &request.student_ids {
        if !students.contains(id) {
            students.push(*id);
        }
    }
    if request.role == Role::Family && students.is_empty() {
        return Err(Error::bad_request(
            "student_required",
            "a family invite names the student it is for",
        ));
    }
    if request.role != Role::Family && students.len() > 1 {
        return Err(Error::bad_request(
            "one_student_only",
            "only family invites name more than one student",
        ));
    }
    for student_id in &students {
        state
            .store
            .student(class_id, *student_id)
            .await?
            .ok_or_else(|| {
                Error::bad_request("unknown_student", "no student with that id in this class")
            })?;
    }
    let hours = request.expires_in_hours.unwrap_or(14 * 24);
    let default_uses = if request.role == Role::Family { 2 } else { 1 };
    let max_uses = request.max_uses.unwrap_or(default_uses);
    if !(1..=90 * 24).contains(&hours) {
        return Err(Error::bad_request(
            "invalid_expiry",
            "expires_in_hours must be between 1 and 2160",
        ));
    }
    if !(1..=100).contains(&max_uses) {
        return Err(Error::bad_request(
            "invalid_max_uses",
            "max_uses must be between 1 and 100",
        ));
    }
    let code = token::new_code();
    let invite = state
        .store
        .create_invite(NewInvite {
            class_id,
            role: request.role,
            student_id: students.first().copied(),
            more_students: students.get(1..).unwrap_or_default(),
            code_hash: &token::hash(&code),
            created_by: current.user.id,
            expires_at: now_ms() + hours * HOUR_MS,
            max_uses,
        })
        .await?;
    let join_url = join_url(&state, &code);
    let created = CreatedInvite {
        qr_svg: qr::svg(&join_url),
        qr_png_base64: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            qr::png(&join_url),
        ),
        invite,
        code,
        join_url,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The class's invites, newest first, each with who joined through it.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/invites", tag = "invites", params(("class_id" = i64, Path)),
    responses((status = 200, body = [InviteWithUses]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_invites(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Json<Vec<InviteWithUses>>> {
    require(&state, &current.user, class_id, Action::CreateInvite).await?;
    let mut uses: HashMap<i64, Vec<InviteUse>> = HashMap::new();
    for u in state.store.invite_uses(class_id).await? {
        uses.entry(u.invite_id).or_default().push(u);
    }
    let invites = state.store.invites(class_id).await?;
    Ok(Json(
        invites
            .into_iter()
            .map(|invite| InviteWithUses {
                joined: uses.remove(&invite.id).unwrap_or_default(),
                invite,
            })
            .collect(),
    ))
}

/// Revokes an invite; people who already joined stay members.
#[utoipa::path(delete, path = "/api/v1/classes/{class_id}/invites/{invite_id}", tag = "invites",
    params(("class_id" = i64, Path), ("invite_id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((class_id, invite_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::CreateInvite).await?;
    match state.store.revoke_invite(class_id, invite_id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}

/// What an invite code is for, so the join page can greet the family by their child's class.
#[utoipa::path(post, path = "/api/v1/invites/lookup", tag = "invites", request_body = CodeRequest,
    responses((status = 200, body = InvitePreview), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Json<InvitePreview>> {
    let key = format!("invite:{ip}");
    let invite = usable_invite(&state, &key, &request.code).await?;
    let class = state
        .store
        .class(invite.class_id)
        .await?
        .ok_or(Error::NotFound)?;
    let names = state.store.invite_student_names(&invite).await?;
    let student_name = (!names.is_empty()).then(|| names.join(", "));
    Ok(Json(InvitePreview {
        class_name: class.name,
        role: invite.role,
        student_name,
    }))
}

/// Joins the class: signed in, the account gains a membership; otherwise a new account is
/// made and signed in.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = "invites", request_body = AcceptRequest,
    responses((status = 200, body = Me), (status = 201, body = Me), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    MaybeUser(current): MaybeUser,
    ApiJson(request): ApiJson<AcceptRequest>,
) -> Result<Response> {
    let key = format!("invite:{ip}");
    usable_invite(&state, &key, &request.code).await?;
    let code_hash = token::hash(&token::normalize_code(&request.code).unwrap_or_default());
    let result = match &current {
        Some(current) => {
            state
                .store
                .accept_invite(&code_hash, Joiner::Existing(current.user.id))
                .await
        }
        None => {
            let missing = || {
                Error::bad_request(
                    "account_required",
                    "a new account needs login, display_name and password",
                )
            };
            let login = parse_login(request.login.as_deref().ok_or_else(missing)?)?;
            let name = parse_name(request.display_name.as_deref().ok_or_else(missing)?)?;
            let password = request.password.as_deref().ok_or_else(missing)?;
            let hash = hash_password(&state, password).await?;
            let email = request
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty());
            let joiner = Joiner::New {
                login: login.as_str(),
                display_name: name.as_str(),
                email,
                password_hash: &hash,
            };
            state.store.accept_invite(&code_hash, joiner).await
        }
    };
    let (user, invite) = match result {
        Ok(done) => done,
        Err(AcceptError::Invite(problem)) => return Err(invite_error(problem)),
        Err(AcceptError::LoginTaken) => {
            return Err(Error::conflict("login_taken", "this login is taken"))
        }
        Err(AcceptError::Database(e)) => return Err(e.into()),
    };
    tracing::info!(
        user_id = user.id,
        invite_id = invite.id,
        class_id = invite.class_id,
        "invite accepted"
    );
    crate::notify::fanout::invitation_accepted(&state, invite.class_id, invite.id, &user).await;
    match current {
        Some(current) => {
            let classes = state.store.classes_of(user.id, user.is_admin()).await?;
            Ok(Json(Me {
                user: user.into(),
                csrf_token: current.csrf,
                classes,
            })
            .into_response())
        }
        None => signed_in(&state.store, user, StatusCode::CREATED).await,
    }
}

/// Finds the invite behind a typed code, counting unknown codes against the IP's limit (the
/// attempt is reserved before the look-up, so parallel guesses cannot pass the limit).
async fn usable_invite(state: &AppState, key: &str, typed: &str) -> Result<Invite> {
    let attempt = state.rate_limits.invite_ip.reserve(key)?;
    let found = match token::normalize_code(typed) {
        Some(code) => state.store.invite_by_code(&token::hash(&code)).await?,
        None => None,
    };
    let Some(invite) = found else {
        attempt.failed();
        return Err(invite_error(InviteProblem::Unknown));
    };
    drop(attempt);
    match invite.problem(now_ms()) {
        Some(problem) => Err(invite_error(problem)),
        None => {
            // An archived class takes nobody new, whatever invites are still about.
            require_active(state, invite.class_id).await?;
            Ok(invite)
        }
    }
}

/// The join link of an invite as a QR code (an SVG document), for the printed invitation
/// sheet, which has only the code. Anyone with a usable code may ask, as for `lookup`.
#[utoipa::path(post, path = "/api/v1/invites/qr", tag = "invites", request_body = CodeRequest,
    responses((status = 200, description = "the QR code of the join link", content_type = "image/svg+xml"),
        (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
        (status = 410, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn qr_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<CodeRequest>,
) -> Result<Response> {
    let key = format!("invite:{ip}");
    usable_invite(&state, &key, &request.code).await?;
    let code = token::normalize_code(&request.code).unwrap_or_default();
    let url = join_url(&state, &code);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        qr::svg(&url),
    )
        .into_response())
}

/// The link a family opens: the code after `#`, so it never reaches a server log.
pub(super) fn join_url(state: &AppState, code: &str) -> String {
    let mut url = state.public_url.join("join").expect("valid path");
    url.set_fragment(Some(code));
    url.to_string()
}

fn invite_error(problem: InviteProblem) -> Error {
    match problem {
        InviteProblem::Unknown => Error::BadRequest {
            code: "invite_invalid",
            message: "no invite has this code; check it and try again".into(),
        },
        InviteProblem::Revoked => Error::gone(
            "invite_revoked",
            "the teacher withdrew this invite; ask for a new one",
        ),
        InviteProblem::Expired => Error::gone(
            "invite_expired",
            "this invite has expired; ask the teacher for a new one",
        ),
        InviteProblem::UsedUp => Error::gone(
            "invite_used_up",
            "this invite has been used as often as allowed",
        ),
    }
}

/// QR codes for the note that goes home.
mod qr {
    use qrcode::{Color, EcLevel, QrCode};

    fn code(text: &str) -> QrCode {
        QrCode::with_error_correction_level(text, EcLevel::M).expect("a URL fits in a QR code")
    }

    pub fn svg(text: &str) -> String {
        code(text)
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build()
    }

    /// A black-on-white PNG, 8 pixels per module, with the standard 4-module quiet zone.
    pub fn png(text: &str) -> Vec<u8> {
        const SCALE: usize = 8;
        const QUIET: usize = 4;
        let code = code(text);
        let modules = code.width();
        let colors = code.to_colors();
        let side = (modules + 2 * QUIET) * SCALE;
        let mut pixels = vec![255u8; side * side];
        for (i, color) in colors.iter().enumerate() {
            if *color == Color::Dark {
                let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
                for y in my * SCALE..(my + 1) * SCALE {
                    pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
                }
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("png header");
        writer.write_image_data(&pixels).expect("png data");
        writer.finish().expect("png end");
        out
    }
}
