//! Reading objects: HeadObject, and GetObject streamed with a deadline to the
//! first byte and the same limit on every pause after it.

use futures_util::StreamExt;

use super::bucket::{Bucket, sdk_error};
use super::metadata::Headers;
use crate::storage::{ByteRange, Object, ObjectInfo, StoreError};
use crate::timeouts::IdleTimeout;

pub async fn head(bucket: &Bucket, key: String) -> Result<Option<ObjectInfo>, StoreError> {
    let request = bucket.client.head_object().bucket(&bucket.name).key(key);
    let proxied = bucket.proxied;
    bucket
        .run("HeadObject", bucket.deadlines.call(), async move {
            match request.send().await {
                Ok(out) => Ok(Some(
                    Headers {
                        content_length: out.content_length,
                        content_range: None,
                        content_type: out.content_type,
                        e_tag: out.e_tag,
                        last_modified: out.last_modified,
                        metadata: out.metadata,
                    }
                    .into_info(),
                )),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
                Err(e) => Err(sdk_error("HeadObject", e, proxied)),
            }
        })
        .await
}

pub async fn get(bucket: &Bucket, key: String, range: Option<ByteRange>) -> Result<Option<Object>, StoreError> {
    let request = bucket
        .client
        .get_object()
        .bucket(&bucket.name)
        .key(key)
        .set_range(range.map(|r| format!("bytes={}-{}", r.start(), r.end())));
    let proxied = bucket.proxied;
    let output = bucket
        .run("GetObject", bucket.deadlines.call(), async move {
            match request.send().await {
                Ok(out) => Ok(Some(out)),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(sdk_error("GetObject", e, proxied)),
            }
        })
        .await?;
    let Some(out) = output else { return Ok(None) };
    let info = Headers {
        content_length: out.content_length,
        content_range: out.content_range,
        content_type: out.content_type,
        e_tag: out.e_tag,
        last_modified: out.last_modified,
        metadata: out.metadata,
    }
    .into_info();
    let chunks = futures_util::stream::unfold(out.body, |mut body| async move {
        let next = body.next().await?;
        Some((next.map_err(|e| StoreError::unavailable("reading object", e)), body))
    })
    .boxed();
    // A store that freezes mid-body ends the download instead of holding it open.
    let pause = bucket.deadlines.call();
    let body = IdleTimeout::new(chunks, pause, move || StoreError::TimedOut { what: "reading object", after: pause });
    Ok(Some(Object { info, body: body.boxed() }))
}
