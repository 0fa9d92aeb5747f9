//! GIF: a header and screen descriptor, then image and extension blocks made
//! of sub-blocks of at most 255 bytes.
//!
//! Kept: colour tables, images, graphic control (timing, transparency),
//! plain-text extensions (they draw), and the application extensions that
//! decide how the picture plays or looks (`NETSCAPE2.0` and `ANIMEXTS1.0`
//! looping, `ICCRGBG1012` colour profiles). Removed: comments, XMP
//! (`XMP DataXMP`), every other application extension, and whatever follows
//! the trailer. GIF has no EXIF: when its XMP gave an Orientation, an XMP
//! packet holding that alone takes its place, so the Orientation survives.
//!
//! Memory: an application extension's identifier (11 bytes).

use super::xmp::{XmpScanner, orientation_packet};
use super::{Filter, Kind, Malformed, Piece, Removed, insert, keep};
use crate::image::ImageFormat;

const KEPT_APPLICATIONS: [&[u8; 11]; 3] = [b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"];

#[derive(Debug)]
enum State {
    /// Header (6 bytes) and logical screen descriptor (7).
    Header { bytes: Vec<u8> },
    /// Passing a colour table, then on to `then`.
    Copy { left: usize, then: Next },
    /// The byte that starts the next block.
    Block,
    /// An image descriptor's 9 bytes after its separator.
    ImageDescriptor { bytes: Vec<u8> },
    /// An image's LZW minimum code size.
    CodeSize,
    /// An extension's label.
    Label,
    /// An application extension's first sub-block: its size and identifier.
    Application { bytes: Vec<u8> },
    /// Sub-blocks until the zero-length terminator, kept or dropped;
    /// `left` bytes of the current one.
    SubBlocks { keep: bool, left: usize },
    /// XMP: raw packet text whose bytes double as sub-block sizes, then a
    /// "magic trailer" that brings any reader to the terminator.
    Xmp { left: usize, scanner: XmpScanner },
    /// After the trailer.
    End,
}

#[derive(Clone, Copy, Debug)]
enum Next {
    Block,
    CodeSize,
}

#[derive(Debug)]
pub struct GifFilter {
    state: State,
    removed: Removed,
}

impl Default for GifFilter {
    fn default() -> Self {
        Self { state: State::Header { bytes: Vec::with_capacity(13) }, removed: Removed::default() }
    }
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::Gif, reason)
}

/// Bytes of the colour table a packed field announces, if any.
fn color_table(packed: u8) -> usize {
    if packed & 0x80 == 0 { 0 } else { 3 << ((packed & 0x07) + 1) }
}

fn sub_blocks(keep: bool) -> State {
    State::SubBlocks { keep, left: 0 }
}

const XMP_APPLICATION: &[u8; 11] = b"XMP DataXMP";

/// An XMP application extension holding `packet`, with its magic trailer
/// (`01 FF FE … 01 00`) and terminator.
fn xmp_extension(packet: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x21, 0xFF, 11];
    bytes.extend_from_slice(XMP_APPLICATION);
    bytes.extend_from_slice(packet);
    bytes.push(0x01);
    bytes.extend((0..=0xFF_u8).rev());
    bytes.push(0x00);
    bytes
}

impl Filter for GifFilter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) -> Result<(), Malformed> {
        let mut at = 0;
        while at < input.len() {
            match &mut self.state {
                State::Header { bytes } => {
                    let take = (13 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 13 {
                        if !bytes.starts_with(b"GIF87a") && !bytes.starts_with(b"GIF89a") {
                            return Err(malformed("it does not start with GIF87a or GIF89a"));
                        }
                        let table = color_table(bytes[10]);
                        insert(out, std::mem::take(bytes));
                        self.state = State::Copy { left: table, then: Next::Block };
                    }
                }
                State::Copy { left, then } => {
                    let take = (*left).min(input.len() - at);
                    keep(out, at..at + take);
                    at += take;
                    *left -= take;
                    if *left == 0 {
                        self.state = match then {
                            Next::Block => State::Block,
                            Next::CodeSize => State::CodeSize,
                        };
                    }
                }
                State::Block => {
                    let byte = input[at];
                    at += 1;
                    self.state = match byte {
                        0x2C => {
                            insert(out, vec![0x2C]);
                            State::ImageDescriptor { bytes: Vec::with_capacity(9) }
                        }
                        0x21 => State::Label,
                        0x3B => {
                            insert(out, vec![0x3B]);
                            State::End
                        }
                        other => return Err(malformed(format!("a block starts with {other:#04x}"))),
                    };
                }
                State::ImageDescriptor { bytes } => {
                    let take = (9 - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() == 9 {
                        let table = color_table(bytes[8]);
                        insert(out, std::mem::take(bytes));
                        self.state = State::Copy { left: table, then: Next::CodeSize };
                    }
                }
                State::CodeSize => {
                    keep(out, at..at + 1);
                    at += 1;
                    self.state = sub_blocks(true);
                }
                State::Label => {
                    let label = input[at];
                    at += 1;
                    self.state = match label {
                        // Graphic control and plain text: they decide what is shown.
                        0xF9 | 0x01 => {
                            insert(out, vec![0x21, label]);
                            sub_blocks(true)
                        }
                        0xFF => State::Application { bytes: Vec::with_capacity(12) },
                        0xFE => {
                            self.removed.add(Kind::Comment);
                            sub_blocks(false)
                        }
                        _ => {
                            self.removed.add(Kind::Other);
                            sub_blocks(false)
                        }
                    };
                }
                State::Application { bytes } => {
                    if bytes.is_empty() {
                        bytes.push(input[at]);
                        at += 1;
                        if bytes[0] == 0 {
                            // An empty extension: nothing to keep.
                            self.removed.add(Kind::Other);
                            self.state = State::Block;
                        }
                        continue;
                    }
                    let want = 1 + bytes[0] as usize;
                    let take = (want - bytes.len()).min(input.len() - at);
                    bytes.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if bytes.len() < want {
                        continue;
                    }
                    let identifier = &bytes[1..];
                    if KEPT_APPLICATIONS.iter().any(|kept| identifier == &kept[..]) {
                        insert(out, [&[0x21, 0xFF], &bytes[..]].concat());
                        self.state = sub_blocks(true);
                    } else if identifier == XMP_APPLICATION {
                        self.removed.add(Kind::Xmp);
                        self.state = State::Xmp { left: 0, scanner: XmpScanner::default() };
                    } else {
                        self.removed.add(Kind::Other);
                        self.state = sub_blocks(false);
                    }
                }
                State::SubBlocks { keep: kept, left } => {
                    if *left == 0 {
                        let size = input[at];
                        if *kept {
                            keep(out, at..at + 1);
                        }
                        at += 1;
                        if size == 0 {
                            self.state = State::Block;
                        } else {
                            *left = size as usize;
                        }
                        continue;
                    }
                    let take = (*left).min(input.len() - at);
                    if *kept {
                        keep(out, at..at + take);
                    }
                    at += take;
                    *left -= take;
                }
                State::Xmp { left, scanner } => {
                    // Sizes are text too: the scanner sees every byte.
                    let take = if *left == 0 { 1 } else { (*left).min(input.len() - at) };
                    scanner.feed(&input[at..at + take]);
                    let size = input[at];
                    let starts_a_block = *left == 0;
                    at += take;
                    if !starts_a_block {
                        *left -= take;
                    } else if size != 0 {
                        *left = size as usize;
                    } else {
                        if scanner.gps {
                            self.removed.add(Kind::Gps);
                        }
                        if let Some(orientation) = scanner.orientation {
                            insert(out, xmp_extension(&orientation_packet(orientation)));
                        }
                        self.state = State::Block;
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
            // Browsers show a GIF whose trailer is missing; so do we.
            State::End | State::Block => Ok(std::mem::take(&mut self.removed)),
            _ => Err(malformed("it ends inside a block")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter_all;
    use super::*;

    fn sub_blocked(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in data.chunks(255) {
            out.push(piece.len() as u8);
            out.extend_from_slice(piece);
        }
        out.push(0);
        out
    }

    fn extension(label: u8, first: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x21, label, first.len() as u8];
        out.extend_from_slice(first);
        out.extend_from_slice(&sub_blocked(data)[..]);
        out
    }

    fn gif(blocks: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
        // A 2x2 image with a 2-colour global table.
        let mut file = b"GIF89a\x02\x00\x02\x00\x80\x00\x00".to_vec();
        file.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        for b in blocks {
            file.extend_from_slice(b);
        }
        file.extend_from_slice(&[0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2]);
        file.extend_from_slice(&sub_blocked(&[0x84, 0x8F, 0x09]));
        file.push(0x3B);
        file.extend_from_slice(tail);
        file
    }

    #[test]
    fn comments_and_xmp_go_animation_and_colour_stay() {
        let looping = extension(0xFF, b"NETSCAPE2.0", &[1, 0, 0]);
        let icc = extension(0xFF, b"ICCRGBG1012", b"profile");
        let control = vec![0x21, 0xF9, 4, 0, 10, 0, 0, 0];
        let xmp = extension(0xFF, b"XMP DataXMP", &[b"<x exif:GPSLatitude=\"1\"/>".as_slice(), &[1; 300]].concat());
        let comment = vec![0x21, 0xFE, 5, b'h', b'e', b'l', b'l', b'o', 0];
        let file = gif(
            &[looping.clone(), comment, xmp, icc.clone(), control.clone(), extension(0xFF, b"MGK8BIM0000", b"x")],
            b"junk",
        );
        let expected = gif(&[looping, icc, control], b"");
        for piece in [1, 2, 5, 11, 1000] {
            let (stripped, removed) = filter_all(&mut GifFilter::default(), &file, piece).unwrap();
            assert_eq!(stripped, expected, "piece {piece}");
            assert_eq!(removed.names(), ["gps", "xmp", "comment", "trailing_data", "other"]);
        }
    }

    #[test]
    fn broken_blocks_are_malformed() {
        let good = gif(&[], b"");
        for bad in [
            b"GIF90a\x01\x00\x01\x00\x00\x00\x00".to_vec(),
            good[..good.len() - 4].to_vec(),
            [&good[..19], &[0x99]].concat(),
        ] {
            assert!(filter_all(&mut GifFilter::default(), &bad, 3).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_orientation_xmp_gave_survives_alone_in_a_readable_extension() {
        let packet = b"<x:xmpmeta><rdf:Description tiff:Orientation=\"6\" exif:GPSLatitude=\"48,51N\" dc:creator=\"me\"/></x:xmpmeta>";
        // As exiftool writes it: raw packet text, magic trailer, terminator.
        let file = gif(&[xmp_extension(packet)], b"");
        let expected = gif(&[xmp_extension(&orientation_packet(6))], b"");
        for piece in [1, 3, 17, 4096] {
            let (stripped, removed) = filter_all(&mut GifFilter::default(), &file, piece).unwrap();
            assert_eq!(stripped, expected, "piece {piece}");
            assert_eq!(removed.names(), ["gps", "xmp"]);
            // What is written parses again, to the same file.
            let (again, _) = filter_all(&mut GifFilter::default(), &stripped, piece).unwrap();
            assert_eq!(again, expected);
        }
    }
}
