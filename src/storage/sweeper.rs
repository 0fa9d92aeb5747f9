//! Runs [`ImageStore::sweep`] at start-up and then every
//! `storage.sweep_interval_secs`, removing what interrupted uploads left that
//! is older than `storage.stale_upload_secs`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use super::ImageStore;
use crate::config::StorageSettings;

/// Starts the sweeper; it stops when the handle is dropped.
pub fn start(store: Arc<dyn ImageStore>, settings: &StorageSettings) -> AbortOnDropHandle<()> {
    let interval = Duration::from_secs(settings.sweep_interval_secs);
    let older_than = Duration::from_secs(settings.stale_upload_secs);
    // The store's futures are not Send (uploads borrow request bodies), so the
    // sweeper lives on a thread of its own with a small runtime.
    let (mut done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    std::thread::Builder::new()
        .name("picshelf-sweeper".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the sweeper");
                    return;
                }
            };
            runtime.block_on(async move {
                let mut ticks = tokio::time::interval(interval);
                let mut stopped = std::pin::pin!(done_tx.closed());
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = ticks.tick() => {}
                    }
                    match store.sweep(older_than).await {
                        Ok(swept) if swept.uploads + swept.objects > 0 => {
                            tracing::info!(
                                uploads = swept.uploads,
                                objects = swept.objects,
                                "swept leftovers of interrupted uploads"
                            );
                        }
                        Ok(_) => tracing::debug!("sweep found nothing to remove"),
                        Err(e) => {
                            tracing::warn!(error = %crate::telemetry::cause_chain(&e), "sweep failed; retrying next time")
                        }
                    }
                }
            });
        })
        .expect("spawn the sweeper thread");
    AbortOnDropHandle::new(task)
}
