//! Where the client addressed us, and who the client is, behind a reverse proxy.
//!
//! Forwarding headers (`Forwarded`, `X-Forwarded-Proto`, `-Host`, `-Prefix`,
//! `-For`) are believed only from a peer listed in `server.trusted_proxies`,
//! and even then only when well-formed: the scheme must be `http` or `https`,
//! the host a plain `host[:port]`, the prefix a plain path. Anything else is
//! ignored and the request's own values are used, so a client can never make
//! the service print `javascript://…` or a foreign-looking URL.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use actix_web::http::uri::Authority;
use forwarded_header_value::{ForwardedHeaderValue, Protocol};
use ipnet::IpNet;

pub const FORWARDED: &str = "forwarded";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const X_FORWARDED_PREFIX: &str = "x-forwarded-prefix";
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The peers whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }
}

/// Scheme, authority and mount point the client used to reach us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: &'static str,
    /// `host` or `host:port`, checked to be nothing else.
    pub host: String,
    /// `""` or a plain path such as `/dev`.
    pub prefix: String,
}

impl Origin {
    /// `scheme://host[/prefix]`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.prefix)
    }
}

/// The origin of `req`: the trusted proxy's word where it is well-formed, the
/// request's own `Host` (or, failing that, `fallback_host`, our listening
/// address) otherwise.
pub fn origin(req: &HttpRequest, trusted: &TrustedProxies, fallback_host: &str) -> Origin {
    let own_host =
        || header(req.headers(), "host").filter(|host| is_authority(host)).unwrap_or(fallback_host).to_owned();
    if !peer_is_trusted(req, trusted) {
        return Origin { scheme: "http", host: own_host(), prefix: String::new() };
    }
    let headers = req.headers();
    let forwarded = header(headers, FORWARDED).and_then(|v| ForwardedHeaderValue::from_forwarded(v).ok());
    let proximate = forwarded.as_ref().map(ForwardedHeaderValue::proximate);

    let scheme = proximate
        .and_then(|f| f.forwarded_proto)
        .map(|proto| match proto {
            Protocol::Http => "http",
            Protocol::Https => "https",
        })
        .or_else(|| last_value(headers, X_FORWARDED_PROTO).and_then(scheme_of))
        .unwrap_or("http");
    let host = proximate
        .and_then(|f| f.forwarded_host.clone())
        .filter(|host| is_authority(host))
        .or_else(|| last_value(headers, X_FORWARDED_HOST).filter(|host| is_authority(host)).map(str::to_owned))
        .unwrap_or_else(own_host);
    let prefix = header(headers, X_FORWARDED_PREFIX).map(plain_prefix).unwrap_or_default();
    Origin { scheme, host, prefix }
}

/// The client's address for the logs: the address the trusted proxy saw (the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy), or the peer.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.trusts(peer) {
        return Some(peer);
    }
    let forwarded_for = header(req.headers(), X_FORWARDED_FOR)
        .and_then(|v| ForwardedHeaderValue::from_x_forwarded_for(v).ok())
        .and_then(|chain| chain.iter().rev().filter_map(|hop| hop.forwarded_for_ip()).find(|ip| !trusted.trusts(*ip)));
    Some(forwarded_for.unwrap_or(peer))
}

fn peer_is_trusted(req: &HttpRequest, trusted: &TrustedProxies) -> bool {
    req.peer_addr().is_some_and(|peer| trusted.trusts(peer.ip()))
}

/// The header's value when it occurs exactly once and is visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok().map(str::trim)
}

/// The last entry of a comma-separated header: the one our proxy appended.
fn last_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header(headers, name)?.rsplit(',').next().map(str::trim)
}

fn scheme_of(value: &str) -> Option<&'static str> {
    if value.eq_ignore_ascii_case("https") {
        Some("https")
    } else if value.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// `host` or `host:port`: a DNS name, an IPv4 address or a bracketed IPv6
/// address, and an optional decimal port. No user info, path or anything else.
pub fn is_authority(value: &str) -> bool {
    if value.is_empty() || value.len() > 261 || value.contains('@') {
        return false;
    }
    let Ok(authority) = value.parse::<Authority>() else { return false };
    let host = authority.host();
    let port_ok = match value.strip_prefix(host).map(|rest| rest.strip_prefix(':')) {
        Some(None) => value == host,
        Some(Some(port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
        None => false,
    };
    port_ok && is_host(host)
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The proxy's mount point when it is a plain path (`/dev`), else nothing.
pub fn plain_prefix(value: &str) -> String {
    let prefix = value.trim().trim_end_matches('/');
    let plain = prefix.starts_with('/')
        && !prefix.contains("//")
        && !prefix.split('/').any(|segment| segment == ".." || segment == ".")
        && prefix.len() <= 128
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if plain { prefix.to_owned() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use actix_web::test::TestRequest;

    use super::*;

    fn loopback() -> TrustedProxies {
        TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse::<SocketAddr>().unwrap());
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        req.to_http_request()
    }

    #[test]
    fn a_trusted_proxy_sets_scheme_host_and_prefix() {
        let req = request(
            "127.0.0.1:5000",
            &[
                ("host", "internal:8000"),
                (X_FORWARDED_PROTO, "https"),
                (X_FORWARDED_HOST, "img.example.com"),
                (X_FORWARDED_PREFIX, "/test"),
            ],
        );
        assert_eq!(origin(&req, &loopback(), "127.0.0.1:8000").base_url(), "https://img.example.com/test");
    }

    #[test]
    fn anyone_else_gets_the_request_own_values() {
        let req = request(
            "203.0.113.9:5000",
            &[
                ("host", "img.example.com"),
                (X_FORWARDED_PROTO, "https"),
                (X_FORWARDED_HOST, "evil.example"),
                (X_FORWARDED_PREFIX, "/x"),
                (FORWARDED, "proto=https;host=evil.example"),
            ],
        );
        assert_eq!(origin(&req, &loopback(), "127.0.0.1:8000").base_url(), "http://img.example.com");
    }

    #[test]
    fn malformed_forwarding_values_are_ignored_even_from_the_proxy() {
        for (name, value) in [
            (X_FORWARDED_PROTO, "javascript"),
            (X_FORWARDED_HOST, "//evil.example"),
            (X_FORWARDED_HOST, "x\"><script>alert(1)</script>"),
            (X_FORWARDED_HOST, "user@evil.example"),
            (X_FORWARDED_HOST, "evil.example:1/x"),
            (X_FORWARDED_HOST, "evil.example:99999"),
            (FORWARDED, "proto=javascript;host=\"evil.example:1/x\""),
            (FORWARDED, "host=\"a b\""),
            (X_FORWARDED_PREFIX, "//evil.example"),
            (X_FORWARDED_PREFIX, "/\"><script>"),
        ] {
            let req = request("127.0.0.1:5000", &[("host", "img.example.com"), (name, value)]);
            let url = origin(&req, &loopback(), "127.0.0.1:8000").base_url();
            assert_eq!(url, "http://img.example.com", "{name}: {value}");
        }
    }

    #[test]
    fn forwarded_wins_and_its_nearest_element_counts() {
        let req = request(
            "127.0.0.1:5000",
            &[
                ("host", "a.example"),
                (FORWARDED, "proto=http;host=evil.example, proto=https;host=\"img.example.com:8443\""),
            ],
        );
        assert_eq!(origin(&req, &loopback(), "127.0.0.1:8000").base_url(), "https://img.example.com:8443");
    }

    #[test]
    fn a_bad_host_header_falls_back_to_the_listening_address() {
        let req = request("203.0.113.9:5000", &[("host", "evil\"><b>")]);
        let host = origin(&req, &loopback(), "127.0.0.1:8000").host;
        assert!(is_authority(&host), "{host}");
        assert!(!host.contains("evil"));
    }

    #[test]
    fn authorities_are_host_and_port_only() {
        for good in
            ["a", "img.example.com", "img.example.com:8080", "127.0.0.1:18080", "[::1]:80", "xn--bcher-kva.example"]
        {
            assert!(is_authority(good), "{good}");
        }
        for bad in ["", "a/b", "a:b", "a:", ":80", "a b", "a@b", "[::1", "-a.example", "a..b", "a:65536", "é.example"]
        {
            assert!(!is_authority(bad), "{bad}");
        }
    }

    #[test]
    fn the_client_ip_comes_from_the_proxy_only() {
        let trusted = loopback();
        let via_proxy = request("127.0.0.1:5000", &[(X_FORWARDED_FOR, "198.51.100.1, 203.0.113.7")]);
        assert_eq!(client_ip(&via_proxy, &trusted), Some("203.0.113.7".parse().unwrap()));
        let direct = request("203.0.113.9:5000", &[(X_FORWARDED_FOR, "10.0.0.1")]);
        assert_eq!(client_ip(&direct, &trusted), Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn the_prefix_is_used_when_it_is_a_plain_path() {
        assert_eq!(plain_prefix("/dev"), "/dev");
        assert_eq!(plain_prefix("/dev/"), "/dev");
        assert_eq!(plain_prefix("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(plain_prefix("dev"), "");
        assert_eq!(plain_prefix("//evil.example"), "");
        assert_eq!(plain_prefix("/../x"), "");
        assert_eq!(plain_prefix("/\"><script>"), "");
    }
}
