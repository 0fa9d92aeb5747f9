//! PNG: a signature, then length-framed chunks.
//!
//! Kept: the critical chunks (and any unknown critical one, which a decoder
//! must see to refuse), and the ancillary chunks that decide how the picture
//! looks: transparency, gamma, chromaticities, ICC profile (`iCCP`), sRGB,
//! `cICP` and HDR metadata, significant bits, background, histogram, physical
//! pixel size, suggested palettes, and APNG's animation chunks. An `eXIf`
//! chunk becomes one holding the Orientation alone. Removed: text (`tEXt`,
//! `zTXt`, `iTXt`, XMP among them), the last-modification time (`tIME`), the
//! rest of EXIF, every other ancillary chunk, and whatever follows `IEND`.
//! When XMP holds the only Orientation (no `eXIf` came before it), an XMP
//! chunk holding that alone takes its place.
//!
//! Memory: a chunk's first 80 bytes (a text chunk's keyword) and an `eXIf`
//! chunk of at most 1 MiB; everything else streams.

use std::ops::Range;

use super::exif;
use super::xmp::{XmpScanner, orientation_packet};
use super::{Filter, Kind, Malformed, Piece, Removed, insert, keep};
use crate::image::ImageFormat;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// The longest a chunk may be (2^31 - 1).
const MAX_CHUNK: u32 = 0x7FFF_FFFF;
/// `eXIf` chunks are read to find the Orientation up to this size; larger
/// ones are dropped whole.
const MAX_EXIF: usize = 1024 * 1024;
/// A text chunk's keyword: 1 to 79 bytes and a NUL.
const KEYWORD: usize = 80;

const KEPT: [&[u8; 4]; 19] = [
    b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"bKGD",
    b"hIST", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"IDAT",
];

#[derive(Debug)]
enum State {
    Signature {
        seen: usize,
    },
    /// The 8 bytes of length and type.
    Header {
        bytes: Vec<u8>,
    },
    /// Passing a kept chunk's data and CRC; `last` for `IEND`'s.
    Copy {
        left: u64,
        last: bool,
    },
    /// Skipping a dropped chunk's data and CRC; `spotter` looks for a location in XMP.
    Skip {
        left: u64,
        spotter: Option<XmpScanner>,
    },
    /// Reading a text chunk's keyword to know what it is.
    Keyword {
        len: u64,
        bytes: Vec<u8>,
    },
    /// Reading an `eXIf` chunk's data (and CRC).
    Exif {
        len: usize,
        bytes: Vec<u8>,
    },
    /// After `IEND`.
    End,
}

#[derive(Debug)]
pub struct PngFilter {
    state: State,
    removed: Removed,
    exif_seen: bool,
    /// An Orientation was written (from `eXIf`, or from XMP without one).
    orientation_kept: bool,
}

impl Default for PngFilter {
    fn default() -> Self {
        Self {
            state: State::Signature { seen: 0 },
            removed: Removed::default(),
            exif_seen: false,
            orientation_kept: false,
        }
    }
}

/// An uncompressed `iTXt` XMP chunk holding `packet`.
fn xmp_chunk(packet: &[u8]) -> Vec<u8> {
    chunk(b"iTXt", &[b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), packet].concat())
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::Png, reason)
}

/// A whole chunk: length, type, data and CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut bytes = (data.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(kind);
    bytes.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    bytes.extend_from_slice(&crc.finalize().to_be_bytes());
    bytes
}

impl PngFilter {
    /// A chunk header is whole: what happens to the chunk. `in_input` is
    /// where it lies in the input being fed, when it lies there whole (then
    /// a kept header passes as a range of it, not a copy).
    fn start_chunk(
        &mut self,
        header: &[u8],
        in_input: Option<Range<usize>>,
        out: &mut Vec<Piece>,
    ) -> Result<(), Malformed> {
        let pass_header = |out: &mut Vec<Piece>| match in_input.clone() {
            Some(range) => keep(out, range),
            None => insert(out, header.to_vec()),
        };
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
        if len > MAX_CHUNK {
            return Err(malformed(format!("chunk {} claims {len} bytes", String::from_utf8_lossy(&kind))));
        }
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(malformed("a chunk type that is not four letters"));
        }
        let with_crc = u64::from(len) + 4;
        let critical = kind[0].is_ascii_uppercase();
        self.state = match &kind {
            b"IEND" => {
                pass_header(out);
                State::Copy { left: with_crc, last: true }
            }
            b"tEXt" | b"zTXt" | b"iTXt" => State::Keyword { len: u64::from(len), bytes: Vec::new() },
            b"eXIf" if (len as usize) <= MAX_EXIF => State::Exif { len: len as usize, bytes: Vec::new() },
            b"eXIf" => {
                self.removed.add(Kind::Exif);
                State::Skip { left: with_crc, spotter: None }
            }
            b"tIME" => {
                self.removed.add(Kind::Time);
                State::Skip { left: with_crc, spotter: None }
            }
            _ if critical || KEPT.contains(&&kind) => {
                pass_header(out);
                State::Copy { left: with_crc, last: false }
            }
            _ => {
                self.removed.add(Kind::Other);
                State::Skip { left: with_crc, spotter: None }
            }
        };
        Ok(())
    }
}

impl Filter for PngFilter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) -> Result<(), Malformed> {
        let mut at = 0;
        while at < input.len() {
            match &mut self.state {
                State::Signature { seen } => {
                    let take = (SIGNATURE.len() - *seen).min(input.len() - at);
                    if input[at..at + take] != SIGNATURE[*seen..*seen + take] {
                        return Err(malformed("it does not start with the PNG signature"));
                    }
                    keep(out, at..at + take);
                    *seen += take;
                    at += take;
                    if *seen == SIGNATURE.len() {
                        self.state = State::Header { bytes: Vec::with_capacity(8) };
                    }
                }
                State::Header { bytes } if bytes.is_empty() && input.len() - at >= 8 => {
                    at += 8;
                    self.start_chunk(&input[at - 8..at], Some(at - 8..at), out)?;
                }
                State::Header { bytes } => {
                    let take = (8 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 8 {
                        let header = std::mem::take(bytes);
                        self.start_chunk(&header, None, out)?;
                    }
                }
                State::Copy { left, last } => {
                    let take = (*left).min((input.len() - at) as u64) as usize;
                    keep(out, at..at + take);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = if *last { State::End } else { State::Header { bytes: Vec::with_capacity(8) } };
                    }
                }
                State::Skip { left, spotter } => {
                    let take = (*left).min((input.len() - at) as u64) as usize;
                    if let Some(spotter) = spotter {
                        spotter.feed(&input[at..at + take]);
                        if spotter.gps {
                            self.removed.add(Kind::Gps);
                        }
                    }
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        // XMP gave the only Orientation: a packet of that alone takes its place.
                        if let Some(orientation) = spotter.as_ref().and_then(|s| s.orientation)
                            && !self.orientation_kept
                        {
                            insert(out, xmp_chunk(&orientation_packet(orientation)));
                            self.orientation_kept = true;
                        }
                        self.state = State::Header { bytes: Vec::with_capacity(8) };
                    }
                }
                State::Keyword { len, bytes } => {
                    let want = (*len).min(KEYWORD as u64) as usize;
                    let take = (want - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == want {
                        let keyword = bytes.split(|&b| b == 0).next().unwrap_or_default();
                        let is_xmp = keyword == b"XML:com.adobe.xmp" || keyword == b"Raw profile type xmp";
                        self.removed.add(match keyword {
                            _ if is_xmp => Kind::Xmp,
                            b"Raw profile type exif" | b"Raw profile type APP1" => Kind::Exif,
                            b"Raw profile type iptc" | b"Raw profile type 8bim" => Kind::Iptc,
                            b"Comment" => Kind::Comment,
                            _ => Kind::Text,
                        });
                        let mut spotter = is_xmp.then(XmpScanner::default);
                        if let Some(spotter) = spotter.as_mut() {
                            spotter.feed(bytes);
                            if spotter.gps {
                                self.removed.add(Kind::Gps);
                            }
                        }
                        self.state = State::Skip { left: *len - want as u64 + 4, spotter };
                    }
                }
                State::Exif { len, bytes } => {
                    let want = *len + 4;
                    let take = (want - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == want {
                        let facts = exif::read(&bytes[..*len]);
                        for kind in exif::kinds(&facts) {
                            self.removed.add(kind);
                        }
                        if !self.exif_seen
                            && let Some(tiff) = exif::replacement(&facts)
                        {
                            insert(out, chunk(b"eXIf", &tiff));
                            self.orientation_kept = true;
                        }
                        self.exif_seen = true;
                        self.state = State::Header { bytes: Vec::with_capacity(8) };
                    }
                }
                State::End => {
                    self.removed.add(Kind::TrailingData);
                    at = input.len();
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Piece>) -> Result<Removed, Malformed> {
        match self.state {
            State::End => Ok(std::mem::take(&mut self.removed)),
            _ => Err(malformed("it ends before its IEND chunk")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter_all;
    use super::*;

    fn png(chunks: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
        let mut file = SIGNATURE.to_vec();
        file.extend_from_slice(&chunk(b"IHDR", &[0, 0, 0, 4, 0, 0, 0, 3, 8, 2, 0, 0, 0]));
        for c in chunks {
            file.extend_from_slice(c);
        }
        file.extend_from_slice(&chunk(b"IEND", &[]));
        file.extend_from_slice(tail);
        file
    }

    fn strip(file: &[u8], piece: usize) -> Result<(Vec<u8>, Removed), Malformed> {
        filter_all(&mut PngFilter::default(), file, piece)
    }

    #[test]
    fn text_time_and_exif_go_colour_pixels_and_orientation_stay() {
        let iccp = chunk(b"iCCP", b"icc\0\0compressed-profile");
        let idat = chunk(b"IDAT", &[0x78, 1, 2, 3, 4, 5]);
        let phys = chunk(b"pHYs", &[0, 0, 11, 19, 0, 0, 11, 19, 1]);
        let mut exif_data = exif::orientation_only(6, true);
        exif_data.extend_from_slice(b"and a camera serial");
        let file = png(
            &[
                iccp.clone(),
                chunk(b"tEXt", b"Author\0Someone"),
                chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x exif:GPSLongitude=\"3\"/>"),
                chunk(b"zTXt", b"Comment\0\0compressed"),
                chunk(b"tIME", &[7, 234, 1, 2, 3, 4, 5]),
                chunk(b"eXIf", &exif_data),
                chunk(b"prVt", b"private"),
                phys.clone(),
                idat.clone(),
            ],
            b"trailing",
        );
        let expected = png(&[iccp, chunk(b"eXIf", &exif::orientation_only(6, true)), phys, idat], b"");
        for piece in [1, 3, 8, 13, 100, 100_000] {
            let (stripped, removed) = strip(&file, piece).unwrap();
            assert_eq!(stripped, expected, "piece {piece}");
            assert_eq!(removed.names(), ["gps", "exif", "xmp", "comment", "text", "time", "trailing_data", "other"]);
        }
    }

    #[test]
    fn a_clean_png_passes_unchanged() {
        let file = png(&[chunk(b"IDAT", &[1, 2, 3])], b"");
        assert_eq!(strip(&file, 7).unwrap(), (file, Removed::default()));
    }

    #[test]
    fn lying_lengths_and_cut_files_are_malformed() {
        let mut huge = SIGNATURE.to_vec();
        huge.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xF0]);
        huge.extend_from_slice(b"tEXt");
        let mut cut = png(&[chunk(b"IDAT", &[1, 2, 3])], b"");
        cut.truncate(cut.len() - 5);
        let mut not_a_type = SIGNATURE.to_vec();
        not_a_type.extend_from_slice(&[0, 0, 0, 1, b'a', b'1', b'#', b'c', 0]);
        for bad in [huge, cut, not_a_type, b"\x89PNX".to_vec()] {
            assert!(strip(&bad, 4).is_err());
        }
        // A text chunk claiming 2 GiB is skipped as it streams: no memory held,
        // and the file is malformed when it ends short.
        let mut claims = SIGNATURE.to_vec();
        claims.extend_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
        claims.extend_from_slice(b"tEXt");
        claims.extend_from_slice(&vec![b'x'; 1 << 20]);
        assert!(strip(&claims, 65_536).is_err());
    }

    #[test]
    fn an_orientation_only_xmp_gave_survives_alone() {
        let xmp = chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x tiff:Orientation='5' exif:GPSLatitude='1'/>");
        let (stripped, removed) = strip(&png(std::slice::from_ref(&xmp), b""), 7).unwrap();
        assert_eq!(stripped, png(&[xmp_chunk(&orientation_packet(5))], b""));
        assert_eq!(removed.names(), ["gps", "xmp"]);
        let exif_first = chunk(b"eXIf", &exif::orientation_only(2, true));
        let (stripped, _) = strip(&png(&[exif_first.clone(), xmp], b""), 7).unwrap();
        assert_eq!(stripped, png(&[exif_first], b""));
    }
}
