//! Every error code a client can see, with its HTTP status: the one registry.
//! Bodies carry the code as `{"error": {"code": "file_too_large", ...}}`; the
//! README's error table lists exactly these (a test checks it).

use strum::{EnumIter, IntoEnumIterator, IntoStaticStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    MalformedMultipart,
    IncompleteUpload,
    MissingFile,
    EmptyFile,
    TooManyFields,
    InvalidDeleteToken,
    NotFound,
    MethodNotAllowed,
    UploadTimeout,
    RequestTooLarge,
    FileTooLarge,
    TooManyFiles,
    TooManyPixels,
    FieldTooLarge,
    UnsupportedType,
    UnsupportedContentType,
    MalformedImage,
    TooLargeToStrip,
    RangeNotSatisfiable,
    StorageUnavailable,
    TooManyUploads,
    InvalidVariant,
    VariantUnsupported,
    TooLargeForVariants,
    UndecodableImage,
    TooManyVariants,
    VariantTimeout,
    InternalError,
}

impl ErrorCode {
    /// The code as clients see it: `file_too_large`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The HTTP status every error with this code has.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedMultipart | IncompleteUpload | MissingFile | EmptyFile | TooManyFields | MalformedImage
            | InvalidVariant => 400,
            InvalidDeleteToken => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            UploadTimeout => 408,
            RequestTooLarge | FileTooLarge | TooManyFiles | TooManyPixels | FieldTooLarge | TooLargeToStrip
            | TooLargeForVariants => 413,
            UnsupportedType | UnsupportedContentType | VariantUnsupported => 415,
            RangeNotSatisfiable => 416,
            UndecodableImage => 422,
            InternalError => 500,
            StorageUnavailable | TooManyUploads | TooManyVariants | VariantTimeout => 503,
        }
    }

    /// Seconds a client should wait before trying again, for the codes that say so.
    pub fn retry_after_secs(self) -> Option<u32> {
        match self {
            Self::StorageUnavailable => Some(5),
            Self::TooManyUploads | Self::TooManyVariants | Self::VariantTimeout => Some(2),
            _ => None,
        }
    }

    pub fn all() -> impl Iterator<Item = ErrorCode> {
        Self::iter()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn codes_are_snake_case_and_unique() {
        let codes: BTreeSet<&str> = ErrorCode::all().map(ErrorCode::as_str).collect();
        assert_eq!(codes.len(), ErrorCode::all().count());
        assert!(codes.iter().all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')), "{codes:?}");
        assert_eq!(ErrorCode::FileTooLarge.as_str(), "file_too_large");
    }

    /// The README's error table (`| status | codes |`) lists exactly the
    /// registry's codes, each under its own status.
    #[test]
    fn the_readme_error_table_lists_exactly_these_codes() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("| status | codes |")
            .nth(1)
            .expect("the README has an error table")
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'));
        let mut documented = BTreeMap::new();
        for row in table {
            let mut cells = row.split('|').map(str::trim).filter(|c| !c.is_empty());
            let status: u16 = cells.next().and_then(|s| s.parse().ok()).expect("a status in the first column");
            let rest = cells.collect::<Vec<_>>().join(" ");
            // Codes are the backticked words right after a comma or at the start.
            for code in
                rest.split('`').skip(1).step_by(2).filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
            {
                documented.insert(code.to_owned(), status);
            }
        }
        let registry: BTreeMap<String, u16> = ErrorCode::all().map(|c| (c.as_str().to_owned(), c.status())).collect();
        assert_eq!(documented, registry);
    }
}
