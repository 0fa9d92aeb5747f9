//! [`BigWithMetadata`]: JPEGs and WebPs of any length carrying a camera's
//! EXIF block (GPS position, make and serial number, Orientation 6), and
//! GIFs carrying a comment that names the camera, produced in pieces
//! without holding the file: a head, noise, a tail. The noise is the image
//! data and passes metadata stripping untouched; JPEG puts its EXIF in the
//! head, WebP in the tail (as cameras and encoders do), GIF its comment
//! before the image.
//! picshelf reads headers and framing, never pixels, so this is all a large
//! upload needs to be.

use crate::XorShift;

/// What the EXIF block says that must not come back.
pub const SECRET_MAKE: &str = "SecretCam";
pub const SECRET_SERIAL: &str = "SN-0123456789";

/// A big-endian EXIF (TIFF) block: IFD0 with Make, Orientation 6, the
/// Exif IFD (BodySerialNumber) and the GPS IFD (a latitude).
pub fn camera_exif() -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&value);
    }
    const IFD0: u32 = 8;
    const IFD0_LEN: u32 = 2 + 4 * 12 + 4;
    const EXIF_IFD: u32 = IFD0 + IFD0_LEN;
    const EXIF_LEN: u32 = 2 + 12 + 4;
    const GPS_IFD: u32 = EXIF_IFD + EXIF_LEN;
    const GPS_LEN: u32 = 2 + 2 * 12 + 4;
    const DATA: u32 = GPS_IFD + GPS_LEN;
    let make = format!("{SECRET_MAKE}\0");
    let serial = format!("{SECRET_SERIAL}\0");
    let (make_at, serial_at, latitude_at) =
        (DATA, DATA + make.len() as u32, DATA + make.len() as u32 + serial.len() as u32);

    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend_from_slice(&IFD0.to_be_bytes());
    tiff.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut tiff, 0x010F, 2, make.len() as u32, make_at.to_be_bytes()); // Make
    entry(&mut tiff, 0x0112, 3, 1, [0, 6, 0, 0]); // Orientation
    entry(&mut tiff, 0x8769, 4, 1, EXIF_IFD.to_be_bytes()); // Exif IFD
    entry(&mut tiff, 0x8825, 4, 1, GPS_IFD.to_be_bytes()); // GPS IFD
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut tiff, 0xA431, 2, serial.len() as u32, serial_at.to_be_bytes()); // BodySerialNumber
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut tiff, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef
    entry(&mut tiff, 0x0002, 5, 3, latitude_at.to_be_bytes()); // GPSLatitude
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len() as u32, DATA);
    tiff.extend_from_slice(make.as_bytes());
    tiff.extend_from_slice(serial.as_bytes());
    for (numerator, denominator) in [(48u32, 1u32), (51, 1), (2949, 100)] {
        tiff.extend_from_slice(&numerator.to_be_bytes());
        tiff.extend_from_slice(&denominator.to_be_bytes());
    }
    tiff
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Jpeg,
    WebP,
    Gif,
}

/// GIF image data comes in sub-blocks: a size byte (255) and 255 bytes.
const GIF_BLOCK: usize = 256;

/// A GIF comment extension holding `text` padded with spaces to `len` bytes.
fn gif_comment(text: &str, len: usize) -> Vec<u8> {
    let mut data = text.as_bytes().to_vec();
    data.resize(len, b' ');
    let mut bytes = vec![0x21, 0xFE];
    for block in data.chunks(255) {
        bytes.push(block.len() as u8);
        bytes.extend_from_slice(block);
    }
    bytes.push(0);
    bytes
}

/// A file of exactly `len` bytes: `head`, noise, `tail`.
#[derive(Clone, Debug)]
pub struct BigWithMetadata {
    pub container: Container,
    pub len: usize,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xFF, marker];
    bytes.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut bytes = kind.to_vec();
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(data);
    if !data.len().is_multiple_of(2) {
        bytes.push(0);
    }
    bytes
}

impl BigWithMetadata {
    pub fn new(container: Container, len: usize, width: u32, height: u32, seed: u64) -> Self {
        let file = Self { container, len, width, height, seed };
        let framing = file.head().len() + file.tail().len();
        assert!(len >= framing + 2 && len - framing <= u32::MAX as usize / 2, "{len} bytes cannot be framed");
        file
    }

    /// Everything before the image data.
    pub fn head(&self) -> Vec<u8> {
        match self.container {
            Container::Jpeg => {
                let (w, h) = (self.width as u16, self.height as u16);
                let mut head = vec![0xFF, 0xD8];
                head.extend(jpeg_segment(0xE1, &[b"Exif\0\0".as_slice(), &camera_exif()].concat()));
                head.extend(jpeg_segment(0xDB, &[0; 65])); // one quantisation table
                let mut frame = vec![8];
                frame.extend_from_slice(&h.to_be_bytes());
                frame.extend_from_slice(&w.to_be_bytes());
                frame.extend_from_slice(&[1, 1, 0x11, 0]);
                head.extend(jpeg_segment(0xC0, &frame));
                head.extend(jpeg_segment(0xDA, &[1, 1, 0, 0, 63, 0]));
                head
            }
            Container::Gif => {
                let (w, h) = ((self.width as u16).to_le_bytes(), (self.height as u16).to_le_bytes());
                let mut head = b"GIF89a".to_vec();
                head.extend_from_slice(&[w[0], w[1], h[0], h[1], 0x00, 0, 0]); // no global colour table
                head.extend(gif_comment(&self.gif_secret(), self.gif_comment_len()));
                head.extend_from_slice(&[0x2C, 0, 0, 0, 0, w[0], w[1], h[0], h[1], 0x00]);
                head.push(8); // LZW minimum code size
                head
            }
            Container::WebP => {
                let mut head = b"RIFF".to_vec();
                head.extend_from_slice(&((self.len - 8) as u32).to_le_bytes());
                head.extend_from_slice(b"WEBP");
                let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF
                vp8x.extend_from_slice(&(self.width - 1).to_le_bytes()[..3]);
                vp8x.extend_from_slice(&(self.height - 1).to_le_bytes()[..3]);
                head.extend(riff_chunk(b"VP8X", &vp8x));
                head.extend_from_slice(b"VP8 ");
                head.extend_from_slice(&(self.noise_len() as u32).to_le_bytes());
                head
            }
        }
    }

    /// Everything after the image data.
    pub fn tail(&self) -> Vec<u8> {
        match self.container {
            Container::Jpeg => vec![0xFF, 0xD9],
            Container::WebP => riff_chunk(b"EXIF", &camera_exif()),
            Container::Gif => vec![0x00, 0x3B], // the image's terminator, the trailer
        }
    }

    fn gif_secret(&self) -> String {
        format!("taken with a {SECRET_MAKE}, serial {SECRET_SERIAL}")
    }

    /// The comment's length that makes the image data whole sub-blocks.
    fn gif_comment_len(&self) -> usize {
        let fixed = 13 + 10 + 1 + 2;
        let text = self.gif_secret().len();
        (text..text + GIF_BLOCK * 2)
            .find(|&len| {
                let comment = 3 + len + len.div_ceil(255);
                self.len >= fixed + comment && (self.len - fixed - comment).is_multiple_of(GIF_BLOCK)
            })
            .expect("some comment length fits")
    }

    /// Bytes of image data (even, for WebP: no padding byte).
    pub fn noise_len(&self) -> usize {
        let tail = match self.container {
            Container::Jpeg | Container::Gif => 2,
            Container::WebP => 8 + camera_exif().len().next_multiple_of(2),
        };
        let head = match self.container {
            Container::Jpeg => 2 + 4 + 6 + camera_exif().len() + 4 + 65 + 4 + 9 + 4 + 6,
            Container::WebP => 12 + 18 + 8,
            Container::Gif => {
                let len = self.gif_comment_len();
                13 + 3 + len + len.div_ceil(255) + 10 + 1
            }
        };
        let noise = self.len - head - tail;
        assert!(self.container == Container::Jpeg || noise.is_multiple_of(2), "a WebP's length must be even");
        noise
    }

    /// The file in pieces of at most `piece` bytes of noise each (plus framing).
    pub fn pieces(&self, piece: usize) -> impl Iterator<Item = Vec<u8>> + use<> {
        std::iter::once(self.head()).chain(self.noise(piece)).chain(std::iter::once(self.tail()))
    }

    /// The image data alone, in pieces of at most `piece` bytes.
    pub fn noise(&self, piece: usize) -> impl Iterator<Item = Vec<u8>> + use<> {
        let mut noise = XorShift::new(self.seed);
        let mut left = self.noise_len();
        let mut at = 0;
        let container = self.container;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let mut data = vec![0; left.min(piece.max(1))];
            noise.fill(&mut data);
            if container == Container::Gif {
                // Every 256th byte of the data is a sub-block's size.
                let first = (GIF_BLOCK - at % GIF_BLOCK) % GIF_BLOCK;
                data.iter_mut().skip(first).step_by(GIF_BLOCK).for_each(|b| *b = 255);
            }
            if container == Container::Jpeg {
                // Entropy-coded data never holds a bare FF (it would be a marker):
                // each FF is stuffed with a 00, as encoders write it (one in 256
                // bytes, like real scans); an FF that would end a piece becomes FE.
                let mut i = 0;
                while i < data.len() {
                    if data[i] == 0xFF {
                        if i + 1 < data.len() {
                            data[i + 1] = 0x00;
                        } else {
                            data[i] = 0xFE;
                        }
                        i += 1;
                    }
                    i += 1;
                }
            }
            left -= data.len();
            at += data.len();
            Some(data)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_its_exact_length_and_its_metadata() {
        for container in [Container::Jpeg, Container::WebP, Container::Gif] {
            let file = BigWithMetadata::new(container, 100_000, 4000, 3000, 1);
            assert!(file.noise_len() > 90_000);
            let bytes: Vec<u8> = file.pieces(4096).flatten().collect();
            assert_eq!(bytes.len(), 100_000, "{container:?}");
            assert!(bytes.starts_with(&file.head()) && bytes.ends_with(&file.tail()), "{container:?}");
            let (width, height) = (4000, 3000);
            let format = match container {
                Container::Jpeg => image::ImageFormat::Jpeg,
                Container::WebP => image::ImageFormat::WebP,
                Container::Gif => image::ImageFormat::Gif,
            };
            assert_eq!(image::guess_format(&bytes).unwrap(), format);
            let reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes), format);
            assert_eq!(reader.into_dimensions().unwrap(), (width, height), "{container:?}");
            let secret = SECRET_SERIAL.as_bytes();
            assert!(bytes.windows(secret.len()).any(|w| w == secret), "{container:?}");
        }
    }
}
