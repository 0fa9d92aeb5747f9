//! What an uploaded file is: its id, the format and size its bytes declare,
//! and the metadata it may carry (and loses on the way in).

pub(crate) mod format;
mod id;
pub mod metadata;
pub mod variant;

pub use format::{ImageFormat, ImageInfo, SniffError, Sniffed, sniff};
pub use id::{IdGenerator, ImageId, UuidV7Generator};
