//! EXIF blocks (a TIFF structure): what one says, read with `kamadak-exif`,
//! and the smallest one that keeps only an Orientation.

use super::Kind;

/// What an EXIF block held that matters here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The Orientation of the primary image, 1 to 8.
    pub orientation: Option<u16>,
    pub little_endian: bool,
    pub has_gps: bool,
    /// The block held nothing but the Orientation: keeping that removes nothing.
    pub only_orientation: bool,
}

/// Reads a TIFF-structured EXIF block. Unreadable blocks have no facts (and
/// are dropped whole all the same).
pub fn read(tiff: &[u8]) -> Facts {
    let Ok(exif) = ::exif::Reader::new().read_raw(tiff.to_vec()) else {
        return Facts { little_endian: tiff.starts_with(b"II"), ..Facts::default() };
    };
    let orientation = exif
        .get_field(::exif::Tag::Orientation, ::exif::In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|value| u16::try_from(value).ok())
        .filter(|value| (1..=8).contains(value));
    let has_gps = exif
        .fields()
        .any(|field| field.tag == ::exif::Tag::GPSInfoIFDPointer || field.tag.context() == ::exif::Context::Gps);
    // Nothing but the Orientation, and no bytes besides (what hides there goes too).
    let only_orientation =
        exif.fields().all(|field| field.tag == ::exif::Tag::Orientation) && tiff.len() <= ORIENTATION_ONLY_LEN;
    Facts { orientation, little_endian: exif.little_endian(), has_gps, only_orientation }
}

/// The kinds an EXIF block with these facts adds to a report.
pub fn kinds(facts: &Facts) -> impl Iterator<Item = Kind> {
    [(!facts.only_orientation).then_some(Kind::Exif), facts.has_gps.then_some(Kind::Gps)].into_iter().flatten()
}

const ORIENTATION_ONLY_LEN: usize = 26;

/// A TIFF structure with one IFD holding one entry, Orientation, in the
/// given byte order: 26 bytes.
pub fn orientation_only(orientation: u16, little_endian: bool) -> Vec<u8> {
    let u16_bytes = |v: u16| if little_endian { v.to_le_bytes() } else { v.to_be_bytes() };
    let u32_bytes = |v: u32| if little_endian { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut tiff = Vec::with_capacity(ORIENTATION_ONLY_LEN);
    tiff.extend_from_slice(if little_endian { b"II" } else { b"MM" });
    tiff.extend_from_slice(&u16_bytes(42));
    tiff.extend_from_slice(&u32_bytes(8)); // IFD0 right after the header
    tiff.extend_from_slice(&u16_bytes(1)); // one entry
    tiff.extend_from_slice(&u16_bytes(0x0112)); // Orientation
    tiff.extend_from_slice(&u16_bytes(3)); // SHORT
    tiff.extend_from_slice(&u32_bytes(1)); // one value
    tiff.extend_from_slice(&u16_bytes(orientation));
    tiff.extend_from_slice(&[0, 0]); // the value field's padding
    tiff.extend_from_slice(&u32_bytes(0)); // no next IFD
    tiff
}

/// An EXIF block with nothing in it (an IFD0 without entries): 14 bytes.
pub fn empty(little_endian: bool) -> Vec<u8> {
    let mut tiff = orientation_only(1, little_endian);
    tiff.truncate(8);
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    tiff
}

/// What replaces an EXIF block: the Orientation alone, or nothing at all.
pub fn replacement(facts: &Facts) -> Option<Vec<u8>> {
    facts.orientation.map(|orientation| orientation_only(orientation, facts.little_endian))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orientation_survives_the_trip_in_both_byte_orders() {
        for little_endian in [true, false] {
            let tiff = orientation_only(6, little_endian);
            assert_eq!(tiff.len(), 26);
            let facts = read(&tiff);
            assert_eq!(facts, Facts { orientation: Some(6), little_endian, has_gps: false, only_orientation: true });
            assert_eq!(kinds(&facts).count(), 0, "keeping the Orientation removes nothing");
        }
    }

    #[test]
    fn an_empty_block_is_readable_and_says_nothing() {
        for little_endian in [true, false] {
            let facts = read(&empty(little_endian));
            assert_eq!(facts.orientation, None);
            assert!(!facts.has_gps);
        }
    }

    #[test]
    fn garbage_has_no_facts() {
        assert_eq!(read(b"not a tiff at all").orientation, None);
        assert_eq!(read(&[]).orientation, None);
    }
}
