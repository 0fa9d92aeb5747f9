use std::fmt;

use uuid::Uuid;

/// The name of a stored image: a uuid v7 (time-ordered, random, no MAC
/// address), always in its canonical lowercase hyphenated form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(Uuid);

impl ImageId {
    /// Length of the canonical text form.
    pub const LEN: usize = 36;

    /// Parses the canonical form only: 36 lowercase hex-and-hyphen characters
    /// of a version 7 uuid. Anything else (uppercase, braces, urn:, other
    /// versions, path tricks) is not an id.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != Self::LEN {
            return None;
        }
        let uuid = Uuid::try_parse(text).ok()?;
        let id = Self::from_uuid(uuid)?;
        (id.to_string() == text).then_some(id)
    }

    /// Wraps a uuid, if it is a version 7 one.
    fn from_uuid(uuid: Uuid) -> Option<Self> {
        (uuid.get_version_num() == 7).then_some(Self(uuid))
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Makes the ids of new uploads. Injectable so tests can know the name in advance.
pub trait IdGenerator: Send + Sync + 'static {
    fn generate(&self) -> ImageId;
}

/// The production generator: a fresh uuid v7 per upload.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Generator;

impl IdGenerator for UuidV7Generator {
    fn generate(&self) -> ImageId {
        ImageId(Uuid::now_v7())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_through_parse() {
        let id = UuidV7Generator.generate();
        assert_eq!(ImageId::parse(&id.to_string()), Some(id));
    }

    #[test]
    fn generated_ids_are_time_ordered() {
        let a = UuidV7Generator.generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = UuidV7Generator.generate();
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn only_the_canonical_v7_form_is_an_id() {
        let good = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert!(ImageId::parse(good).is_some());
        for bad in [
            "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",   // uppercase
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",       // simple form
            "{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}", // braced
            "urn:uuid:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "0190a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b", // version 4
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b0",
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "",
        ] {
            assert_eq!(ImageId::parse(bad), None, "{bad:?} must not parse");
        }
    }
}
