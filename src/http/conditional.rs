//! `If-None-Match` and `If-Range` against a strong entity tag.

use actix_web::http::header::{self, HeaderMap};

/// True when `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks) or is `*`.
pub fn none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    let wanted = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque(tag) == wanted)
}

/// True when a `Range` may be honoured: no `If-Range`, or one that names this
/// exact entity (strong comparison; dates are not precise enough to trust).
pub fn if_range_allows(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE).map(|v| v.to_str()) {
        None => true,
        Some(Ok(tag)) => tag.trim() == etag && !etag.starts_with("W/"),
        Some(Err(_)) => false,
    }
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn if_none_match_lists_star_and_weak_forms() {
        let etag = "\"abc\"";
        assert!(none_match_hits(&headers(header::IF_NONE_MATCH, "\"abc\""), etag));
        assert!(none_match_hits(&headers(header::IF_NONE_MATCH, "\"x\", W/\"abc\""), etag));
        assert!(none_match_hits(&headers(header::IF_NONE_MATCH, "*"), etag));
        assert!(!none_match_hits(&headers(header::IF_NONE_MATCH, "\"abcd\""), etag));
        assert!(!none_match_hits(&HeaderMap::new(), etag));
    }

    #[test]
    fn if_range_needs_the_same_strong_tag() {
        let etag = "\"abc\"";
        assert!(if_range_allows(&HeaderMap::new(), etag));
        assert!(if_range_allows(&headers(header::IF_RANGE, "\"abc\""), etag));
        assert!(!if_range_allows(&headers(header::IF_RANGE, "\"old\""), etag));
        assert!(!if_range_allows(&headers(header::IF_RANGE, "Wed, 21 Oct 2015 07:28:00 GMT"), etag));
    }
}
