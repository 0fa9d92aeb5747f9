//! PNGs of any length: a header declaring the dimensions, one `IDAT` chunk
//! of noise, `IEND`, every CRC right. picshelf reads headers and chunk
//! framing, never pixels, so this is all a large upload needs to be.

use crate::{PNG_SIGNATURE, XorShift};

/// Signature and `IHDR` only.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit truecolour, deflate, no filter, no interlace
    let mut file = PNG_SIGNATURE.to_vec();
    file.extend_from_slice(&chunk(b"IHDR", &ihdr));
    file
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// A PNG of exactly `len` bytes that can be produced in pieces.
#[derive(Clone, Debug)]
pub struct BigPng {
    pub len: usize,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

impl BigPng {
    /// Signature, `IHDR`, an empty `IDAT`'s framing and `IEND`.
    pub const MIN_LEN: usize = 8 + 25 + 12 + 12;

    pub fn new(len: usize, width: u32, height: u32, seed: u64) -> Self {
        assert!(len >= Self::MIN_LEN, "a framed PNG has at least {} bytes", Self::MIN_LEN);
        assert!(len - Self::MIN_LEN <= u32::MAX as usize >> 1, "one IDAT chunk holds at most 2^31 - 1 bytes");
        Self { len, width, height, seed }
    }

    /// The file in pieces of at most `piece` bytes of noise each (plus framing).
    pub fn pieces(&self, piece: usize) -> impl Iterator<Item = Vec<u8>> + use<> {
        let data_len = self.len - Self::MIN_LEN;
        let mut head = png_header(self.width, self.height);
        head.extend_from_slice(&(data_len as u32).to_be_bytes());
        head.extend_from_slice(b"IDAT");
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"IDAT");
        let mut noise = XorShift::new(self.seed);
        let mut left = data_len;
        let mut done = false;
        std::iter::once(head).chain(std::iter::from_fn(move || {
            if done {
                return None;
            }
            if left > 0 {
                let mut data = vec![0; left.min(piece.max(1))];
                noise.fill(&mut data);
                crc.update(&data);
                left -= data.len();
                return Some(data);
            }
            done = true;
            let mut tail = crc.clone().finalize().to_be_bytes().to_vec();
            tail.extend_from_slice(&chunk(b"IEND", &[]));
            Some(tail)
        }))
    }
}

/// A PNG of exactly `len` bytes declaring `width` × `height`, with noise for data.
pub fn big_png(len: usize, width: u32, height: u32, seed: u64) -> Vec<u8> {
    BigPng::new(len, width, height, seed).pieces(1 << 20).flatten().collect()
}

/// Where a [`big_png`]'s `IDAT` data starts: signature, `IHDR`, the `IDAT` length and type.
const DATA_AT: usize = 8 + 25 + 8;

/// Makes a [`big_png`] different from its copies in every 4 KiB of its data
/// (so that a store cannot deduplicate blocks across uploads), keeping its
/// framing valid: the `IDAT` CRC is computed again.
pub fn stamp_big_png(file: &mut [u8], stamp: u64) {
    let data_end = file.len() - 12 - 4;
    let mut at = DATA_AT + 16;
    while at + 8 <= data_end {
        file[at..at + 8].copy_from_slice(&stamp.to_le_bytes());
        at += 4096;
    }
    let crc = crc32fast::hash(&file[DATA_AT - 4..data_end]);
    file[data_end..data_end + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the chunks, checking each CRC; their types in order.
    fn chunk_types(file: &[u8]) -> Vec<String> {
        assert!(file.starts_with(PNG_SIGNATURE));
        let mut at = 8;
        let mut types = Vec::new();
        while at < file.len() {
            let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            let crc = u32::from_be_bytes(file[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32fast::hash(&file[at + 4..at + 8 + len]), crc);
            types.push(String::from_utf8_lossy(&file[at + 4..at + 8]).into_owned());
            at += 12 + len;
        }
        assert_eq!(at, file.len());
        types
    }

    #[test]
    fn a_big_png_has_its_exact_length_and_valid_framing() {
        for len in [BigPng::MIN_LEN, 100, 3 * 1024 * 1024 + 7] {
            let file = big_png(len, 4000, 3000, 9);
            assert_eq!(file.len(), len);
            assert_eq!(chunk_types(&file), ["IHDR", "IDAT", "IEND"]);
        }
    }

    #[test]
    fn stamped_copies_differ_and_stay_valid() {
        let original = big_png(64 * 1024, 64, 64, 5);
        let (mut a, mut b) = (original.clone(), original.clone());
        stamp_big_png(&mut a, 1);
        stamp_big_png(&mut b, 2);
        assert_ne!(a, b);
        for file in [&a, &b] {
            assert_eq!(file.len(), original.len());
            assert_eq!(chunk_types(file), ["IHDR", "IDAT", "IEND"]);
        }
    }

    #[test]
    fn pieces_add_up_to_the_whole_file() {
        let png = BigPng::new(1_000_000, 10, 10, 3);
        let pieces: Vec<Vec<u8>> = png.pieces(4096).collect();
        assert!(pieces.len() > 200);
        let (a, b) = (pieces.concat(), big_png(1_000_000, 10, 10, 3));
        assert_eq!(a.len(), b.len());
        assert_eq!(a.iter().zip(&b).position(|(x, y)| x != y), None);
    }

    #[test]
    fn the_header_declares_the_dimensions() {
        let header = png_header(640, 480);
        assert_eq!(header.len(), 33);
        assert_eq!(&header[16..24], &[0, 0, 2, 128, 0, 0, 1, 224]);
    }
}
