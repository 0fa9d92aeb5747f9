//! After a run: every upload that got a 201 must be downloadable with exactly
//! the bytes that were sent (length and sha256), optionally then deleted.

use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use sha2::Digest as _;

use crate::UploadRecord;

pub struct Outcome {
    pub checked: usize,
    pub failed: Vec<String>,
    pub deleted: usize,
    pub delete_failed: usize,
}

pub fn read_records(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<UploadRecord>> {
    let mut records = Vec::new();
    for path in paths {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(
                serde_json::from_str(&line)
                    .with_context(|| format!("{}:{}: not an upload record", path.display(), n + 1))?,
            );
        }
    }
    Ok(records)
}

/// Downloads every record (`concurrency` at a time), checks status, length and
/// sha256; with `delete`, deletes each verified upload with its token.
pub async fn verify(records: Vec<UploadRecord>, concurrency: usize, delete: bool) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .user_agent(crate::USER_AGENT)
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let deleted = Arc::new(AtomicUsize::new(0));
    let delete_failed = Arc::new(AtomicUsize::new(0));
    let checked = records.len();
    let results: Vec<Option<String>> = futures_util::stream::iter(records)
        .map(|record| {
            let client = client.clone();
            let (deleted, delete_failed) = (deleted.clone(), delete_failed.clone());
            async move {
                let problem = check_one(&client, &record).await.err();
                if delete && problem.is_none() {
                    let answer = client.delete(&record.url).header("X-Delete-Token", &record.delete_token).send().await;
                    match answer {
                        Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => {
                            deleted.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => delete_failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
                problem.map(|p| format!("{} ({}): {p}", record.id, record.url))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    Ok(Outcome {
        checked,
        failed: results.into_iter().flatten().collect(),
        deleted: deleted.load(Ordering::Relaxed),
        delete_failed: delete_failed.load(Ordering::Relaxed),
    })
}

async fn check_one(client: &reqwest::Client, record: &UploadRecord) -> Result<(), String> {
    let mut last = String::new();
    // A transient connection error and a 503 (the store is briefly away,
    // "retry later") are retried; a wrong answer is not.
    for attempt in 0..6 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
        }
        let response = match client.get(&record.url).send().await {
            Ok(r) => r,
            Err(e) => {
                last = format!("request failed: {}", e.without_url());
                continue;
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            last = "status 503 Service Unavailable".to_owned();
            continue;
        }
        if status != reqwest::StatusCode::OK {
            return Err(format!("status {status}"));
        }
        let mut hasher = sha2::Sha256::new();
        let mut len = 0u64;
        let mut body = response.bytes_stream();
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    len += chunk.len() as u64;
                    hasher.update(&chunk);
                }
                Err(e) => {
                    broken = Some(format!("body broken off: {}", e.without_url()));
                    break;
                }
            }
        }
        if let Some(b) = broken {
            last = b;
            continue;
        }
        if len != record.size {
            return Err(format!("{len} bytes, expected {}", record.size));
        }
        let sha = hex::encode(hasher.finalize());
        if sha != record.sha256 {
            return Err(format!("sha256 {sha}, expected {}", record.sha256));
        }
        return Ok(());
    }
    Err(last)
}
