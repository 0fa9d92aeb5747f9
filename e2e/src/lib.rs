//! What the e2e tests share: the target (from environment variables only),
//! an HTTP client, generated images, and a read-only S3 view of the buckets.
//!
//! Environment:
//! - `E2E_BASE_URL`: the proxy, e.g. `http://127.0.0.1:18080` or `http://nginx:80`;
//! - `E2E_S3_ENDPOINT`, `E2E_S3_REGION`, `E2E_S3_ACCESS_KEY_ID`,
//!   `E2E_S3_SECRET_ACCESS_KEY`: a key that can read the three buckets;
//! - `E2E_BUCKET_PROD`, `E2E_BUCKET_DEV`, `E2E_BUCKET_TEST`: the deployment's
//!   three environments under `/`, `/dev` and `/test`; or `E2E_BUCKET` alone:
//!   one environment at the base URL (a preview, `scripts/preview env NAME`);
//! - `E2E_MAX_REQUEST_BYTES`: the body limit of proxy and app (default 104857600);
//! - `E2E_CACHE_VALID_SECS`: how long the proxy serves a cached download before
//!   asking the app again, nginx's `PICSHELF_NGINX_CACHE_VALID_SECS` (default 5).

use std::time::Duration;

pub mod contract;

use contract::{Contract, Exchange};

use picshelf_s3_client::{ClientOptions, aws_sdk_s3};
use sha2::{Digest, Sha256};

pub struct Target {
    pub base_url: String,
    /// The base URL's path ("" at the root, "/preview/NAME" for a preview).
    pub base_path: String,
    /// Each environment's prefix under the base URL, and its bucket.
    pub buckets: Vec<(&'static str, String)>,
    pub max_request_bytes: u64,
    /// The proxy's download cache validity: the longest a deleted image may still be served.
    pub cache_valid: Duration,
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
        let base_url = var("E2E_BASE_URL").trim_end_matches('/').to_owned();
        let base_path =
            reqwest::Url::parse(&base_url).expect("E2E_BASE_URL is a URL").path().trim_end_matches('/').to_owned();
        let buckets = match std::env::var("E2E_BUCKET") {
            Ok(bucket) => vec![("", bucket)],
            Err(_) => {
                vec![("", var("E2E_BUCKET_PROD")), ("/dev", var("E2E_BUCKET_DEV")), ("/test", var("E2E_BUCKET_TEST"))]
            }
        };
        Self {
            base_url,
            base_path,
            buckets,
            max_request_bytes: std::env::var("E2E_MAX_REQUEST_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(104_857_600),
            cache_valid: Duration::from_secs(
                std::env::var("E2E_CACHE_VALID_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5),
            ),
            s3: picshelf_s3_client::client(&options).expect("a client without a proxy URL builds"),
        }
    }

    /// The prefix of the environment `name` (`"/dev"`, `"/test"`), or `""`
    /// when the target is a single environment.
    pub fn prefix(&self, name: &str) -> &'static str {
        self.buckets
            .iter()
            .map(|(prefix, _)| *prefix)
            .find(|prefix| prefix.trim_start_matches('/') == name)
            .unwrap_or("")
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

/// The suite's HTTP client: every answer is checked against the contract.
pub fn client() -> Client {
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client");
    Client { inner }
}

/// A `reqwest::Client` whose answers are read whole and checked against the
/// contract the service serves before a test sees them.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    pub fn get(&self, url: impl AsRef<str>) -> Request {
        self.request(reqwest::Method::GET, url.as_ref())
    }

    pub fn head(&self, url: impl AsRef<str>) -> Request {
        self.request(reqwest::Method::HEAD, url.as_ref())
    }

    pub fn post(&self, url: impl AsRef<str>) -> Request {
        self.request(reqwest::Method::POST, url.as_ref())
    }

    pub fn delete(&self, url: impl AsRef<str>) -> Request {
        self.request(reqwest::Method::DELETE, url.as_ref())
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> Request {
        Request { builder: self.inner.request(method, url) }
    }
}

pub struct Request {
    builder: reqwest::RequestBuilder,
}

impl Request {
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        Self { builder: self.builder.header(name, value.as_ref()) }
    }

    pub fn multipart(self, form: reqwest::multipart::Form) -> Self {
        Self { builder: self.builder.multipart(form) }
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self { builder: self.builder.body(body) }
    }

    /// Sends, reads the answer whole and panics if it breaks the contract.
    pub async fn send(self) -> Result<Response, reqwest::Error> {
        let (client, request) = self.builder.build_split();
        let request = request?;
        let method = request.method().clone();
        let response = client.execute(request).await?;
        let url = response.url().clone();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let answer = Response { url, status, headers, body };
        answer.check_contract(&method).await;
        Ok(answer)
    }
}

/// An answer, read whole and checked against the contract.
pub struct Response {
    url: reqwest::Url,
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Response {
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    pub async fn bytes(self) -> Result<bytes::Bytes, reqwest::Error> {
        Ok(self.body)
    }

    pub async fn text(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.body.to_vec())
    }

    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    async fn check_contract(&self, method: &reqwest::Method) {
        let target_base = var("E2E_BASE_URL");
        let base = reqwest::Url::parse(target_base.trim_end_matches('/')).expect("E2E_BASE_URL is a URL");
        let path = self.url.path().strip_prefix(base.path().trim_end_matches('/')).unwrap_or(self.url.path());
        let contract = Contract::served(base.as_str().trim_end_matches('/')).await;
        let content_type = self.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let exchange = Exchange {
            method: method.as_str(),
            path: Contract::app_path(path),
            status: self.status.as_u16(),
            content_type,
            body: &self.body,
        };
        let breaches = contract.breaches(&exchange);
        assert!(
            breaches.is_empty(),
            "{method} {} broke the contract (docs/openapi.json):\n  {}\nanswer: {} {content_type:?} {}",
            self.url,
            breaches.join("\n  "),
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)]),
        );
    }
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
