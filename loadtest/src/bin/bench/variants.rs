//! Variants: the time to a first variant of a 12-megapixel JPEG (rendered
//! and stored on that request), stored variants served against originals,
//! and peak memory while variants of eight different 24-megapixel JPEGs are
//! rendered at once. One fresh release picshelf each, disk backend.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use picshelf_loadtest::stats::percentile;
use reqwest::header::HeaderValue;

use super::cells::{CellResult, Job, common_headers, run_cell, upload_job};
use super::memory::{Instance, proc_status_kib};
use super::{Args, MIB};

pub struct VariantFigures {
    /// Milliseconds from request to last byte of first variants (320 px, WebP).
    pub first_ms: Vec<u64>,
    pub originals: CellResult,
    pub stored: CellResult,
    /// The originals' mean size.
    pub original_bytes: u64,
    pub variant_bytes: u64,
    pub idle_kib: u64,
    pub peak_kib: u64,
    pub at_once: usize,
}

impl VariantFigures {
    pub fn first_median_ms(&self) -> f64 {
        percentile(&self.first_ms, 50.0) as f64
    }
}

const FIRSTS: usize = 12;
const AT_ONCE: usize = 8;

fn get_job(base: &str, path: &str, len: u64) -> Job {
    let mut headers = common_headers();
    headers.push((reqwest::header::ACCEPT, HeaderValue::from_static("image/*")));
    Job {
        method: reqwest::Method::GET,
        url: format!("{base}{path}"),
        body: None,
        headers,
        expect_status: 200,
        expect_len: Some(len),
    }
}

async fn upload(client: &reqwest::Client, base: &str, file: &[u8]) -> anyhow::Result<String> {
    let result = run_cell(client, vec![upload_job(base, file)], 1, true).await;
    ensure!(result.errors == 0, "upload failed: {:?}", result.first_error);
    let answer: serde_json::Value = serde_json::from_slice(&result.bodies[0])?;
    Ok(answer["files"][0]["id"].as_str().context("no id")?.to_owned())
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let response = client.get(url).send().await?;
    ensure!(response.status() == reqwest::StatusCode::OK, "{url}: {}", response.status());
    Ok(response.bytes().await?.len() as u64)
}

pub async fn variants_test(args: &Args, bin: &Path, client: &reqwest::Client) -> anyhow::Result<VariantFigures> {
    let limit = [("PICSHELF__UPLOAD__MAX_FILE_BYTES", (64 * MIB).to_string())];
    let instance = Instance::start(args, bin, "variants", "fs", &limit, client).await?;
    let base = instance.base();
    let outcome = async {
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        for seed in 0..FIRSTS {
            let jpeg = picshelf_test_images::jpeg_seeded(4000, 3000, seed as u8);
            sizes.push(jpeg.len() as u64);
            ids.push(upload(client, &base, &jpeg).await?);
        }
        let original_bytes = sizes.iter().sum::<u64>() / sizes.len() as u64;
        let mut first_ms = Vec::new();
        let mut variant_sizes = Vec::new();
        for id in &ids {
            let started = Instant::now();
            variant_sizes.push(fetch(client, &format!("{base}/main/download/{id}?width=320")).await?);
            first_ms.push(started.elapsed().as_millis() as u64);
        }
        let variant_bytes = variant_sizes.iter().sum::<u64>() / variant_sizes.len() as u64;
        first_ms.sort_unstable();
        let count = ((300.0 * args.scale).round() as usize).max(args.concurrency);
        let originals: Vec<Job> = (0..count)
            .map(|i| get_job(&base, &format!("/main/download/{}", ids[i % ids.len()]), sizes[i % ids.len()]))
            .collect();
        let stored: Vec<Job> = (0..count)
            .map(|i| {
                get_job(
                    &base,
                    &format!("/main/download/{}?width=320", ids[i % ids.len()]),
                    variant_sizes[i % ids.len()],
                )
            })
            .collect();
        let originals = run_cell(client, originals, args.concurrency, false).await;
        let stored = run_cell(client, stored, args.concurrency, false).await;
        ensure!(originals.errors == 0 && stored.errors == 0, "{:?} {:?}", originals.first_error, stored.first_error);
        Ok::<_, anyhow::Error>((first_ms, originals, stored, original_bytes, variant_bytes))
    }
    .await;
    instance.stop(outcome.is_err()).await;
    let (first_ms, originals, stored, original_bytes, variant_bytes) = outcome?;

    let (idle_kib, peak_kib) = memory_at_once(args, bin, client).await?;
    Ok(VariantFigures {
        first_ms,
        originals,
        stored,
        original_bytes,
        variant_bytes,
        idle_kib,
        peak_kib,
        at_once: AT_ONCE,
    })
}

/// Idle RSS, then peak RSS while 1280-pixel variants of eight different
/// 24-megapixel JPEGs are requested at once (the high-water mark is reset
/// after the uploads, so it counts the renderings only).
async fn memory_at_once(args: &Args, bin: &Path, client: &reqwest::Client) -> anyhow::Result<(u64, u64)> {
    let limit = [("PICSHELF__UPLOAD__MAX_FILE_BYTES", (64 * MIB).to_string())];
    let instance = Instance::start(args, bin, "variants-memory", "fs", &limit, client).await?;
    let base = instance.base();
    let pid = instance.pid;
    let outcome = async {
        let mut ids = Vec::new();
        for seed in 0..AT_ONCE {
            let jpeg = picshelf_test_images::jpeg_seeded(6000, 4000, 100 + seed as u8);
            ids.push(upload(client, &base, &jpeg).await?);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let idle = proc_status_kib(pid, "VmRSS:").context("VmRSS")?;
        // "5" resets the peak resident set size (VmHWM) to the current one.
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting VmHWM")?;
        let urls: Vec<String> = ids.iter().map(|id| format!("{base}/main/download/{id}?width=1280")).collect();
        for result in futures_util::future::join_all(urls.iter().map(|url| fetch(client, url))).await {
            result?;
        }
        let peak = proc_status_kib(pid, "VmHWM:").context("VmHWM")?;
        Ok::<_, anyhow::Error>((idle, peak))
    }
    .await;
    instance.stop(outcome.is_err()).await;
    outcome
}
