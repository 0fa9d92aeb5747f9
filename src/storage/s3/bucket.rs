//! The bucket as the store sees it: the client, the key layout, a deadline on
//! every call, and cleanup that outlives the request that needed it.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTime;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use super::diagnosis::Diagnosis;
use crate::image::ImageId;
use crate::storage::{ObjectKey, StoreError};

/// Cleanup (an abort, a staging delete) keeps retrying through an outage for
/// this long; what is still left afterwards is the sweeper's.
const CLEANUP_PATIENCE: Duration = Duration::from_secs(15 * 60);
const CLEANUP_FIRST_BACKOFF: Duration = Duration::from_millis(500);
const CLEANUP_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long a store call may take in all, retries included.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub operation: Duration,
    pub min_bytes_per_sec: u64,
}

impl Deadlines {
    /// A call without a body: metadata, a read to its first byte, a list.
    pub fn call(&self) -> Duration {
        self.operation
    }

    /// A call that moves `bytes` (a part, a single-part upload, a copy).
    pub fn transfer(&self, bytes: u64) -> Duration {
        self.operation + Duration::from_millis(bytes.saturating_mul(1000) / self.min_bytes_per_sec.max(1))
    }
}

#[derive(Clone)]
pub struct Bucket {
    pub client: Client,
    pub name: String,
    prefix: String,
    pub deadlines: Deadlines,
    runtime: tokio::runtime::Handle,
    cleanup: TaskTracker,
    /// Requests go through a proxy: connection failures are the proxy's.
    pub proxied: bool,
    /// Request bodies are hashed into their signatures (`storage.s3.payload_signing`).
    pub sign_payloads: bool,
}

/// A failed SDK call as a store error whose message says what to fix
/// ([`Diagnosis`]) before the SDK's own account of it.
pub fn sdk_error<E>(context: &str, err: SdkError<E, HttpResponse>, proxied: bool) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let diagnosis = Diagnosis::of(&err, proxied);
    StoreError::Unavailable {
        context: format!("{context}: {}: {}", diagnosis.advice(), DisplayErrorContext(&err)),
        source: Box::new(err),
    }
}

/// True when the store answered 404, whatever its error code.
pub fn is_not_found<E>(err: &SdkError<E, HttpResponse>) -> bool {
    err.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}

impl Bucket {
    pub fn new(
        client: Client,
        name: String,
        prefix: String,
        deadlines: Deadlines,
        runtime: tokio::runtime::Handle,
        proxied: bool,
        sign_payloads: bool,
    ) -> Self {
        Self { client, name, prefix, deadlines, runtime, cleanup: TaskTracker::new(), proxied, sign_payloads }
    }

    /// The key of an image.
    pub fn key(&self, id: &ImageId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Where an image's variants live: beside it, under `<its key>/`.
    pub fn variants_prefix(&self, id: &ImageId) -> String {
        format!("{}{id}/", self.prefix)
    }

    /// The key of an image or of one of its variants.
    pub fn object_key(&self, key: &ObjectKey) -> String {
        match &key.variant {
            None => self.key(&key.id),
            Some(name) => format!("{}{name}", self.variants_prefix(&key.id)),
        }
    }

    /// The key prefix of everything this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where multipart uploads are assembled; never addressable as an image.
    pub fn staging_key(&self, id: &ImageId) -> String {
        format!("{}{id}", self.staging_prefix())
    }

    pub fn staging_prefix(&self) -> String {
        format!("{}staging/", self.prefix)
    }

    /// Runs an SDK call on the store's runtime within `deadline` from now,
    /// retries included; dropping the returned future cancels it.
    pub fn run<F, T>(
        &self,
        what: &'static str,
        deadline: Duration,
        call: F,
    ) -> impl Future<Output = Result<T, StoreError>> + use<F, T>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let handle = AbortOnDropHandle::new(self.runtime.spawn(call));
        let until = tokio::time::Instant::now() + deadline;
        async move {
            match tokio::time::timeout_at(until, handle).await {
                Ok(joined) => joined.map_err(|e| StoreError::unavailable("storage task", e))?,
                Err(_) => Err(StoreError::TimedOut { what, after: deadline }),
            }
        }
    }

    /// Sends an SDK request within `deadline`: its answer, or a store error
    /// named after `what`.
    pub fn send<T, E, F>(
        &self,
        what: &'static str,
        deadline: Duration,
        request: F,
    ) -> impl Future<Output = Result<T, StoreError>> + use<T, E, F>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
        T: Send + 'static,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let proxied = self.proxied;
        self.run(what, deadline, async move { request.await.map_err(|e| sdk_error(what, e, proxied)) })
    }

    /// Aborts a multipart upload: `true` when this call aborted it, `false`
    /// when it was already gone (completed, aborted, or swept by another replica).
    pub fn abort(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<bool, StoreError>> + use<> {
        let request = self.client.abort_multipart_upload().bucket(&self.name).key(key).upload_id(upload_id).send();
        let proxied = self.proxied;
        self.run("AbortMultipartUpload", self.deadlines.call(), async move {
            match request.await {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(sdk_error("AbortMultipartUpload", e, proxied)),
            }
        })
    }

    /// Every object under `prefix` (all pages) with its last modification.
    /// Only keys that really start with it: a listing prefix is a hint some
    /// stores ignore.
    pub async fn list_with_times(&self, prefix: &str) -> Result<Vec<(String, Option<DateTime>)>, StoreError> {
        let mut found = Vec::new();
        let mut continuation = None::<String>;
        loop {
            let request = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(continuation.take())
                .send();
            let page = self.send("ListObjectsV2", self.deadlines.call(), request).await?;
            for object in page.contents() {
                if let Some(key) = object.key().filter(|key| key.starts_with(prefix)) {
                    found.push((key.to_owned(), object.last_modified().copied()));
                }
            }
            continuation = page.next_continuation_token().map(str::to_owned);
            if page.is_truncated() != Some(true) || continuation.is_none() {
                return Ok(found);
            }
        }
    }

    /// The keys under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.list_with_times(prefix).await?.into_iter().map(|(key, _)| key).collect())
    }

    /// Deletes an object (succeeds whether or not it was there).
    pub fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let sent = self.send(
            "DeleteObject",
            self.deadlines.call(),
            self.client.delete_object().bucket(&self.name).key(key).send(),
        );
        async move { sent.await.map(drop) }
    }

    /// Aborts a multipart upload in the background, retrying through outages.
    pub fn abort_in_background(&self, key: String, upload_id: String) {
        let bucket = self.clone();
        self.spawn_cleanup(format!("abort multipart upload of {key}"), move || {
            let aborted = bucket.abort(&key, &upload_id);
            async move { aborted.await.map(drop) }
        });
    }

    /// Deletes an object in the background, retrying through outages.
    pub fn delete_in_background(&self, key: String) {
        let bucket = self.clone();
        self.spawn_cleanup(format!("delete {key}"), move || bucket.delete(&key));
    }

    /// Starts cleanup that must finish even if the request that needs it is
    /// gone: retried with growing pauses for up to [`CLEANUP_PATIENCE`].
    fn spawn_cleanup<F, Fut>(&self, what: String, attempt: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        self.cleanup.spawn_on(
            async move {
                let started = tokio::time::Instant::now();
                let mut backoff = CLEANUP_FIRST_BACKOFF;
                for number in 1u32.. {
                    match attempt().await {
                        Ok(()) => {
                            tracing::debug!(%what, attempts = number, "storage cleanup done");
                            return;
                        }
                        Err(e) if started.elapsed() + backoff > CLEANUP_PATIENCE => {
                            tracing::error!(%what, error = %crate::telemetry::cause_chain(&e), attempts = number,
                                "storage cleanup gave up; the sweeper will remove it");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(%what, error = %crate::telemetry::cause_chain(&e), attempt = number,
                                retry_in_ms = backoff.as_millis() as u64, "storage cleanup failed, retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(CLEANUP_MAX_BACKOFF);
                        }
                    }
                }
            },
            &self.runtime,
        );
    }

    /// Waits for background cleanup to finish, at most `timeout`.
    pub async fn drain_cleanup(&self, timeout: Duration) {
        self.cleanup.close();
        if tokio::time::timeout(timeout, self.cleanup.wait()).await.is_err() {
            tracing::warn!(
                pending = self.cleanup.len(),
                "storage cleanup still running at shutdown; the sweeper will finish it"
            );
        }
    }
}

/// An object whose key is deleted in the background when the guard drops,
/// unless [`keep`](Self::keep) says it belongs there: an assembled staging
/// object until it is published, a final key until its write is confirmed
/// (the store may write it and lose its answer).
pub struct KeyGuard {
    bucket: Bucket,
    key: String,
}

impl KeyGuard {
    pub fn new(bucket: &Bucket, key: String) -> Self {
        Self { bucket: bucket.clone(), key }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The object is where it belongs: nothing to delete.
    pub fn keep(mut self) {
        self.key.clear();
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if !self.key.is_empty() {
            self.bucket.delete_in_background(std::mem::take(&mut self.key));
        }
    }
}
