//! [`NoisyPng`] is a real, decodable PNG of noisy RGB pixels, encoded once with
//! the `png` crate without compression, so its size is predictable and nothing
//! downstream (nginx, Garage's zstd) can compress it away. Its `pHYs` chunk
//! (pixel density, which picshelf keeps when it strips metadata) carries a
//! stamp that [`NoisyPng::write_stamped`] rewrites per upload (and the chunk's
//! CRC with it): every upload is a different file of the same size (Garage
//! deduplicates identical blocks, which would flatter it), for the price of
//! one copy. The stamp is the same for both axes, so pixels stay square.

use crate::{PNG_SIGNATURE as SIGNATURE, XorShift};

/// A noisy RGB PNG with a rewritable stamp.
#[derive(Clone)]
pub struct NoisyPng {
    bytes: Vec<u8>,
    /// Offset of the `pHYs` chunk's type (its CRC covers type and data).
    phys_chunk_at: usize,
    pub width: u32,
    pub height: u32,
}

impl NoisyPng {
    /// A `width` x `height` 8-bit RGB image of pseudo-random pixels from `seed`.
    /// 400 x 300 is 360,439 bytes.
    pub fn new(width: u32, height: u32, seed: u64) -> Self {
        assert!(width > 0 && height > 0, "an image has at least one pixel");
        let mut pixels = vec![0u8; 3 * width as usize * height as usize];
        XorShift::new(seed).fill(&mut pixels);

        let mut bytes = Vec::with_capacity(pixels.len() + pixels.len() / 1000 + 1024);
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::NoCompression);
        encoder.set_filter(png::Filter::NoFilter);
        encoder.set_pixel_dims(Some(png::PixelDimensions { xppu: 1, yppu: 1, unit: png::Unit::Unspecified }));
        let mut writer = encoder.write_header().expect("writing to memory");
        writer.write_image_data(&pixels).expect("the right number of bytes");
        writer.finish().expect("writing to memory");

        let mut at = SIGNATURE.len();
        let phys_chunk_at = loop {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            if &bytes[at + 4..at + 8] == b"pHYs" {
                break at + 4;
            }
            at += 12 + len;
            assert!(at < bytes.len(), "the encoder wrote no pHYs chunk");
        };
        Self { bytes, phys_chunk_at, width, height }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes this image with `stamp` into `out` (appended): same size, different bytes.
    pub fn write_stamped(&self, stamp: u64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let file = &mut out[start..];
        let density = Self::density(stamp).to_be_bytes();
        let data = self.phys_chunk_at + 4;
        file[data..data + 4].copy_from_slice(&density);
        file[data + 4..data + 8].copy_from_slice(&density);
        let crc = crc32fast::hash(&file[self.phys_chunk_at..data + 9]);
        file[data + 9..data + 13].copy_from_slice(&crc.to_be_bytes());
    }

    /// The pixels per unit a stamp becomes: never 0 (a decoder may refuse it),
    /// 2^32 - 1 distinct values.
    fn density(stamp: u64) -> u32 {
        (stamp % u64::from(u32::MAX)) as u32 + 1
    }

    /// This image with `stamp`.
    pub fn stamped(&self, stamp: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_stamped(stamp, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_raw_sized() {
        let png = NoisyPng::new(400, 300, 7);
        let raw = 300 * (1 + 1200);
        // Stored deflate blocks: a few bytes of framing per 64 KiB and per chunk.
        assert!(png.len() > raw && png.len() < raw + 1024, "{} bytes", png.len());
        assert!(png.as_bytes().starts_with(SIGNATURE));
        assert_eq!(&png.as_bytes()[12..16], b"IHDR");
    }

    #[test]
    fn stamps_change_bytes_not_size_and_keep_crcs_valid() {
        let png = NoisyPng::new(16, 8, 1);
        let a = png.stamped(1);
        let b = png.stamped(u64::MAX);
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        for file in [&a, &b] {
            // Walk the chunks and check every CRC.
            let mut at = 8;
            while at < file.len() {
                let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
                let crc = u32::from_be_bytes(file[at + 8 + len..at + 12 + len].try_into().unwrap());
                assert_eq!(crc32fast::hash(&file[at + 4..at + 8 + len]), crc);
                at += 12 + len;
            }
            assert_eq!(at, file.len());
        }
    }

    #[test]
    fn a_real_decoder_reads_the_image_back() {
        let png = NoisyPng::new(37, 21, 3);
        let file = png.stamped(0xdead_beef);
        let decoder = png::Decoder::new(std::io::Cursor::new(file));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (37, 21));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.buffer_size(), 37 * 21 * 3);
        // The noise is there, not zeros.
        assert!(pixels[..info.buffer_size()].iter().filter(|&&b| b != 0).count() > 37 * 21 * 2);
        let density = reader.info().pixel_dims.map(|d| (d.xppu, d.yppu));
        assert_eq!(density, Some((0xdead_bef0, 0xdead_bef0)));
    }
}
