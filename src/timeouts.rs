//! Time limits on streams: a stream that yields nothing for too long ends
//! with an error instead of holding its reader (and its memory) forever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// Ends `inner` with `on_idle()` when it keeps its reader waiting for longer
/// than `idle`. Only time spent waiting for an item counts: while the reader
/// is busy elsewhere (storing the previous chunk, say) the clock stands still.
pub struct IdleTimeout<S, F> {
    inner: S,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    done: bool,
    on_idle: F,
}

impl<S, F> IdleTimeout<S, F> {
    pub fn new(inner: S, idle: Duration, on_idle: F) -> Self {
        Self { inner, idle, timer: Box::pin(tokio::time::sleep(idle)), waiting: false, done: false, on_idle }
    }
}

impl<S, T, E, F> Stream for IdleTimeout<S, F>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    F: FnMut() -> E + Unpin,
{
    type Item = Result<T, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.waiting {
            this.timer.as_mut().reset(Instant::now() + this.idle);
            this.waiting = true;
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.waiting = false;
                this.done = item.is_none();
                Poll::Ready(item)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err((this.on_idle)())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_ends_with_the_idle_error() {
        let silent = futures_util::stream::pending::<Result<u8, &str>>();
        let mut timed = IdleTimeout::new(silent, Duration::from_secs(5), || "idle");
        let started = Instant::now();
        assert_eq!(timed.next().await, Some(Err("idle")));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(timed.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_by_the_reader_does_not_count() {
        let items = futures_util::stream::iter([Ok::<u8, &str>(1), Ok(2)]);
        let mut timed = IdleTimeout::new(items, Duration::from_secs(1), || "idle");
        assert_eq!(timed.next().await, Some(Ok(1)));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(timed.next().await, Some(Ok(2)));
        assert_eq!(timed.next().await, None);
    }
}
