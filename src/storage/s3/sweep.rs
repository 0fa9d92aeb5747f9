//! Finds what interrupted uploads left: incomplete multipart uploads under
//! the store's prefix (uploads into `staging/`, multipart copies into final
//! keys) and assembled staging objects never published
//! and removes what is older than the cut-off. Several replicas may sweep the
//! same bucket at once: an upload already aborted or an object already
//! deleted by another counts as done.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTime;

use super::bucket::Bucket;
use crate::storage::{StoreError, Swept};

/// Removes leftovers under the staging prefix older than `older_than`.
pub async fn sweep(bucket: &Bucket, older_than: Duration) -> Result<Swept, StoreError> {
    let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    let uploads = abort_stale_uploads(bucket, cutoff).await?;
    let objects = delete_stale_objects(bucket, cutoff).await?;
    Ok(Swept { uploads, objects })
}

fn is_before(time: Option<&DateTime>, cutoff: SystemTime) -> bool {
    time.and_then(|t| SystemTime::try_from(*t).ok()).is_some_and(|t| t < cutoff)
}

/// Multipart uploads anywhere under the store's prefix: uploads go to
/// `staging/`, multipart copies to the final keys.
async fn abort_stale_uploads(bucket: &Bucket, cutoff: SystemTime) -> Result<usize, StoreError> {
    let prefix = bucket.prefix().to_owned();
    let mut aborted = 0;
    let (mut key_marker, mut upload_id_marker) = (None::<String>, None::<String>);
    loop {
        let request = bucket
            .client
            .list_multipart_uploads()
            .bucket(&bucket.name)
            .prefix(&prefix)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(upload_id_marker.take())
            .send();
        let page = bucket.send("ListMultipartUploads", bucket.deadlines.call(), request).await?;
        for upload in page.uploads() {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else { continue };
            // Only ours: a listing prefix is a hint some stores ignore.
            if !key.starts_with(&prefix) || !is_before(upload.initiated(), cutoff) {
                continue;
            }
            if bucket.abort(key, upload_id).await? {
                tracing::info!(key, upload_id, "aborted a stale multipart upload");
                aborted += 1;
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(aborted);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
        if key_marker.is_none() && upload_id_marker.is_none() {
            return Ok(aborted);
        }
    }
}

async fn delete_stale_objects(bucket: &Bucket, cutoff: SystemTime) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for (key, modified) in bucket.list_with_times(&bucket.staging_prefix()).await? {
        if !is_before(modified.as_ref(), cutoff) {
            continue;
        }
        bucket.delete(&key).await?;
        tracing::info!(key, "deleted a stale staging object");
        deleted += 1;
    }
    Ok(deleted)
}
