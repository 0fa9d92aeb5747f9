//! `storage.s3.resolve`: host names the S3 client resolves itself, exactly
//! (`s3.internal`) or by suffix (`*.s3.internal`: every bucket host under
//! it), before asking the system. For stores whose names the machine's DNS
//! does not know (virtual-hosted buckets under a local domain, split-horizon
//! DNS in production).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};

/// Cheap to clone: the HTTP client wants `Clone + 'static`.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    exact: Arc<HashMap<String, Vec<IpAddr>>>,
    /// (".suffix", addresses), longest suffix first.
    suffixes: Arc<Vec<(String, Vec<IpAddr>)>>,
}

impl StaticResolver {
    /// `entries`: (`"s3.internal"`, ip) or (`"*.s3.internal"`, ip).
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, IpAddr)>) -> Self {
        let mut exact: HashMap<String, Vec<IpAddr>> = HashMap::new();
        let mut suffixes: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in entries {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match name.strip_prefix('*') {
                // "*.a.b" matches "x.a.b", not "a.b" itself.
                Some(suffix) if suffix.starts_with('.') => suffixes.entry(suffix.to_owned()).or_default().push(ip),
                _ => exact.entry(name).or_default().push(ip),
            }
        }
        let mut suffixes: Vec<_> = suffixes.into_iter().collect();
        suffixes.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Self { exact: Arc::new(exact), suffixes: Arc::new(suffixes) }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// The addresses configured for `host`, if any.
    pub fn lookup(&self, host: &str) -> Option<Vec<IpAddr>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(ips) = self.exact.get(&host) {
            return Some(ips.clone());
        }
        self.suffixes
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|(_, ips)| ips.clone())
    }
}

impl ResolveDns for StaticResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        if let Some(ips) = self.lookup(name) {
            return DnsFuture::ready(Ok(ips));
        }
        // Everything else: the system resolver, off the async threads.
        let host = name.to_owned();
        DnsFuture::new(async move {
            tokio::task::spawn_blocking(move || {
                (host.as_str(), 0u16).to_socket_addrs().map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
            })
            .await
            .map_err(ResolveDnsError::new)?
            .map_err(ResolveDnsError::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_suffixes_resolve_and_others_do_not() {
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let resolver = StaticResolver::new([("s3.local", one), ("*.s3.local", two), ("*.b.s3.local", one)]);
        assert_eq!(resolver.lookup("S3.local."), Some(vec![one]));
        assert_eq!(resolver.lookup("bucket.s3.local"), Some(vec![two]));
        assert_eq!(resolver.lookup("x.b.s3.local"), Some(vec![one]), "the longest suffix wins");
        assert_eq!(resolver.lookup("evils3.local"), None);
        assert_eq!(resolver.lookup("example.com"), None);
    }
}
