//! A decorator that records every storage call in the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    ByteRange, ImageStore, NewObject, NewVariant, Object, ObjectInfo, ObjectKey, ResponseHeaders, StoreError,
    StoredObject, Swept, UploadBody,
};
use crate::image::ImageId;
use crate::metrics::{LeftoverLabels, Metrics, OutcomeLabels};

pub struct InstrumentedStore {
    inner: Arc<dyn ImageStore>,
    metrics: Arc<Metrics>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn ImageStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StoreError>,
        found: impl Fn(&T) -> bool,
    ) {
        let outcome = match result {
            Ok(value) if found(value) => "ok",
            Ok(_) => "not_found",
            Err(StoreError::Body(_)) => "client_error",
            Err(StoreError::TimedOut { .. }) => "timeout",
            Err(_) => "error",
        };
        self.metrics.observe_storage(operation, outcome, started.elapsed().as_secs_f64());
    }
}

#[async_trait(?Send)]
impl ImageStore for InstrumentedStore {
    async fn put(&self, object: &NewObject, body: UploadBody<'_>) -> Result<StoredObject, StoreError> {
        let started = Instant::now();
        let result = self.inner.put(object, body).await;
        self.record("put", started, &result, |_| true);
        result
    }

    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> Result<Option<Object>, StoreError> {
        let started = Instant::now();
        let result = self.inner.get(key, range).await;
        self.record("get", started, &result, Option::is_some);
        result
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let started = Instant::now();
        let result = self.inner.head(key).await;
        self.record("head", started, &result, Option::is_some);
        result
    }

    async fn put_variant(&self, id: &ImageId, variant: &NewVariant) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.inner.put_variant(id, variant).await;
        self.record("put_variant", started, &result, |stored| *stored);
        result
    }

    async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self.inner.delete(id).await;
        self.record("delete", started, &result, |deleted| *deleted);
        result
    }

    async fn presigned_get(&self, key: &ObjectKey, headers: &ResponseHeaders) -> Result<Option<String>, StoreError> {
        self.inner.presigned_get(key, headers).await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.check_ready().await;
        self.record("ready", started, &result, |_| true);
        result
    }

    /// Sweeps are background work: counted apart from the request path's operations.
    async fn sweep(&self, older_than: Duration) -> Result<Swept, StoreError> {
        let result = self.inner.sweep(older_than).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.sweeps.get_or_create(&OutcomeLabels { outcome }).inc();
        if let Ok(swept) = &result {
            self.metrics
                .leftovers_removed
                .get_or_create(&LeftoverLabels { kind: "multipart_upload" })
                .inc_by(swept.uploads as u64);
            self.metrics
                .leftovers_removed
                .get_or_create(&LeftoverLabels { kind: "object" })
                .inc_by(swept.objects as u64);
        }
        result
    }

    fn drain(&self, timeout: Duration) -> futures_util::future::BoxFuture<'static, ()> {
        self.inner.drain(timeout)
    }
}
