//! One storage trait, two real backends: [`fs::FsStore`] (the embedded
//! default) and [`s3::S3Store`] (any S3-compatible object store).
//!
//! Every backend upholds the same contract: `put` streams with bounded memory
//! and an object appears under its id complete or not at all; a failing or
//! dropped `put` leaves nothing behind. Variants are stored beside their
//! image, as atomically, and deleted with it.

mod body;
mod file_chunks;
pub mod fs;
pub mod instrumented;
pub mod s3;
pub mod sweeper;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::config::{Backend, StorageSettings};
use crate::error_code::ErrorCode;
use crate::image::metadata::Removed;
use crate::image::variant::Variant;
use crate::image::{ImageFormat, ImageId};

pub use body::{Finished, UploadBody};

/// Why the bytes of an upload stopped coming: the client's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body ended early or could not be read; the message says how.
    #[error("{0}")]
    Incomplete(String),
    /// The form around the file is broken.
    #[error("{0}")]
    Malformed(String),
    #[error("the upload sent no data for {seconds} seconds and was abandoned")]
    Idle { seconds: u64 },
    /// The image is not what its format says, around its metadata.
    #[error("{0}")]
    MalformedImage(String),
    /// A TIFF or AVIF too large to have its metadata removed in memory.
    #[error("TIFF and AVIF files have their metadata removed in memory, up to {limit} bytes; this one is larger")]
    TooLargeToStrip { limit: u64 },
    /// The memory set aside for in-memory rewrites is in use.
    #[error("TIFF and AVIF uploads in progress use all the memory set aside for removing their metadata")]
    RewriteMemoryBusy,
}

impl BodyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::FileTooLarge,
            Self::Incomplete(_) => ErrorCode::IncompleteUpload,
            Self::Malformed(_) => ErrorCode::MalformedMultipart,
            Self::Idle { .. } => ErrorCode::UploadTimeout,
            Self::MalformedImage(_) => ErrorCode::MalformedImage,
            Self::TooLargeToStrip { .. } => ErrorCode::TooLargeToStrip,
            Self::RewriteMemoryBusy => ErrorCode::TooManyUploads,
        }
    }
}

/// The bytes of a stored object, as they are read.
pub type DownloadBody = BoxStream<'static, Result<Bytes, StoreError>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The body stream failed; nothing was stored.
    #[error("upload body failed: {0}")]
    Body(#[from] BodyError),
    /// The store could not be reached or refused the request.
    #[error("storage unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store did not finish in time (frozen, overloaded, or a hung disk).
    #[error("storage unavailable: {what} did not finish within {} ms", .after.as_millis())]
    TimedOut { what: &'static str, after: Duration },
    /// The store answered with something that makes no sense (a bug or corruption).
    #[error("storage inconsistency: {0}")]
    Corrupt(String),
}

/// Runs `operation` within `deadline`; past it, the store counts as unavailable
/// and the operation is dropped (which cancels it).
pub async fn within<T>(
    what: &'static str,
    deadline: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, operation).await.unwrap_or(Err(StoreError::TimedOut { what, after: deadline }))
}

/// What a sweep of leftovers removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Incomplete multipart uploads aborted (S3).
    pub uploads: usize,
    /// Staging objects (S3) or temp entries (disk) deleted.
    pub objects: usize,
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Body(body) => body.code(),
            Self::Unavailable { .. } | Self::TimedOut { .. } => ErrorCode::StorageUnavailable,
            Self::Corrupt(_) => ErrorCode::InternalError,
        }
    }

    pub fn unavailable(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable { context: context.into(), source: Box::new(source) }
    }
}

/// Which stored object: an image, or one of its variants (named by
/// [`Variant::name`], like `w320.webp`), kept beside it and deleted with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub id: ImageId,
    pub variant: Option<String>,
}

impl ObjectKey {
    pub fn image(id: &ImageId) -> Self {
        Self { id: *id, variant: None }
    }

    pub fn variant(id: &ImageId, variant: &Variant) -> Self {
        Self { id: *id, variant: Some(variant.name()) }
    }
}

/// A rendered variant, whole in memory (it is small), to store beside its image.
#[derive(Debug, Clone)]
pub struct NewVariant {
    pub name: String,
    pub bytes: Bytes,
    pub sha256: String,
    pub format: ImageFormat,
    pub width: u64,
    pub height: u64,
    /// The image's file name, so downloads of the variant are named alike.
    pub file_name: Option<String>,
}

/// The headers a presigned download answers with, as picshelf would send them.
#[derive(Debug, Clone)]
pub struct ResponseHeaders {
    pub content_type: String,
    pub content_disposition: String,
    pub cache_control: String,
}

/// What the uploader tells the store about a new object.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub id: ImageId,
    /// Sniffed from the bytes, never taken from the client.
    pub format: ImageFormat,
    /// The client's file name, kept as metadata only (never used to build paths or types).
    pub file_name: Option<String>,
    pub width: u64,
    pub height: u64,
}

/// What `put` reports once the object is stored: what the body finished as.
pub type StoredObject = Finished;

/// The strong entity tag every backend serves: the quoted SHA-256.
pub fn etag_for(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// What is known about a stored object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: String,
    /// A strong entity tag, quoted.
    pub etag: String,
    pub last_modified: SystemTime,
    pub file_name: Option<String>,
    /// Pixel dimensions, when the store kept them.
    pub width: Option<u64>,
    pub height: Option<u64>,
    /// What metadata was removed on the way in.
    pub metadata_removed: Removed,
}

/// A byte range, inclusive on both ends, already checked against the object size.
pub type ByteRange = RangeInclusive<u64>;

pub struct Object {
    pub info: ObjectInfo,
    /// The whole object, or exactly the requested range.
    pub body: DownloadBody,
}

#[async_trait(?Send)]
pub trait ImageStore: Send + Sync {
    /// Streams `body` into a new object. On any error, and when the returned
    /// future is dropped, nothing is left behind.
    async fn put(&self, object: &NewObject, body: UploadBody<'_>) -> Result<StoredObject, StoreError>;

    /// Opens an object, or a range of it. `None` when there is no such object.
    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> Result<Option<Object>, StoreError>;

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError>;

    /// Stores a variant beside image `id`, whole or not at all (one of the
    /// same name already there stays). `false` when the image is gone: then
    /// nothing of the variant is left either.
    async fn put_variant(&self, id: &ImageId, variant: &NewVariant) -> Result<bool, StoreError>;

    /// Deletes an image and its variants; `false` when there was none.
    async fn delete(&self, id: &ImageId) -> Result<bool, StoreError>;

    /// A short-lived URL from which the store itself serves the object with
    /// these response headers; `None` where the store cannot (disk).
    async fn presigned_get(&self, _key: &ObjectKey, _headers: &ResponseHeaders) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Succeeds when the store can serve requests (readiness probe).
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// Removes what interrupted uploads left behind (a crash, an outage that
    /// outlasted the cleanup) and is older than `older_than`. Safe to run from
    /// several replicas at once: no live upload is ever that old.
    async fn sweep(&self, older_than: Duration) -> Result<Swept, StoreError>;

    /// Resolves once background cleanup (multipart aborts, staging deletes)
    /// has finished, or after `timeout`. Called when the server stops.
    fn drain(&self, timeout: std::time::Duration) -> futures_util::future::BoxFuture<'static, ()>;
}

/// Opens the configured backend, once, at startup.
pub async fn open(settings: &StorageSettings) -> anyhow::Result<Arc<dyn ImageStore>> {
    Ok(match settings.backend {
        Backend::Fs => Arc::new(fs::FsStore::open(&settings.fs).await?),
        Backend::S3 => Arc::new(s3::S3Store::new(&settings.s3)?),
    })
}
