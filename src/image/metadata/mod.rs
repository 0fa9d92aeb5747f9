//! Privacy by default: location, camera and personal metadata are removed
//! from every upload, without re-encoding. Only containers change: pixel
//! data, the ICC colour profile and the EXIF Orientation (so photos display
//! upright) are kept byte for byte.
//!
//! - JPEG, PNG and GIF keep their metadata in framed segments, chunks and
//!   blocks: [`jpeg`], [`png`] and [`gif`] filter them as the bytes pass;
//! - WebP's header states the file's size and which chunks follow, so
//!   [`webp`] blanks metadata chunks in place (same size, zeroed, renamed
//!   `JUNK`; EXIF keeps only the Orientation), streaming too;
//! - TIFF and AVIF point into themselves with offsets, so [`tiff`] and
//!   [`avif`] rewrite a file in memory, in place, up to a stated size.
//!
//! Whatever is malformed around metadata is a [`Malformed`] error (a 400),
//! never a panic or a half-filtered file.

mod avif;
mod exif;
mod gif;
mod jpeg;
mod png;
mod tiff;
mod webp;
mod xmp;

use std::collections::BTreeSet;
use std::ops::Range;

use strum::{EnumIter, IntoEnumIterator, IntoStaticStr};

use super::ImageFormat;

/// A kind of metadata that was found and removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// A location: EXIF's GPS IFD, or GPS properties in XMP.
    Gps,
    /// EXIF beyond the Orientation: camera, serial numbers, maker notes, dates, owner.
    Exif,
    Xmp,
    /// IPTC / Photoshop resources.
    Iptc,
    Comment,
    /// PNG text chunks.
    Text,
    /// PNG's last-modification time.
    Time,
    /// Bytes after the end of the image.
    TrailingData,
    /// Any other metadata block.
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What was removed from one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed(BTreeSet<Kind>);

impl Removed {
    pub fn add(&mut self, kind: Kind) {
        self.0.insert(kind);
    }

    pub fn merge(&mut self, other: &Removed) {
        self.0.extend(other.0.iter().copied());
    }

    pub fn contains(&self, kind: Kind) -> bool {
        self.0.contains(&kind)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.0.iter().copied()
    }

    /// `["gps", "exif", "xmp"]`, location first.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds().map(Kind::as_str).collect()
    }

    /// Reads [`Removed::names`] back (as object metadata keeps them);
    /// names it does not know are left out.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut removed = Self::default();
        for name in names {
            if let Some(kind) = Kind::iter().find(|k| k.as_str() == name) {
                removed.add(kind);
            }
        }
        removed
    }
}

/// The file is not what its format says, around where metadata lives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {format} file is malformed: {reason}")]
pub struct Malformed {
    pub format: &'static str,
    pub reason: String,
}

impl Malformed {
    pub fn new(format: ImageFormat, reason: impl Into<String>) -> Self {
        Self { format: format.name(), reason: reason.into() }
    }
}

/// One piece of a filter's output: a range of the input it was given, or
/// bytes of its own (a rewritten segment, a held-back header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Keep(Range<usize>),
    Insert(Vec<u8>),
}

/// A metadata filter over a file as it streams by.
pub trait Filter: Send {
    /// Takes the next bytes of the file; appends what to keep to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) -> Result<(), Malformed>;

    /// The file has ended: it must end where such a file can.
    fn finish(&mut self, out: &mut Vec<Piece>) -> Result<Removed, Malformed>;
}

/// How metadata is removed from a format.
pub enum Stripping {
    /// As the bytes pass, with bounded memory.
    Streaming(Box<dyn Filter>),
    /// On the whole file in memory (formats that point into themselves).
    InMemory(fn(&mut [u8]) -> Result<Removed, Malformed>),
    /// The format carries no metadata worth removing (BMP).
    Nothing,
}

pub fn stripping(format: ImageFormat) -> Stripping {
    match format {
        ImageFormat::Jpeg => Stripping::Streaming(Box::new(jpeg::JpegFilter::default())),
        ImageFormat::Png => Stripping::Streaming(Box::new(png::PngFilter::default())),
        ImageFormat::Gif => Stripping::Streaming(Box::new(gif::GifFilter::default())),
        ImageFormat::WebP => Stripping::Streaming(Box::new(webp::WebpFilter::default())),
        ImageFormat::Tiff => Stripping::InMemory(tiff::strip),
        ImageFormat::Avif => Stripping::InMemory(avif::strip),
        ImageFormat::Bmp => Stripping::Nothing,
    }
}

/// Appends `range` to `out`, merged into the last piece when they touch.
pub(crate) fn keep(out: &mut Vec<Piece>, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    if let Some(Piece::Keep(last)) = out.last_mut()
        && last.end == range.start
    {
        last.end = range.end;
        return;
    }
    out.push(Piece::Keep(range));
}

pub(crate) fn insert(out: &mut Vec<Piece>, bytes: Vec<u8>) {
    if !bytes.is_empty() {
        out.push(Piece::Insert(bytes));
    }
}

/// The whole of a small file filtered at once: what tests and the in-memory
/// formats' unit tests use.
#[cfg(test)]
pub(crate) fn filter_all(filter: &mut dyn Filter, file: &[u8], chunk: usize) -> Result<(Vec<u8>, Removed), Malformed> {
    let mut out = Vec::new();
    for piece_of_input in file.chunks(chunk.max(1)) {
        let mut pieces = Vec::new();
        filter.feed(piece_of_input, &mut pieces)?;
        for piece in pieces {
            match piece {
                Piece::Keep(range) => out.extend_from_slice(&piece_of_input[range]),
                Piece::Insert(bytes) => out.extend_from_slice(&bytes),
            }
        }
    }
    let mut pieces = Vec::new();
    let removed = filter.finish(&mut pieces)?;
    for piece in pieces {
        match piece {
            Piece::Keep(_) => unreachable!("finish has no input to keep"),
            Piece::Insert(bytes) => out.extend_from_slice(&bytes),
        }
    }
    Ok((out, removed))
}
