//! JPEG: a stream of marker segments, then entropy-coded scans.
//!
//! Kept: every segment that decides how the picture decodes (tables, frame,
//! scan, restart intervals), APP0 (JFIF), APP2 `ICC_PROFILE`, APP14 `Adobe`
//! (colour transform), and the scans themselves byte for byte. An EXIF APP1
//! becomes one holding the Orientation alone. Removed: the rest of EXIF
//! (GPS, camera, serial numbers, maker notes, dates, owner), XMP and extended
//! XMP, IPTC (APP13), other APPn blocks (MPF, FlashPix, …), comments, and
//! whatever follows the end-of-image marker. When XMP holds the only
//! Orientation (no EXIF came before it), an XMP block holding that alone
//! takes its place.
//!
//! Memory: one APPn or COM segment at most (64 KiB), whatever the file's size.

use super::exif;
use super::xmp::{XmpScanner, orientation_packet};
use super::{Filter, Kind, Malformed, Piece, Removed, insert, keep};
use crate::image::ImageFormat;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const COM: u8 = 0xFE;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP13: u8 = 0xED;
const APP14: u8 = 0xEE;

const EXIF_ID: &[u8] = b"Exif\0\0";
const XMP_IDS: [&[u8]; 2] = [b"http://ns.adobe.com/xap/1.0/\0", b"http://ns.adobe.com/xmp/extension/\0"];

#[derive(Debug)]
enum State {
    /// The two bytes of the start-of-image marker.
    Start { seen: usize },
    /// Between segments: fill bytes, then `FF` and a marker code.
    Marker { ff: bool },
    /// The two length bytes of `marker`'s segment.
    Length { marker: u8, bytes: Vec<u8> },
    /// Passing the rest of a kept segment.
    Copy { left: usize, then_scan: bool },
    /// Collecting an APPn or COM segment to decide on it.
    Collect { marker: u8, len: usize, payload: Vec<u8> },
    /// Passing entropy-coded data; `ff` when an `FF` is held back.
    Scan { ff: bool },
    /// After the end-of-image marker: nothing more is kept.
    End,
}

#[derive(Debug)]
pub struct JpegFilter {
    state: State,
    removed: Removed,
    /// Only the first EXIF block counts (a second one is a thumbnail's or a trick).
    exif_seen: bool,
    /// An Orientation was written (from EXIF, or from XMP without one).
    orientation_kept: bool,
}

impl Default for JpegFilter {
    fn default() -> Self {
        Self { state: State::Start { seen: 0 }, removed: Removed::default(), exif_seen: false, orientation_kept: false }
    }
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::Jpeg, reason)
}

/// Markers that stand alone, without a length.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7 | SOI | EOI)
}

impl JpegFilter {
    /// A whole APPn or COM segment: kept, rewritten or dropped.
    fn decide(&mut self, marker: u8, payload: Vec<u8>, out: &mut Vec<Piece>) {
        let starts = |prefix: &[u8]| payload.starts_with(prefix);
        match marker {
            APP0 => {}
            APP2 if starts(b"ICC_PROFILE\0") => {}
            APP14 if starts(b"Adobe") => {}
            APP1 if starts(EXIF_ID) => {
                let facts = exif::read(&payload[EXIF_ID.len()..]);
                for kind in exif::kinds(&facts) {
                    self.removed.add(kind);
                }
                if !self.exif_seen
                    && let Some(tiff) = exif::replacement(&facts)
                {
                    insert(out, segment(APP1, &[EXIF_ID, &tiff].concat()));
                    self.orientation_kept = true;
                }
                self.exif_seen = true;
                return;
            }
            APP1 if XMP_IDS.iter().any(|id| starts(id)) => {
                self.removed.add(Kind::Xmp);
                let xmp = XmpScanner::of(&payload);
                if xmp.gps {
                    self.removed.add(Kind::Gps);
                }
                // XMP gave the only Orientation: a packet of that alone takes its place.
                if let Some(orientation) = xmp.orientation
                    && !self.orientation_kept
                {
                    insert(out, segment(APP1, &[XMP_IDS[0], &orientation_packet(orientation)].concat()));
                    self.orientation_kept = true;
                }
                return;
            }
            APP13 => {
                self.removed.add(if starts(b"Photoshop 3.0\0") { Kind::Iptc } else { Kind::Other });
                return;
            }
            COM => {
                self.removed.add(Kind::Comment);
                return;
            }
            _ => {
                self.removed.add(Kind::Other);
                return;
            }
        }
        insert(out, segment(marker, &payload));
    }
}

/// Where a run of entropy-coded data stops.
enum ScanEnd {
    /// At the end of the input, all of it data.
    More,
    /// At an FF that is the input's last byte.
    HeldFf,
    /// At the FF of a marker that ends the scan.
    Marker,
}

/// How many bytes of `data` are scan data, and what stops the run there.
fn scan_run(data: &[u8]) -> (usize, ScanEnd) {
    let mut from = 0;
    while let Some(found) = memchr::memchr(0xFF, &data[from..]) {
        let ff = from + found;
        match data.get(ff + 1) {
            None => return (ff, ScanEnd::HeldFf),
            // Stuffed byte or restart marker: still the scan. Another FF: look at that one.
            Some(0x00 | 0xD0..=0xD7) => from = ff + 2,
            Some(0xFF) => from = ff + 1,
            Some(_) => return (ff, ScanEnd::Marker),
        }
    }
    (data.len(), ScanEnd::More)
}

/// `FF marker length payload`.
fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xFF, marker];
    bytes.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

impl Filter for JpegFilter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) -> Result<(), Malformed> {
        let mut at = 0;
        while at < input.len() {
            match &mut self.state {
                State::Start { seen } => {
                    let expected = [0xFF, SOI][*seen];
                    if input[at] != expected {
                        return Err(malformed("it does not start with a start-of-image marker"));
                    }
                    *seen += 1;
                    at += 1;
                    if *seen == 2 {
                        insert(out, vec![0xFF, SOI]);
                        self.state = State::Marker { ff: false };
                    }
                }
                State::Marker { ff } => {
                    let byte = input[at];
                    at += 1;
                    match (*ff, byte) {
                        (false, 0xFF) | (true, 0xFF) => *ff = true,
                        (false, _) => {
                            return Err(malformed(format!("a byte {byte:#04x} stands where a marker should")));
                        }
                        (true, 0x00) => return Err(malformed("a marker code of 0x00 outside a scan")),
                        (true, SOI) => return Err(malformed("a second start-of-image marker")),
                        (true, EOI) => {
                            insert(out, vec![0xFF, EOI]);
                            self.state = State::End;
                        }
                        (true, marker) if is_standalone(marker) => {
                            insert(out, vec![0xFF, marker]);
                            *ff = false;
                        }
                        (true, marker) => self.state = State::Length { marker, bytes: Vec::with_capacity(2) },
                    }
                }
                State::Length { marker, bytes } => {
                    bytes.push(input[at]);
                    at += 1;
                    if bytes.len() < 2 {
                        continue;
                    }
                    let marker = *marker;
                    let len = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
                    if len < 2 {
                        return Err(malformed(format!("segment {marker:#04x} declares a length of {len}")));
                    }
                    if matches!(marker, 0xE0..=0xEF | COM) {
                        self.state = State::Collect { marker, len: len - 2, payload: Vec::with_capacity(len - 2) };
                    } else {
                        let mut head = vec![0xFF, marker];
                        head.extend_from_slice(&(len as u16).to_be_bytes());
                        insert(out, head);
                        self.state = State::Copy { left: len - 2, then_scan: marker == SOS };
                    }
                }
                State::Collect { marker, len, payload } => {
                    let take = (*len - payload.len()).min(input.len() - at);
                    payload.extend_from_slice(&input[at..at + take]);
                    at += take;
                    if payload.len() == *len {
                        let (marker, payload) = (*marker, std::mem::take(payload));
                        self.state = State::Marker { ff: false };
                        self.decide(marker, payload, out);
                    }
                }
                State::Copy { left, then_scan } => {
                    let take = (*left).min(input.len() - at);
                    keep(out, at..at + take);
                    at += take;
                    *left -= take;
                    if *left == 0 {
                        self.state = if *then_scan { State::Scan { ff: false } } else { State::Marker { ff: false } };
                    }
                }
                State::Scan { ff } => {
                    if !*ff {
                        // The scan passes as one range up to a marker, stuffed bytes
                        // (FF 00), restart markers and fill bytes included; an FF that
                        // ends this input is held until the next byte says what it is.
                        let (end, next) = scan_run(&input[at..]);
                        keep(out, at..at + end);
                        at += end;
                        match next {
                            ScanEnd::More => {}
                            ScanEnd::HeldFf => {
                                *ff = true;
                                at += 1;
                            }
                            ScanEnd::Marker => {
                                at += 1;
                                self.state = State::Marker { ff: true };
                            }
                        }
                        continue;
                    }
                    let byte = input[at];
                    match byte {
                        // A stuffed FF, or a restart marker: still the scan.
                        0x00 | 0xD0..=0xD7 => {
                            insert(out, vec![0xFF]);
                            keep(out, at..at + 1);
                            at += 1;
                            *ff = false;
                        }
                        // Another FF: the held one passes, this one is held.
                        0xFF => {
                            insert(out, vec![0xFF]);
                            at += 1;
                        }
                        // The scan ended at a marker.
                        _ => self.state = State::Marker { ff: true },
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
        match &self.state {
            // A file may end without its end-of-image marker (cameras and
            // encoders cut short write such files; decoders show them).
            State::End | State::Scan { .. } | State::Marker { ff: false } => Ok(std::mem::take(&mut self.removed)),
            State::Start { .. } => Err(malformed("it ends before its start-of-image marker")),
            State::Length { marker, .. } | State::Collect { marker, .. } => {
                Err(malformed(format!("it ends inside segment {marker:#04x}")))
            }
            State::Copy { .. } => Err(malformed("it ends inside a segment")),
            State::Marker { ff: true } => Err(malformed("it ends inside a marker")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter_all;
    use super::*;

    fn jpeg(segments: &[Vec<u8>], scan: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut file = vec![0xFF, SOI];
        for s in segments {
            file.extend_from_slice(s);
        }
        file.extend_from_slice(&segment(SOS, &[1, 1, 0, 0, 63, 0]));
        file.extend_from_slice(scan);
        file.extend_from_slice(&[0xFF, EOI]);
        file.extend_from_slice(tail);
        file
    }

    fn exif_app1(orientation: u16, extra: &[u8]) -> Vec<u8> {
        let mut payload = EXIF_ID.to_vec();
        payload.extend_from_slice(&exif::orientation_only(orientation, false));
        payload.extend_from_slice(extra);
        segment(APP1, &payload)
    }

    fn strip(file: &[u8], chunk: usize) -> Result<(Vec<u8>, Removed), Malformed> {
        filter_all(&mut JpegFilter::default(), file, chunk)
    }

    #[test]
    fn metadata_goes_pixels_and_colour_stay_in_every_chunking() {
        let scan = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF, 0x00, 0x78];
        let icc = segment(APP2, b"ICC_PROFILE\0\x01\x01profile-bytes");
        let dqt = segment(0xDB, &[0; 65]);
        let file = jpeg(
            &[
                segment(APP0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
                exif_app1(6, b"camera serial 1234"),
                segment(APP1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta exif:GPSLatitude=\"1\"/>"),
                icc.clone(),
                segment(APP13, b"Photoshop 3.0\0IPTC"),
                segment(COM, b"a comment"),
                dqt.clone(),
            ],
            &scan,
            b"appended zip",
        );
        let mut expected = vec![0xFF, SOI];
        expected.extend_from_slice(&segment(APP0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        expected.extend_from_slice(&exif_app1(6, b""));
        expected.extend_from_slice(&icc);
        expected.extend_from_slice(&dqt);
        expected.extend_from_slice(&segment(SOS, &[1, 1, 0, 0, 63, 0]));
        expected.extend_from_slice(&scan);
        expected.extend_from_slice(&[0xFF, EOI]);
        for chunk in [1, 2, 3, 7, 64, 10_000] {
            let (stripped, removed) = strip(&file, chunk).unwrap();
            assert_eq!(stripped, expected, "chunk {chunk}");
            assert_eq!(removed.names(), ["gps", "exif", "xmp", "iptc", "comment", "trailing_data"], "chunk {chunk}");
        }
    }

    #[test]
    fn a_file_without_metadata_passes_unchanged() {
        let file = jpeg(&[segment(0xDB, &[7; 65]), segment(0xC0, &[8, 0, 4, 0, 4, 1, 1, 0x11, 0])], &[1, 2, 3], b"");
        let (stripped, removed) = strip(&file, 5).unwrap();
        assert_eq!(stripped, file);
        assert!(removed.is_empty());
    }

    #[test]
    fn broken_framing_is_malformed_never_a_panic() {
        let good = jpeg(&[exif_app1(1, b"")], &[1, 2], b"");
        for bad in [
            b"GIF89a".to_vec(),
            vec![0xFF, SOI, 0x00],
            vec![0xFF, SOI, 0xFF, APP1, 0x00, 0x01],
            vec![0xFF, SOI, 0xFF, APP1, 0xFF, 0xFF, b'E'], // an APP1 claiming 64 KiB, cut short
            vec![0xFF, SOI, 0xFF, SOI],
            good[..good.len() - 12].to_vec(),
        ] {
            assert!(strip(&bad, 3).is_err(), "{bad:?}");
        }
        // Thousands of tiny segments are fine, and cheap.
        let many: Vec<Vec<u8>> = (0..5000).map(|_| segment(COM, b"")).collect();
        let (stripped, _) = strip(&jpeg(&many, &[1], b""), 4096).unwrap();
        assert!(stripped.len() < 64);
    }

    #[test]
    fn a_second_exif_block_is_dropped_whole() {
        let file = jpeg(&[exif_app1(6, b""), exif_app1(3, b"")], &[1], b"");
        let (stripped, _) = strip(&file, 9).unwrap();
        assert_eq!(stripped.windows(6).filter(|w| *w == EXIF_ID).count(), 1);
    }

    #[test]
    fn an_orientation_only_xmp_gave_survives_alone() {
        let xmp = |body: &str| {
            segment(APP1, format!("http://ns.adobe.com/xap/1.0/\0<x tiff:Orientation=\"8\" {body}/>").as_bytes())
        };
        let kept = segment(APP1, &[XMP_IDS[0], &orientation_packet(8)].concat());
        let (stripped, removed) = strip(&jpeg(&[xmp("dc:creator=\"me\"")], &[1], b""), 5).unwrap();
        assert_eq!(stripped, jpeg(&[kept], &[1], b""));
        assert_eq!(removed.names(), ["xmp"]);
        // With EXIF's Orientation first, XMP's goes with the rest of it.
        let (stripped, _) = strip(&jpeg(&[exif_app1(3, b""), xmp("")], &[1], b""), 5).unwrap();
        assert_eq!(stripped, jpeg(&[exif_app1(3, b"")], &[1], b""));
    }

    #[test]
    fn a_scan_with_stuffed_bytes_and_restarts_passes_as_one_range() {
        let scan: Vec<u8> = (0..20_000u32)
            .flat_map(|i| match i {
                _ if i % 50 == 0 => vec![0xFF, 0x00],
                _ if i % 777 == 0 => vec![0xFF, 0xD3],
                _ => vec![(i % 127) as u8],
            })
            .collect();
        let file = jpeg(&[], &scan, b"");
        let mut pieces = Vec::new();
        let mut filter = JpegFilter::default();
        filter.feed(&file, &mut pieces).unwrap();
        // SOI, the SOS header, one range for SOS's payload and the whole scan, EOI.
        assert_eq!(pieces.len(), 4, "{:?}", &pieces[..pieces.len().min(8)]);
        assert_eq!(strip(&file, 1000).unwrap().0, file);
    }
}
