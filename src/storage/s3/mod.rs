//! S3-compatible storage on `aws-sdk-s3` (AWS S3, Aliyun OSS, Garage, MinIO).
//!
//! Uploads that fit in one part go up as a single `PutObject` of known length.
//! Larger ones become a multipart upload into a staging key, with at most
//! `parts_in_flight` parts uploading while the next one fills; on completion
//! the staged object is copied to its final key with its SHA-256 in the
//! metadata (only known once every byte was seen) and the staging key is
//! deleted. Every failure path, a dropped future included, aborts the
//! multipart upload or deletes the staging object; what an outage or a crash
//! still leaves is found by [`sweep`].
//!
//! Variants are single `PutObject`s under `<image key>/<name>`; deleting an
//! image deletes what is listed under that prefix, and a variant stored
//! while its image was being deleted removes itself.
//!
//! Every call has a total deadline (`operation_timeout_ms`, plus time for its
//! bytes), so a frozen store answers 503 in seconds. All SDK calls run on a
//! small runtime owned by the store: the connection pool lives as long as the
//! store, parts upload in parallel with the reading of the request, and
//! cleanup outlives the request (and actix worker) that started it.
//!
//! - [`client`]: the SDK client, configured for non-AWS stores;
//! - [`bucket`]: key layout, deadlines, background cleanup;
//! - [`parts`]: cuts the upload stream into parts;
//! - [`multipart`]: the multipart upload and its abort guard;
//! - [`reads`]: GetObject and HeadObject;
//! - [`metadata`]: what objects carry in `x-amz-meta-*`;
//! - [`sweep`]: leftovers of interrupted uploads.

pub mod bucket;
pub mod client;
pub mod diagnosis;
pub mod metadata;
mod multipart;
mod parts;
mod reads;
mod sweep;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use bytes::Bytes;
use futures_util::StreamExt;

use self::bucket::{Bucket, Deadlines, KeyGuard};
use self::multipart::MultipartUpload;
use self::parts::PartBuffer;
use super::{
    ByteRange, Finished, ImageStore, NewObject, NewVariant, Object, ObjectInfo, ObjectKey, ResponseHeaders, StoreError,
    StoredObject, Swept, UploadBody,
};
use crate::config::S3Settings;
use crate::image::ImageId;

pub use self::metadata::{META_FILE_NAME, META_HEIGHT, META_SHA256, META_WIDTH};

pub struct S3Store {
    bucket: Bucket,
    part_size: usize,
    parts_in_flight: usize,
    copy_threshold: u64,
    copy_part_size: u64,
    presign_ttl: Duration,
    _runtime: OwnedRuntime,
}

impl S3Store {
    pub fn new(settings: &S3Settings) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("picshelf-s3")
            .enable_all()
            .build()?;
        let deadlines = Deadlines {
            operation: Duration::from_millis(settings.operation_timeout_ms),
            min_bytes_per_sec: settings.min_transfer_bytes_per_sec,
        };
        let bucket = Bucket::new(
            client::build(settings)?,
            settings.bucket.clone(),
            settings.prefix.clone(),
            deadlines,
            runtime.handle().clone(),
            settings.uses_proxy(),
            settings.signs_payloads(),
        );
        Ok(Self {
            bucket,
            part_size: usize::try_from(settings.part_size_bytes)?,
            parts_in_flight: settings.parts_in_flight,
            copy_threshold: settings.copy_threshold_bytes,
            copy_part_size: settings.copy_part_bytes,
            presign_ttl: Duration::from_secs(settings.presign_ttl_secs),
            _runtime: OwnedRuntime(Some(runtime)),
        })
    }

    async fn put_single(&self, object: &NewObject, body: Bytes, finished: &Finished) -> Result<(), StoreError> {
        let deadline = self.bucket.deadlines.transfer(body.len() as u64);
        let request = self
            .bucket
            .client
            .put_object()
            .bucket(&self.bucket.name)
            .key(self.bucket.key(&object.id))
            .content_type(object.format.mime_type())
            .content_length(body.len() as i64)
            .set_metadata(Some(metadata::for_object(object, Some(finished))))
            .body(ByteStream::from(body));
        let request = client::send_put_object(request, self.bucket.sign_payloads, Some(&finished.sha256));
        self.bucket.send("PutObject", deadline, request).await.map(drop)
    }

    /// Copies the assembled staging object to its final key, now with its
    /// SHA-256: with one CopyObject up to `copy_threshold_bytes`, in parts beyond.
    async fn publish_staged(
        &self,
        object: &NewObject,
        staged: KeyGuard,
        finished: &Finished,
    ) -> Result<(), StoreError> {
        if finished.size > self.copy_threshold {
            let mut copy = MultipartUpload::start_final(&self.bucket, object, finished, self.parts_in_flight).await?;
            let mut start = 0;
            while start < finished.size {
                let end = (start + self.copy_part_size).min(finished.size);
                copy.copy_part(staged.key(), start..end).await?;
                start = end;
            }
            copy.complete().await?.keep();
            drop(staged);
            return Ok(());
        }
        let request = self
            .bucket
            .client
            .copy_object()
            .bucket(&self.bucket.name)
            .key(self.bucket.key(&object.id))
            .copy_source(format!("{}/{}", self.bucket.name, staged.key()))
            .metadata_directive(MetadataDirective::Replace)
            .content_type(object.format.mime_type())
            .set_metadata(Some(metadata::for_object(object, Some(finished))))
            .send();
        self.bucket.send("CopyObject", self.bucket.deadlines.transfer(finished.size), request).await?;
        // Dropping the guard deletes the staging key in the background.
        drop(staged);
        Ok(())
    }
}

/// What puts an upload under its final key: one PutObject of the whole body,
/// or the copy of the assembled staging object.
enum LastWrite {
    Single(Bytes),
    Publish(KeyGuard),
}

#[async_trait(?Send)]
impl ImageStore for S3Store {
    async fn put(&self, object: &NewObject, mut body: UploadBody<'_>) -> Result<StoredObject, StoreError> {
        let mut parts = PartBuffer::new(self.part_size);
        let mut multipart: Option<MultipartUpload> = None;
        while let Some(chunk) = body.next().await {
            // An early return drops `multipart`, which aborts the upload.
            let mut chunk = chunk?;
            while !chunk.is_empty() {
                let (full, rest) = parts.push(chunk);
                chunk = rest;
                let Some(part) = full else { continue };
                if multipart.is_none() {
                    multipart = Some(MultipartUpload::start(&self.bucket, object, self.parts_in_flight).await?);
                }
                if let Some(upload) = multipart.as_mut() {
                    upload.send_part(part).await?;
                }
            }
        }
        let finished = body.finish();
        let last = parts.finish();
        let last_write = match multipart {
            None => LastWrite::Single(last),
            Some(mut upload) => {
                if !last.is_empty() {
                    upload.send_part(last).await?;
                }
                LastWrite::Publish(upload.complete().await?)
            }
        };
        // From here on the final key may exist even if the call fails: the
        // store can write it and lose its answer (it dies, the reply is
        // dropped, the deadline passes, the request is dropped). Unless the
        // write is known to have succeeded, the key is deleted in the
        // background; nobody else knows this fresh id.
        let unconfirmed = KeyGuard::new(&self.bucket, self.bucket.key(&object.id));
        match last_write {
            LastWrite::Single(body) => self.put_single(object, body, &finished).await?,
            LastWrite::Publish(staged) => self.publish_staged(object, staged, &finished).await?,
        }
        unconfirmed.keep();
        Ok(finished)
    }

    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> Result<Option<Object>, StoreError> {
        reads::get(&self.bucket, self.bucket.object_key(key), range).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        reads::head(&self.bucket, self.bucket.object_key(key)).await
    }

    async fn put_variant(&self, id: &ImageId, variant: &NewVariant) -> Result<bool, StoreError> {
        let key = self.bucket.object_key(&ObjectKey { id: *id, variant: Some(variant.name.clone()) });
        let request = self
            .bucket
            .client
            .put_object()
            .bucket(&self.bucket.name)
            .key(&key)
            .content_type(variant.format.mime_type())
            .content_length(variant.bytes.len() as i64)
            .set_metadata(Some(metadata::for_variant(variant)))
            .body(ByteStream::from(variant.bytes.clone()));
        let request = client::send_put_object(request, self.bucket.sign_payloads, None);
        let deadline = self.bucket.deadlines.transfer(variant.bytes.len() as u64);
        self.bucket.send("PutObject", deadline, request).await?;
        // Deleted meanwhile? A delete lists variants after removing the image,
        // so one of the two sees the other: this one removes what it stored.
        if self.head(&ObjectKey::image(id)).await?.is_none() {
            self.bucket.delete(&key).await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        // S3 deletes succeed whether or not the key exists; ask first to answer 404 honestly.
        if self.head(&ObjectKey::image(id)).await?.is_none() {
            return Ok(false);
        }
        self.bucket.delete(&self.bucket.key(id)).await?;
        for key in self.bucket.list(&self.bucket.variants_prefix(id)).await? {
            self.bucket.delete(&key).await?;
        }
        Ok(true)
    }

    async fn presigned_get(&self, key: &ObjectKey, headers: &ResponseHeaders) -> Result<Option<String>, StoreError> {
        let config = PresigningConfig::expires_in(self.presign_ttl).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let presigned = self
            .bucket
            .client
            .get_object()
            .bucket(&self.bucket.name)
            .key(self.bucket.object_key(key))
            .response_content_type(&headers.content_type)
            .response_content_disposition(&headers.content_disposition)
            .response_cache_control(&headers.cache_control)
            .presigned(config)
            .await
            .map_err(|e| StoreError::unavailable("presigning a download", e))?;
        Ok(Some(presigned.uri().to_owned()))
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let request = self.bucket.client.head_bucket().bucket(&self.bucket.name).send();
        self.bucket.send("HeadBucket", self.bucket.deadlines.call(), request).await.map(drop)
    }

    async fn sweep(&self, older_than: Duration) -> Result<Swept, StoreError> {
        sweep::sweep(&self.bucket, older_than).await
    }

    fn drain(&self, timeout: Duration) -> futures_util::future::BoxFuture<'static, ()> {
        let bucket = self.bucket.clone();
        Box::pin(async move { bucket.drain_cleanup(timeout).await })
    }
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
