//! WebP: a RIFF header stating the file's size, then chunks.
//!
//! The header (and the `VP8X` flags after it) comes before the metadata
//! chunks, which come last; changing the file's size would mean rewriting
//! its start after its end has streamed by. So metadata is blanked in place
//! and the file keeps its size: an `EXIF` chunk keeps its place and length
//! but holds only the Orientation (or nothing), zero-padded; an `XMP ` chunk,
//! and any chunk WebP does not define, becomes a zeroed `JUNK` chunk, which
//! readers skip; the `VP8X` XMP flag is cleared. Image, alpha, animation and
//! ICC (`ICCP`) chunks pass untouched. Whatever follows the RIFF data is
//! dropped (that changes no size the file states).
//!
//! Memory: an `EXIF` chunk of at most 1 MiB (larger ones are blanked whole).

use super::exif;
use super::xmp::XmpScanner;
use super::{Filter, Kind, Malformed, Piece, Removed, insert, keep};
use crate::image::ImageFormat;

const MAX_EXIF: u64 = 1024 * 1024;
const KEPT: [&[u8; 4]; 6] = [b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"];
const XMP_FLAG: u8 = 0x04;
/// Zeros to blank with, a piece at a time.
const ZEROS: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    /// `RIFF`, the size, `WEBP`.
    Header { bytes: Vec<u8> },
    /// A chunk's four-character code and size.
    ChunkHeader { bytes: Vec<u8> },
    /// Passing a kept chunk (and its pad byte).
    Copy { left: u64 },
    /// Writing zeros over a blanked chunk's data.
    Blank { left: u64, spotter: Option<XmpScanner> },
    /// The `VP8X` chunk's 10 bytes, for its flags.
    Vp8x { bytes: Vec<u8> },
    /// An `EXIF` chunk's data, to keep its Orientation.
    Exif { len: u64, padded: u64, bytes: Vec<u8> },
    /// Past the RIFF data.
    End,
}

#[derive(Debug)]
pub struct WebpFilter {
    state: State,
    removed: Removed,
    /// Bytes of the file seen so far, and where its RIFF data ends.
    seen: u64,
    riff_end: u64,
    exif_seen: bool,
}

impl Default for WebpFilter {
    fn default() -> Self {
        Self {
            state: State::Header { bytes: Vec::with_capacity(12) },
            removed: Removed::default(),
            seen: 0,
            riff_end: 0,
            exif_seen: false,
        }
    }
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::WebP, reason)
}

fn zeros(out: &mut Vec<Piece>, mut len: usize) {
    while len > 0 {
        let n = len.min(ZEROS);
        insert(out, vec![0; n]);
        len -= n;
    }
}

impl WebpFilter {
    fn next_state(&self) -> State {
        if self.seen >= self.riff_end { State::End } else { State::ChunkHeader { bytes: Vec::with_capacity(8) } }
    }

    fn start_chunk(&mut self, header: &[u8], out: &mut Vec<Piece>) -> Result<State, Malformed> {
        let kind: [u8; 4] = header[..4].try_into().expect("4 bytes");
        let len = u64::from(u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")));
        let padded = len + (len & 1);
        if self.seen + padded > self.riff_end {
            return Err(malformed(format!(
                "chunk {} claims {len} bytes, past the end of the RIFF data",
                String::from_utf8_lossy(&kind)
            )));
        }
        Ok(match &kind {
            b"VP8X" if len == 10 => State::Vp8x { bytes: Vec::with_capacity(10) },
            b"VP8X" => return Err(malformed("a VP8X chunk that is not 10 bytes")),
            _ if KEPT.contains(&&kind) => {
                insert(out, header.to_vec());
                State::Copy { left: padded }
            }
            b"EXIF" if padded <= MAX_EXIF && !self.exif_seen => {
                State::Exif { len, padded, bytes: Vec::with_capacity(padded as usize) }
            }
            b"EXIF" => {
                // Too large to read, or a second one: an empty EXIF block, zero-padded.
                self.removed.add(Kind::Exif);
                insert(out, header.to_vec());
                let empty = exif::empty(true);
                let written = empty.len().min(len as usize);
                insert(out, empty[..written].to_vec());
                State::Blank { left: padded - written as u64, spotter: None }
            }
            other => {
                self.removed.add(if other == b"XMP " { Kind::Xmp } else { Kind::Other });
                let mut junk = b"JUNK".to_vec();
                junk.extend_from_slice(&header[4..8]);
                insert(out, junk);
                State::Blank { left: padded, spotter: (other == b"XMP ").then(XmpScanner::default) }
            }
        })
    }
}

impl Filter for WebpFilter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) -> Result<(), Malformed> {
        let mut at = 0;
        while at < input.len() {
            let before = at;
            match &mut self.state {
                State::Header { bytes } => {
                    let take = (12 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 12 {
                        if &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
                            return Err(malformed("it does not start with RIFF....WEBP"));
                        }
                        let size = u64::from(u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")));
                        if size < 4 || size % 2 == 1 {
                            return Err(malformed(format!("the RIFF size {size} is not possible")));
                        }
                        self.riff_end = 8 + size;
                        insert(out, std::mem::take(bytes));
                        self.seen += (at - before) as u64;
                        self.state = self.next_state();
                        continue;
                    }
                }
                State::ChunkHeader { bytes } => {
                    let take = (8 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 8 {
                        let header = std::mem::take(bytes);
                        self.seen += (at - before) as u64;
                        self.state = self.start_chunk(&header, out)?;
                        continue;
                    }
                }
                State::Copy { left } => {
                    let take = (*left).min((input.len() - at) as u64) as usize;
                    keep(out, at..at + take);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.seen += (at - before) as u64;
                        self.state = self.next_state();
                        continue;
                    }
                }
                State::Blank { left, spotter } => {
                    let take = (*left).min((input.len() - at) as u64) as usize;
                    if let Some(spotter) = spotter {
                        spotter.feed(&input[at..at + take]);
                        if spotter.gps {
                            self.removed.add(Kind::Gps);
                        }
                    }
                    zeros(out, take);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.seen += (at - before) as u64;
                        self.state = self.next_state();
                        continue;
                    }
                }
                State::Vp8x { bytes } => {
                    let take = (10 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 10 {
                        let mut chunk = b"VP8X\x0a\x00\x00\x00".to_vec();
                        let mut data = std::mem::take(bytes);
                        data[0] &= !XMP_FLAG;
                        chunk.extend_from_slice(&data);
                        insert(out, chunk);
                        self.seen += (at - before) as u64;
                        self.state = self.next_state();
                        continue;
                    }
                }
                State::Exif { len, padded, bytes } => {
                    let take = (*padded as usize - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() as u64 == *padded {
                        let (len, padded) = (*len as usize, *padded as usize);
                        let data = std::mem::take(bytes);
                        // Some writers put JPEG's "Exif\0\0" before the TIFF structure.
                        let prefix: &[u8] = if data.starts_with(b"Exif\0\0") { b"Exif\0\0" } else { b"" };
                        let facts = exif::read(&data[prefix.len()..len]);
                        for kind in exif::kinds(&facts) {
                            self.removed.add(kind);
                        }
                        let tiff = exif::replacement(&facts).unwrap_or_else(|| exif::empty(facts.little_endian));
                        let mut chunk = b"EXIF".to_vec();
                        chunk.extend_from_slice(&(len as u32).to_le_bytes());
                        let mut body = [prefix, &tiff].concat();
                        body.resize(padded, 0);
                        chunk.extend_from_slice(&body);
                        insert(out, chunk);
                        self.exif_seen = true;
                        self.seen += (at - before) as u64;
                        self.state = self.next_state();
                        continue;
                    }
                }
                State::End => {
                    self.removed.add(Kind::TrailingData);
                    at = input.len();
                }
            }
            self.seen += (at - before) as u64;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Piece>) -> Result<Removed, Malformed> {
        match self.state {
            State::End => Ok(std::mem::take(&mut self.removed)),
            _ => Err(malformed("it ends before its RIFF data does")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter_all;
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn webp(chunks: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        file.extend_from_slice(b"WEBP");
        file.extend_from_slice(&body);
        file.extend_from_slice(tail);
        file
    }

    #[test]
    fn metadata_is_blanked_in_place_and_the_size_kept() {
        let vp8x = chunk(b"VP8X", &[0x2C, 0, 0, 0, 3, 0, 0, 2, 0, 0]);
        let iccp = chunk(b"ICCP", b"profile");
        let image = chunk(b"VP8L", &[0x2F; 21]);
        let mut exif_data = exif::orientation_only(6, true);
        exif_data.extend_from_slice(b"serial 1234567 and more");
        let xmp = chunk(b"XMP ", b"<x exif:GPSLatitude=\"1\"/>");
        let file = webp(&[vp8x, iccp.clone(), image.clone(), chunk(b"EXIF", &exif_data), xmp.clone()], b"tail");

        let mut blanked_exif = exif::orientation_only(6, true);
        blanked_exif.resize(exif_data.len(), 0);
        let mut junk = b"JUNK".to_vec();
        junk.extend_from_slice(&xmp[4..8]);
        junk.resize(xmp.len(), 0);
        let expected = webp(
            &[chunk(b"VP8X", &[0x28, 0, 0, 0, 3, 0, 0, 2, 0, 0]), iccp, image, chunk(b"EXIF", &blanked_exif), junk],
            b"",
        );
        for piece in [1, 3, 8, 17, 4096] {
            let (stripped, removed) = filter_all(&mut WebpFilter::default(), &file, piece).unwrap();
            assert_eq!(stripped, expected, "piece {piece}");
            assert_eq!(stripped.len(), file.len() - 4);
            assert_eq!(removed.names(), ["gps", "exif", "xmp", "trailing_data"]);
        }
    }

    #[test]
    fn lying_sizes_are_malformed() {
        let mut lying = webp(&[chunk(b"VP8L", &[1; 10])], b"");
        lying[16..20].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        let mut short = webp(&[chunk(b"VP8L", &[1; 10])], b"");
        short.truncate(short.len() - 3);
        for bad in [lying, short, b"RIFX\x04\0\0\0WEBP".to_vec()] {
            assert!(filter_all(&mut WebpFilter::default(), &bad, 5).is_err());
        }
    }
}
