use crate::error_code::ErrorCode;
use crate::image::SniffError;
use crate::storage::{BodyError, StoreError};

/// Why a file was not stored. Whatever the reason, nothing of it is kept.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is empty")]
    Empty,
    #[error(transparent)]
    NotAnImage(#[from] SniffError),
    #[error("the image dimensions are not within the first {limit} bytes of the file")]
    HeaderTooFar { limit: usize },
    #[error("the image is {width}x{height} pixels; at most {max} pixels are accepted")]
    TooManyPixels { width: u64, height: u64, max: u64 },
    /// The client's bytes stopped short, broke the form, went silent or ran over the limit.
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            // The body failed while the store was reading it: the client's doing.
            StoreError::Body(body) => Self::Body(body),
            other => Self::Store(other),
        }
    }
}

impl IngestError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Empty => ErrorCode::EmptyFile,
            Self::NotAnImage(_) | Self::HeaderTooFar { .. } => ErrorCode::UnsupportedType,
            Self::TooManyPixels { .. } => ErrorCode::TooManyPixels,
            Self::Body(body) => body.code(),
            Self::Store(store) => store.code(),
        }
    }
}
