//! Server-rendered HTML: the upload page, the page of one or more images,
//! and error pages. Every page sets `<base href=".../main/">` from the proxy
//! prefix, so all its links are relative and work under `/dev/` and `/test/`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective, HttpDate};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::image::ImageFormat;
use crate::image::metadata::{Kind, Removed};
use crate::image::variant::can_render;
use crate::storage::ObjectKey;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::extract::{ImageIds, Lenient, TokenQuery};
use crate::web::openapi::{OperationSummary, summaries};
use crate::web::public_url::base_path;
use crate::web::routes::static_files::version_of;
use crate::web::state::AppState;

/// Pages run only their own script and styles and talk only to their origin.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'";

struct Layout {
    base: String,
    css_version: &'static str,
    js_version: &'static str,
    icon_version: &'static str,
}

impl Layout {
    fn new(base_path: String) -> Self {
        Self {
            base: base_path,
            css_version: version_of("app.css"),
            js_version: version_of("app.js"),
            icon_version: version_of("favicon.svg"),
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    layout: Layout,
    max_file_bytes: u64,
    max_file_size: String,
    max_files: usize,
    accept: &'a str,
    accept_names: String,
    /// "PNG, JPEG, … or TIFF".
    accept_hint: String,
    /// "160,320,640,1280": the thumbnails' `srcset` widths.
    variant_widths: String,
}

#[derive(Template)]
#[template(path = "view.html")]
struct ViewPage {
    layout: Layout,
    images: Vec<ViewImage>,
}

struct ViewImage {
    id: String,
    /// The picture shown: a variant where there are some, else the original.
    src: String,
    /// `download/{id}?width=160 160w, …`, when there are variants.
    srcset: Option<String>,
    /// Pictures after the first load when scrolled to.
    lazy: bool,
    size: String,
    content_type: String,
    dimensions: Option<String>,
    uploaded: String,
    file_name: Option<String>,
    token: Option<String>,
    /// The picture had a location, and it was removed.
    location_removed: bool,
    /// "EXIF, XMP": what else was removed, if anything.
    metadata_removed: Option<String>,
}

#[derive(Template)]
#[template(path = "api.html")]
struct ApiPage {
    layout: Layout,
    operations: Vec<OperationSummary>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
    code: &'a str,
}

/// "location, EXIF, XMP" for people.
fn describe_removed(removed: &Removed) -> String {
    let names: Vec<&str> = removed
        .kinds()
        .map(|kind| match kind {
            Kind::Gps => "location",
            Kind::Exif => "EXIF (camera, dates, owner)",
            Kind::Xmp => "XMP",
            Kind::Iptc => "IPTC",
            Kind::Comment => "comments",
            Kind::Text => "text",
            Kind::Time => "timestamp",
            Kind::TrailingData => "data after the image",
            Kind::Other => "other metadata",
        })
        .collect();
    names.join(", ")
}

fn accept_hint() -> String {
    let names = ImageFormat::ALL.map(ImageFormat::name);
    match names.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub fn accepted_types() -> String {
    ImageFormat::ALL.iter().map(|f| f.mime_type()).collect::<Vec<_>>().join(",")
}

/// "1.5 MiB"
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn html(
    status: StatusCode,
    page: Result<String, askama::Error>,
    cache: CacheDirective,
) -> Result<HttpResponse, ApiError> {
    let body = page.map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header(CacheControl(vec![cache]))
        .body(body))
}

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let accept = accepted_types();
    let page = IndexPage {
        layout: Layout::new(base_path(&req)),
        max_file_bytes: state.limits.max_file_bytes,
        max_file_size: human_size(state.limits.max_file_bytes),
        max_files: state.limits.max_files,
        accept: &accept,
        accept_names: ImageFormat::names(),
        accept_hint: accept_hint(),
        variant_widths: state.variants.widths().iter().map(u32::to_string).collect::<Vec<_>>().join(","),
    };
    html(StatusCode::OK, page.render(), CacheDirective::NoCache)
}

/// `GET /main/api`: the contract as a page, rendered here (no script, no CDN).
pub async fn api(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let page = ApiPage { layout: Layout::new(base_path(&req)), operations: summaries() };
    html(StatusCode::OK, page.render(), CacheDirective::NoCache)
}

/// `GET /main/view/{id}[,{id}...][?token={token}[,{token}...]]`
pub async fn view(
    req: HttpRequest,
    ImageIds(ids): ImageIds,
    Lenient(query): Lenient<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tokens = query.tokens();
    let mut images = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let info = state.store.head(&ObjectKey::image(id)).await?.ok_or_else(ApiError::not_found)?;
        // Only a token that really deletes this image is shown back.
        let token = tokens.get(index).filter(|t| state.tokens.verify(id, t)).map(|t| t.to_string());
        let renderable = ImageFormat::from_mime_type(&info.content_type).is_some_and(can_render);
        let widths = state.variants.widths();
        let srcset = renderable
            .then(|| widths.iter().map(|w| format!("download/{id}?width={w} {w}w")).collect::<Vec<_>>().join(", "));
        // Without srcset support, a picture as wide as the page's column.
        let fallback = widths.iter().copied().find(|w| *w >= 640).or(widths.last().copied());
        let src = match fallback {
            Some(width) if renderable => format!("download/{id}?width={width}"),
            _ => format!("download/{id}"),
        };
        images.push(ViewImage {
            src,
            srcset,
            lazy: index > 0,
            id: id.to_string(),
            size: human_size(info.size),
            content_type: info.content_type,
            dimensions: info.width.zip(info.height).map(|(w, h)| format!("{w} × {h}")),
            uploaded: HttpDate::from(info.last_modified).to_string(),
            file_name: info.file_name,
            token,
            location_removed: info.metadata_removed.contains(Kind::Gps),
            metadata_removed: (!info.metadata_removed.is_empty()).then(|| describe_removed(&info.metadata_removed)),
        });
    }
    let page = ViewPage { layout: Layout::new(base_path(&req)), images };
    // A page showing delete tokens must not be cached anywhere.
    let cache = if tokens.is_empty() { CacheDirective::NoCache } else { CacheDirective::NoStore };
    html(StatusCode::OK, page.render(), cache)
}

pub fn error_page(status: StatusCode, error: &ErrorBody, base_path: &str) -> String {
    let page = ErrorPage {
        layout: Layout::new(base_path.to_owned()),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message: &error.message,
        code: error.code,
    };
    page.render().unwrap_or_else(|_| format!("<!doctype html><title>{}</title><p>{}</p>", status.as_u16(), status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(25 * 1024 * 1024), "25.0 MiB");
    }
}
