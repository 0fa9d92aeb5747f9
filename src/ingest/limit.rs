//! Limits on a file: its size, counted as the bytes pass, and its pixels,
//! read from the header.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::IngestError;
use crate::image::ImageInfo;
use crate::storage::BodyError;

/// Ends the stream with [`BodyError::TooLarge`] at the first byte past `limit`.
pub fn at_most<'a>(
    bytes: impl Stream<Item = Result<Bytes, BodyError>> + 'a,
    limit: u64,
) -> impl Stream<Item = Result<Bytes, BodyError>> + 'a {
    let mut seen = 0u64;
    bytes.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > limit { Err(BodyError::TooLarge { limit }) } else { Ok(chunk) }
    })
}

/// A decompression-bomb guard: width × height from the header, before any
/// pixel is decoded.
pub fn check_pixels(info: &ImageInfo, max: u64) -> Result<(), IngestError> {
    if info.pixels() > max {
        return Err(IngestError::TooManyPixels { width: info.width, height: info.height, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;
    use crate::image::ImageFormat;

    #[tokio::test]
    async fn the_byte_past_the_limit_ends_the_stream() {
        let chunks =
            stream::iter([Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de")), Ok(Bytes::from_static(b"f"))]);
        let got: Vec<_> = at_most(chunks, 5).collect().await;
        assert_eq!(got[0], Ok(Bytes::from_static(b"abc")));
        assert_eq!(got[1], Ok(Bytes::from_static(b"de")));
        assert_eq!(got[2], Err(BodyError::TooLarge { limit: 5 }));
    }

    #[test]
    fn pixels_beyond_the_maximum_are_refused() {
        let info = ImageInfo { format: ImageFormat::Png, width: 20_000, height: 20_000 };
        assert!(matches!(check_pixels(&info, 1_000_000), Err(IngestError::TooManyPixels { width: 20_000, .. })));
        assert!(check_pixels(&ImageInfo { width: 1000, height: 1000, ..info }, 1_000_000).is_ok());
    }
}
