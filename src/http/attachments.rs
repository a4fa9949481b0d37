//! Uploads of student work (images, video, audio, PDF) and their download. The type is read
//! from the content, never trusted from the name, and a name that claims another type is
//! refused. An upload over the size limit is refused before anything is written when its
//! length is declared, and its partial file removed when it is not.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::classes::require;
use super::extract::CurrentUser;
use super::posts::visible;
use super::{Error, Result};
use crate::access::{decide, Action, Facts};
use crate::state::AppState;
use crate::store::attachments::{Attachment, NewAttachment};

/// Content types accepted, with the file-name extensions that may go with each.
const ALLOWED: &[(&str, &[&str])] = &[
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/png", &["png"]),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
    ("video/mp4", &["mp4", "m4v"]),
    ("video/webm", &["webm"]),
    ("video/quicktime", &["mov"]),
    ("audio/mpeg", &["mp3"]),
    ("audio/ogg", &["ogg", "oga", "opus"]),
    ("audio/x-wav", &["wav"]),
    ("audio/m4a", &["m4a"]),
    ("application/pdf", &["pdf"]),
];

pub fn router() -> Router<AppState> {
    Router::new()
        // The size limit is the configured one, enforced below while streaming.
        .route(
            "/api/v1/classes/{class_id}/attachments",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/attachments/{attachment_id}", get(download))
        .route(
            "/api/v1/attachments/{attachment_id}/thumbnail",
            get(thumbnail),
        )
}

/// Whether the content type is accepted for a file of this name.
fn check_type(content_type: Option<&str>, file_name: &str) -> Result<&'static str> {
    let Some((accepted, extensions)) =
        content_type.and_then(|t| ALLOWED.iter().find(|(a, _)| *a == t))
    else {
        return Err(Error::bad_request(
            "type_not_allowed",
            "images, video, audio and PDF files only",
        ));
    };
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match extension {
        Some(extension) if !extensions.contains(&extension.as_str()) => Err(Error::bad_request(
            "type_mismatch",
            format!("the file's name says .{extension} but it holds {accepted}"),
        )),
        _ => Ok(accepted),
    }
}

/// Uploads one file (multipart field `file`); attach it to a post with `attachment_ids`.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/attachments", tag = "posts", params(("class_id" = i64, Path)),
    request_body(content = String, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment), (status = 400, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<Attachment>)> {
    require(&state, &current.user, class_id, Action::PublishPost).await?;
    let limit_mb = state.config.limits.max_upload_mb;
    let limit = limit_mb * 1024 * 1024;
    let too_large = || Error::TooLarge { limit_mb };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit + 64 * 1024) {
        discard(&mut multipart, limit).await;
        return Err(too_large());
    }
    let mut field = loop {
        match multipart
            .next_field()
            .await
            .map_err(|e| Error::bad_request("bad_upload", e.body_text()))?
        {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => {
                return Err(Error::bad_request(
                    "bad_upload",
                    "send the file in a field named \"file\"",
                ))
            }
        }
    };
    let file_name = field
        .file_name()
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
        .take(200)
        .collect::<String>();
    let files = state.config.data_dir.join("files");
    tokio::fs::create_dir_all(&files)
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let temporary = files.join(format!(".upload-{}", crate::auth::token::new_secret()));
    let written = async {
        let mut file = tokio::fs::File::create(&temporary)
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        let (mut size, mut hasher, mut head) = (0u64, Sha256::new(), Vec::new());
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| Error::bad_request("bad_upload", e.body_text()))?
        {
            size += chunk.len() as u64;
            if size > limit {
                break;
            }
            if head.len() < 8192 {
                head.extend_from_slice(&chunk[..chunk.len().min(8192 - head.len())]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::Internal(e.into()))?;
        }
        file.flush().await.map_err(|e| Error::Internal(e.into()))?;
        if size > limit {
            return Err(too_large());
        }
        let content_type = check_type(infer::get(&head).map(|t| t.mime_type()), &file_name)?;
        Ok((size, hex::encode(hasher.finalize()), content_type))
    }
    .await;
    let (size, sha256, content_type) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temporary).await;
            discard(&mut multipart, limit).await;
            return Err(e);
        }
    };
    if size == 0 {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(Error::bad_request("empty_upload", "the file is empty"));
    }
    // Stored once by content: the same photo uploaded twice is one file.
    tokio::fs::rename(&temporary, files.join(&sha256))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let thumbnail = match content_type.starts_with("image/") {
        true => make_thumbnail(files.join(&sha256), files.clone()).await,
        false => None,
    };
    let attachment = state
        .store
        .create_attachment(NewAttachment {
            class_id,
            uploader_id: current.user.id,
            sha256: &sha256,
            content_type,
            size_bytes: size as i64,
            file_name: &file_name,
            thumbnail_sha256: thumbnail.as_deref(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(attachment)))
}

/// The attachment, if the user may see it (as `download` says); 404 otherwise.
async fn readable(
    state: &AppState,
    user: &crate::store::users::User,
    attachment_id: i64,
) -> Result<Attachment> {
    let attachment = state
        .store
        .attachment(attachment_id)
        .await?
        .ok_or(Error::NotFound)?;
    match attachment.post_id {
        Some(post_id) => {
            let post = state.store.post(post_id).await?.ok_or(Error::NotFound)?;
            visible(state, user, &post).await?;
        }
        None => {
            let who = super::classes::who_in(state, user, attachment.class_id).await?;
            let manages = decide(who, Action::ManageClass, Facts::default()).allowed();
            if !(manages || attachment.uploader_id == Some(user.id)) {
                return Err(Error::NotFound);
            }
        }
    }
    Ok(attachment)
}

/// A small PNG of an image attachment, for timelines on phones.
#[utoipa::path(get, path = "/api/v1/attachments/{attachment_id}/thumbnail", tag = "posts", params(("attachment_id" = i64, Path)),
    responses((status = 200, description = "a PNG", content_type = "image/png"), (status = 404, body = super::error::ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(attachment_id): Path<i64>,
) -> Result<Response> {
    let attachment = readable(&state, &current.user, attachment_id).await?;
    let name = attachment.thumbnail_sha256.ok_or(Error::NotFound)?;
    let bytes = tokio::fs::read(state.config.data_dir.join("files").join(name))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// Longest side of a thumbnail, in pixels.
const THUMBNAIL: u32 = 480;

/// Decodes the image off the async workers and stores a PNG thumbnail by its hash; `None`
/// when the file does not decode (the upload itself is still kept).
async fn make_thumbnail(path: std::path::PathBuf, files: std::path::PathBuf) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let image = image::ImageReader::open(&path)
            .ok()?
            .with_guessed_format()
            .ok()?
            .decode()
            .ok()?;
        let small = shrink(image);
        let mut png = std::io::Cursor::new(Vec::new());
        small.write_to(&mut png, image::ImageFormat::Png).ok()?;
        let png = png.into_inner();
        let sha = hex::encode(Sha256::digest(&png));
        std::fs::write(files.join(&sha), &png).ok()?;
        Some(sha)
    })
    .await
    .ok()
    .flatten()
}

/// The image made to fit in `THUMBNAIL` pixels a side; one that fits already is kept at its
/// size (a thumbnail never enlarges: a small photo blown up is blurred and heavier).
fn shrink(image: image::DynamicImage) -> image::DynamicImage {
    if image.width() <= THUMBNAIL && image.height() <= THUMBNAIL {
        image
    } else {
        image.thumbnail(THUMBNAIL, THUMBNAIL)
    }
}

/// Reads the rest of a refused upload (up to a cap) without keeping it: an HTTP/1.1 client
/// still sending would otherwise hit a closed connection and never see the refusal.
async fn discard(multipart: &mut Multipart, limit: u64) {
    let mut budget = limit.saturating_mul(4).max(64 * 1024 * 1024);
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            budget = budget.saturating_sub(chunk.len() as u64);
            if budget == 0 {
                return;
            }
        }
    }
}

/// The file, for those who may see the post it belongs to (or, before it is posted, for its
/// uploader and the class's teachers). Anyone else gets the answer a missing file gets.
#[utoipa::path(get, path = "/api/v1/attachments/{attachment_id}", tag = "posts", params(("attachment_id" = i64, Path)),
    responses((status = 200, description = "the file"), (status = 404, body = super::error::ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(attachment_id): Path<i64>,
) -> Result<Response> {
    let attachment = readable(&state, &current.user, attachment_id).await?;
    let path = state.config.data_dir.join("files").join(&attachment.sha256);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let disposition = if attachment.content_type == "application/pdf" {
        "attachment"
    } else {
        "inline"
    };
    let name: String = attachment
        .file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_ ".contains(*c))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, attachment.content_type.clone()),
            (header::CONTENT_LENGTH, attachment.size_bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{name}\""),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_shrink_large_images_and_never_enlarge_small_ones() {
        let small = image::DynamicImage::new_rgb8(120, 80);
        let kept = shrink(small);
        assert_eq!((kept.width(), kept.height()), (120, 80));
        let large = shrink(image::DynamicImage::new_rgb8(1920, 960));
        assert_eq!((large.width(), large.height()), (THUMBNAIL, THUMBNAIL / 2));
        let tall = shrink(image::DynamicImage::new_rgb8(300, 600));
        assert_eq!((tall.width(), tall.height()), (THUMBNAIL / 2, THUMBNAIL));
    }

    #[test]
    fn types_come_from_content_and_names_must_agree() {
        assert_eq!(
            check_type(Some("image/png"), "drawing.png").unwrap(),
            "image/png"
        );
        assert_eq!(
            check_type(Some("image/png"), "drawing").unwrap(),
            "image/png"
        );
        assert_eq!(
            check_type(Some("application/pdf"), "drawing.png")
                .unwrap_err()
                .code(),
            "type_mismatch"
        );
        assert_eq!(
            check_type(None, "notes.pdf").unwrap_err().code(),
            "type_not_allowed"
        );
        assert_eq!(
            check_type(Some("application/x-executable"), "game.png")
                .unwrap_err()
                .code(),
            "type_not_allowed"
        );
    }
}
