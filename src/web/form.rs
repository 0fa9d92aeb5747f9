//! The extract step of an upload: a `multipart/form-data` body as fields,
//! each file field a stream of bytes for [`crate::ingest`], with the form's
//! failures mapped to what the client did wrong.

use std::time::Duration;

use actix_multipart::{Field, MultipartError};
use actix_web::error::PayloadError;
use futures_util::StreamExt;

use super::error::ApiError;
use crate::error_code::ErrorCode;
use crate::ingest::ClientBytes;
use crate::storage::BodyError;

/// Non-file form fields (a submit button's value, say) are read and dropped, up to this size.
const OTHER_FIELD_LIMIT: usize = 64 * 1024;

/// What [`crate::timeouts::IdleTimeout`] puts into an upload body that went silent.
pub fn idle_body_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upload body sent nothing for too long"))
}

/// A failure while reading a field, as the client's error.
fn body_error(error: MultipartError, idle: Duration) -> BodyError {
    match error {
        MultipartError::Payload(PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            BodyError::Idle { seconds: idle.as_secs() }
        }
        MultipartError::BoundaryMissing => {
            BodyError::Malformed("the multipart/form-data Content-Type has no boundary".into())
        }
        MultipartError::Incomplete | MultipartError::Payload(PayloadError::Incomplete(_)) => {
            BodyError::Incomplete("the request body ended before the multipart form was complete".into())
        }
        MultipartError::Payload(e) => BodyError::Incomplete(format!("the request body could not be read: {e}")),
        other => BodyError::Malformed(format!("the multipart form is malformed: {other}")),
    }
}

/// A failure of the form itself (its type, its framing) as the client's error.
pub fn form_error(error: MultipartError, idle: Duration) -> ApiError {
    match error {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => not_form_data(),
        other => crate::ingest::IngestError::Body(body_error(other, idle)).into(),
    }
}

pub fn not_form_data() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedContentType,
        "send the upload as multipart/form-data with the image in a field named \"file\"",
    )
}

/// The bytes of a file field, as the ingest pipeline reads them.
pub fn file_bytes(field: &mut Field, idle: Duration) -> ClientBytes<'_> {
    field.by_ref().map(move |chunk| chunk.map_err(|e| body_error(e, idle))).boxed_local()
}

/// Reads and discards a form field that is not a file.
pub async fn skip_field(field: &mut Field, idle: Duration) -> Result<(), ApiError> {
    let mut seen = 0;
    while let Some(chunk) = field.next().await {
        seen += chunk.map_err(|e| form_error(e, idle))?.len();
        if seen > OTHER_FIELD_LIMIT {
            return Err(ApiError::new(
                ErrorCode::FieldTooLarge,
                format!("form fields other than \"file\" may hold at most {OTHER_FIELD_LIMIT} bytes"),
            ));
        }
    }
    Ok(())
}

/// The client's name for a file field, as it sent it.
pub fn file_name(field: &Field) -> Option<String> {
    field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned)
}
