//! Test images, generated (never downloaded): real encodings from the
//! `image` crate, a hand-built AVIF header, and large "images" made of a
//! valid PNG header followed by pseudo-random bytes.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};

fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, ((x + y) * 3) as u8]))
}

pub fn encode(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture(width, height)).write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(ImageFormat::Png, width, height)
}

fn iso_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
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

/// Deterministic pseudo-random bytes (xorshift), fast enough for hundreds of MiB.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A PNG header declaring `width` x `height`, padded with noise to `len` bytes.
pub fn big_png(len: usize, width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut file = png_header(width, height);
    assert!(len >= file.len());
    file.extend_from_slice(&noise(len - file.len(), seed));
    file
}

/// Signature and IHDR chunk only.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut crc_input = b"IHDR".to_vec();
    crc_input.extend_from_slice(&ihdr);
    let mut file = b"\x89PNG\r\n\x1a\n".to_vec();
    file.extend_from_slice(&13u32.to_be_bytes());
    file.extend_from_slice(&crc_input);
    file.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
    file
}
