//! Multipart uploads, and the guards that clean up after them: dropped before
//! it completes, an upload aborts; an assembled staging object not yet
//! published is deleted when its guard drops. An upload's parts come from the
//! request body ([`MultipartUpload::send_part`], into a staging key) or from
//! an object already in the bucket ([`MultipartUpload::copy_part`], into the
//! final key: a copy larger than one `CopyObject` may be).

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::bucket::{Bucket, KeyGuard};
use super::client;
use super::metadata;
use crate::storage::{Finished, NewObject, StoreError};

/// One part on its way to the store.
type PartUpload = Pin<Box<dyn Future<Output = Result<CompletedPart, StoreError>> + Send>>;

/// A multipart upload in progress. Dropped before `complete`, it cancels its
/// in-flight parts and aborts the upload in the background.
pub struct MultipartUpload {
    bucket: Bucket,
    key: String,
    upload_id: String,
    parts_in_flight: usize,
    /// Parts uploading on the store's runtime; dropping one cancels it.
    in_flight: VecDeque<PartUpload>,
    completed: Vec<CompletedPart>,
    next_part_number: i32,
    sent_bytes: u64,
    completing: bool,
    done: bool,
}

impl MultipartUpload {
    /// An upload of `object`'s bytes into its staging key.
    pub async fn start(bucket: &Bucket, object: &NewObject, parts_in_flight: usize) -> Result<Self, StoreError> {
        Self::create(bucket, bucket.staging_key(&object.id), object, None, parts_in_flight).await
    }

    /// An upload into `object`'s own key, with its final metadata: parts copied from the staging key.
    pub async fn start_final(
        bucket: &Bucket,
        object: &NewObject,
        finished: &Finished,
        parts_in_flight: usize,
    ) -> Result<Self, StoreError> {
        Self::create(bucket, bucket.key(&object.id), object, Some(finished), parts_in_flight).await
    }

    async fn create(
        bucket: &Bucket,
        key: String,
        object: &NewObject,
        finished: Option<&Finished>,
        parts_in_flight: usize,
    ) -> Result<Self, StoreError> {
        let request = bucket
            .client
            .create_multipart_upload()
            .bucket(&bucket.name)
            .key(&key)
            .content_type(object.format.mime_type())
            .set_metadata(Some(metadata::for_object(object, finished)))
            .send();
        let upload_id = bucket
            .send("CreateMultipartUpload", bucket.deadlines.call(), request)
            .await?
            .upload_id
            .ok_or_else(|| StoreError::Corrupt("CreateMultipartUpload returned no upload id".into()))?;
        Ok(Self {
            bucket: bucket.clone(),
            key,
            upload_id,
            parts_in_flight,
            in_flight: VecDeque::new(),
            completed: Vec::new(),
            next_part_number: 1,
            sent_bytes: 0,
            completing: false,
            done: false,
        })
    }

    /// Starts uploading `part`, first waiting until fewer than `parts_in_flight` are under way.
    pub async fn send_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        let part_number = self.next_part(part.len() as u64).await?;
        let deadline = self.bucket.deadlines.transfer(part.len() as u64);
        let request = self
            .bucket
            .client
            .upload_part()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(part_number)
            .content_length(part.len() as i64)
            .body(ByteStream::from(part));
        let sent =
            self.bucket.send("UploadPart", deadline, client::send_upload_part(request, self.bucket.sign_payloads));
        let call = async move {
            let out = sent.await?;
            Ok(CompletedPart::builder().part_number(part_number).set_e_tag(out.e_tag).build())
        };
        // The part uploads while the next one fills; its deadline runs from now.
        self.in_flight.push_back(Box::pin(call));
        Ok(())
    }

    /// Starts copying `range` of `source` (a key in the bucket) as the next
    /// part, first waiting until fewer than `parts_in_flight` are under way.
    pub async fn copy_part(&mut self, source: &str, range: Range<u64>) -> Result<(), StoreError> {
        let len = range.end - range.start;
        let part_number = self.next_part(len).await?;
        let request = self
            .bucket
            .client
            .upload_part_copy()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(part_number)
            .copy_source(format!("{}/{source}", self.bucket.name))
            .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1))
            .send();
        let sent = self.bucket.send("UploadPartCopy", self.bucket.deadlines.transfer(len), request);
        let call = async move {
            let out = sent.await?;
            let e_tag = out.copy_part_result.and_then(|result| result.e_tag);
            Ok(CompletedPart::builder().part_number(part_number).set_e_tag(e_tag).build())
        };
        self.in_flight.push_back(Box::pin(call));
        Ok(())
    }

    /// Waits until fewer than `parts_in_flight` parts are under way; the
    /// number of the next part, of `len` bytes.
    async fn next_part(&mut self, len: u64) -> Result<i32, StoreError> {
        while self.in_flight.len() >= self.parts_in_flight {
            self.finish_oldest_part().await?;
        }
        let part_number = self.next_part_number;
        self.next_part_number += 1;
        self.sent_bytes += len;
        Ok(part_number)
    }

    async fn finish_oldest_part(&mut self) -> Result<(), StoreError> {
        if let Some(upload) = self.in_flight.front_mut() {
            let part = upload.await?;
            self.in_flight.pop_front();
            self.completed.push(part);
        }
        Ok(())
    }

    /// Waits for every part and completes the upload: the object is whole
    /// under its key. A staging key is guarded until it is published.
    pub async fn complete(mut self) -> Result<KeyGuard, StoreError> {
        while !self.in_flight.is_empty() {
            self.finish_oldest_part().await?;
        }
        let request = self
            .bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.completed))).build(),
            )
            .send();
        // Should this fail or be dropped midway, whether the staging object
        // came to be is unknown: the guard then aborts and deletes both.
        self.completing = true;
        // Some stores assemble the parts before answering: time in proportion to the size.
        let deadline = self.bucket.deadlines.transfer(self.sent_bytes);
        self.bucket.send("CompleteMultipartUpload", deadline, request).await?;
        self.done = true;
        Ok(KeyGuard::new(&self.bucket, self.key.clone()))
    }
}

impl Drop for MultipartUpload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropping the handles cancels the parts still uploading.
        self.in_flight.clear();
        self.bucket.abort_in_background(self.key.clone(), self.upload_id.clone());
        if self.completing {
            self.bucket.delete_in_background(self.key.clone());
        }
    }
}
