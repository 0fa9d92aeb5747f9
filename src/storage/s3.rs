//! S3-compatible storage on `aws-sdk-s3` (AWS S3, Aliyun OSS, Garage, MinIO).
//!
//! Uploads that fit in one part go up as a single `PutObject` of known length.
//! Larger ones become a multipart upload into a staging key, with at most
//! `parts_in_flight` parts uploading while the next one fills; on completion
//! the staged object is copied to its final key with its SHA-256 in the
//! metadata (only known once every byte was seen) and the staging key is
//! deleted. Every failure path, a dropped future included, aborts the
//! multipart upload or deletes the staging object.
//!
//! All SDK calls run on a small runtime owned by the store: the connection
//! pool lives as long as the store, parts upload in parallel with the reading
//! of the request, and cleanup outlives the request (and actix worker) that
//! started it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use super::parts::PartBuffer;
use super::{
    ByteRange, HashingCounter, ImageStore, NewObject, Object, ObjectInfo, StoreError, StoredObject, UploadBody,
    etag_for,
};
use crate::config::S3Settings;
use crate::image::ImageId;

/// Object metadata keys (sent as `x-amz-meta-*`).
pub const META_SHA256: &str = "sha256";
pub const META_FILE_NAME: &str = "filename";
pub const META_WIDTH: &str = "width";
pub const META_HEIGHT: &str = "height";

/// Characters kept as-is when the file name is percent-encoded into metadata
/// (metadata travels in HTTP headers, which must be ASCII).
const FILE_NAME_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b' ').remove(b'(').remove(b')');

const CLEANUP_ATTEMPTS: u32 = 3;

#[derive(Clone)]
struct Target {
    client: Client,
    bucket: String,
    runtime: tokio::runtime::Handle,
    cleanup: TaskTracker,
}

impl Target {
    /// Runs an SDK call on the store's runtime; dropping the returned future cancels it.
    fn run<F, T>(&self, call: F) -> impl Future<Output = Result<T, StoreError>> + use<F, T>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let handle = AbortOnDropHandle::new(self.runtime.spawn(call));
        async move { handle.await.map_err(|e| StoreError::unavailable("storage task", e))? }
    }

    /// Starts cleanup that must finish even if the request that needs it is gone.
    fn spawn_cleanup<F>(&self, what: String, make_call: impl Fn(Client) -> F + Send + 'static)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let client = self.client.clone();
        self.cleanup.spawn_on(
            async move {
                for attempt in 1..=CLEANUP_ATTEMPTS {
                    match make_call(client.clone()).await {
                        Ok(()) => {
                            tracing::debug!(%what, "storage cleanup done");
                            return;
                        }
                        Err(e) if attempt == CLEANUP_ATTEMPTS => {
                            tracing::error!(%what, error = %e, "storage cleanup failed; a lifecycle rule will have to remove it");
                        }
                        Err(e) => {
                            tracing::warn!(%what, error = %e, attempt, "storage cleanup failed, retrying");
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                        }
                    }
                }
            },
            &self.runtime,
        );
    }
}

pub struct S3Store {
    target: Target,
    prefix: String,
    part_size: usize,
    parts_in_flight: usize,
    _runtime: OwnedRuntime,
}

fn sdk_error<E, R>(context: &str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable { context: format!("{context}: {}", DisplayErrorContext(&err)), source: Box::new(err) }
}

impl S3Store {
    pub fn new(settings: &S3Settings) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("picshelf-s3")
            .enable_all()
            .build()?;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let credentials = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.expose_secret().to_owned(),
            None,
            None,
            "picshelf-settings",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style)
            .http_client(http_client)
            // Many S3-compatible stores reject the SDK's default CRC32 trailers and aws-chunked bodies.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
                    .read_timeout(Duration::from_millis(settings.read_timeout_ms))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
        if !settings.endpoint.is_empty() {
            config = config.endpoint_url(settings.endpoint.clone());
        }
        let target = Target {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            runtime: runtime.handle().clone(),
            cleanup: TaskTracker::new(),
        };
        Ok(Self {
            target,
            prefix: settings.prefix.clone(),
            part_size: usize::try_from(settings.part_size_bytes)?,
            parts_in_flight: settings.parts_in_flight,
            _runtime: OwnedRuntime(Some(runtime)),
        })
    }

    fn key(&self, id: &ImageId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Where multipart uploads are assembled; never addressable as an image.
    fn staging_key(&self, id: &ImageId) -> String {
        format!("{}staging/{id}", self.prefix)
    }

    fn metadata(object: &NewObject, sha256: Option<&str>) -> HashMap<String, String> {
        let mut metadata = HashMap::from([
            (META_WIDTH.to_owned(), object.width.to_string()),
            (META_HEIGHT.to_owned(), object.height.to_string()),
        ]);
        if let Some(sha256) = sha256 {
            metadata.insert(META_SHA256.to_owned(), sha256.to_owned());
        }
        if let Some(name) = &object.file_name {
            metadata.insert(META_FILE_NAME.to_owned(), encode_file_name(name));
        }
        metadata
    }

    async fn put_single(&self, object: &NewObject, body: Bytes, sha256: &str) -> Result<(), StoreError> {
        let request = self
            .target
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(self.key(&object.id))
            .content_type(object.format.mime_type())
            .content_length(body.len() as i64)
            .set_metadata(Some(Self::metadata(object, Some(sha256))))
            .body(ByteStream::from(body));
        self.target.run(async move { request.send().await.map(drop).map_err(|e| sdk_error("PutObject", e)) }).await
    }

    /// Copies the assembled staging object to its final key, now with its SHA-256.
    async fn publish_staged(&self, object: &NewObject, staged: StagedObject, sha256: &str) -> Result<(), StoreError> {
        let request = self
            .target
            .client
            .copy_object()
            .bucket(&self.target.bucket)
            .key(self.key(&object.id))
            .copy_source(format!("{}/{}", self.target.bucket, staged.key))
            .metadata_directive(MetadataDirective::Replace)
            .content_type(object.format.mime_type())
            .set_metadata(Some(Self::metadata(object, Some(sha256))));
        self.target.run(async move { request.send().await.map(drop).map_err(|e| sdk_error("CopyObject", e)) }).await?;
        // Dropping the guard deletes the staging key in the background.
        drop(staged);
        Ok(())
    }

    async fn head_key(&self, key: String) -> Result<Option<ObjectInfo>, StoreError> {
        let request = self.target.client.head_object().bucket(&self.target.bucket).key(key);
        self.target
            .run(async move {
                match request.send().await {
                    Ok(out) => Ok(Some(object_info(
                        out.content_length,
                        None,
                        out.content_type,
                        out.e_tag,
                        out.last_modified,
                        out.metadata,
                    ))),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
                    Err(e) => Err(sdk_error("HeadObject", e)),
                }
            })
            .await
    }
}

#[async_trait(?Send)]
impl ImageStore for S3Store {
    async fn put(&self, object: &NewObject, mut body: UploadBody<'_>) -> Result<StoredObject, StoreError> {
        let mut hash = HashingCounter::default();
        let mut parts = PartBuffer::new(self.part_size);
        let mut multipart: Option<MultipartUpload> = None;
        while let Some(chunk) = body.next().await {
            // An early return drops `multipart`, which aborts the upload.
            let mut chunk = chunk?;
            hash.update(&chunk);
            while !chunk.is_empty() {
                let (full, rest) = parts.push(chunk);
                chunk = rest;
                let Some(part) = full else { continue };
                if multipart.is_none() {
                    multipart = Some(MultipartUpload::start(self, object).await?);
                }
                if let Some(upload) = multipart.as_mut() {
                    upload.send_part(part).await?;
                }
            }
        }
        let (sha256, size) = hash.finish();
        let last = parts.finish();
        match multipart {
            None => self.put_single(object, last, &sha256).await?,
            Some(mut upload) => {
                if !last.is_empty() {
                    upload.send_part(last).await?;
                }
                let staged = upload.complete().await?;
                self.publish_staged(object, staged, &sha256).await?;
            }
        }
        Ok(StoredObject { size, sha256 })
    }

    async fn get(&self, id: &ImageId, range: Option<ByteRange>) -> Result<Option<Object>, StoreError> {
        let request = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(self.key(id))
            .set_range(range.map(|r| format!("bytes={}-{}", r.start(), r.end())));
        let output = self
            .target
            .run(async move {
                match request.send().await {
                    Ok(out) => Ok(Some(out)),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                    Err(e) => Err(sdk_error("GetObject", e)),
                }
            })
            .await?;
        let Some(out) = output else { return Ok(None) };
        let info = object_info(
            out.content_length,
            out.content_range.as_deref(),
            out.content_type,
            out.e_tag,
            out.last_modified,
            out.metadata,
        );
        let body = futures_util::stream::unfold(out.body, |mut body| async move {
            let next = body.next().await?;
            Some((next.map_err(|e| StoreError::unavailable("reading object", e)), body))
        })
        .boxed();
        Ok(Some(Object { info, body }))
    }

    async fn head(&self, id: &ImageId) -> Result<Option<ObjectInfo>, StoreError> {
        self.head_key(self.key(id)).await
    }

    async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        // S3 deletes succeed whether or not the key exists; ask first to answer 404 honestly.
        if self.head(id).await?.is_none() {
            return Ok(false);
        }
        let request = self.target.client.delete_object().bucket(&self.target.bucket).key(self.key(id));
        self.target
            .run(async move { request.send().await.map(drop).map_err(|e| sdk_error("DeleteObject", e)) })
            .await?;
        Ok(true)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let request = self.target.client.head_bucket().bucket(&self.target.bucket);
        self.target.run(async move { request.send().await.map(drop).map_err(|e| sdk_error("HeadBucket", e)) }).await
    }

    fn drain(&self, timeout: Duration) -> futures_util::future::BoxFuture<'static, ()> {
        let cleanup = self.target.cleanup.clone();
        Box::pin(async move {
            cleanup.close();
            if tokio::time::timeout(timeout, cleanup.wait()).await.is_err() {
                tracing::warn!(pending = cleanup.len(), "storage cleanup still running at shutdown");
            }
        })
    }
}

fn object_info(
    content_length: Option<i64>,
    content_range: Option<&str>,
    content_type: Option<String>,
    e_tag: Option<String>,
    last_modified: Option<DateTime>,
    metadata: Option<HashMap<String, String>>,
) -> ObjectInfo {
    let metadata = metadata.unwrap_or_default();
    // With a range, Content-Length is the range's; the total is after the slash of Content-Range.
    let total = content_range.and_then(|r| r.rsplit_once('/')).and_then(|(_, total)| total.parse().ok());
    ObjectInfo {
        size: total.or(content_length.and_then(|n| u64::try_from(n).ok())).unwrap_or(0),
        content_type: content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
        etag: match metadata.get(META_SHA256) {
            Some(sha256) => etag_for(sha256),
            None => e_tag.unwrap_or_default(),
        },
        last_modified: last_modified.and_then(|t| SystemTime::try_from(t).ok()).unwrap_or(SystemTime::UNIX_EPOCH),
        file_name: metadata.get(META_FILE_NAME).map(|name| decode_file_name(name)),
        width: metadata.get(META_WIDTH).and_then(|w| w.parse().ok()),
        height: metadata.get(META_HEIGHT).and_then(|h| h.parse().ok()),
    }
}

fn encode_file_name(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, FILE_NAME_ENCODE).to_string()
}

fn decode_file_name(encoded: &str) -> String {
    percent_encoding::percent_decode_str(encoded).decode_utf8_lossy().into_owned()
}

/// A multipart upload in progress. Dropped before `complete`, it cancels its
/// in-flight parts and aborts the upload in the background.
struct MultipartUpload {
    target: Target,
    key: String,
    upload_id: String,
    parts_in_flight: usize,
    in_flight: VecDeque<JoinHandle<Result<CompletedPart, StoreError>>>,
    completed: Vec<CompletedPart>,
    next_part_number: i32,
    completing: bool,
    done: bool,
}

impl MultipartUpload {
    async fn start(store: &S3Store, object: &NewObject) -> Result<Self, StoreError> {
        let key = store.staging_key(&object.id);
        let request = store
            .target
            .client
            .create_multipart_upload()
            .bucket(&store.target.bucket)
            .key(&key)
            .content_type(object.format.mime_type())
            .set_metadata(Some(S3Store::metadata(object, None)));
        let upload_id = store
            .target
            .run(async move { request.send().await.map_err(|e| sdk_error("CreateMultipartUpload", e)) })
            .await?
            .upload_id
            .ok_or_else(|| StoreError::Corrupt("CreateMultipartUpload returned no upload id".into()))?;
        Ok(Self {
            target: store.target.clone(),
            key,
            upload_id,
            parts_in_flight: store.parts_in_flight,
            in_flight: VecDeque::new(),
            completed: Vec::new(),
            next_part_number: 1,
            completing: false,
            done: false,
        })
    }

    /// Starts uploading `part`, first waiting until fewer than `parts_in_flight` are under way.
    async fn send_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        while self.in_flight.len() >= self.parts_in_flight {
            self.finish_oldest_part().await?;
        }
        let part_number = self.next_part_number;
        self.next_part_number += 1;
        let request = self
            .target
            .client
            .upload_part()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(part_number)
            .content_length(part.len() as i64)
            .body(ByteStream::from(part));
        self.in_flight.push_back(self.target.runtime.spawn(async move {
            let out = request.send().await.map_err(|e| sdk_error("UploadPart", e))?;
            Ok(CompletedPart::builder().part_number(part_number).set_e_tag(out.e_tag).build())
        }));
        Ok(())
    }

    async fn finish_oldest_part(&mut self) -> Result<(), StoreError> {
        if let Some(handle) = self.in_flight.front_mut() {
            let part = handle.await.map_err(|e| StoreError::unavailable("part upload task", e))??;
            self.in_flight.pop_front();
            self.completed.push(part);
        }
        Ok(())
    }

    /// Waits for every part and completes the upload; the assembled object
    /// stays under the staging key, guarded until it is published.
    async fn complete(mut self) -> Result<StagedObject, StoreError> {
        while !self.in_flight.is_empty() {
            self.finish_oldest_part().await?;
        }
        let request = self
            .target
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.completed))).build(),
            );
        // Should this fail or be dropped midway, whether the staging object
        // came to be is unknown: the guard then aborts and deletes both.
        self.completing = true;
        self.target
            .run(async move { request.send().await.map(drop).map_err(|e| sdk_error("CompleteMultipartUpload", e)) })
            .await?;
        self.done = true;
        Ok(StagedObject { target: self.target.clone(), key: self.key.clone() })
    }
}

impl Drop for MultipartUpload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for part in self.in_flight.drain(..) {
            part.abort();
        }
        abort_in_background(&self.target, self.key.clone(), self.upload_id.clone());
        if self.completing {
            delete_in_background(&self.target, self.key.clone());
        }
    }
}

fn abort_in_background(target: &Target, key: String, upload_id: String) {
    let bucket = target.bucket.clone();
    target.spawn_cleanup(format!("abort multipart upload of {key}"), move |client| {
        let request = client.abort_multipart_upload().bucket(&bucket).key(&key).upload_id(&upload_id);
        async move {
            match request.send().await {
                Ok(_) => Ok(()),
                // Already gone: nothing left to clean.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
                Err(e) => Err(DisplayErrorContext(&e).to_string()),
            }
        }
    });
}

/// An assembled object under its staging key; dropping the guard deletes it.
struct StagedObject {
    target: Target,
    key: String,
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        delete_in_background(&self.target, std::mem::take(&mut self.key));
    }
}

fn delete_in_background(target: &Target, key: String) {
    let bucket = target.bucket.clone();
    target.spawn_cleanup(format!("delete staging object {key}"), move |client| {
        let request = client.delete_object().bucket(&bucket).key(&key);
        async move { request.send().await.map(drop).map_err(|e| DisplayErrorContext(&e).to_string()) }
    });
}

/// A runtime that may be dropped from inside another runtime (as actix
/// workers do with their app state): it shuts down without blocking.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_survive_the_trip_through_ascii_metadata() {
        for name in ["cat.png", "my holiday (1).jpg", "照片.webp", "a\"b;c\r\nd.gif", "100%.png"] {
            let encoded = encode_file_name(name);
            assert!(encoded.is_ascii() && !encoded.contains(['\r', '\n', '"']), "{encoded}");
            assert_eq!(decode_file_name(&encoded), name);
        }
    }

    #[test]
    fn ranged_reads_report_the_total_size() {
        let info = object_info(Some(10), Some("bytes 0-9/1234"), None, Some("\"x\"".into()), None, None);
        assert_eq!(info.size, 1234);
        assert_eq!(info.etag, "\"x\"");
        let with_sha = HashMap::from([(META_SHA256.to_owned(), "abc".to_owned())]);
        let info = object_info(Some(10), None, Some("image/png".into()), Some("\"x\"".into()), None, Some(with_sha));
        assert_eq!(info.size, 10);
        assert_eq!(info.etag, "\"abc\"");
        assert_eq!(info.content_type, "image/png");
    }
}
