//! A multipart upload into a staging key, and the guards that clean up after
//! it: dropped before it completes, it aborts; an assembled staging object not
//! yet published is deleted when its guard drops.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::bucket::Bucket;
use super::metadata;
use crate::storage::{NewObject, StoreError};

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
    pub async fn start(bucket: &Bucket, object: &NewObject, parts_in_flight: usize) -> Result<Self, StoreError> {
        let key = bucket.staging_key(&object.id);
        let request = bucket
            .client
            .create_multipart_upload()
            .bucket(&bucket.name)
            .key(&key)
            .content_type(object.format.mime_type())
            .set_metadata(Some(metadata::for_object(object, None)))
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
        while self.in_flight.len() >= self.parts_in_flight {
            self.finish_oldest_part().await?;
        }
        let part_number = self.next_part_number;
        self.next_part_number += 1;
        self.sent_bytes += part.len() as u64;
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
            .body(ByteStream::from(part))
            .send();
        let sent = self.bucket.send("UploadPart", deadline, request);
        let call = async move {
            let out = sent.await?;
            Ok(CompletedPart::builder().part_number(part_number).set_e_tag(out.e_tag).build())
        };
        // The part uploads while the next one fills; its deadline runs from now.
        self.in_flight.push_back(Box::pin(call));
        Ok(())
    }

    async fn finish_oldest_part(&mut self) -> Result<(), StoreError> {
        if let Some(upload) = self.in_flight.front_mut() {
            let part = upload.await?;
            self.in_flight.pop_front();
            self.completed.push(part);
        }
        Ok(())
    }

    /// Waits for every part and completes the upload; the assembled object
    /// stays under the staging key, guarded until it is published.
    pub async fn complete(mut self) -> Result<StagedObject, StoreError> {
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
        Ok(StagedObject { bucket: self.bucket.clone(), key: self.key.clone() })
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

/// An assembled object under its staging key; dropping the guard deletes it.
pub struct StagedObject {
    bucket: Bucket,
    key: String,
}

impl StagedObject {
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        self.bucket.delete_in_background(std::mem::take(&mut self.key));
    }
}
