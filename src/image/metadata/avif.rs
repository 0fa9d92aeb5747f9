//! AVIF (HEIF): boxes, with metadata as items (`Exif`, and XMP as a `mime`
//! item of type `application/rdf+xml`) whose bytes `iloc` places in `mdat`
//! or `idat`. Stripped in memory, in place: an EXIF item is rewritten to
//! hold the Orientation alone (or nothing), zero-padded to its length; an
//! XMP item is blanked with spaces. Boxes, offsets, the image and its
//! properties (`colr` with the ICC profile, `irot`, `imir`) do not change.

use super::exif;
use super::xmp::contains_gps;
use super::{Kind, Malformed, Removed};
use crate::image::ImageFormat;

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed::new(ImageFormat::Avif, reason)
}

/// A box: its type, and where its payload lies in the file.
#[derive(Clone, Copy, Debug)]
struct BoxAt {
    kind: [u8; 4],
    payload: usize,
    end: usize,
}

/// The boxes in `file[start..end]`.
fn boxes(file: &[u8], start: usize, end: usize) -> Result<Vec<BoxAt>, Malformed> {
    let mut found = Vec::new();
    let mut at = start;
    while at < end {
        let header = file.get(at..at + 8).ok_or_else(|| malformed("a box header runs past its parent"))?;
        let size = u32::from_be_bytes(header[..4].try_into().expect("4")) as u64;
        let kind: [u8; 4] = header[4..8].try_into().expect("4");
        let (size, header_len) = match size {
            0 => ((end - at) as u64, 8),
            1 => {
                let large =
                    file.get(at + 8..at + 16).ok_or_else(|| malformed("a box's 64-bit size runs past its parent"))?;
                (u64::from_be_bytes(large.try_into().expect("8")), 16)
            }
            size => (size, 8),
        };
        let box_end = (at as u64).checked_add(size).filter(|&e| e <= end as u64 && size >= header_len as u64);
        let box_end = box_end
            .ok_or_else(|| malformed(format!("box {} claims {size} bytes", String::from_utf8_lossy(&kind))))?
            as usize;
        found.push(BoxAt { kind, payload: at + header_len, end: box_end });
        at = box_end;
    }
    Ok(found)
}

/// A big-endian reader over a box's payload.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or_else(|| malformed("a box ends too soon"))?;
        self.at += n;
        Ok(slice)
    }

    /// An unsigned integer of `n` bytes (0, 2, 4 or 8).
    fn uint(&mut self, n: usize) -> Result<u64, Malformed> {
        Ok(self.take(n)?.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.bytes[self.at.min(self.bytes.len())..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| malformed("a string without its NUL"))?;
        let s = self.take(len)?;
        self.at += 1;
        Ok(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metadata {
    Exif,
    Xmp,
}

/// The metadata items `iinf` lists: item id and what it is.
fn metadata_items(file: &[u8], iinf: BoxAt) -> Result<Vec<(u32, Metadata)>, Malformed> {
    let mut reader = Reader { bytes: &file[..iinf.end], at: iinf.payload };
    let version = reader.uint(1)?;
    reader.take(3)?;
    let _count = reader.uint(if version == 0 { 2 } else { 4 })?;
    let mut items = Vec::new();
    for infe in boxes(file, reader.at, iinf.end)? {
        if &infe.kind != b"infe" {
            continue;
        }
        let mut reader = Reader { bytes: &file[..infe.end], at: infe.payload };
        let version = reader.uint(1)?;
        reader.take(3)?;
        if version < 2 {
            continue;
        }
        let id = reader.uint(if version == 2 { 2 } else { 4 })? as u32;
        reader.take(2)?; // protection index
        let item_type = reader.take(4)?.to_vec();
        reader.string()?; // name
        match &item_type[..] {
            b"Exif" => items.push((id, Metadata::Exif)),
            b"mime" if reader.string()? == b"application/rdf+xml" => items.push((id, Metadata::Xmp)),
            _ => {}
        }
    }
    Ok(items)
}

/// An item's id and the absolute ranges of the file its bytes lie in.
type ItemExtents = (u32, Vec<std::ops::Range<usize>>);

/// Where `iloc` puts each item's bytes.
fn locations(file: &[u8], iloc: BoxAt, idat: Option<BoxAt>) -> Result<Vec<ItemExtents>, Malformed> {
    let mut reader = Reader { bytes: &file[..iloc.end], at: iloc.payload };
    let version = reader.uint(1)?;
    reader.take(3)?;
    let sizes = reader.uint(1)?;
    let (offset_size, length_size) = ((sizes >> 4) as usize, (sizes & 15) as usize);
    let sizes = reader.uint(1)?;
    let base_offset_size = (sizes >> 4) as usize;
    let index_size = if version >= 1 { (sizes & 15) as usize } else { 0 };
    for size in [offset_size, length_size, base_offset_size, index_size] {
        if ![0, 4, 8].contains(&size) {
            return Err(malformed(format!("iloc field size {size}")));
        }
    }
    let count = reader.uint(if version < 2 { 2 } else { 4 })?;
    let mut items = Vec::new();
    for _ in 0..count {
        let id = reader.uint(if version < 2 { 2 } else { 4 })? as u32;
        let method = if version >= 1 { reader.uint(2)? & 15 } else { 0 };
        reader.take(2)?; // data reference index
        let base = reader.uint(base_offset_size)?;
        let extents = reader.uint(2)?;
        let mut ranges = Vec::new();
        for _ in 0..extents {
            reader.uint(index_size)?;
            let offset = reader.uint(offset_size)?;
            let length = reader.uint(length_size)?;
            let origin = match method {
                0 => 0,
                1 => idat.ok_or_else(|| malformed("an item in idat without an idat box"))?.payload as u64,
                _ => continue,
            };
            let start = origin.checked_add(base).and_then(|s| s.checked_add(offset));
            let end = start.and_then(|s| s.checked_add(length));
            match (start, end) {
                (Some(start), Some(end)) if end <= file.len() as u64 && length > 0 => {
                    ranges.push(start as usize..end as usize)
                }
                _ => return Err(malformed(format!("item {id} lies outside the file"))),
            }
        }
        items.push((id, ranges));
    }
    Ok(items)
}

/// Strips a whole AVIF file in place.
pub fn strip(file: &mut [u8]) -> Result<Removed, Malformed> {
    let top = boxes(file, 0, file.len())?;
    if top.first().is_none_or(|b| &b.kind != b"ftyp") {
        return Err(malformed("it does not start with an ftyp box"));
    }
    let mut removed = Removed::default();
    let Some(meta) = top.iter().find(|b| &b.kind == b"meta").copied() else { return Ok(removed) };
    // `meta` is a full box: version and flags before its children.
    let children = boxes(file, meta.payload + 4, meta.end)?;
    let find = |kind: &[u8; 4]| children.iter().find(|b| &b.kind == kind).copied();
    let (Some(iinf), Some(iloc)) = (find(b"iinf"), find(b"iloc")) else { return Ok(removed) };
    let metadata = metadata_items(file, iinf)?;
    if metadata.is_empty() {
        return Ok(removed);
    }
    let locations = locations(file, iloc, find(b"idat"))?;
    for (id, what) in metadata {
        let Some((_, ranges)) = locations.iter().find(|(item, _)| *item == id) else { continue };
        match what {
            Metadata::Xmp => {
                removed.add(Kind::Xmp);
                for range in ranges {
                    if contains_gps(&file[range.clone()]) {
                        removed.add(Kind::Gps);
                    }
                    file[range.clone()].fill(b' ');
                }
            }
            Metadata::Exif => {
                removed.add(Kind::Exif);
                let item: Vec<u8> = ranges.iter().flat_map(|r| file[r.clone()].iter().copied()).collect();
                // An EXIF item: a 4-byte offset to the TIFF header, then the block.
                let tiff_at = item.get(..4).map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4")) as usize);
                let facts = item.get(4 + tiff_at..).map(exif::read).unwrap_or_default();
                for kind in exif::kinds(&facts) {
                    removed.add(kind);
                }
                let tiff = exif::replacement(&facts).unwrap_or_else(|| exif::empty(facts.little_endian));
                let mut replacement = vec![0, 0, 0, 0];
                replacement.extend_from_slice(&tiff);
                replacement.resize(item.len(), 0);
                if replacement.len() > item.len() {
                    replacement.clear();
                    replacement.resize(item.len(), 0);
                }
                let mut written = 0;
                for range in ranges {
                    let n = range.len();
                    file[range.clone()].copy_from_slice(&replacement[written..written + n]);
                    written += n;
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_box(kind: &[u8; 4], version: u8, payload: &[u8]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        body.extend_from_slice(payload);
        plain_box(kind, &body)
    }

    fn plain_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn infe(id: u16, item_type: &[u8; 4], extra: &[u8]) -> Vec<u8> {
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(item_type);
        payload.push(0); // empty name
        payload.extend_from_slice(extra);
        full_box(b"infe", 2, &payload)
    }

    /// ftyp, meta (iinf, iloc), mdat with the image, an EXIF item and an XMP item.
    fn avif(exif_item: &[u8], xmp_item: &[u8]) -> (Vec<u8>, usize) {
        let image = b"av1-bitstream";
        let ftyp = plain_box(b"ftyp", b"avif\0\0\0\0avifmif1");
        let iinf = full_box(
            b"iinf",
            0,
            &[&2u16.to_be_bytes()[..], &infe(2, b"Exif", b""), &infe(3, b"mime", b"application/rdf+xml\0")].concat(),
        );
        // iloc v0: offset 4 bytes, length 4 bytes, no base offset; offsets patched below.
        let iloc_len = 8 + 4 + 2 + 2 + 3 * (2 + 2 + 2 + 8);
        let meta_len = 8 + 4 + iinf.len() + iloc_len;
        let mdat_data_at = ftyp.len() + meta_len + 8;
        let (image_at, exif_at) = (mdat_data_at, mdat_data_at + image.len());
        let xmp_at = exif_at + exif_item.len();
        let mut iloc_payload = vec![0x44, 0x00];
        iloc_payload.extend_from_slice(&3u16.to_be_bytes());
        for (id, at, len) in [(1u16, image_at, image.len()), (2, exif_at, exif_item.len()), (3, xmp_at, xmp_item.len())]
        {
            iloc_payload.extend_from_slice(&id.to_be_bytes());
            iloc_payload.extend_from_slice(&[0, 0, 0, 1]);
            iloc_payload.extend_from_slice(&(at as u32).to_be_bytes());
            iloc_payload.extend_from_slice(&(len as u32).to_be_bytes());
        }
        let iloc = full_box(b"iloc", 0, &iloc_payload);
        assert_eq!(iloc.len(), iloc_len);
        let meta = full_box(b"meta", 0, &[iinf, iloc].concat());
        let mdat = plain_box(b"mdat", &[&image[..], exif_item, xmp_item].concat());
        let file = [ftyp, meta, mdat].concat();
        (file, exif_at)
    }

    #[test]
    fn exif_keeps_only_its_orientation_and_xmp_is_blanked() {
        let mut exif_item = vec![0, 0, 0, 0];
        exif_item.extend_from_slice(&exif::orientation_only(6, false));
        exif_item.extend_from_slice(b"Make: a camera, serial 123");
        let xmp = b"<x:xmpmeta exif:GPSLatitude=\"48\"/>";
        let (file, exif_at) = avif(&exif_item, xmp);
        let mut stripped = file.clone();
        let removed = strip(&mut stripped).unwrap();
        assert_eq!(stripped.len(), file.len());
        assert_eq!(removed.names(), ["gps", "exif", "xmp"]);
        let mut expected_exif = vec![0, 0, 0, 0];
        expected_exif.extend_from_slice(&exif::orientation_only(6, false));
        expected_exif.resize(exif_item.len(), 0);
        assert_eq!(&stripped[exif_at..exif_at + exif_item.len()], &expected_exif[..]);
        assert!(!stripped.windows(6).any(|w| w == b"camera" || w == b"xmpmet"));
        assert!(stripped.windows(13).any(|w| w == b"av1-bitstream"));
    }

    #[test]
    fn a_file_without_metadata_items_is_unchanged_and_broken_boxes_are_malformed() {
        let plain = [plain_box(b"ftyp", b"avif\0\0\0\0"), plain_box(b"mdat", b"x")].concat();
        let mut copy = plain.clone();
        assert!(strip(&mut copy).unwrap().is_empty());
        assert_eq!(copy, plain);
        let mut lying = plain.clone();
        lying[3] = 200;
        assert!(strip(&mut lying).is_err());
        assert!(strip(&mut b"\0\0\0\x08mdat".to_vec()).is_err());
    }
}
