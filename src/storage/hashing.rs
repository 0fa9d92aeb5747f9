use sha2::{Digest, Sha256};

/// SHA-256 and length of a byte stream, computed as it passes through.
#[derive(Default)]
pub struct HashingCounter {
    hasher: Sha256,
    len: u64,
}

impl HashingCounter {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Lowercase hex SHA-256 and the byte count.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_known_digest_of_abc_fed_in_pieces() {
        let mut h = HashingCounter::default();
        h.update(b"a");
        h.update(b"bc");
        let (sha, len) = h.finish();
        assert_eq!(len, 3);
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
