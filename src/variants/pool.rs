//! The bounded pool that CPU-heavy renderings run on: at most `slots` at
//! once on tokio's blocking threads (never on the async workers), at most
//! `queue` more waiting, and a panic in a job caught and reported instead of
//! taking anything down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("{0} renderings are running or waiting already")]
    Full(usize),
    #[error("the rendering panicked: {0}")]
    Panicked(String),
}

pub struct Pool {
    slots: Arc<Semaphore>,
    /// Jobs admitted: waiting for a slot or running.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    depth: Gauge,
}

/// A place in the queue; gives a slot when one frees.
pub struct Ticket {
    slots: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    depth: Gauge,
}

/// The right to run one job now.
pub struct Slot {
    permit: OwnedSemaphorePermit,
    _ticket: Ticket,
}

impl Pool {
    pub fn new(slots: usize, queue: usize, depth: Gauge) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: slots.max(1) + queue,
            depth,
        }
    }

    /// Joins the queue, or refuses at once when it is full: never an unbounded wait.
    pub fn admit(&self) -> Result<Ticket, PoolError> {
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket { slots: self.slots.clone(), admitted: self.admitted.clone(), depth: self.depth.clone() };
        ticket.depth.inc();
        if before >= self.capacity {
            return Err(PoolError::Full(self.capacity));
        }
        Ok(ticket)
    }
}

impl Ticket {
    pub async fn slot(self) -> Slot {
        let permit = self.slots.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        Slot { permit, _ticket: self }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::SeqCst);
        self.depth.dec();
    }
}

impl Slot {
    /// Runs `job` on a blocking thread. The slot stays taken until the job
    /// ends, even when the caller stops waiting for it.
    pub async fn run<T: Send + 'static>(self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let Slot { permit, _ticket } = self;
        let handle = tokio::task::spawn_blocking(move || {
            let _held = (permit, _ticket);
            std::panic::catch_unwind(AssertUnwindSafe(job))
        });
        match handle.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(PoolError::Panicked(panic_message(panic.as_ref()))),
            Err(join) => Err(PoolError::Panicked(join.to_string())),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_and_a_panic_is_an_error() {
        let pool = Pool::new(1, 1, Gauge::default());
        let running = pool.admit().unwrap().slot().await;
        let waiting = pool.admit().unwrap();
        assert_eq!(pool.admit().err(), Some(PoolError::Full(2)));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let job = tokio::spawn(running.run(move || wait.recv_timeout(Duration::from_secs(5)).is_ok()));
        release.send(()).unwrap();
        assert_eq!(job.await.unwrap(), Ok(true));
        let outcome = waiting.slot().await.run(|| -> u8 { panic!("a decoder bug") }).await;
        assert_eq!(outcome, Err(PoolError::Panicked("a decoder bug".into())));
        assert_eq!(pool.depth.get(), 0);
        assert!(pool.admit().is_ok());
    }
}
