//! The `aws-sdk-s3` client picshelf talks to its bucket with, configured for
//! S3-compatible stores as well as AWS.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use secrecy::ExposeSecret;

use crate::config::S3Settings;

/// One client (and connection pool) for the life of the store.
pub fn build(settings: &S3Settings) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let credentials = Credentials::new(
        settings.access_key_id.clone(),
        settings.secret_access_key.expose_secret().to_owned(),
        None,
        None,
        "picshelf-settings",
    );
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(settings.path_style)
        .http_client(http_client)
        // Many S3-compatible stores reject the SDK's default CRC32 trailers and aws-chunked bodies.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Each call's total deadline is the store's own (see `Bucket::run`); the
        // SDK only bounds the connect, and retries what fails fast within it.
        .timeout_config(
            TimeoutConfig::builder().connect_timeout(Duration::from_millis(settings.connect_timeout_ms)).build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    if !settings.endpoint.is_empty() {
        config = config.endpoint_url(settings.endpoint.clone());
    }
    Client::from_conf(config.build())
}
