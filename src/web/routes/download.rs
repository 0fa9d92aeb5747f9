//! `GET` and `HEAD /main/download/{id}[?width=W[&format=F]]`: the stored
//! bytes (of the image, or of its variant, made first if need be) with exact
//! headers, single ranges and `If-None-Match`.

use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, CacheControl, CacheDirective, Charset, ContentDisposition, DispositionParam, DispositionType, EntityTag,
    ExtendedValue, HttpDate,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures_util::StreamExt;

use crate::image::{ImageFormat, ImageId};
use crate::storage::{ByteRange, DownloadBody, ObjectInfo, ObjectKey, ResponseHeaders, StoreError};
use crate::web::conditional::{if_range_allows, none_match_hits};
use crate::web::error::ApiError;
use crate::web::extract::{DownloadQuery, Lenient};
use crate::web::range::{RangeDecision, decide};
use crate::web::state::AppState;

/// Served images may be opened as documents: they get no power at all.
pub const IMAGE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

pub async fn download(
    req: HttpRequest,
    id: ImageId,
    Lenient(query): Lenient<DownloadQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let headers = req.headers();
    let is_head = req.method() == Method::HEAD;

    let attachment = query.attachment();
    let key = match state.variants.parse(query.width.as_deref(), query.format.as_deref())? {
        None => ObjectKey::image(&id),
        Some(variant) => {
            if !state.variants.ensure(&id, variant).await? {
                return Err(ApiError::not_found());
            }
            ObjectKey::variant(&id, &variant)
        }
    };

    if state.redirect_downloads && !is_head {
        let info = state.store.head(&key).await?.ok_or_else(ApiError::not_found)?;
        if let Some(not_modified) = not_modified(&req, &info)? {
            return Ok(not_modified);
        }
        let response_headers = ResponseHeaders {
            content_type: info.content_type.clone(),
            content_disposition: disposition(&id, &info, attachment).to_string(),
            cache_control: IMMUTABLE.to_owned(),
        };
        if let Some(url) = state.store.presigned_get(&key, &response_headers).await? {
            // The URL expires: neither it nor this answer may be cached.
            return Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, url))
                .insert_header(CacheControl(vec![CacheDirective::NoStore]))
                .finish());
        }
    }

    // The common case, a plain GET, costs one storage round trip.
    let needs_info_first =
        is_head || headers.contains_key(header::IF_NONE_MATCH) || headers.contains_key(header::RANGE);
    if !needs_info_first {
        let object = state.store.get(&key, None).await?.ok_or_else(ApiError::not_found)?;
        return Ok(stream(
            &state,
            object_response(StatusCode::OK, &id, &object.info, attachment),
            object.info.size,
            object.body,
        ));
    }

    let info = state.store.head(&key).await?.ok_or_else(ApiError::not_found)?;
    if let Some(not_modified) = not_modified(&req, &info)? {
        return Ok(not_modified);
    }
    let etag = entity_tag(&info)?;
    if is_head {
        let mut response = object_response(StatusCode::OK, &id, &info, attachment);
        return Ok(response.body(SizedStream::new(info.size, futures_util::stream::empty::<Result<_, StoreError>>())));
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let decision = if if_range_allows(&req, &etag) { decide(range_header, info.size) } else { RangeDecision::Full };
    match decision {
        RangeDecision::Unsatisfiable => Err(ApiError::range_not_satisfiable(info.size)),
        RangeDecision::Full => {
            let object = state.store.get(&key, None).await?.ok_or_else(ApiError::not_found)?;
            Ok(stream(
                &state,
                object_response(StatusCode::OK, &id, &object.info, attachment),
                object.info.size,
                object.body,
            ))
        }
        RangeDecision::Partial(range) => {
            let object = state.store.get(&key, Some(range.clone())).await?.ok_or_else(ApiError::not_found)?;
            let mut response = object_response(StatusCode::PARTIAL_CONTENT, &id, &object.info, attachment);
            response.insert_header((header::CONTENT_RANGE, content_range(&range, info.size)));
            Ok(stream(&state, response, range_len(&range), object.body))
        }
    }
}

fn entity_tag(info: &ObjectInfo) -> Result<EntityTag, ApiError> {
    info.etag.parse::<EntityTag>().map_err(|e| ApiError::internal(format!("stored entity tag: {e}")))
}

/// 304 when `If-None-Match` names the stored bytes.
fn not_modified(req: &HttpRequest, info: &ObjectInfo) -> Result<Option<HttpResponse>, ApiError> {
    if !none_match_hits(req, &entity_tag(info)?) {
        return Ok(None);
    }
    let mut response = HttpResponse::NotModified();
    validators(&mut response, info);
    Ok(Some(response.finish()))
}

/// An id never names other bytes: cache it for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn range_len(range: &ByteRange) -> u64 {
    range.end() - range.start() + 1
}

fn content_range(range: &ByteRange, size: u64) -> String {
    format!("bytes {}-{}/{size}", range.start(), range.end())
}

/// ETag, Last-Modified and caching: identical on 200, 206 and 304.
fn validators(response: &mut HttpResponseBuilder, info: &ObjectInfo) {
    response
        .insert_header((header::ETAG, info.etag.clone()))
        .insert_header((header::LAST_MODIFIED, HttpDate::from(info.last_modified)))
        .insert_header((header::CACHE_CONTROL, IMMUTABLE));
}

fn object_response(status: StatusCode, id: &ImageId, info: &ObjectInfo, attachment: bool) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    validators(&mut response, info);
    response
        .insert_header((header::CONTENT_TYPE, info.content_type.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, IMAGE_CSP))
        .insert_header(disposition(id, info, attachment));
    response
}

/// `inline` or `attachment`, named after the upload but always with the
/// extension of the real format (a PNG never saves as `.html`).
fn disposition(id: &ImageId, info: &ObjectInfo, attachment: bool) -> ContentDisposition {
    let extension = ImageFormat::from_mime_type(&info.content_type).map_or("bin", ImageFormat::extension);
    let stem = info
        .file_name
        .as_deref()
        .map(|name| name.rsplit_once('.').map_or(name, |(stem, _)| stem))
        .filter(|stem| !stem.is_empty());
    let ascii_name = format!("{id}.{extension}");
    let mut parameters = vec![DispositionParam::Filename(ascii_name)];
    if let Some(stem) = stem {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: format!("{stem}.{extension}").into_bytes(),
        }));
    }
    ContentDisposition {
        disposition: if attachment { DispositionType::Attachment } else { DispositionType::Inline },
        parameters,
    }
}

fn stream(state: &AppState, mut response: HttpResponseBuilder, len: u64, body: DownloadBody) -> HttpResponse {
    let sent = state.metrics.bytes_sent.clone();
    let counted = body.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            sent.inc_by(bytes.len() as u64);
        }
    });
    response.body(SizedStream::new(len, counted))
}
