//! A request stores all its files or none: the files stored so far, deleted
//! again if a later one fails.

use std::sync::Arc;

use super::Ingested;
use crate::storage::ImageStore;

/// Files stored by one request so far. Should the request fail later, they
/// are deleted: explicitly by [`Batch::roll_back`], or in the background if
/// the request is dropped (the client went away) before it decided.
pub struct Batch {
    store: Arc<dyn ImageStore>,
    files: Vec<Ingested>,
}

impl Batch {
    pub fn new(store: Arc<dyn ImageStore>) -> Self {
        Self { store, files: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn push(&mut self, file: Ingested) {
        self.files.push(file);
    }

    /// Keeps the files: the request succeeded.
    pub fn commit(mut self) -> Vec<Ingested> {
        std::mem::take(&mut self.files)
    }

    pub async fn roll_back(mut self) {
        delete_quietly(self.store.clone(), std::mem::take(&mut self.files)).await;
    }
}

async fn delete_quietly(store: Arc<dyn ImageStore>, files: Vec<Ingested>) {
    for file in files {
        if let Err(e) = store.delete(&file.id).await {
            tracing::error!(id = %file.id, error = %crate::telemetry::cause_chain(&e), "could not roll back a stored file");
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let files = std::mem::take(&mut self.files);
        if !files.is_empty() {
            // Store futures need not be Send: this runs on the request's own
            // thread (an actix worker is a tokio local task set).
            drop(tokio::task::spawn_local(delete_quietly(self.store.clone(), files)));
        }
    }
}
