//! Absolute URLs for API responses, correct behind a reverse proxy.
//!
//! `server.public_url`, when set, is the base. Otherwise the base comes from
//! the request: scheme and host from `Forwarded` / `X-Forwarded-Proto` /
//! `X-Forwarded-Host` / `Host`, and the path prefix the proxy mounted us
//! under from `X-Forwarded-Prefix` (nginx sends `/dev` for `/dev/main/...`).

use actix_web::HttpRequest;

use crate::state::AppState;

pub const FORWARDED_PREFIX: &str = "x-forwarded-prefix";

/// The proxy's mount point: `""` or something like `/dev`. Anything that is
/// not a plain path is ignored.
pub fn forwarded_prefix(req: &HttpRequest) -> String {
    let Some(value) = req.headers().get(FORWARDED_PREFIX).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    let prefix = value.trim().trim_end_matches('/');
    let plain = prefix.starts_with('/')
        && !prefix.contains("//")
        && !prefix.split('/').any(|segment| segment == "..")
        && prefix.len() <= 128
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if plain { prefix.to_owned() } else { String::new() }
}

/// `scheme://host[/prefix]`, without a trailing slash.
pub fn base_url(req: &HttpRequest) -> String {
    if let Some(public) = configured_public_url(req) {
        return public;
    }
    let info = req.connection_info();
    format!("{}://{}{}", info.scheme(), info.host(), forwarded_prefix(req))
}

/// The path part of the base: what absolute-path links need.
pub fn base_path(req: &HttpRequest) -> String {
    match configured_public_url(req) {
        Some(public) => {
            let after_scheme = public.split_once("://").map_or(public.as_str(), |(_, rest)| rest);
            after_scheme.find('/').map_or_else(String::new, |slash| after_scheme[slash..].to_owned())
        }
        None => forwarded_prefix(req),
    }
}

fn configured_public_url(req: &HttpRequest) -> Option<String> {
    let state = req.app_data::<actix_web::web::Data<AppState>>()?;
    let public = &state.public_url;
    (!public.is_empty()).then(|| public.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_forwarded_prefix_is_used_when_it_is_a_plain_path() {
        let prefix = |value: &str| {
            forwarded_prefix(&TestRequest::default().insert_header((FORWARDED_PREFIX, value)).to_http_request())
        };
        assert_eq!(prefix("/dev"), "/dev");
        assert_eq!(prefix("/dev/"), "/dev");
        assert_eq!(prefix("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(prefix("dev"), "");
        assert_eq!(prefix("//evil.example"), "");
        assert_eq!(prefix("/../x"), "");
        assert_eq!(prefix("/\"><script>"), "");
        assert_eq!(forwarded_prefix(&TestRequest::default().to_http_request()), "");
    }

    #[test]
    fn the_base_url_follows_the_proxy_headers() {
        let req = TestRequest::default()
            .insert_header(("host", "internal:8000"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "img.example.com"))
            .insert_header((FORWARDED_PREFIX, "/test"))
            .to_http_request();
        assert_eq!(base_url(&req), "https://img.example.com/test");
        assert_eq!(base_path(&req), "/test");
    }
}
