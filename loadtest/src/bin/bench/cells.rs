//! One cell of the benchmark: a batch of requests run with a fixed number in
//! flight, timed to the last byte; and the requests themselves (picshelf
//! uploads and downloads, presigned Garage PUTs and GETs).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use picshelf_loadtest::http;
use picshelf_loadtest::stats::percentile;
use picshelf_s3_client::aws_sdk_s3::presigning::PresigningConfig;
use picshelf_s3_client::{ClientOptions, aws_sdk_s3};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HeaderValue};

use super::MIB;

/// One request to send: method, URL, body, headers.
#[derive(Clone)]
pub struct Job {
    pub method: reqwest::Method,
    pub url: String,
    pub body: Option<Bytes>,
    pub headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    /// Expected status and, for downloads, body length.
    pub expect_status: u16,
    pub expect_len: Option<u64>,
}

pub struct CellResult {
    pub requests: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub wall: Duration,
    pub payload_bytes: u64,
    pub latencies_us: Vec<u64>,
    /// Answers of successful requests (upload JSON), in no particular order.
    pub bodies: Vec<Bytes>,
    /// Answers by their `X-Cache-Status` (nginx's cache), when they had one.
    pub cache_statuses: BTreeMap<String, usize>,
}

impl CellResult {
    pub fn mib_per_s(&self) -> f64 {
        self.payload_bytes as f64 / MIB as f64 / self.wall.as_secs_f64()
    }
    pub fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
    pub fn p(&self, pct: f64) -> f64 {
        if self.latencies_us.is_empty() { f64::NAN } else { percentile(&self.latencies_us, pct) as f64 / 1000.0 }
    }

    /// p-th percentile latency (ms) over every request of several cells (the rounds of one).
    pub fn p_of_all(cells: &[CellResult], pct: f64) -> f64 {
        let mut all: Vec<u64> = cells.iter().flat_map(|c| c.latencies_us.iter().copied()).collect();
        all.sort_unstable();
        if all.is_empty() { f64::NAN } else { percentile(&all, pct) as f64 / 1000.0 }
    }
}

/// One request's time (µs), payload bytes moved, its answer when kept and
/// its `X-Cache-Status`; or why it failed.
type Outcome = Result<(u64, u64, Option<Bytes>, Option<String>), String>;

/// Runs `jobs` with `concurrency` in flight, reading every answer to its end.
pub async fn run_cell(client: &reqwest::Client, jobs: Vec<Job>, concurrency: usize, keep_bodies: bool) -> CellResult {
    let requests = jobs.len();
    let started = Instant::now();
    let outcomes: Vec<Outcome> = futures_util::stream::iter(jobs)
        .map(|job| {
            let client = client.clone();
            async move {
                let payload = job.body.as_ref().map_or(0, |b| b.len() as u64);
                let mut builder = client.request(job.method.clone(), &job.url);
                for (k, v) in &job.headers {
                    builder = builder.header(k, v);
                }
                if let Some(body) = job.body {
                    builder = builder.body(body);
                }
                let t = Instant::now();
                let response = builder.send().await.map_err(|e| format!("{}", e.without_url()))?;
                let status = response.status().as_u16();
                let cache = response
                    .headers()
                    .get("x-cache-status")
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                let body = response.bytes().await.map_err(|e| format!("body: {}", e.without_url()))?;
                let us = t.elapsed().as_micros() as u64;
                if status != job.expect_status {
                    return Err(format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
                }
                if let Some(len) = job.expect_len
                    && body.len() as u64 != len
                {
                    return Err(format!("{} bytes, expected {len}", body.len()));
                }
                let moved = if job.expect_len.is_some() { body.len() as u64 } else { payload };
                Ok((us, moved, keep_bodies.then_some(body), cache))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut result = CellResult {
        requests,
        errors: 0,
        first_error: None,
        wall,
        payload_bytes: 0,
        latencies_us: Vec::with_capacity(requests),
        bodies: Vec::new(),
        cache_statuses: BTreeMap::new(),
    };
    for o in outcomes {
        match o {
            Ok((us, moved, body, cache)) => {
                if let Some(cache) = cache {
                    *result.cache_statuses.entry(cache).or_insert(0) += 1;
                }
                result.latencies_us.push(us);
                result.payload_bytes += moved;
                result.bodies.extend(body);
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert(e);
            }
        }
    }
    result.latencies_us.sort_unstable();
    result
}

/// A file of exactly `size` bytes that picshelf accepts as a 64x64 PNG (a
/// framed PNG of noise); [`file_bytes`] makes each copy different.
pub fn template(size: usize, seed: u64) -> Vec<u8> {
    picshelf_test_images::big_png(size, 64, 64, seed)
}

/// `template` with `stamp` in every 4 KiB, so that Garage cannot deduplicate
/// blocks across objects.
pub fn file_bytes(template: &[u8], stamp: u64) -> Vec<u8> {
    let mut file = template.to_vec();
    picshelf_test_images::stamp_big_png(&mut file, stamp);
    file
}

pub fn common_headers() -> Vec<(reqwest::header::HeaderName, HeaderValue)> {
    vec![(ACCEPT_ENCODING, HeaderValue::from_static("identity"))]
}

pub fn upload_job(base: &str, file: &[u8]) -> Job {
    let m = http::multipart("file", "bench.png", "image/png", file.len(), |b| b.extend_from_slice(file));
    let mut headers = common_headers();
    headers.push((CONTENT_TYPE, m.content_type));
    headers.push((ACCEPT, HeaderValue::from_static("application/json")));
    Job {
        method: reqwest::Method::POST,
        url: format!("{}/main/upload", base.trim_end_matches('/')),
        body: Some(Bytes::from(m.body)),
        headers,
        expect_status: 201,
        expect_len: None,
    }
}

pub struct S3 {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3 {
    pub fn new(endpoint: &str, region: &str, bucket: &str, key_id: &str, secret: &str) -> Self {
        let options = ClientOptions::path_style(endpoint, region, key_id, secret);
        Self {
            client: picshelf_s3_client::client(&options).expect("a client without a proxy URL builds"),
            bucket: bucket.to_owned(),
        }
    }

    fn presigning() -> PresigningConfig {
        PresigningConfig::expires_in(Duration::from_secs(3600)).expect("a valid expiry")
    }

    pub async fn put_job(&self, key: &str, file: Bytes) -> anyhow::Result<Job> {
        let p = self.client.put_object().bucket(&self.bucket).key(key).presigned(Self::presigning()).await?;
        let mut headers = common_headers();
        for (k, v) in p.headers() {
            headers.push((k.parse()?, HeaderValue::from_str(v)?));
        }
        headers.push((CONTENT_TYPE, HeaderValue::from_static("image/png")));
        Ok(Job {
            method: reqwest::Method::PUT,
            url: p.uri().to_owned(),
            body: Some(file),
            headers,
            expect_status: 200,
            expect_len: None,
        })
    }

    pub async fn get_job(&self, key: &str, len: u64) -> anyhow::Result<Job> {
        let p = self.client.get_object().bucket(&self.bucket).key(key).presigned(Self::presigning()).await?;
        let mut headers = common_headers();
        for (k, v) in p.headers() {
            headers.push((k.parse()?, HeaderValue::from_str(v)?));
        }
        Ok(Job {
            method: reqwest::Method::GET,
            url: p.uri().to_owned(),
            body: None,
            headers,
            expect_status: 200,
            expect_len: Some(len),
        })
    }
}
