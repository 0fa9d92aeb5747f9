//! JSON for programs, HTML for people: a request whose `Accept` header names
//! `text/html` (as browsers do for navigations and form posts) gets HTML
//! error pages and a redirect after a form upload.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, Accept, Header, HeaderValue, Quality};
use actix_web::middleware::Next;
use actix_web::mime;

use super::error::ErrorBody;
use super::public_url::base_path;
use super::routes::pages;

/// True when `Accept` names `text/html` (or XHTML) with a quality above
/// zero, as browsers do for navigations and form posts; `*/*` is not enough.
pub fn wants_html(req: &impl actix_web::HttpMessage) -> bool {
    if !req.headers().contains_key(header::ACCEPT) {
        return false;
    }
    Accept::parse(req).is_ok_and(|accept| {
        accept.iter().any(|item| {
            item.quality > Quality::ZERO
                && (item.item == mime::TEXT_HTML || item.item.essence_str() == "application/xhtml+xml")
        })
    })
}

/// Re-renders JSON error bodies as HTML pages for browsers.
pub async fn html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let html = wants_html(&req);
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
    use actix_web::test::TestRequest;

    use super::*;

    fn accept(value: &str) -> actix_web::HttpRequest {
        TestRequest::default().insert_header((header::ACCEPT, value)).to_http_request()
    }

    #[test]
    fn browsers_want_html_and_scripts_do_not() {
        assert!(wants_html(&accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")));
        assert!(wants_html(&accept("application/xhtml+xml")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("application/json, text/html;q=0")));
        assert!(!wants_html(&accept("application/json, text/html;Q=0")));
        assert!(!wants_html(&accept("application/json, text/html; q=0.000")));
        assert!(!wants_html(&TestRequest::default().to_http_request()));
    }
}
