//! The upload as a pipeline of small steps over a byte stream, in the spirit
//! of extract → transform → load. It knows nothing of HTTP: the web layer
//! extracts one byte stream per file from its multipart form and maps
//! [`IngestError`] to statuses.
//!
//! For each file:
//! 1. [`limit::at_most`] ends the stream past `upload.max_file_bytes`;
//! 2. [`sniff::read_header`] holds the first bytes back until they name an
//!    accepted format and its dimensions (the bytes decide the type);
//! 3. [`limit::check_pixels`] refuses decompression bombs;
//! 4. [`strip::strip`] removes location, camera and personal metadata
//!    (`upload.strip_metadata`);
//! 5. [`UploadBody`] counts and hashes the bytes as they pass;
//! 6. the [`ImageStore`] streams them into place, whole or not at all.
//!
//! Request-level bookkeeping lives here too: [`Batch`] deletes what a
//! request stored if a later file of it fails.

mod batch;
mod error;
mod file_name;
pub mod limit;
pub mod sniff;
pub mod strip;

use bytes::Bytes;
use futures_util::stream::LocalBoxStream;

pub use self::batch::Batch;
pub use self::error::IngestError;
pub use self::file_name::clean_file_name;
pub use self::strip::RewriteLimits;
use crate::config::UploadSettings;
use crate::image::{IdGenerator, ImageId, ImageInfo};
use crate::storage::{BodyError, ImageStore, NewObject, StoredObject, UploadBody};

/// The bytes of one file as the client sends them.
pub type ClientBytes<'a> = LocalBoxStream<'a, Result<Bytes, BodyError>>;

/// One stored file of an upload request.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub id: ImageId,
    pub info: ImageInfo,
    pub stored: StoredObject,
    pub file_name: Option<String>,
}

/// What every file of an upload goes through.
pub struct Pipeline<'a> {
    pub store: &'a dyn ImageStore,
    pub ids: &'a dyn IdGenerator,
    pub limits: &'a UploadSettings,
    pub rewrites: &'a RewriteLimits,
}

impl Pipeline<'_> {
    /// Stores one file under a new id. On any error nothing of it is kept.
    pub async fn ingest(&self, file_name: Option<&str>, bytes: ClientBytes<'_>) -> Result<Ingested, IngestError> {
        let file_name = file_name.and_then(clean_file_name);
        let bytes = Box::pin(limit::at_most(bytes, self.limits.max_file_bytes));
        let (info, bytes) = sniff::read_header(bytes).await?;
        limit::check_pixels(&info, self.limits.max_pixels)?;
        let object = NewObject {
            id: self.ids.generate(),
            format: info.format,
            file_name,
            width: info.width,
            height: info.height,
        };
        let removed = strip::Report::default();
        let bytes = if self.limits.strip_metadata {
            strip::strip(info.format, Box::pin(bytes), self.rewrites, removed.clone())
        } else {
            Box::pin(bytes)
        };
        let stored = self.store.put(&object, UploadBody::with_report(bytes, removed)).await?;
        Ok(Ingested { id: object.id, info, stored, file_name: object.file_name })
    }
}
