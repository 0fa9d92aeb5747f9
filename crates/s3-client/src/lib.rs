//! The one S3 client configuration of picshelf, its e2e suite and its
//! benchmark: `aws-sdk-s3` on rustls with ring (no aws-lc), checksums only
//! when an operation requires them (the SDK's default CRC32 trailers and
//! aws-chunked bodies are refused by Aliyun OSS, older MinIO and others), an
//! explicit region, path-style or virtual-hosted addressing as asked; host
//! names it resolves itself ([`resolve`]) and a forward proxy (from the
//! environment's `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, or given).

pub mod resolve;

use std::net::IpAddr;
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

pub use aws_sdk_s3;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

/// Where a bucket is and how to sign for it. (No `Debug`: it holds a secret.)
#[derive(Clone)]
pub struct ClientOptions {
    /// The store's URL; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// `host/bucket/key` rather than `bucket.host/key`.
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub connect_timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Host names (exact or `*.suffix`) resolved to these addresses.
    pub resolve: Vec<(String, IpAddr)>,
    pub proxy: Proxy,
}

/// How the client reaches the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case), when set.
    FromEnvironment,
    /// Directly, whatever the environment says.
    Disabled,
    /// Through this proxy for every request (`http://user:pass@host:port`).
    Url(String),
}

impl Proxy {
    fn config(&self) -> Result<ProxyConfig, String> {
        match self {
            Self::FromEnvironment => Ok(ProxyConfig::from_env()),
            Self::Disabled => Ok(ProxyConfig::disabled()),
            Self::Url(url) => ProxyConfig::all(url.as_str()).map_err(|e| format!("storage.s3.proxy: {e}")),
        }
    }
}

impl ClientOptions {
    /// Path-style on `endpoint`, as Garage and MinIO are usually reached.
    pub fn path_style(endpoint: &str, region: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        Self {
            endpoint: Some(endpoint.to_owned()),
            region: region.to_owned(),
            path_style: true,
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            resolve: Vec::new(),
            proxy: Proxy::Disabled,
        }
    }
}

/// The HTTP client under the SDK: rustls on ring, the resolver and the proxy.
fn http_client(options: &ClientOptions) -> Result<aws_sdk_s3::config::SharedHttpClient, String> {
    let resolver = resolve::StaticResolver::new(options.resolve.iter().map(|(host, ip)| (host.as_str(), *ip)));
    let proxy = options.proxy.config()?;
    // The top-level builder has no proxy setting: build each connector ourselves.
    Ok(aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings: Option<&HttpConnectorSettings>, components: Option<&RuntimeComponents>| {
            let mut connector = aws_smithy_http_client::Connector::builder();
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector
                .proxy_config(proxy.clone())
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_with_resolver(resolver.clone())
        },
    ))
}

/// A client (with its own connection pool): make one and keep it. Fails
/// only on a proxy URL that does not parse.
pub fn client(options: &ClientOptions) -> Result<aws_sdk_s3::Client, String> {
    let http_client = http_client(options)?;
    let credentials =
        Credentials::new(options.access_key_id.clone(), options.secret_access_key.clone(), None, None, "picshelf");
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(options.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(options.path_style)
        .http_client(http_client)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(TimeoutConfig::builder().connect_timeout(options.connect_timeout).build())
        .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts));
    if let Some(endpoint) = &options.endpoint {
        config = config.endpoint_url(endpoint.clone());
    }
    Ok(aws_sdk_s3::Client::from_conf(config.build()))
}
