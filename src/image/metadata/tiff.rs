//! TIFF: image file directories (IFDs) of tagged entries, pointing anywhere
//! in the file. Stripped in memory, in place: every IFD keeps only the tags
//! that describe its pixels (size, samples, compression, strips or tiles,
//! colour, resolution, Orientation, ICC profile, sub-images); the others are
//! removed from the IFD and their values zeroed, and the EXIF, GPS and
//! interoperability IFDs they pointed to are zeroed whole. Offsets, image
//! data and the file's size do not change.

use std::collections::BTreeSet;

use super::xmp::contains_gps;
use super::{Kind, Malformed, Removed};
use crate::image::ImageFormat;

/// Tags that decide how the pixels decode and display.
const KEPT: [u16; 62] = [
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283, 284, 290, 291,
    292, 293, 296, 297, 301, 317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 333, 334, 336, 338, 339, 340, 341,
    342, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 34675,
];
const SUB_IFDS: u16 = 330;
const EXIF_IFD: u16 = 34665;
const GPS_IFD: u16 = 34853;
const INTEROP_IFD: u16 = 40965;
const XMP: u16 = 700;
const IPTC: u16 = 33723;
const PHOTOSHOP: u16 = 34377;
/// A file with more IFDs than this is not an image we store.
const MAX_IFDS: usize = 256;

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::Tiff, reason)
}

struct Tiff<'a> {
    file: &'a mut [u8],
    little_endian: bool,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    /// The value, or the offset of the value when it does not fit in 4 bytes.
    field: u32,
    raw: [u8; 12],
}

impl Entry {
    fn value_len(&self) -> Option<u64> {
        let size = match self.kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => return None,
        };
        Some(u64::from(self.count) * size)
    }
}

impl Tiff<'_> {
    fn u16_at(&self, at: usize) -> Result<u16, Malformed> {
        let bytes: [u8; 2] =
            self.file.get(at..at + 2).ok_or_else(|| malformed("an IFD runs past the end"))?.try_into().expect("2");
        Ok(if self.little_endian { u16::from_le_bytes(bytes) } else { u16::from_be_bytes(bytes) })
    }

    fn u32_at(&self, at: usize) -> Result<u32, Malformed> {
        let bytes: [u8; 4] =
            self.file.get(at..at + 4).ok_or_else(|| malformed("an IFD runs past the end"))?.try_into().expect("4");
        Ok(if self.little_endian { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) })
    }

    fn put_u16(&mut self, at: usize, value: u16) {
        let bytes = if self.little_endian { value.to_le_bytes() } else { value.to_be_bytes() };
        self.file[at..at + 2].copy_from_slice(&bytes);
    }

    fn put_u32(&mut self, at: usize, value: u32) {
        let bytes = if self.little_endian { value.to_le_bytes() } else { value.to_be_bytes() };
        self.file[at..at + 4].copy_from_slice(&bytes);
    }

    fn entries(&self, ifd: usize) -> Result<(Vec<Entry>, u32), Malformed> {
        let count = self.u16_at(ifd)? as usize;
        let mut entries = Vec::with_capacity(count);
        for n in 0..count {
            let at = ifd + 2 + 12 * n;
            let raw: [u8; 12] = self
                .file
                .get(at..at + 12)
                .ok_or_else(|| malformed("an IFD runs past the end"))?
                .try_into()
                .expect("12");
            entries.push(Entry {
                tag: self.u16_at(at)?,
                kind: self.u16_at(at + 2)?,
                count: self.u32_at(at + 4)?,
                field: self.u32_at(at + 8)?,
                raw,
            });
        }
        let next = self.u32_at(ifd + 2 + 12 * count)?;
        Ok((entries, next))
    }

    /// The bytes an entry's value takes outside its IFD, if it does not fit in the entry.
    fn value_range(&self, entry: &Entry) -> Option<std::ops::Range<usize>> {
        let len = entry.value_len()?;
        if len <= 4 {
            return None;
        }
        let start = entry.field as usize;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        (end <= self.file.len()).then_some(start..end)
    }

    fn zero(&mut self, range: std::ops::Range<usize>) {
        self.file[range].fill(0);
    }

    /// Zeroes an IFD that is removed whole (EXIF, GPS, interoperability), and what it points to.
    fn zero_ifd(&mut self, ifd: usize, visited: &mut BTreeSet<usize>, removed: &mut Removed) -> Result<(), Malformed> {
        if !visited.insert(ifd) {
            return Ok(());
        }
        let (entries, _) = self.entries(ifd)?;
        for entry in &entries {
            if matches!(entry.tag, GPS_IFD | INTEROP_IFD) {
                if entry.tag == GPS_IFD {
                    removed.add(Kind::Gps);
                }
                self.zero_ifd(entry.field as usize, visited, removed)?;
            }
            if let Some(range) = self.value_range(entry) {
                self.zero(range);
            }
        }
        self.zero(ifd..ifd + 2 + 12 * entries.len() + 4);
        Ok(())
    }

    /// Keeps an IFD's pixel-describing entries, removes the rest; returns the next IFD and any sub-IFDs.
    fn strip_ifd(
        &mut self,
        ifd: usize,
        visited: &mut BTreeSet<usize>,
        removed: &mut Removed,
    ) -> Result<Vec<usize>, Malformed> {
        let (entries, next) = self.entries(ifd)?;
        let mut kept = Vec::with_capacity(entries.len());
        let mut more = Vec::new();
        for entry in entries.iter().copied() {
            if KEPT.contains(&entry.tag) {
                if entry.tag == SUB_IFDS {
                    more.extend(self.offsets(&entry)?);
                }
                kept.push(entry);
                continue;
            }
            removed.add(match entry.tag {
                GPS_IFD => Kind::Gps,
                XMP => Kind::Xmp,
                IPTC | PHOTOSHOP => Kind::Iptc,
                _ => Kind::Exif,
            });
            if entry.tag == XMP
                && let Some(range) = self.value_range(&entry)
                && contains_gps(&self.file[range])
            {
                removed.add(Kind::Gps);
            }
            if matches!(entry.tag, EXIF_IFD | GPS_IFD) {
                self.zero_ifd(entry.field as usize, visited, removed)?;
            }
            if let Some(range) = self.value_range(&entry) {
                self.zero(range);
            }
        }
        // Write the kept entries back, then the next-IFD offset, then zeros.
        let old_end = ifd + 2 + 12 * entries.len() + 4;
        self.put_u16(ifd, kept.len() as u16);
        for (n, entry) in kept.iter().enumerate() {
            let at = ifd + 2 + 12 * n;
            self.file[at..at + 12].copy_from_slice(&entry.raw);
        }
        let next_at = ifd + 2 + 12 * kept.len();
        self.put_u32(next_at, next);
        self.zero(next_at + 4..old_end);
        if next != 0 {
            more.push(next as usize);
        }
        Ok(more)
    }

    /// The IFD offsets a SubIFDs entry lists.
    fn offsets(&self, entry: &Entry) -> Result<Vec<usize>, Malformed> {
        if entry.count == 1 {
            return Ok(vec![entry.field as usize]);
        }
        let range = self.value_range(entry).ok_or_else(|| malformed("a SubIFDs entry points past the end"))?;
        range.step_by(4).map(|at| self.u32_at(at).map(|o| o as usize)).collect()
    }
}

/// Strips a whole TIFF file in place.
pub fn strip(file: &mut [u8]) -> Result<Removed, Malformed> {
    let little_endian = match file.get(..4) {
        Some(b"II\x2a\x00") => true,
        Some(b"MM\x00\x2a") => false,
        Some(b"II\x2b\x00" | b"MM\x00\x2b") => return Err(malformed("BigTIFF files are not accepted")),
        _ => return Err(malformed("it does not start with a TIFF header")),
    };
    let mut tiff = Tiff { file, little_endian };
    let mut removed = Removed::default();
    let mut visited = BTreeSet::new();
    let mut queue = vec![tiff.u32_at(4)? as usize];
    while let Some(ifd) = queue.pop() {
        if ifd == 0 || !visited.insert(ifd) {
            continue;
        }
        if visited.len() > MAX_IFDS {
            return Err(malformed(format!("more than {MAX_IFDS} IFDs")));
        }
        queue.extend(tiff.strip_ifd(ifd, &mut visited, &mut removed)?);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF with one IFD of `entries` (tag, type, count, field) and `data` after it.
    fn tiff(entries: &[(u16, u16, u32, u32)], data: &[u8]) -> Vec<u8> {
        let mut file = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        file.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, field) in entries {
            file.extend_from_slice(&tag.to_le_bytes());
            file.extend_from_slice(&kind.to_le_bytes());
            file.extend_from_slice(&count.to_le_bytes());
            file.extend_from_slice(&field.to_le_bytes());
        }
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(data);
        file
    }

    #[test]
    fn camera_and_location_tags_go_pixel_tags_stay_in_place() {
        // IFD at 8 with 6 entries ends at 8 + 2 + 72 + 4 = 86; data follows.
        let data_at = 86u32;
        let make = b"CameraMaker\0";
        let gps_ifd_at = data_at + make.len() as u32;
        let mut data = make.to_vec();
        // A GPS IFD with one entry (GPSLatitudeRef = 'N').
        data.extend_from_slice(&1u16.to_le_bytes());
        data.extend_from_slice(&[1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        data.extend_from_slice(&0u32.to_le_bytes());
        let file = tiff(
            &[
                (256, 3, 1, 4),
                (257, 3, 1, 3),
                (271, 2, make.len() as u32, data_at),
                (274, 3, 1, 6),
                (273, 4, 1, 200),
                (GPS_IFD, 4, 1, gps_ifd_at),
            ],
            &data,
        );
        let mut stripped = file.clone();
        let removed = strip(&mut stripped).unwrap();
        assert_eq!(stripped.len(), file.len());
        assert_eq!(removed.names(), ["gps", "exif"]);
        let expected = tiff(&[(256, 3, 1, 4), (257, 3, 1, 3), (274, 3, 1, 6), (273, 4, 1, 200)], &vec![0; data.len()]);
        // The IFD shrank by two entries; the rest of its old space is zeros.
        assert_eq!(&stripped[..8 + 2 + 48 + 4], &expected[..8 + 2 + 48 + 4]);
        assert!(stripped[8 + 2 + 48 + 4..].iter().all(|&b| b == 0));
        assert!(!stripped.windows(6).any(|w| w == b"Camera"));
    }

    #[test]
    fn broken_files_are_malformed() {
        for bad in [b"II\x2a\x00\xff\xff\x00\x00".to_vec(), b"II\x2b\x00\x08\x00\x00\x00".to_vec(), b"XX".to_vec()] {
            assert!(strip(&mut bad.clone()).is_err(), "{bad:?}");
        }
        // An IFD chain that loops ends.
        let mut looping = tiff(&[(256, 3, 1, 4)], &[]);
        let next_at = 8 + 2 + 12;
        looping[next_at..next_at + 4].copy_from_slice(&8u32.to_le_bytes());
        assert!(strip(&mut looping).is_ok());
    }
}
