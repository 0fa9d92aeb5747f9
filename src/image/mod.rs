//! What an uploaded file is: its id, and the format and size its bytes declare.

pub(crate) mod format;
mod id;

pub use format::{ImageFormat, ImageInfo, SniffError, Sniffed, sniff};
pub use id::{IdGenerator, ImageId, UuidV7Generator};
