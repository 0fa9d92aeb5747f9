//! The bytes decide the type: magic bytes (via `infer`) pick the format from
//! an allow-list of raster formats, and the image header (via `imagesize`)
//! gives the dimensions. The client's Content-Type and file name are ignored.

use std::io::ErrorKind;

/// The raster formats picshelf accepts. Nothing here can carry script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    WebP,
    Avif,
    Bmp,
    Tiff,
}

impl ImageFormat {
    pub const ALL: [ImageFormat; 7] = [Self::Png, Self::Jpeg, Self::Gif, Self::WebP, Self::Avif, Self::Bmp, Self::Tiff];

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Avif => "image/avif",
            Self::Bmp => "image/bmp",
            Self::Tiff => "image/tiff",
        }
    }

    /// The name people know the format by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Gif => "GIF",
            Self::WebP => "WebP",
            Self::Avif => "AVIF",
            Self::Bmp => "BMP",
            Self::Tiff => "TIFF",
        }
    }

    /// "PNG, JPEG, …, TIFF": the accepted formats, for messages and the page.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Avif => "avif",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
        }
    }

    pub fn from_mime_type(mime: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.mime_type() == mime)
    }

    fn from_magic(prefix: &[u8]) -> Option<Self> {
        let kind = infer::get(prefix)?;
        if kind.matcher_type() != infer::MatcherType::Image {
            return None;
        }
        Self::from_mime_type(kind.mime_type())
    }

    fn matches_header(self, kind: imagesize::ImageType) -> bool {
        use imagesize::ImageType as T;
        matches!(
            (self, kind),
            (Self::Png, T::Png)
                | (Self::Jpeg, T::Jpeg)
                | (Self::Gif, T::Gif)
                | (Self::WebP, T::Webp)
                | (Self::Avif, T::Heif(imagesize::Compression::Av1))
                | (Self::Bmp, T::Bmp)
                | (Self::Tiff, T::Tiff)
        )
    }
}

/// The format and dimensions of an accepted image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u64,
    pub height: u64,
}

impl ImageInfo {
    pub fn pixels(&self) -> u64 {
        self.width.saturating_mul(self.height)
    }
}

/// Why a file is not accepted as an image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    #[error("the file is not an image in an accepted format ({})", ImageFormat::names())]
    NotAnImage,
    #[error("the {} header is damaged or incomplete: its dimensions cannot be read", .0.mime_type())]
    UnreadableHeader(ImageFormat),
}

/// The outcome of looking at the start of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Image(ImageInfo),
    /// More bytes are needed to decide (only when the file has not ended).
    NeedMore,
}

/// Bytes needed before a file can be called "not an image" (the longest
/// magic number of the accepted formats fits well inside this).
const MAGIC_WINDOW: usize = 64;

/// The file header and the longest DIB header field BMP dimensions need.
const BMP_HEADER: usize = 26;

/// Width and height of a BMP. The height is signed: negative means the rows
/// run top to bottom, and the image is as tall as its absolute value.
/// (`imagesize` reads it unsigned, which makes a 4-row image 2^32 - 4 tall.)
fn bmp_dimensions(prefix: &[u8]) -> Option<(u64, u64)> {
    let field = |at: usize, len: usize| prefix.get(at..at + len);
    let dib_header_size = u32::from_le_bytes(field(14, 4)?.try_into().ok()?);
    if dib_header_size == 12 {
        // BITMAPCOREHEADER: unsigned 16-bit width and height.
        let width = u16::from_le_bytes(field(18, 2)?.try_into().ok()?);
        let height = u16::from_le_bytes(field(20, 2)?.try_into().ok()?);
        return Some((width.into(), height.into()));
    }
    let width = i32::from_le_bytes(field(18, 4)?.try_into().ok()?);
    let height = i32::from_le_bytes(field(22, 4)?.try_into().ok()?);
    Some((u64::try_from(width).unwrap_or(0), u64::from(height.unsigned_abs())))
}

/// Looks at the first bytes of a file. `complete` says the prefix is the whole file.
pub fn sniff(prefix: &[u8], complete: bool) -> Result<Sniffed, SniffError> {
    let Some(format) = ImageFormat::from_magic(prefix) else {
        return if complete || prefix.len() >= MAGIC_WINDOW {
            Err(SniffError::NotAnImage)
        } else {
            Ok(Sniffed::NeedMore)
        };
    };
    if format == ImageFormat::Bmp {
        return match bmp_dimensions(prefix) {
            Some((width, height)) if width > 0 && height > 0 => Ok(Sniffed::Image(ImageInfo { format, width, height })),
            None if !complete && prefix.len() < BMP_HEADER => Ok(Sniffed::NeedMore),
            _ => Err(SniffError::UnreadableHeader(format)),
        };
    }
    match imagesize::image_type(prefix).and_then(|kind| Ok((kind, imagesize::blob_size(prefix)?))) {
        Ok((kind, size)) if format.matches_header(kind) && size.width > 0 && size.height > 0 => {
            Ok(Sniffed::Image(ImageInfo { format, width: size.width as u64, height: size.height as u64 }))
        }
        Err(imagesize::ImageError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof && !complete => {
            Ok(Sniffed::NeedMore)
        }
        _ if !complete && prefix.len() < MAGIC_WINDOW => Ok(Sniffed::NeedMore),
        _ => Err(SniffError::UnreadableHeader(format)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&width.to_be_bytes());
        png.extend_from_slice(&height.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn png_header_gives_format_and_dimensions() {
        let sniffed = sniff(&png_header(640, 480), false).unwrap();
        assert_eq!(sniffed, Sniffed::Image(ImageInfo { format: ImageFormat::Png, width: 640, height: 480 }));
    }

    #[test]
    fn a_short_prefix_asks_for_more_until_the_file_ends() {
        let header = png_header(10, 10);
        assert_eq!(sniff(&header[..12], false), Ok(Sniffed::NeedMore));
        assert_eq!(sniff(&header[..12], true), Err(SniffError::UnreadableHeader(ImageFormat::Png)));
        assert_eq!(sniff(b"\x89P", false), Ok(Sniffed::NeedMore));
    }

    #[test]
    fn text_svg_and_html_are_not_images() {
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;
        assert_eq!(sniff(svg, true), Err(SniffError::NotAnImage));
        assert_eq!(sniff(svg, false), Err(SniffError::NotAnImage));
        assert_eq!(sniff(b"<html><body>hi</body></html>", true), Err(SniffError::NotAnImage));
        assert_eq!(sniff(b"hello", true), Err(SniffError::NotAnImage));
    }

    #[test]
    fn the_client_cannot_rename_a_pdf_into_an_image() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n trailer";
        assert_eq!(sniff(pdf, true), Err(SniffError::NotAnImage));
    }

    #[test]
    fn a_bmp_height_is_read_with_its_sign() {
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&16i32.to_le_bytes());
        bmp.extend_from_slice(&(-4i32).to_le_bytes());
        bmp.extend_from_slice(&[1, 0, 24, 0]);
        bmp.extend_from_slice(&[0; 40]);
        assert_eq!(sniff(&bmp, true), Ok(Sniffed::Image(ImageInfo { format: ImageFormat::Bmp, width: 16, height: 4 })));
        bmp[18..22].copy_from_slice(&(-16i32).to_le_bytes());
        assert_eq!(sniff(&bmp, true), Err(SniffError::UnreadableHeader(ImageFormat::Bmp)));
    }

    #[test]
    fn zero_dimensions_are_a_damaged_header() {
        assert_eq!(sniff(&png_header(0, 10), true), Err(SniffError::UnreadableHeader(ImageFormat::Png)));
    }

    #[test]
    fn every_format_has_a_mime_type_that_maps_back() {
        for format in ImageFormat::ALL {
            assert_eq!(ImageFormat::from_mime_type(format.mime_type()), Some(format));
            assert!(format.mime_type().starts_with("image/"));
        }
    }
}
