//! `If-None-Match` and `If-Range` against a strong entity tag, with actix's
//! typed headers and `EntityTag` comparisons.

use actix_web::HttpRequest;
use actix_web::http::header::{self, EntityTag, Header, IfNoneMatch, IfRange};

/// True when `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks) or is `*`.
pub fn none_match_hits(req: &HttpRequest, etag: &EntityTag) -> bool {
    if !req.headers().contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(etag)),
        Err(_) => false,
    }
}

/// True when a `Range` may be honoured: no `If-Range`, or one that names this
/// exact entity (strong comparison; dates are not precise enough to trust).
pub fn if_range_allows(req: &HttpRequest, etag: &EntityTag) -> bool {
    if !req.headers().contains_key(header::IF_RANGE) {
        return true;
    }
    matches!(IfRange::parse(req), Ok(IfRange::EntityTag(tag)) if tag.strong_eq(etag))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn request(name: header::HeaderName, value: &str) -> HttpRequest {
        TestRequest::default().insert_header((name, value)).to_http_request()
    }

    #[test]
    fn if_none_match_lists_star_and_weak_forms() {
        let etag = EntityTag::new_strong("abc".into());
        assert!(none_match_hits(&request(header::IF_NONE_MATCH, "\"abc\""), &etag));
        assert!(none_match_hits(&request(header::IF_NONE_MATCH, "\"x\", W/\"abc\""), &etag));
        assert!(none_match_hits(&request(header::IF_NONE_MATCH, "*"), &etag));
        assert!(!none_match_hits(&request(header::IF_NONE_MATCH, "\"abcd\""), &etag));
        assert!(!none_match_hits(&TestRequest::default().to_http_request(), &etag));
    }

    #[test]
    fn if_range_needs_the_same_strong_tag() {
        let etag = EntityTag::new_strong("abc".into());
        assert!(if_range_allows(&TestRequest::default().to_http_request(), &etag));
        assert!(if_range_allows(&request(header::IF_RANGE, "\"abc\""), &etag));
        assert!(!if_range_allows(&request(header::IF_RANGE, "W/\"abc\""), &etag));
        assert!(!if_range_allows(&request(header::IF_RANGE, "\"old\""), &etag));
        assert!(!if_range_allows(&request(header::IF_RANGE, "Wed, 21 Oct 2015 07:28:00 GMT"), &etag));
    }
}
