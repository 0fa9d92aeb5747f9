//! Cuts an upload stream into multipart parts of exactly `part_size` bytes.
//!
//! Each part is one allocation: a buffer grows naturally while the upload is
//! small (most uploads are), and once it passes [`SMALL`] it is given the
//! whole part's capacity at once, so it never doubles past the part size nor
//! copies itself while growing. A full part leaves as `Bytes` without a copy.

use bytes::{Bytes, BytesMut};

/// Below this, a buffer grows as bytes arrive; above it, it takes a whole part.
pub const SMALL: usize = 1024 * 1024;

pub struct PartBuffer {
    part_size: usize,
    buffer: BytesMut,
}

impl PartBuffer {
    pub fn new(part_size: usize) -> Self {
        Self { part_size, buffer: BytesMut::new() }
    }

    /// Adds `chunk`; returns the part it completed, if any, and what is left
    /// of the chunk (to push again) when it completed one.
    pub fn push(&mut self, mut chunk: Bytes) -> (Option<Bytes>, Bytes) {
        let room = self.part_size - self.buffer.len();
        let take = room.min(chunk.len());
        let needed = self.buffer.len() + take;
        if needed > self.buffer.capacity() && needed > SMALL {
            // Straight to the full part size: one allocation for the rest of the part.
            self.buffer.reserve(self.part_size - self.buffer.len());
        }
        self.buffer.extend_from_slice(&chunk.split_to(take));
        if self.buffer.len() == self.part_size {
            (Some(std::mem::take(&mut self.buffer).freeze()), chunk)
        } else {
            (None, chunk)
        }
    }

    /// The bytes of the last, partial part (possibly empty).
    pub fn finish(self) -> Bytes {
        self.buffer.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(part_size: usize, chunks: &[usize]) -> (Vec<Bytes>, Bytes) {
        let mut parts = Vec::new();
        let mut buffer = PartBuffer::new(part_size);
        let mut n = 0u8;
        for &len in chunks {
            let mut chunk = Bytes::from(vec![n; len]);
            n = n.wrapping_add(1);
            while !chunk.is_empty() {
                let (part, rest) = buffer.push(chunk);
                parts.extend(part);
                chunk = rest;
            }
        }
        (parts, buffer.finish())
    }

    #[test]
    fn parts_are_exactly_the_part_size_and_keep_every_byte_in_order() {
        let chunks = [65_536, 1, 3_000_000, 65_535, 7, 9_000_000, 12];
        let (parts, last) = feed(5 * 1024 * 1024, &chunks);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() == 5 * 1024 * 1024));
        let total: usize = chunks.iter().sum();
        assert_eq!(last.len(), total - 2 * 5 * 1024 * 1024);

        let mut expected = Vec::new();
        for (n, &len) in chunks.iter().enumerate() {
            expected.extend(std::iter::repeat_n(n as u8, len));
        }
        let joined: Vec<u8> = parts.iter().chain(std::iter::once(&last)).flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, expected);
    }

    #[test]
    fn a_small_upload_allocates_for_its_size_only() {
        let mut buffer = PartBuffer::new(8 * 1024 * 1024);
        let (part, rest) = buffer.push(Bytes::from(vec![1; 4096]));
        assert!(part.is_none() && rest.is_empty());
        assert!(buffer.buffer.capacity() < 64 * 1024, "{}", buffer.buffer.capacity());
        assert_eq!(buffer.finish().len(), 4096);
    }

    #[test]
    fn a_large_part_is_allocated_once_at_exactly_the_part_size() {
        let part_size = 8 * 1024 * 1024;
        let mut buffer = PartBuffer::new(part_size);
        let mut capacities = Vec::new();
        for _ in 0..(part_size / 65_536 - 1) {
            let (part, _) = buffer.push(Bytes::from(vec![0; 65_536]));
            assert!(part.is_none());
            capacities.push(buffer.buffer.capacity());
        }
        let largest = *capacities.iter().max().unwrap();
        assert_eq!(largest, part_size, "never more than one part's worth");
        let above_small: std::collections::BTreeSet<_> = capacities.iter().filter(|&&c| c > SMALL).collect();
        assert_eq!(above_small.len(), 1, "one allocation once past SMALL: {above_small:?}");
    }
}
