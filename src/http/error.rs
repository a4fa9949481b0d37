//! The one HTTP error type: every handler returns it, and this is the only place that decides
//! status codes and the `{"error": {"code", "message"}}` body. Codes are stable; clients and
//! tests match on them, never on messages.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::store::{violation, Violation};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sign in first")]
    Unauthorized,
    #[error("wrong login or password")]
    BadCredentials,
    /// A bearer credential (stream key) that is not valid.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// Also used for things that exist but are not the caller's: answering "forbidden" would
    /// tell a family that another class exists.
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("the request's CSRF token is missing or wrong")]
    Csrf,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A bound on how much one client may hold at once (429 with its own code).
    #[error("{message}")]
    TooMany { code: &'static str, message: String },
    /// The server carries as much as it may (`node_full`): 503, try again later.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Too many password hashes are queued (a burst of sign-ins): try again in a moment.
    #[error("the server is busy; try again in a moment")]
    Busy,
    #[error("the upload is larger than {limit_mb} MB")]
    TooLarge { limit_mb: u64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn gone(code: &'static str, message: impl Into<String>) -> Error {
        Error::Gone {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized | Error::BadCredentials | Error::Unauthenticated { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Forbidden { .. } | Error::Csrf => StatusCode::FORBIDDEN,
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Gone { .. } => StatusCode::GONE,
            Error::RateLimited { .. } | Error::TooMany { .. } | Error::Busy => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Every connection busy for the whole acquire timeout: overload, not a fault.
            Error::Database(sqlx::Error::PoolTimedOut) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(e) => match violation(e) {
                Some(Violation::Unique | Violation::ForeignKey) => StatusCode::CONFLICT,
                Some(Violation::Check) => StatusCode::BAD_REQUEST,
                None => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => "unauthorized",
            Error::BadCredentials => "bad_credentials",
            Error::NotFound => "not_found",
            Error::Forbidden { code, .. }
            | Error::Unauthenticated { code, .. }
            | Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Unavailable { code, .. }
            | Error::Gone { code, .. }
            | Error::TooMany { code, .. } => code,
            Error::Csrf => "csrf",
            Error::RateLimited { .. } => "rate_limited",
            Error::Busy | Error::Database(sqlx::Error::PoolTimedOut) => "busy",
            Error::TooLarge { .. } => "too_large",
            Error::Database(e) => match violation(e) {
                Some(Violation::Unique) => "already_exists",
                Some(Violation::ForeignKey) => "missing_reference",
                Some(Violation::Check) => "invalid_value",
                None => "internal",
            },
            Error::Internal(_) => "internal",
        }
    }

    /// The human text of the answer. A broken constraint says which kind (handlers check
    /// what they can first; this is what a race between check and write leaves).
    fn message(&self) -> String {
        match self {
            Error::Database(sqlx::Error::PoolTimedOut) => Error::Busy.to_string(),
            Error::Database(e) => match violation(e) {
                Some(Violation::Unique) => "that exists already".into(),
                Some(Violation::ForeignKey) => {
                    "the request names something that does not exist (any more)".into()
                }
                Some(Violation::Check) => "a value is not one this field takes".into(),
                None => self.to_string(),
            },
            _ => self.to_string(),
        }
    }
}

/// The JSON body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invite_expired`.
    pub code: String,
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("refused: every database connection stayed busy")
            }
            Error::Database(e) if violation(e).is_some() => {
                tracing::info!(error = %e, "refused: constraint violation")
            }
            Error::Database(e) => tracing::error!(error = %e, "database error"),
            Error::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            _ => {}
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let retry_after = match self {
            Error::RateLimited { retry_after_secs } => Some(retry_after_secs.max(1)),
            Error::Busy | Error::Database(sqlx::Error::PoolTimedOut) => Some(1),
            Error::Unavailable { .. } => Some(30),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::auth::rate_limit::RetryAfter> for Error {
    fn from(wait: crate::auth::rate_limit::RetryAfter) -> Error {
        Error::RateLimited {
            retry_after_secs: wait.0,
        }
    }
}

impl From<crate::auth::password::Busy> for Error {
    fn from(_: crate::auth::password::Busy) -> Error {
        Error::Busy
    }
}

impl From<crate::auth::password::HashError> for Error {
    fn from(e: crate::auth::password::HashError) -> Error {
        use crate::auth::password::HashError;
        match e {
            HashError::Policy(policy) => Error::bad_request("weak_password", policy.to_string()),
            HashError::Busy(_) => Error::Busy,
        }
    }
}

/// A live room's refusal over HTTP (WHIP, WHEP) answers as the signalling does: the same code,
/// and the status below.
impl From<crate::sfu::error::RoomError> for Error {
    fn from(e: crate::sfu::error::RoomError) -> Error {
        crate::signal::error::SignalError::from(e).into()
    }
}

/// Signalling refusals reached over HTTP (WHIP, WHEP) keep their codes.
impl From<crate::signal::error::SignalError> for Error {
    fn from(e: crate::signal::error::SignalError) -> Error {
        use crate::signal::error::SignalError as S;
        match e {
            S::RoomNotFound => Error::NotFound,
            S::Internal => Error::Internal(anyhow::anyhow!("signalling failed")),
            S::NotAllowed(message) => Error::Forbidden {
                code: "not_allowed",
                message,
            },
            S::NodeFull => Error::Unavailable {
                code: "node_full",
                message: S::NodeFull.to_string(),
            },
            other => Error::Conflict {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

/// Rejections of axum's extractors (bad JSON, wrong content type) speak the same format.
impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Error {
        Error::bad_request("bad_json", rejection.body_text())
    }
}

/// Axum answers some refusals itself, before any handler runs: an unknown route, a method the
/// route does not have, a path parameter that does not parse, a body over the size limit. On
/// the API (and WHIP/WHEP) those get the same JSON body as every other error, so a client
/// needs one way to read a refusal; status and headers (`Allow`) stay as axum set them.
pub async fn json_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let api = ["/api/", "/whip/", "/whep/"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || !status.is_client_error() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The extractors' own texts say what was wrong ("Cannot parse `x` to a `i64`"); keep them.
    let text = axum::body::to_bytes(body, 2048).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        _ => "bad_request",
    };
    let message = match text.is_empty() {
        true => status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase(),
        false => text,
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
        },
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(
        parts,
        axum::body::Body::from(serde_json::to_vec(&body).expect("serializes")),
    )
}
