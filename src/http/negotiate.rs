//! JSON for programs, HTML for people: a request whose `Accept` header names
//! `text/html` (as browsers do for navigations and form posts) gets HTML
//! error pages and a redirect after a form upload.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;

use crate::error::ErrorBody;
use crate::http::public_url::base_path;
use crate::routes::pages;

pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim();
            // `text/html;q=0` means "not HTML".
            let refused =
                parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            Some((media, refused))
        })
        .any(|(media, refused)| {
            !refused && (media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml"))
        })
}

/// Re-renders JSON error bodies as HTML pages for browsers.
pub async fn html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let html = wants_html(req.headers());
    let res = next.call(req).await?.map_into_boxed_body();
    if !html || req_is_head(&res) {
        return Ok(res);
    }
    let Some(error) = res.response().extensions().get::<ErrorBody>().cloned() else { return Ok(res) };
    let status = res.status();
    let page = pages::error_page(status, &error, &base_path(res.request()));
    Ok(res.map_body(|head, _| {
        head.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        BoxBody::new(page)
    }))
}

fn req_is_head(res: &ServiceResponse<BoxBody>) -> bool {
    res.request().method() == actix_web::http::Method::HEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn browsers_want_html_and_scripts_do_not() {
        assert!(wants_html(&accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("application/json, text/html;q=0")));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
