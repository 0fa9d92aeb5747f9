//! The bytes of an upload on their way into a store, counted and hashed as
//! they pass (the pipeline's "count and hash" step), so the store learns the
//! size and SHA-256 of what it stored without reading it twice.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::LocalBoxStream;
use sha2::{Digest, Sha256};

use super::BodyError;
use crate::image::metadata::Removed;

/// The bytes of an upload, as they arrive. Not `Send`: it may wrap a multipart field.
pub struct UploadBody<'a> {
    chunks: LocalBoxStream<'a, Result<Bytes, BodyError>>,
    hasher: Sha256,
    len: u64,
    /// What the stripping step removed, filled in when the bytes end.
    removed: Rc<RefCell<Removed>>,
}

/// What a store learns of an upload once its last byte has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    pub metadata_removed: Removed,
}

impl<'a> UploadBody<'a> {
    pub fn new(chunks: LocalBoxStream<'a, Result<Bytes, BodyError>>) -> Self {
        Self::with_report(chunks, Rc::default())
    }

    /// Bytes whose stripping step reports into `removed`.
    pub fn with_report(chunks: LocalBoxStream<'a, Result<Bytes, BodyError>>, removed: Rc<RefCell<Removed>>) -> Self {
        Self { chunks, hasher: Sha256::new(), len: 0, removed }
    }

    /// What passed: call it once the stream has ended.
    pub fn finish(self) -> Finished {
        let metadata_removed = self.removed.borrow().clone();
        Finished { sha256: hex::encode(self.hasher.finalize()), size: self.len, metadata_removed }
    }
}

impl Stream for UploadBody<'_> {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.chunks.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            this.hasher.update(chunk);
            this.len += chunk.len() as u64;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn matches_the_known_digest_of_abc_fed_in_pieces() {
        let pieces = futures_util::stream::iter([Ok(Bytes::from_static(b"a")), Ok(Bytes::from_static(b"bc"))]);
        let mut body = UploadBody::new(pieces.boxed_local());
        while body.next().await.is_some() {}
        let finished = body.finish();
        assert_eq!(finished.size, 3);
        assert_eq!(finished.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
