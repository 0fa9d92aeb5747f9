//! What picshelf keeps in an object's `x-amz-meta-*` headers, and how an
//! object's headers become an [`ObjectInfo`].

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_s3::primitives::DateTime;

use super::super::{Finished, NewObject, NewVariant, ObjectInfo, etag_for};
use crate::image::metadata::Removed;

/// Object metadata keys (sent as `x-amz-meta-*`).
pub const META_SHA256: &str = "sha256";
pub const META_FILE_NAME: &str = "filename";
pub const META_WIDTH: &str = "width";
pub const META_HEIGHT: &str = "height";
/// What metadata was removed on the way in: `gps,exif,xmp` (absent when nothing).
pub const META_REMOVED: &str = "metadata-removed";

/// Characters kept as-is when the file name is percent-encoded into metadata
/// (metadata travels in HTTP headers, which must be ASCII).
const FILE_NAME_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b' ').remove(b'(').remove(b')');

/// The metadata of a new object; what its bytes finished as, once known.
pub fn for_object(object: &NewObject, finished: Option<&Finished>) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        (META_WIDTH.to_owned(), object.width.to_string()),
        (META_HEIGHT.to_owned(), object.height.to_string()),
    ]);
    if let Some(finished) = finished {
        metadata.insert(META_SHA256.to_owned(), finished.sha256.clone());
        if !finished.metadata_removed.is_empty() {
            metadata.insert(META_REMOVED.to_owned(), finished.metadata_removed.names().join(","));
        }
    }
    if let Some(name) = &object.file_name {
        metadata.insert(META_FILE_NAME.to_owned(), encode_file_name(name));
    }
    metadata
}

/// The metadata of a variant: like its image's, without an upload's history.
pub fn for_variant(variant: &NewVariant) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        (META_WIDTH.to_owned(), variant.width.to_string()),
        (META_HEIGHT.to_owned(), variant.height.to_string()),
        (META_SHA256.to_owned(), variant.sha256.clone()),
    ]);
    if let Some(name) = &variant.file_name {
        metadata.insert(META_FILE_NAME.to_owned(), encode_file_name(name));
    }
    metadata
}

/// An object's headers, as HeadObject and GetObject return them.
pub struct Headers {
    pub content_length: Option<i64>,
    /// Only on ranged reads: `bytes first-last/total`.
    pub content_range: Option<String>,
    pub content_type: Option<String>,
    pub e_tag: Option<String>,
    pub last_modified: Option<DateTime>,
    pub metadata: Option<HashMap<String, String>>,
}

impl Headers {
    pub fn into_info(self) -> ObjectInfo {
        let metadata = self.metadata.unwrap_or_default();
        // With a range, Content-Length is the range's; the total is after the slash of Content-Range.
        let total =
            self.content_range.as_deref().and_then(|r| r.rsplit_once('/')).and_then(|(_, total)| total.parse().ok());
        ObjectInfo {
            size: total.or(self.content_length.and_then(|n| u64::try_from(n).ok())).unwrap_or(0),
            content_type: self.content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
            etag: match metadata.get(META_SHA256) {
                Some(sha256) => etag_for(sha256),
                None => self.e_tag.unwrap_or_default(),
            },
            last_modified: self
                .last_modified
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            file_name: metadata.get(META_FILE_NAME).map(|name| decode_file_name(name)),
            width: metadata.get(META_WIDTH).and_then(|w| w.parse().ok()),
            height: metadata.get(META_HEIGHT).and_then(|h| h.parse().ok()),
            metadata_removed: Removed::from_names(
                metadata.get(META_REMOVED).into_iter().flat_map(|names| names.split(',')),
            ),
        }
    }
}

fn encode_file_name(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, FILE_NAME_ENCODE).to_string()
}

fn decode_file_name(encoded: &str) -> String {
    percent_encoding::percent_decode_str(encoded).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(length: i64, range: Option<&str>, metadata: Option<HashMap<String, String>>) -> Headers {
        Headers {
            content_length: Some(length),
            content_range: range.map(str::to_owned),
            content_type: Some("image/png".into()),
            e_tag: Some("\"x\"".into()),
            last_modified: None,
            metadata,
        }
    }

    #[test]
    fn file_names_survive_the_trip_through_ascii_metadata() {
        for name in ["cat.png", "my holiday (1).jpg", "照片.webp", "a\"b;c\r\nd.gif", "100%.png"] {
            let encoded = encode_file_name(name);
            assert!(encoded.is_ascii() && !encoded.contains(['\r', '\n', '"']), "{encoded}");
            assert_eq!(decode_file_name(&encoded), name);
        }
    }

    #[test]
    fn ranged_reads_report_the_total_size() {
        let info = headers(10, Some("bytes 0-9/1234"), None).into_info();
        assert_eq!(info.size, 1234);
        assert_eq!(info.etag, "\"x\"");
        let with_sha = HashMap::from([(META_SHA256.to_owned(), "abc".to_owned())]);
        let info = headers(10, None, Some(with_sha)).into_info();
        assert_eq!(info.size, 10);
        assert_eq!(info.etag, "\"abc\"");
        assert_eq!(info.content_type, "image/png");
    }
}
