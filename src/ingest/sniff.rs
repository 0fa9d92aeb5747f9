//! The first bytes decide: they are held back until they name an accepted
//! image format and its dimensions, then passed on in front of the rest.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::IngestError;
use crate::image::{ImageInfo, Sniffed, sniff};
use crate::storage::BodyError;

/// Dimensions must be readable from this much of the file (JPEG headers can
/// follow large EXIF blocks; a megabyte is generous).
pub const SNIFF_LIMIT: usize = 1024 * 1024;

/// Reads the header: the image's format and size, and the whole stream again
/// (the bytes read so far first).
pub async fn read_header<'a, S>(
    mut bytes: S,
) -> Result<(ImageInfo, impl Stream<Item = Result<Bytes, BodyError>> + 'a), IngestError>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin + 'a,
{
    let mut prefix = BytesMut::new();
    let mut ended = false;
    let info = loop {
        if ended && prefix.is_empty() {
            return Err(IngestError::Empty);
        }
        match sniff(&prefix, ended)? {
            Sniffed::Image(info) => break info,
            Sniffed::NeedMore => {}
        }
        if prefix.len() >= SNIFF_LIMIT {
            return Err(IngestError::HeaderTooFar { limit: SNIFF_LIMIT });
        }
        match bytes.next().await {
            Some(chunk) => prefix.extend_from_slice(&chunk?),
            None => ended = true,
        }
    };
    let whole = futures_util::stream::once(async move { Ok(prefix.freeze()) }).chain(bytes);
    Ok((info, whole))
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;
    use crate::image::ImageFormat;
    use crate::image::format::tests::png_header;

    #[tokio::test]
    async fn a_header_split_over_chunks_is_read_and_every_byte_passed_on() {
        let file = [png_header(64, 48), b"pixels".to_vec()].concat();
        let chunks: Vec<Result<Bytes, BodyError>> = file.chunks(5).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let (info, rest) = read_header(stream::iter(chunks)).await.unwrap();
        assert_eq!(info, ImageInfo { format: ImageFormat::Png, width: 64, height: 48 });
        let passed: Vec<u8> = rest.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(passed, file);
    }

    #[tokio::test]
    async fn empty_and_foreign_files_are_refused() {
        let empty = read_header(stream::empty::<Result<Bytes, BodyError>>()).await;
        assert!(matches!(empty, Err(IngestError::Empty)));
        let text = read_header(stream::iter([Ok(Bytes::from_static(b"just some text, not an image"))])).await;
        assert!(matches!(text, Err(IngestError::NotAnImage(_))));
    }

    #[tokio::test]
    async fn a_body_error_while_sniffing_is_the_clients() {
        let broken = read_header(stream::iter([Err(BodyError::Incomplete("cut".into()))])).await;
        assert!(matches!(broken, Err(IngestError::Body(BodyError::Incomplete(_)))));
    }
}
