//! `POST /main/upload`: multipart field `file`, one or more files.
//!
//! 201 with `Location` (the first file) and `{"files": [...]}`; a browser
//! form post gets a 303 to the page of the new images instead. A request
//! either stores all its files or none.

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::mime;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;
use crate::image::ImageFormat;
use crate::ingest::{Batch, Ingested, Pipeline};
use crate::metrics::{InFlight, KindLabels};
use crate::timeouts::IdleTimeout;
use crate::web::error::ApiError;
use crate::web::form::{self, idle_body_error};
use crate::web::negotiate::wants_html;
use crate::web::public_url::base_url;
use crate::web::state::AppState;

/// Form fields that are not files, per request, beyond which the request is refused.
const MAX_OTHER_FIELDS: usize = 16;

/// One stored file, as the answer describes it (the API tests read it back with this type too).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    #[schema(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]
    pub id: String,
    #[schema(pattern = "^https?://")]
    pub url: String,
    pub size: u64,
    #[schema(schema_with = image_media_type)]
    pub content_type: String,
    pub width: u64,
    pub height: u64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    pub delete_token: String,
    pub file_name: Option<String>,
    /// What metadata was removed on the way in: `["gps", "exif", "xmp"]`.
    pub metadata_removed: Vec<String>,
    pub message: String,
}

/// The contract's schema of `content_type`: one of the accepted formats.
fn image_media_type() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ImageFormat::ALL.map(ImageFormat::mime_type)))
        .build()
}

/// The answer to an upload: one entry per file, in order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadResponse {
    #[schema(min_items = 1)]
    pub files: Vec<UploadedFile>,
}

pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_upload_head(req.headers(), &state)?;
    // Beyond the cap, refuse before reading a byte: memory has a stated bound.
    let _slot = state.upload_slots.clone().try_acquire_owned().map_err(|_| ApiError::too_many_uploads())?;
    let _in_flight = InFlight::enter(&state.metrics.uploads_in_flight);

    // A body that goes silent ends with an error instead of pinning memory.
    let payload = IdleTimeout::new(payload, state.idle_timeout(), idle_body_error);
    let max_duration = Duration::from_secs(state.limits.max_duration_secs);
    let mut batch = Batch::new(state.store.clone());
    let received = tokio::time::timeout(max_duration, receive_files(&req, payload, &state, &mut batch)).await;
    let failure = match received {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(ApiError::new(
            ErrorCode::UploadTimeout,
            format!("the upload took longer than the limit of {} seconds", max_duration.as_secs()),
        )),
    };
    if let Some(e) = failure {
        batch.roll_back().await;
        return Err(e);
    }
    let files = batch.commit();
    state.metrics.images_stored.inc_by(files.len() as u64);
    state.metrics.bytes_received.inc_by(files.iter().map(|f| f.stored.size).sum());
    for kind in files.iter().flat_map(|f| f.stored.metadata_removed.kinds()) {
        state.metrics.metadata_removed.get_or_create(&KindLabels { kind: kind.as_str() }).inc();
    }
    for file in &files {
        tracing::info!(id = %file.id, size = file.stored.size, content_type = file.info.format.mime_type(), "image stored");
    }

    if wants_html(&req) {
        return Ok(see_the_images(&files, &state));
    }
    let base = base_url(&req);
    let body = UploadResponse { files: files.iter().map(|f| describe(f, &base, &state)).collect() };
    let location = body.files.first().map(|f| f.url.clone()).unwrap_or_default();
    Ok(HttpResponse::Created().insert_header((header::LOCATION, location)).json(body))
}

/// What can be refused from the request head alone, before any of the body
/// is read (and, with `Expect: 100-continue`, before it is even sent): a
/// declared length over the limit, a body that is not `multipart/form-data`
/// (`multipart/mixed` and friends are not uploads), an instance at its cap.
pub fn check_upload_head(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let limit = state.limits.max_request_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > limit) {
        return Err(ApiError::new(
            ErrorCode::RequestTooLarge,
            format!("the request body of {length} bytes is larger than the limit of {limit} bytes"),
        ));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let is_form_data = content_type
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|mime| mime.type_() == mime::MULTIPART && mime.subtype() == mime::FORM_DATA);
    if !is_form_data {
        return Err(form::not_form_data());
    }
    if state.upload_slots.available_permits() == 0 {
        return Err(ApiError::too_many_uploads());
    }
    Ok(())
}

async fn receive_files(
    req: &HttpRequest,
    payload: impl Stream<Item = Result<Bytes, PayloadError>> + 'static,
    state: &AppState,
    batch: &mut Batch,
) -> Result<(), ApiError> {
    let idle = state.idle_timeout();
    let pipeline = Pipeline {
        store: state.store.as_ref(),
        ids: state.ids.as_ref(),
        limits: &state.limits,
        rewrites: &state.rewrites,
    };
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut other_fields = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| form::form_error(e, idle))?;
        if field.name() != Some("file") {
            other_fields += 1;
            if other_fields > MAX_OTHER_FIELDS {
                return Err(ApiError::new(ErrorCode::TooManyFields, "the form has too many fields"));
            }
            form::skip_field(&mut field, idle).await?;
            continue;
        }
        if batch.len() == state.limits.max_files {
            return Err(ApiError::new(
                ErrorCode::TooManyFiles,
                format!("at most {} files may be uploaded in one request", state.limits.max_files),
            ));
        }
        let file_name = form::file_name(&field);
        batch.push(pipeline.ingest(file_name.as_deref(), form::file_bytes(&mut field, idle)).await?);
    }
    if batch.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MissingFile,
            "the form has no file: send the image in a field named \"file\"",
        ));
    }
    Ok(())
}

fn describe(file: &Ingested, base: &str, state: &AppState) -> UploadedFile {
    UploadedFile {
        id: file.id.to_string(),
        url: format!("{base}/main/download/{}", file.id),
        size: file.stored.size,
        content_type: file.info.format.mime_type().to_owned(),
        width: file.info.width,
        height: file.info.height,
        sha256: file.stored.sha256.clone(),
        delete_token: state.tokens.issue(&file.id),
        file_name: file.file_name.clone(),
        metadata_removed: file.stored.metadata_removed.names().into_iter().map(str::to_owned).collect(),
        message: format!("upload success, filename is {}", file.id),
    }
}

/// Post/Redirect/Get for a form post without JavaScript: the page of the new
/// images, with their delete tokens (only the uploader ever sees this URL).
fn see_the_images(files: &[Ingested], state: &AppState) -> HttpResponse {
    let ids: Vec<String> = files.iter().map(|f| f.id.to_string()).collect();
    let tokens: Vec<String> = files.iter().map(|f| state.tokens.issue(&f.id)).collect();
    // Relative to /main/upload, so it also holds behind a proxy prefix.
    let location = format!("view/{}?token={}", ids.join(","), tokens.join(","));
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}
