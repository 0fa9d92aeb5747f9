//! What the e2e tests share: the target (from environment variables only),
//! an HTTP client, generated images, and a read-only S3 view of the buckets.
//!
//! Environment:
//! - `E2E_BASE_URL`: the proxy, e.g. `http://127.0.0.1:18080` or `http://nginx:80`;
//! - `E2E_S3_ENDPOINT`, `E2E_S3_REGION`, `E2E_S3_ACCESS_KEY_ID`,
//!   `E2E_S3_SECRET_ACCESS_KEY`: a key that can read the three buckets;
//! - `E2E_BUCKET_PROD`, `E2E_BUCKET_DEV`, `E2E_BUCKET_TEST`;
//! - `E2E_MAX_REQUEST_BYTES`: the body limit of proxy and app (default 104857600).

use std::time::Duration;

use picshelf_s3_client::{ClientOptions, aws_sdk_s3};
use sha2::{Digest, Sha256};

pub struct Target {
    pub base_url: String,
    pub buckets: [(&'static str, String); 3],
    pub max_request_bytes: u64,
    s3: aws_sdk_s3::Client,
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: the e2e suite needs its target (see e2e/README.md)"))
}

impl Target {
    pub fn from_env() -> Self {
        let options = ClientOptions::path_style(
            &var("E2E_S3_ENDPOINT"),
            &var("E2E_S3_REGION"),
            &var("E2E_S3_ACCESS_KEY_ID"),
            &var("E2E_S3_SECRET_ACCESS_KEY"),
        );
        Self {
            base_url: var("E2E_BASE_URL").trim_end_matches('/').to_owned(),
            buckets: [("", var("E2E_BUCKET_PROD")), ("/dev", var("E2E_BUCKET_DEV")), ("/test", var("E2E_BUCKET_TEST"))],
            max_request_bytes: std::env::var("E2E_MAX_REQUEST_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(104_857_600),
            s3: picshelf_s3_client::client(&options).expect("a client without a proxy URL builds"),
        }
    }

    /// `base_url` + environment prefix (`""`, `/dev`, `/test`) + `path`.
    pub fn url(&self, prefix: &str, path: &str) -> String {
        format!("{}{prefix}{path}", self.base_url)
    }

    /// Whether `bucket` holds `key`, asked of the store directly.
    pub async fn bucket_has(&self, bucket: &str, key: &str) -> bool {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => false,
            Err(e) => panic!("HeadObject {bucket}/{key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
        }
    }

    /// The stored object's bytes, read from the store directly.
    pub async fn bucket_bytes(&self, bucket: &str, key: &str) -> Vec<u8> {
        let object = self.s3.get_object().bucket(bucket).key(key).send().await.expect("GetObject");
        object.body.collect().await.expect("object body").into_bytes().to_vec()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A valid PNG of `width` x `height` RGB pixels; another `seed`, other bytes.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    picshelf_test_images::png_seeded(width, height, seed)
}

/// A multipart form with one `file` field.
pub fn form(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("image/png").expect("mime");
    reqwest::multipart::Form::new().part("file", part)
}
