//! Resized variants of a stored image: what one is ([`Variant`]: a width
//! from a configured list and an output format) and how its bytes are made
//! ([`render`]: decode within limits, scaled where the format allows it,
//! resize, turn upright, encode). Pure CPU work with no I/O: callers run it
//! on a bounded pool (see `crate::variants`).
//!
//! - JPEG decodes at 1/2, 1/4 or 1/8 scale when the variant is that much
//!   smaller (`jpeg-decoder`), so a 48-megapixel photo never needs its full
//!   pixels for a thumbnail; other formats decode with `image`, within a
//!   pixel and allocation limit.
//! - Animated GIF and WebP give their first frame.
//! - The Orientation (EXIF) is applied: variants display upright and carry
//!   no metadata at all.
//! - WebP (the default) is lossy at quality 80 from lossy sources (JPEG,
//!   WebP) and lossless from lossless ones (PNG, GIF, BMP, TIFF), which keeps
//!   transparency and sharp edges exactly and is smaller than PNG; JPEG
//!   (quality 85, transparency flattened onto white) and PNG on request.

use std::io::Cursor;

use fast_image_resize as fir;
use image::{DynamicImage, ImageDecoder, RgbaImage};

use super::ImageFormat;

/// The formats a variant can be encoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    WebP,
    Jpeg,
    Png,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::WebP, OutputFormat::Jpeg, OutputFormat::Png];

    /// As `?format=` names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebP => "webp",
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.name() == name)
    }

    pub fn image_format(self) -> ImageFormat {
        match self {
            Self::WebP => ImageFormat::WebP,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
        }
    }
}

/// One variant of an image: at most `width` pixels wide, in `format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub width: u32,
    pub format: OutputFormat,
}

impl Variant {
    /// Its name in the store, beside the original: `w320.webp`.
    pub fn name(&self) -> String {
        format!("w{}.{}", self.width, self.format.image_format().extension())
    }
}

/// Whether `format` can be decoded here (AVIF needs an AV1 decoder picshelf
/// does not build in).
pub fn can_render(format: ImageFormat) -> bool {
    !matches!(format, ImageFormat::Avif)
}

/// Bounds on the work of one rendering.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Most pixels a decoded picture may have (after scaled decoding).
    pub max_pixels: u64,
    /// Most bytes a decoder may allocate.
    pub max_alloc: u64,
}

/// A finished variant.
#[derive(Debug)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("the image is {width}x{height}; variants are made from images of at most {max} pixels")]
    TooLarge { width: u64, height: u64, max: u64 },
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("variants of {0} images are not available")]
    Unsupported(&'static str),
    #[error("encoding the variant failed: {0}")]
    Encoding(String),
}

/// Makes `variant` of the image `source` (in `format`).
pub fn render(
    source: &[u8],
    format: ImageFormat,
    variant: Variant,
    limits: DecodeLimits,
) -> Result<Rendered, RenderError> {
    if !can_render(format) {
        return Err(RenderError::Unsupported(format.name()));
    }
    let orientation = orientation_of(source, format);
    let picture = match format {
        ImageFormat::Jpeg => decode_jpeg(source, variant.width, orientation, limits)?,
        _ => decode_any(source, format, limits)?,
    };
    let resized = resize(picture, variant.width, orientation)?;
    let upright = apply_orientation(resized, orientation);
    encode(upright, variant.format, is_lossy(format))
}

fn is_lossy(format: ImageFormat) -> bool {
    matches!(format, ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Avif)
}

/// The EXIF Orientation, 1 when there is none (GIF's lives in XMP, which
/// browsers ignore, and so do variants).
fn orientation_of(source: &[u8], format: ImageFormat) -> image::metadata::Orientation {
    let readable = matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff);
    let value = readable
        .then(|| exif::Reader::new().read_from_container(&mut Cursor::new(source)).ok())
        .flatten()
        .and_then(|exif| exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?.value.get_uint(0))
        .and_then(|value| u8::try_from(value).ok());
    value.and_then(image::metadata::Orientation::from_exif).unwrap_or(image::metadata::Orientation::NoTransforms)
}

/// Whether the orientation turns the picture a quarter: its width is then the stored height.
fn swaps_axes(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation as O;
    matches!(orientation, O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH)
}

/// The stored picture's size for a variant `width` wide once upright: never larger.
fn target_size(width: u32, height: u32, variant_width: u32, orientation: image::metadata::Orientation) -> (u32, u32) {
    let shown_width = if swaps_axes(orientation) { height } else { width };
    if variant_width >= shown_width {
        return (width, height);
    }
    let scale = f64::from(variant_width) / f64::from(shown_width);
    let scaled = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    (scaled(width), scaled(height))
}

fn check_pixels(width: u64, height: u64, limits: DecodeLimits) -> Result<(), RenderError> {
    if width * height > limits.max_pixels {
        return Err(RenderError::TooLarge { width, height, max: limits.max_pixels });
    }
    Ok(())
}

/// JPEG at the smallest DCT scale (1/8 to 1) that is still at least the target size.
fn decode_jpeg(
    source: &[u8],
    variant_width: u32,
    orientation: image::metadata::Orientation,
    limits: DecodeLimits,
) -> Result<DynamicImage, RenderError> {
    let undecodable = |e: jpeg_decoder::Error| RenderError::Undecodable(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(source));
    decoder.read_info().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| RenderError::Undecodable("no frame header".into()))?;
    if info.pixel_format == jpeg_decoder::PixelFormat::CMYK32 {
        // Rare (print workflows); `image` converts CMYK properly, at full size.
        return decode_any(source, ImageFormat::Jpeg, limits);
    }
    let (tw, th) = target_size(info.width.into(), info.height.into(), variant_width, orientation);
    let clamp = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    let (w, h) = decoder.scale(clamp(tw), clamp(th)).map_err(undecodable)?;
    check_pixels(w.into(), h.into(), limits)?;
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    let pixels = decoder.decode().map_err(undecodable)?;
    let (w, h) = (u32::from(w), u32::from(h));
    let short = || RenderError::Undecodable("the decoder gave fewer pixels than the frame has".into());
    Ok(match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let wide: Vec<u16> = pixels.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, wide).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::CMYK32 => unreachable!("handled above"),
    })
}

/// Any other format with `image`, its first frame, within the limits.
fn decode_any(source: &[u8], format: ImageFormat, limits: DecodeLimits) -> Result<DynamicImage, RenderError> {
    let undecodable = |e: image::ImageError| RenderError::Undecodable(e.to_string());
    let image_format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::Avif => return Err(RenderError::Unsupported(format.name())),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(source), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width.into(), height.into(), limits)?;
    DynamicImage::from_decoder(decoder).map_err(undecodable)
}

/// Scaled down (never up) to the variant's width once upright, Lanczos3 on
/// premultiplied alpha.
fn resize(
    picture: DynamicImage,
    variant_width: u32,
    orientation: image::metadata::Orientation,
) -> Result<DynamicImage, RenderError> {
    let (tw, th) = target_size(picture.width(), picture.height(), variant_width, orientation);
    let keeps_alpha = picture.color().has_alpha();
    let picture = if keeps_alpha {
        DynamicImage::ImageRgba8(picture.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(picture.into_rgb8())
    };
    if (tw, th) == (picture.width(), picture.height()) {
        return Ok(picture);
    }
    let mut resized = DynamicImage::new(tw, th, picture.color());
    let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    fir::Resizer::new()
        .resize(&picture, &mut resized, &options)
        .map_err(|e| RenderError::Encoding(format!("resizing: {e}")))?;
    Ok(resized)
}

fn apply_orientation(mut picture: DynamicImage, orientation: image::metadata::Orientation) -> DynamicImage {
    picture.apply_orientation(orientation);
    picture
}

fn encode(picture: DynamicImage, format: OutputFormat, lossy_source: bool) -> Result<Rendered, RenderError> {
    let (width, height) = (picture.width(), picture.height());
    let failed = |e: image::ImageError| RenderError::Encoding(e.to_string());
    let bytes = match format {
        OutputFormat::WebP => {
            let encoder = match &picture {
                DynamicImage::ImageRgba8(rgba) => webp::Encoder::from_rgba(rgba.as_raw(), width, height),
                DynamicImage::ImageRgb8(rgb) => webp::Encoder::from_rgb(rgb.as_raw(), width, height),
                _ => return Err(RenderError::Encoding("resized pictures are 8-bit RGB or RGBA".into())),
            };
            let encoded = if lossy_source { encoder.encode(80.0) } else { encoder.encode_lossless() };
            encoded.to_vec()
        }
        OutputFormat::Jpeg => {
            let flat = flatten_onto_white(picture);
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&flat).map_err(failed)?;
            out
        }
        OutputFormat::Png => {
            let mut out = Cursor::new(Vec::new());
            picture.write_to(&mut out, image::ImageFormat::Png).map_err(failed)?;
            out.into_inner()
        }
    };
    Ok(Rendered { bytes, width, height, format: format.image_format() })
}

/// JPEG has no transparency: what was see-through becomes white.
fn flatten_onto_white(picture: DynamicImage) -> DynamicImage {
    if !picture.color().has_alpha() {
        return DynamicImage::ImageRgb8(picture.into_rgb8());
    }
    let rgba: RgbaImage = picture.into_rgba8();
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    });
    DynamicImage::ImageRgb8(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits { max_pixels: 50_000_000, max_alloc: 512 * 1024 * 1024 };

    fn encoded(picture: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    #[test]
    fn sizes_follow_the_upright_width_and_never_grow() {
        use image::metadata::Orientation as O;
        assert_eq!(target_size(4000, 3000, 320, O::NoTransforms), (320, 240));
        assert_eq!(target_size(4000, 3000, 320, O::Rotate90), (427, 320));
        assert_eq!(target_size(100, 50, 320, O::NoTransforms), (100, 50));
        assert_eq!(target_size(10_000, 1, 160, O::NoTransforms), (160, 1));
    }

    #[test]
    fn every_output_format_decodes_to_the_right_size() {
        let png = encoded(gradient(640, 480), image::ImageFormat::Png);
        for format in OutputFormat::ALL {
            let rendered = render(&png, ImageFormat::Png, Variant { width: 160, format }, LIMITS).unwrap();
            assert_eq!((rendered.width, rendered.height), (160, 120));
            let back = image::load_from_memory(&rendered.bytes).unwrap();
            assert_eq!((back.width(), back.height()), (160, 120), "{format:?}");
            let sniffed = image::guess_format(&rendered.bytes).unwrap();
            assert_eq!(sniffed.extensions_str()[0], rendered.format.extension(), "{format:?}");
        }
    }

    #[test]
    fn limits_and_garbage_are_errors_not_panics() {
        let png = encoded(gradient(300, 200), image::ImageFormat::Png);
        let tight = DecodeLimits { max_pixels: 1000, ..LIMITS };
        let webp = Variant { width: 160, format: OutputFormat::WebP };
        assert!(matches!(render(&png, ImageFormat::Png, webp, tight), Err(RenderError::TooLarge { .. })));
        // A valid header and then nothing: the frame has no scan to decode.
        let jpeg = encoded(gradient(300, 200), image::ImageFormat::Jpeg);
        let scan = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let headless = [&jpeg[..scan], &[0xFF, 0xD9][..]].concat();
        let error = render(&headless, ImageFormat::Jpeg, webp, LIMITS).unwrap_err();
        assert!(matches!(error, RenderError::Undecodable(_)), "{error}");
        let error = render(b"\x89PNG\r\n\x1a\nnothing", ImageFormat::Png, webp, LIMITS).unwrap_err();
        assert!(matches!(error, RenderError::Undecodable(_)), "{error}");
        assert_eq!(render(b"", ImageFormat::Avif, webp, LIMITS).unwrap_err(), RenderError::Unsupported("AVIF"));
    }
}
