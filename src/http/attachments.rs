//! Uploads of student work (images, video, audio, PDF) and their download. The type is read
//! from the content, never trusted from the name, and a name that claims another type is
//! refused. An upload over the size limit is refused before anything is written when its
//! length is declared, and its partial file removed when it is not.
//!
//! A file is written under a temporary name in `data_dir/tmp` and renamed into
//! `data_dir/files` only when complete, so `files` never holds a partial file; what a crash
//! leaves in `tmp` is deleted at the next start ([`remove_crash_leftovers`]), and an upload
//! whose connection drops is deleted when its handler goes.
//!
//! Images are decompressed to make thumbnails, so a small file can claim a huge picture: an
//! image's dimensions are read from its header first and an image over [`MAX_PIXELS`] is
//! refused (`image_too_large`) before it is stored; decoding runs with the `image` crate's
//! limits, and at most [`DECODES`] images decode at once.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::classes::require;
use super::extract::CurrentUser;
use super::posts::visible;
use super::{Error, Result};
use crate::access::{decide, Action, Facts};
use crate::state::AppState;
use crate::store::attachments::{Attachment, NewAttachment};
use crate::store::users::User;

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
pub(super) fn check_type(content_type: Option<&str>, file_name: &str) -> Result<&'static str> {
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

/// The multipart form of an upload, for the API document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file's bytes; its type is read from its content, not from its name.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file being written under a temporary name; deleted when dropped unless it was moved
/// into place. Dropping happens on every early return and also when the client's connection
/// ends mid-body and the handler is dropped with it.
struct Partial {
    path: std::path::PathBuf,
    kept: bool,
}

impl Partial {
    /// Moves the complete file to `to` (replacing a file of the same content).
    async fn keep(mut self, to: &std::path::Path) -> std::io::Result<()> {
        tokio::fs::rename(&self.path, to).await?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The data directory's folder for files being written.
fn tmp_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("tmp")
}

/// Deletes what a crash left: everything in `data_dir/tmp`, and the partial `.upload-*` files
/// earlier versions wrote straight into `data_dir/files`. Returns how many were deleted.
pub fn remove_crash_leftovers(data_dir: &std::path::Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let tmp = tmp_dir(data_dir);
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries {
            let path = entry?.path();
            match path.is_dir() {
                true => std::fs::remove_dir_all(&path)?,
                false => std::fs::remove_file(&path)?,
            }
            removed += 1;
        }
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("files")) {
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".upload-") {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Uploads one file (multipart field `file`); attach it to a post with `attachment_ids`.
/// Images over 40 megapixels are refused (`image_too_large`).
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/attachments", tag = "posts", params(("class_id" = i64, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    current: std::result::Result<CurrentUser, Error>,
    Path(class_id): Path<i64>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<Attachment>)> {
    let limit = state.config.limits.max_upload_mb * 1024 * 1024;
    // Every refusal, a sign-in or permission one included, reads the rest of the upload first.
    let received = match current {
        Ok(current) => receive(&state, &current, class_id, &headers, &mut multipart).await,
        Err(e) => Err(e),
    };
    if received.is_err() {
        discard(&mut multipart, limit).await;
    }
    received
}

async fn receive(
    state: &AppState,
    current: &CurrentUser,
    class_id: i64,
    headers: &HeaderMap,
    multipart: &mut Multipart,
) -> Result<(StatusCode, Json<Attachment>)> {
    require(state, &current.user, class_id, Action::PublishPost).await?;
    let limit_mb = state.config.limits.max_upload_mb;
    let limit = limit_mb * 1024 * 1024;
    let too_large = || Error::TooLarge { limit_mb };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit + 64 * 1024) {
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
    let tmp = tmp_dir(&state.config.data_dir);
    for dir in [&files, &tmp] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::Internal(e.into()))?;
    }
    let temporary = Partial {
        path: tmp.join(format!("upload-{}", crate::auth::token::new_secret())),
        kept: false,
    };
    let written = async {
        let mut file = tokio::fs::File::create(&temporary.path)
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
    let (size, sha256, content_type) = written?;
    if size == 0 {
        return Err(Error::bad_request("empty_upload", "the file is empty"));
    }
    let image = content_type.starts_with("image/");
    if image {
        check_dimensions(temporary.path.clone()).await?;
    }
    // Stored once by content: the same photo uploaded twice is one file.
    temporary
        .keep(&files.join(&sha256))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let thumbnail = match image {
        true => make_thumbnail(files.join(&sha256), files.clone(), tmp).await,
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

/// The attachment, if the user may see it (as `download` says); 404 otherwise. Membership
/// decides first: an uploader removed from the class no longer reads their uploads.
async fn readable(state: &AppState, user: &User, attachment_id: i64) -> Result<Attachment> {
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
            let uploads = decide(who, Action::PublishPost, Facts::default()).allowed();
            if !(manages || (uploads && attachment.uploader_id == Some(user.id))) {
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

/// The largest image accepted, in pixels (a 40-megapixel photo decodes to 160 MB of RGBA).
pub const MAX_PIXELS: u64 = 40_000_000;

/// The most memory one decode may allocate; an image that needs more gets no thumbnail.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// How many images decode at once, whatever the number of uploads: with
/// [`MAX_DECODE_BYTES`] each, decoding never holds more than 512 MB.
pub const DECODES: usize = 2;
static DECODING: Semaphore = Semaphore::const_new(DECODES);

/// The image's width and height from its header alone; `None` if it has no header we read.
fn dimensions(path: &std::path::Path) -> Option<(u32, u32)> {
    image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// Refuses an image whose header claims more than [`MAX_PIXELS`], before anything decodes
/// it. A file whose header does not read is kept (without a thumbnail), as before.
async fn check_dimensions(path: std::path::PathBuf) -> Result<()> {
    let size = tokio::task::spawn_blocking(move || dimensions(&path))
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    match size {
        Some((w, h)) if u64::from(w) * u64::from(h) > MAX_PIXELS => Err(Error::bad_request(
            "image_too_large",
            format!(
                "images are at most {} megapixels; this one is {w}x{h}",
                MAX_PIXELS / 1_000_000
            ),
        )),
        _ => Ok(()),
    }
}

/// The image decoded within [`MAX_PIXELS`] and [`MAX_DECODE_BYTES`], scaled down to fit
/// [`THUMBNAIL`] (never up: a small image stays its size), as PNG.
fn thumbnail_png(path: &std::path::Path) -> Option<Vec<u8>> {
    let (w, h) = dimensions(path)?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return None;
    }
    let mut reader = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let small = shrink(reader.decode().ok()?);
    let mut png = std::io::Cursor::new(Vec::new());
    small.write_to(&mut png, image::ImageFormat::Png).ok()?;
    Some(png.into_inner())
}

/// Decodes the image off the async workers (at most [`DECODES`] at once) and stores a PNG
/// thumbnail by its hash, written in `tmp` and moved into place; `None` when the file does
/// not decode within the limits (the upload itself is still kept).
async fn make_thumbnail(
    path: std::path::PathBuf,
    files: std::path::PathBuf,
    tmp: std::path::PathBuf,
) -> Option<String> {
    let permit = DECODING.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        // Held by the decode itself, so a client that hangs up does not free its place early.
        let _permit = permit;
        let png = thumbnail_png(&path)?;
        let sha = hex::encode(Sha256::digest(&png));
        let partial = tmp.join(format!("thumbnail-{}", crate::auth::token::new_secret()));
        let stored = std::fs::write(&partial, &png)
            .and_then(|()| std::fs::rename(&partial, files.join(&sha)));
        if stored.is_err() {
            let _ = std::fs::remove_file(&partial);
            return None;
        }
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

    fn png_file(dir: &std::path::Path, width: u32, height: u32) -> std::path::PathBuf {
        let path = dir.join(format!("{width}x{height}.png"));
        let mut encoder = png::Encoder::new(std::fs::File::create(&path).unwrap(), width, height);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![128u8; (width * height) as usize])
            .unwrap();
        path
    }

    fn png_size(bytes: Vec<u8>) -> (u32, u32) {
        let info = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap()
            .info()
            .clone();
        (info.width, info.height)
    }

    #[test]
    fn thumbnails_shrink_but_never_enlarge() {
        let dir = tempfile::tempdir().unwrap();
        let small = thumbnail_png(&png_file(dir.path(), 40, 30)).unwrap();
        assert_eq!(png_size(small), (40, 30));
        let large = thumbnail_png(&png_file(dir.path(), 960, 240)).unwrap();
        assert_eq!(png_size(large), (480, 120));
    }

    #[test]
    fn leftovers_of_a_crash_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp/nested")).unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("tmp/upload-x"), b"partial").unwrap();
        std::fs::write(dir.path().join("files/.upload-y"), b"partial").unwrap();
        std::fs::write(dir.path().join("files/abc123"), b"kept").unwrap();
        assert_eq!(remove_crash_leftovers(dir.path()).unwrap(), 3);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let kept: Vec<_> = std::fs::read_dir(dir.path().join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(kept, vec![std::ffi::OsString::from("abc123")]);
        assert_eq!(
            remove_crash_leftovers(&dir.path().join("absent")).unwrap(),
            0
        );
    }

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
