//! Test images, generated (never downloaded), for the API tests, the e2e
//! suite and the load tools:
//!
//! - [`png`], [`png_seeded`], [`encode`]: real, decodable images from the
//!   `image` crate, in every format it writes; [`avif`]: an AVIF header;
//! - [`big_png`] and [`BigPng`]: a PNG of any length, framed chunk by chunk
//!   (signature, `IHDR`, `IDAT`s of noise, `IEND`, every CRC right), whole or
//!   streamed without holding it;
//! - [`BigWithMetadata`]: JPEGs and WebPs of any length carrying a camera's
//!   EXIF block (GPS, make, serial number, Orientation), streamed the same way;
//! - [`NoisyPng`]: a decodable PNG of incompressible pixels with a
//!   rewritable stamp, so every upload of a load run is a different file;
//! - [`XorShift`], [`noise`]: fast, seedable pseudo-random bytes.

use std::io::Cursor;

pub use image::ImageFormat;
use image::RgbImage;

mod big;
mod noisy;
mod with_metadata;

pub use big::{BigPng, big_png, png_header, stamp_big_png};
pub use noisy::NoisyPng;
pub use with_metadata::{BigWithMetadata, Container, SECRET_MAKE, SECRET_SERIAL, camera_exif};

/// The PNG file signature.
pub const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

fn picture(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8 ^ seed, (y * 13) as u8, ((x + y) * 3) as u8 ^ seed.rotate_left(3)])
    })
}

/// A `width` × `height` picture (a colour gradient) encoded as `format`.
pub fn encode(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    encode_seeded(format, width, height, 0)
}

fn encode_seeded(format: ImageFormat, width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture(width, height, seed)).write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

/// As [`encode`] for JPEG, with other colours for another `seed`: different bytes.
pub fn jpeg_seeded(width: u32, height: u32, seed: u8) -> Vec<u8> {
    encode_seeded(ImageFormat::Jpeg, width, height, seed)
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(ImageFormat::Png, width, height)
}

/// As [`png`], with other colours for another `seed`: different bytes, same size class.
pub fn png_seeded(width: u32, height: u32, seed: u8) -> Vec<u8> {
    encode_seeded(ImageFormat::Png, width, height, seed)
}

fn iso_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// A `width` × `height` JPEG whose top-left quarter is red and the rest
/// blue, with an EXIF block holding only `orientation`: after turning it
/// upright, where the red lands tells which way it was turned.
pub fn jpeg_oriented(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, y| {
        if x < width / 2 && y < height / 2 { image::Rgb([230, 20, 20]) } else { image::Rgb([20, 40, 230]) }
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture).write_to(&mut out, ImageFormat::Jpeg).expect("encode test image");
    let jpeg = out.into_inner();
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    [&jpeg[..2], &app1, &jpeg[2..]].concat()
}

/// A looping animated GIF of two `width` × `height` frames: red, then blue.
pub fn animated_gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        encoder.set_repeat(image::codecs::gif::Repeat::Infinite).expect("writing to memory");
        let frames = [[220, 20, 20, 255], [20, 20, 220, 255]]
            .map(|colour| image::Frame::new(image::RgbaImage::from_pixel(width, height, image::Rgba(colour))));
        encoder.encode_frames(frames).expect("writing to memory");
    }
    out
}

/// A `width` × `height` RGBA PNG: opaque green on the left half, fully
/// transparent on the right.
pub fn png_with_alpha(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbaImage::from_fn(width, height, |x, _| {
        if x < width / 2 { image::Rgba([30, 200, 60, 255]) } else { image::Rgba([0, 0, 0, 0]) }
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(picture).write_to(&mut out, ImageFormat::Png).expect("encode test image");
    out.into_inner()
}

/// An AVIF (HEIF with AV1) file as far as its header goes: `ftyp` with the
/// avif brand, and `meta/iprp/ipco/ispe` with the dimensions.
pub fn avif(width: u32, height: u32) -> Vec<u8> {
    let ftyp = iso_box(b"ftyp", b"avif\0\0\0\0avifmif1miaf");
    let mut ispe = vec![0, 0, 0, 0];
    ispe.extend_from_slice(&width.to_be_bytes());
    ispe.extend_from_slice(&height.to_be_bytes());
    let ipco = iso_box(b"ipco", &iso_box(b"ispe", &ispe));
    let iprp = iso_box(b"iprp", &ipco);
    let mut meta_payload = vec![0, 0, 0, 0];
    meta_payload.extend_from_slice(&iprp);
    let mut file = ftyp;
    file.extend_from_slice(&iso_box(b"meta", &meta_payload));
    file.extend_from_slice(&iso_box(b"mdat", &[0x12, 0x00, 0x0a, 0x0a]));
    file
}

/// xorshift64*: fast, seedable noise (not for cryptography).
#[derive(Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        // Only a partial word draws one more: filling in pieces of whole
        // words gives the same bytes as filling at once.
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let n = rest.len();
            rest.copy_from_slice(&self.next_u64().to_le_bytes()[..n]);
        }
    }
}

/// `len` pseudo-random bytes from `seed`: the same seed, the same bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    XorShift::new(seed).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oriented_jpeg_says_its_orientation() {
        let jpeg = jpeg_oriented(64, 48, 6);
        let exif = exif::Reader::new().read_from_container(&mut Cursor::new(&jpeg)).unwrap();
        let orientation = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY).unwrap();
        assert_eq!(orientation.value.get_uint(0), Some(6));
        assert_eq!(image::load_from_memory(&jpeg).unwrap().width(), 64);
    }

    #[test]
    fn every_encoding_decodes_to_its_size() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
        ] {
            let bytes = encode(format, 21, 11);
            let decoded = image::load_from_memory_with_format(&bytes, format).expect("decodes");
            assert_eq!((decoded.width(), decoded.height()), (21, 11), "{format:?}");
        }
        assert_ne!(png_seeded(8, 8, 1), png_seeded(8, 8, 2));
    }

    #[test]
    fn noise_is_seeded() {
        assert_eq!(noise(100, 7), noise(100, 7));
        assert_ne!(noise(100, 7), noise(100, 8));
    }
}
