//! The "strip metadata" step: location, camera and personal metadata leave
//! the file as it passes (see [`crate::image::metadata`]). Streaming formats
//! are filtered chunk by chunk, kept bytes passed on without copying; TIFF
//! and AVIF are rewritten whole in memory, at most `upload.max_rewrite_bytes`
//! each and `upload.rewrite_memory_bytes` for all of them at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::LocalBoxStream;
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::image::ImageFormat;
use crate::image::metadata::{self, Filter, Malformed, Piece, Removed, Stripping};
use crate::storage::BodyError;

/// How large a file rewritten in memory may be, and how much memory all of
/// them may hold at once.
#[derive(Clone)]
pub struct RewriteLimits {
    max_bytes: u64,
    /// One permit per KiB held; reserved as bytes arrive, so a slow sender
    /// holds only what it has sent.
    memory: Arc<Semaphore>,
}

impl RewriteLimits {
    pub fn new(max_bytes: u64, memory_bytes: u64) -> Self {
        let kib = usize::try_from(memory_bytes.div_ceil(1024)).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Self { max_bytes, memory: Arc::new(Semaphore::new(kib)) }
    }

    /// Grows `held` to cover `bytes`; refuses at once rather than wait, so
    /// two uploads each holding half can never wait on each other.
    fn reserve(&self, held: &mut Option<OwnedSemaphorePermit>, bytes: usize) -> Result<(), BodyError> {
        let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let need = bytes.div_ceil(1024).saturating_sub(have);
        if need == 0 {
            return Ok(());
        }
        let more = u32::try_from(need)
            .ok()
            .and_then(|n| self.memory.clone().try_acquire_many_owned(n).ok())
            .ok_or(BodyError::RewriteMemoryBusy)?;
        match held {
            Some(permit) => permit.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }
}

/// What the step removed, known once the stream has ended.
pub type Report = Rc<RefCell<Removed>>;

fn malformed(error: Malformed) -> BodyError {
    BodyError::MalformedImage(error.to_string())
}

/// The bytes of `format` with their metadata removed; `report` is filled in
/// when they end.
pub fn strip<'a>(
    format: ImageFormat,
    bytes: impl Stream<Item = Result<Bytes, BodyError>> + Unpin + 'a,
    rewrites: &RewriteLimits,
    report: Report,
) -> LocalBoxStream<'a, Result<Bytes, BodyError>> {
    match metadata::stripping(format) {
        Stripping::Nothing => bytes.boxed_local(),
        Stripping::Streaming(filter) => streaming(filter, bytes, report),
        Stripping::InMemory(rewrite) => in_memory(rewrite, bytes, rewrites.clone(), report),
    }
}

/// The pieces a filter made of `chunk`, as bytes (kept ranges are slices of it).
fn render(chunk: &Bytes, pieces: Vec<Piece>) -> impl Iterator<Item = Bytes> + '_ {
    pieces.into_iter().map(move |piece| match piece {
        Piece::Keep(range) => chunk.slice(range),
        Piece::Insert(bytes) => Bytes::from(bytes),
    })
}

struct Filtering<S> {
    bytes: S,
    filter: Box<dyn Filter>,
    ready: VecDeque<Bytes>,
    ended: bool,
    report: Report,
}

fn streaming<'a>(
    filter: Box<dyn Filter>,
    bytes: impl Stream<Item = Result<Bytes, BodyError>> + Unpin + 'a,
    report: Report,
) -> LocalBoxStream<'a, Result<Bytes, BodyError>> {
    let state = Filtering { bytes, filter, ready: VecDeque::new(), ended: false, report };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(out) = state.ready.pop_front() {
                return Some((Ok(out), state));
            }
            if state.ended {
                return None;
            }
            let mut pieces = Vec::new();
            match state.bytes.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = state.filter.feed(&chunk, &mut pieces) {
                        state.ended = true;
                        return Some((Err(malformed(e)), state));
                    }
                    state.ready.extend(render(&chunk, pieces).filter(|b| !b.is_empty()));
                }
                Some(Err(e)) => {
                    state.ended = true;
                    return Some((Err(e), state));
                }
                None => {
                    state.ended = true;
                    match state.filter.finish(&mut pieces) {
                        Ok(removed) => *state.report.borrow_mut() = removed,
                        Err(e) => return Some((Err(malformed(e)), state)),
                    }
                    state.ready.extend(render(&Bytes::new(), pieces).filter(|b| !b.is_empty()));
                }
            }
        }
    })
    .boxed_local()
}

fn in_memory<'a>(
    rewrite: fn(&mut [u8]) -> Result<Removed, Malformed>,
    mut bytes: impl Stream<Item = Result<Bytes, BodyError>> + Unpin + 'a,
    limits: RewriteLimits,
    report: Report,
) -> LocalBoxStream<'a, Result<Bytes, BodyError>> {
    futures_util::stream::once(async move {
        let mut held = None;
        let mut file = Vec::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk?;
            let total = file.len() + chunk.len();
            if total as u64 > limits.max_bytes {
                return Err(BodyError::TooLargeToStrip { limit: limits.max_bytes });
            }
            limits.reserve(&mut held, total)?;
            file.extend_from_slice(&chunk);
        }
        *report.borrow_mut() = rewrite(&mut file).map_err(malformed)?;
        Ok(Bytes::from(file))
    })
    .boxed_local()
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    fn limits(max_bytes: u64) -> RewriteLimits {
        RewriteLimits::new(max_bytes, max_bytes)
    }

    async fn run(format: ImageFormat, chunks: Vec<&'static [u8]>, max: u64) -> (Result<Vec<u8>, BodyError>, Removed) {
        let report = Report::default();
        let input = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let mut out = strip(format, input, &limits(max), report.clone());
        let mut bytes = Vec::new();
        while let Some(chunk) = out.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(e) => return (Err(e), report.take()),
            }
        }
        (Ok(bytes), report.take())
    }

    #[tokio::test]
    async fn a_gif_comment_is_removed_across_chunks_and_reported() {
        let gif: &[u8] = b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xFE\x02hi\x00\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3B";
        let (out, removed) = run(ImageFormat::Gif, vec![&gif[..5], &gif[5..14], &gif[14..]], 1000).await;
        let out = out.unwrap();
        assert!(!out.windows(2).any(|w| w == b"hi"));
        assert_eq!(out.len(), gif.len() - 6);
        assert_eq!(removed.names(), ["comment"]);
    }

    #[tokio::test]
    async fn malformed_and_oversized_files_end_in_the_clients_error() {
        let (out, _) = run(ImageFormat::Png, vec![b"\x89PNG\r\n\x1a\n\0\0"], 1000).await;
        assert!(matches!(out, Err(BodyError::MalformedImage(_))));
        let (out, _) = run(ImageFormat::Tiff, vec![b"II*\0", b"0123456789"], 8).await;
        assert_eq!(out, Err(BodyError::TooLargeToStrip { limit: 8 }));
        let (out, removed) = run(ImageFormat::Bmp, vec![b"BM", b"anything"], 8).await;
        assert_eq!(out.unwrap(), b"BManything");
        assert!(removed.is_empty());
    }

    #[test]
    fn rewrites_share_a_memory_budget_reserved_as_bytes_arrive() {
        let limits = RewriteLimits::new(4096, 5000);
        let (mut a, mut b) = (None, None);
        limits.reserve(&mut a, 1).unwrap();
        limits.reserve(&mut a, 3000).unwrap();
        assert_eq!(a.as_ref().map(OwnedSemaphorePermit::num_permits), Some(3));
        assert!(matches!(limits.reserve(&mut b, 3000), Err(BodyError::RewriteMemoryBusy)));
        limits.reserve(&mut b, 2048).unwrap();
        drop(a);
        limits.reserve(&mut b, 4096).unwrap();
    }
}
