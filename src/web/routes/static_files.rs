//! The page's CSS, JavaScript and icon, compiled into the binary (no build step,
//! no CDN). URLs carry a content hash (`?v=`), so they are cached forever.

use std::sync::LazyLock;

use actix_web::http::header::{self, CacheControl, CacheDirective, EntityTag};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::web::error::ApiError;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// First 16 hex digits of the SHA-256 of `body`.
    pub version: String,
}

fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    let version = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
    Asset { name, content_type, body, version }
}

pub static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset("app.css", "text/css; charset=utf-8", include_str!("../../../static/app.css")),
        asset("app.js", "text/javascript; charset=utf-8", include_str!("../../../static/app.js")),
        asset("favicon.svg", "image/svg+xml", include_str!("../../../static/favicon.svg")),
    ]
});

pub fn version_of(name: &str) -> &'static str {
    ASSETS.iter().find(|a| a.name == name).map_or("", |a| a.version.as_str())
}

pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("name").unwrap_or_default();
    let asset = ASSETS.iter().find(|a| a.name == name).ok_or_else(ApiError::not_found)?;
    let etag = format!("\"{}\"", asset.version);
    if crate::web::conditional::none_match_hits(&req, &EntityTag::new_strong(asset.version.clone())) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    let versioned = req.query_string() == format!("v={}", asset.version);
    let cache = if versioned {
        CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(31_536_000),
            CacheDirective::Extension("immutable".into(), None),
        ])
    } else {
        CacheControl(vec![CacheDirective::NoCache])
    };
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::ETAG, etag))
        .insert_header(cache)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(asset.body))
}
