//! From multipart field to stored object: sniff the first bytes, apply the
//! limits, then stream the rest into the store. Also the request-level
//! bookkeeping: a batch of stored files that is rolled back if a later file
//! of the same request fails.

use std::sync::Arc;

use actix_multipart::{Field, MultipartError};
use actix_web::error::PayloadError;
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::image::{ImageId, ImageInfo, Sniffed, sniff};
use crate::state::AppState;
use crate::storage::{BodyError, ImageStore, NewObject, StoreError, StoredObject};

/// Dimensions must be readable from this much of the file (JPEG headers can
/// follow large EXIF blocks; a megabyte is generous).
pub const SNIFF_LIMIT: usize = 1024 * 1024;
/// Non-file form fields (a submit button's value, say) are read and dropped, up to this size.
const OTHER_FIELD_LIMIT: usize = 64 * 1024;
const MAX_FILE_NAME_BYTES: usize = 255;

/// One stored file of an upload request.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub id: ImageId,
    pub info: ImageInfo,
    pub stored: StoredObject,
    pub file_name: Option<String>,
}

/// The error [`crate::timeouts::IdleTimeout`] puts into an upload body that went silent.
pub fn idle_body_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upload body sent nothing for too long"))
}

fn is_idle_body(error: &MultipartError) -> bool {
    matches!(error, MultipartError::Payload(PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut)
}

pub fn upload_timed_out(limit: std::time::Duration) -> ApiError {
    ApiError::RequestTimeout {
        message: format!("the upload sent no data for {} seconds and was abandoned", limit.as_secs()),
    }
}

/// Maps a multipart parsing failure to what the client did wrong.
pub fn multipart_error(error: MultipartError, idle: std::time::Duration) -> ApiError {
    if is_idle_body(&error) {
        return upload_timed_out(idle);
    }
    match error {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => ApiError::unsupported(
            "unsupported_content_type",
            "send the upload as multipart/form-data with the image in a field named \"file\"",
        ),
        MultipartError::BoundaryMissing => {
            ApiError::bad_request("malformed_multipart", "the multipart/form-data Content-Type has no boundary")
        }
        MultipartError::Incomplete | MultipartError::Payload(PayloadError::Incomplete(_)) => {
            ApiError::bad_request("incomplete_upload", "the request body ended before the multipart form was complete")
        }
        MultipartError::Payload(e) => {
            ApiError::bad_request("incomplete_upload", format!("the request body could not be read: {e}"))
        }
        other => ApiError::bad_request("malformed_multipart", format!("the multipart form is malformed: {other}")),
    }
}

/// Characters that change how the text around them is shown without being
/// seen themselves: bidirectional overrides, embeddings, isolates and marks
/// (which can make `gpj.exe` read as `exe.jpg`), zero-width characters and
/// line separators.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The client's file name, reduced to a harmless label: last path component,
/// no control or invisible formatting characters, at most 255 bytes. Only
/// ever used as metadata.
pub fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base.chars().filter(|c| !c.is_control() && !is_invisible_format(*c)).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return None;
    }
    let mut end = cleaned.len().min(MAX_FILE_NAME_BYTES);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    Some(cleaned[..end].to_owned())
}

/// Reads and discards a form field that is not a file.
pub async fn skip_field(field: &mut Field, state: &AppState) -> Result<(), ApiError> {
    let mut seen = 0;
    while let Some(chunk) = field.next().await {
        seen += chunk.map_err(|e| multipart_error(e, state.idle_timeout()))?.len();
        if seen > OTHER_FIELD_LIMIT {
            return Err(ApiError::too_large(
                "field_too_large",
                format!("form fields other than \"file\" may hold at most {OTHER_FIELD_LIMIT} bytes"),
            ));
        }
    }
    Ok(())
}

/// Stores one `file` field. Errors leave nothing stored.
pub async fn ingest(field: &mut Field, state: &AppState) -> Result<Ingested, ApiError> {
    let limit = state.limits.max_file_bytes;
    let file_name = field.content_disposition().and_then(|cd| cd.get_filename()).and_then(clean_file_name);

    // The first bytes decide: an accepted image format with readable dimensions.
    let mut prefix = BytesMut::new();
    let mut ended = false;
    let info = loop {
        if ended && prefix.is_empty() {
            return Err(ApiError::bad_request("empty_file", "the file is empty"));
        }
        match sniff(&prefix, ended) {
            Ok(Sniffed::Image(info)) => break info,
            Ok(Sniffed::NeedMore) => {}
            Err(e) => return Err(ApiError::unsupported("unsupported_type", e.to_string())),
        }
        if prefix.len() >= SNIFF_LIMIT {
            return Err(ApiError::unsupported(
                "unsupported_type",
                format!("the image dimensions are not within the first {SNIFF_LIMIT} bytes of the file"),
            ));
        }
        match field.next().await {
            Some(chunk) => prefix.extend_from_slice(&chunk.map_err(|e| multipart_error(e, state.idle_timeout()))?),
            None => ended = true,
        }
        if prefix.len() as u64 > limit {
            return Err(file_too_large(limit));
        }
    };
    if info.pixels() > state.limits.max_pixels {
        return Err(ApiError::too_large(
            "too_many_pixels",
            format!(
                "the image is {}x{} pixels; at most {} pixels are accepted",
                info.width, info.height, state.limits.max_pixels
            ),
        ));
    }

    let object =
        NewObject { id: state.ids.generate(), format: info.format, file_name, width: info.width, height: info.height };
    let mut received = prefix.len() as u64;
    let rest = field.by_ref().map(move |chunk| {
        let chunk =
            chunk.map_err(|e| if is_idle_body(&e) { BodyError::Idle } else { BodyError::Incomplete(e.to_string()) })?;
        received += chunk.len() as u64;
        if received > limit { Err(BodyError::TooLarge { limit }) } else { Ok(chunk) }
    });
    let body = futures_util::stream::once(async move { Ok(prefix.freeze()) }).chain(rest).boxed_local();
    match state.store.put(&object, body).await {
        Ok(stored) => Ok(Ingested { id: object.id, info, stored, file_name: object.file_name }),
        Err(StoreError::Body(BodyError::TooLarge { limit })) => Err(file_too_large(limit)),
        Err(StoreError::Body(BodyError::Idle)) => Err(upload_timed_out(state.idle_timeout())),
        Err(StoreError::Body(BodyError::Incomplete(reason))) => Err(ApiError::bad_request(
            "incomplete_upload",
            format!("the upload ended before the file was complete ({reason})"),
        )),
        Err(e) => Err(e.into()),
    }
}

fn file_too_large(limit: u64) -> ApiError {
    ApiError::too_large("file_too_large", format!("the file is larger than the limit of {limit} bytes"))
}

/// Files stored by one request so far. Should the request fail later, they
/// are deleted: explicitly by [`Batch::roll_back`], or in the background if
/// the request future is dropped.
pub struct Batch {
    store: Arc<dyn ImageStore>,
    files: Vec<Ingested>,
}

impl Batch {
    pub fn new(store: Arc<dyn ImageStore>) -> Self {
        Self { store, files: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn push(&mut self, file: Ingested) {
        self.files.push(file);
    }

    /// Keeps the files: the request succeeded.
    pub fn commit(mut self) -> Vec<Ingested> {
        std::mem::take(&mut self.files)
    }

    pub async fn roll_back(mut self) {
        for file in std::mem::take(&mut self.files) {
            delete_quietly(self.store.as_ref(), &file.id).await;
        }
    }
}

async fn delete_quietly(store: &dyn ImageStore, id: &ImageId) {
    if let Err(e) = store.delete(id).await {
        tracing::error!(%id, error = %crate::error::cause_chain(&e), "could not roll back a stored file");
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let files = std::mem::take(&mut self.files);
        if files.is_empty() {
            return;
        }
        let store = self.store.clone();
        actix_web::rt::spawn(async move {
            for file in files {
                delete_quietly(store.as_ref(), &file.id).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_reduced_to_a_label() {
        assert_eq!(clean_file_name("cat.png").as_deref(), Some("cat.png"));
        assert_eq!(clean_file_name("C:\\Users\\me\\cat.png").as_deref(), Some("cat.png"));
        assert_eq!(clean_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_file_name("a\r\nb.png").as_deref(), Some("ab.png"));
        // U+202E RIGHT-TO-LEFT OVERRIDE would show "cat\u{202E}gnp.exe" as "catexe.png".
        assert_eq!(clean_file_name("cat\u{202E}gnp.exe").as_deref(), Some("catgnp.exe"));
        for c in
            ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200F}']
        {
            assert_eq!(clean_file_name(&format!("a{c}b.png")).as_deref(), Some("ab.png"), "{:X}", c as u32);
        }
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name("  "), None);
        let long = "é".repeat(200);
        let cleaned = clean_file_name(&long).unwrap();
        assert!(cleaned.len() <= MAX_FILE_NAME_BYTES && cleaned.chars().all(|c| c == 'é'));
    }
}
