//! The one S3 client configuration of picshelf, its e2e suite and its
//! benchmark: `aws-sdk-s3` on rustls with ring (no aws-lc), checksums only
//! when an operation requires them (the SDK's default CRC32 trailers and
//! aws-chunked bodies are refused by Aliyun OSS, older MinIO and others), an
//! explicit region, path-style or virtual-hosted addressing as asked.

use std::time::Duration;

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
        }
    }
}

/// A client (with its own connection pool): make one and keep it.
pub fn client(options: &ClientOptions) -> aws_sdk_s3::Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
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
    aws_sdk_s3::Client::from_conf(config.build())
}
