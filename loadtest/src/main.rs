//! picshelf's goose load test: users upload an image, then view it.
//!
//!   picshelf-loadtest run [--think-ms 1000] [--out DIR] [goose options: --host, --users, --run-time, ...]
//!   picshelf-loadtest verify UPLOADS.jsonl... [--delete]
//!   picshelf-loadtest report DIR
//!
//! See loadtest/README.md.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use picshelf_loadtest::stats::{SAMPLE_HEADER, Sample};
use picshelf_loadtest::{UploadRecord, http, report, sha256_hex, verify};
use picshelf_test_images::NoisyPng;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HeaderValue, USER_AGENT};

#[derive(Parser)]
#[command(name = "picshelf-loadtest", about = "picshelf load test (goose): upload an image, then view it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenario once at one user level (goose's options choose users, run time, host).
    Run(Box<RunArgs>),
    /// The fault run's table (scripts/faults): DIR/load/samples.csv cut into the
    /// phases of DIR/phases.csv; writes DIR/report.md and fails on a violation.
    FaultsReport {
        #[arg(long)]
        dir: PathBuf,
        /// The longest time, after a fault is undone, until requests succeed again.
        #[arg(long = "max-recovery-secs", default_value_t = 20.0)]
        max_recovery_secs: f64,
    },
    /// Download every recorded upload and check its length and sha256.
    Verify {
        /// uploads.jsonl files written by `run`.
        #[arg(required = true)]
        uploads: Vec<PathBuf>,
        /// Downloads at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Delete each upload after it verified (with its delete token).
        #[arg(long)]
        delete: bool,
        /// Succeed with no records at all (by default nothing to check is an error).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Tables (CSV, Markdown) and the plot (SVG) over every users-* level under DIR.
    Report {
        dir: PathBuf,
        /// A paragraph put at the top of report.md (machine, settings).
        #[arg(long, default_value = "")]
        context: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Think time before every request (ms): goose's wait time between transactions.
    #[arg(long = "think-ms", default_value_t = 1000)]
    think_ms: u64,
    /// Directory for samples.csv, uploads.jsonl and meta.json (created).
    #[arg(long = "out", default_value = "artifacts/loadtest/run")]
    out: PathBuf,
    /// Width and height of the uploaded PNG (noisy RGB; 400x300 is 360,439 bytes).
    #[arg(long = "image-width", default_value_t = 400)]
    image_width: u32,
    #[arg(long = "image-height", default_value_t = 300)]
    image_height: u32,
    /// Exit non-zero when any request failed, or when "upload" or "view" has fewer than --min-samples.
    #[arg(long)]
    strict: bool,
    #[arg(long = "min-samples", default_value_t = 1)]
    min_samples: usize,
    #[command(flatten)]
    goose: GooseConfiguration,
}

/// What every user shares.
struct Shared {
    image: NoisyPng,
    stamp_base: u64,
    counter: AtomicU64,
    samples: Mutex<std::io::BufWriter<std::fs::File>>,
    uploads: Mutex<std::io::BufWriter<std::fs::File>>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get().expect("initialised before the load test starts")
}

/// What a user remembers from its upload for its view.
#[derive(Clone)]
struct LastUpload {
    url: String,
    image: Bytes,
}

#[derive(Clone, Default)]
struct Session {
    last: Option<LastUpload>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Verify { uploads, concurrency, delete, allow_empty } => {
            let records = verify::read_records(&uploads)?;
            if records.is_empty() && !allow_empty {
                anyhow::bail!("no uploads recorded in {uploads:?}: nothing was uploaded successfully");
            }
            let started = Instant::now();
            let outcome = runtime.block_on(verify::verify(records, concurrency, delete))?;
            for f in outcome.failed.iter().take(20) {
                eprintln!("verify: FAILED {f}");
            }
            println!(
                "verify: {} uploads checked in {:.1} s: {} downloadable with the right bytes, {} failed{}",
                outcome.checked,
                started.elapsed().as_secs_f64(),
                outcome.checked - outcome.failed.len(),
                outcome.failed.len(),
                if delete {
                    format!("; {} deleted, {} deletes failed", outcome.deleted, outcome.delete_failed)
                } else {
                    String::new()
                }
            );
            anyhow::ensure!(outcome.failed.is_empty(), "{} uploads did not verify", outcome.failed.len());
            Ok(())
        }
        Command::FaultsReport { dir, max_recovery_secs } => faults_report(&dir, max_recovery_secs),
        Command::Report { dir, context } => {
            print!("{}", report::write(&dir, &context)?);
            println!("report: {}/report.{{md,csv,svg}}", dir.display());
            Ok(())
        }
    }
}

fn faults_report(dir: &std::path::Path, max_recovery_secs: f64) -> anyhow::Result<()> {
    use picshelf_loadtest::faults;
    let samples = picshelf_loadtest::stats::read_samples(&dir.join("load").join("samples.csv"))?;
    let phases = faults::read_phases(&dir.join("phases.csv"))?;
    let figures = faults::figures(&samples, &phases);
    let table = faults::markdown(&figures);
    let before = faults::failures_before(&samples, &phases);
    let violations = faults::violations(&figures, before, max_recovery_secs);
    let mut report = format!("{table}\n{} requests in all; recovery bound {max_recovery_secs} s.\n", samples.len());
    for violation in &violations {
        report.push_str(&format!("\nFAILED: {violation}"));
    }
    std::fs::write(dir.join("report.md"), &report)?;
    print!("{report}");
    anyhow::ensure!(violations.is_empty(), "{} violation(s)", violations.len());
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let image = NoisyPng::new(args.image_width, args.image_height, 0x5eed);
    let create = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = args.out.join(name);
        Ok(std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut samples = create("samples.csv")?;
    writeln!(samples, "{SAMPLE_HEADER}")?;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let image_bytes = image.len();
    if SHARED
        .set(Shared {
            image,
            stamp_base: now_ns,
            counter: AtomicU64::new(0),
            samples: Mutex::new(samples),
            uploads: Mutex::new(create("uploads.jsonl")?),
        })
        .is_err()
    {
        anyhow::bail!("run twice in one process");
    }

    let mut config = args.goose;
    let host = config.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "http://127.0.0.1:18080".to_owned());
    config.host = Some(host.clone());
    let think = Duration::from_millis(args.think_ms);
    let scenario = scenario!("upload_view")
        .set_wait_time(think, think)?
        .register_transaction(transaction!(upload).set_name("upload").set_sequence(1))
        .register_transaction(transaction!(view).set_name("view").set_sequence(2));
    let metrics = GooseAttack::initialize_with_config(config)?.register_scenario(scenario).execute().await?;

    let shared = shared();
    shared.samples.lock().expect("not poisoned").flush()?;
    shared.uploads.lock().expect("not poisoned").flush()?;

    let mut goose_counts = std::collections::BTreeMap::new();
    for aggregate in metrics.requests.values() {
        let entry = goose_counts.entry(aggregate.path.clone()).or_insert([0usize, 0usize]);
        entry[0] += aggregate.success_count;
        entry[1] += aggregate.fail_count;
    }
    let meta = report::LevelMeta {
        users: metrics.maximum_users,
        host,
        think_ms: args.think_ms,
        run_time_s: metrics.duration as u64,
        image_bytes,
        goose_counts,
    };
    std::fs::write(args.out.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;

    let samples = picshelf_loadtest::stats::read_samples(&args.out.join("samples.csv"))?;
    let mut rows = vec![report::COLUMNS[1..].iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()];
    for label in ["upload", "view"] {
        let s = picshelf_loadtest::stats::summarize(samples.iter().filter(|s| s.label == label));
        let counted = meta.goose_counts.get(label).map_or(0, |c| c[0] + c[1]);
        if counted != s.samples {
            eprintln!("warning: goose counted {counted} {label} requests, the samples file has {}", s.samples);
        }
        rows.push(report_row(label, &s));
    }
    rows.push(report_row("TOTAL", &picshelf_loadtest::stats::summarize(&samples)));
    println!("{} users, {} s, think {} ms, image {} bytes:", meta.users, meta.run_time_s, meta.think_ms, image_bytes);
    print!("{}", picshelf_loadtest::stats::text_table(&rows));
    let errors = picshelf_loadtest::stats::error_counts(&samples);
    for (reason, n) in errors.iter().take(10) {
        println!("  error: {n} x {reason}");
    }
    if args.strict {
        let failed: usize = errors.iter().map(|(_, n)| n).sum();
        anyhow::ensure!(failed == 0, "{failed} requests failed");
        for label in ["upload", "view"] {
            let n = samples.iter().filter(|s| s.label == label).count();
            anyhow::ensure!(n >= args.min_samples, "{n} {label} samples, at least {} required", args.min_samples);
        }
    }
    Ok(())
}

fn report_row(label: &str, s: &picshelf_loadtest::stats::Summary) -> Vec<String> {
    report::row(0, label, s)[1..].to_vec()
}

/// The site's base URL with a trailing slash, so "main/upload" joins under a prefix such as /dev.
fn base_url(user: &GooseUser) -> reqwest::Url {
    let mut base = user.base_url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

/// What came back: status, head bytes and the whole body.
struct Answer {
    status: reqwest::StatusCode,
    content_type: String,
    head_len: u64,
    body: Bytes,
}

/// Sends `request` and reads the answer to its last byte.
async fn exchange(client: &reqwest::Client, request: reqwest::Request) -> Result<Answer, String> {
    let response = client.execute(request).await.map_err(describe)?;
    let status = response.status();
    let head_len = http::response_head_len(status, response.headers());
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.bytes().await.map_err(|e| format!("body broken off: {}", describe(e)))?;
    Ok(Answer { status, content_type, head_len, body })
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The error code of a JSON error answer (`{"error":{"code":…}}`), if any.
fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("error")?.get("code")?.as_str().map(str::to_owned)
}

fn status_error(answer: &Answer) -> String {
    match error_code(&answer.body) {
        Some(code) => format!("{} {code}", answer.status.as_u16()),
        None => format!("{}", answer.status),
    }
}

/// Sends `request`, reads the answer to the last byte, and starts the sample
/// recording it (time, status, bytes; a transport error already as its error).
async fn timed_exchange(
    client: &reqwest::Client,
    label: &str,
    request: reqwest::Request,
) -> (Sample, Duration, Option<Answer>) {
    let sent_bytes = http::request_head_len(&request) + http::request_body_len(&request);
    let start_us = now_us();
    let started = Instant::now();
    let answer = exchange(client, request).await;
    let elapsed = started.elapsed();
    let mut sample = Sample {
        label: label.into(),
        start_us,
        elapsed_us: elapsed.as_micros() as u64,
        status: 0,
        ok: false,
        recv_bytes: 0,
        sent_bytes,
        error: String::new(),
    };
    let answer = match answer {
        Err(e) => {
            sample.error = e;
            None
        }
        Ok(answer) => {
            sample.status = answer.status.as_u16();
            sample.recv_bytes = answer.head_len + answer.body.len() as u64;
            Some(answer)
        }
    };
    (sample, elapsed, answer)
}

/// Records one request: in the samples file and in goose's metrics (with the
/// time to the last byte), then fails the transaction if the request failed.
async fn record(user: &mut GooseUser, method: &str, sample: Sample, elapsed: Duration) -> TransactionResult {
    let line = sample.csv_line();
    {
        let mut out = shared().samples.lock().expect("not poisoned");
        let _ = writeln!(out, "{line}");
    }
    let status = (sample.status != 0).then_some(sample.status);
    let error = (!sample.ok).then_some(sample.error.as_str());
    user.record_custom_request_duration(method, &sample.label, elapsed, sample.ok, status, error).await?;
    if sample.ok { Ok(()) } else { Err(Box::new(TransactionError::Custom(sample.error))) }
}

#[derive(serde::Deserialize)]
struct UploadAnswer {
    files: Vec<UploadedFile>,
}

#[derive(serde::Deserialize)]
struct UploadedFile {
    id: String,
    url: String,
    size: u64,
    sha256: String,
    delete_token: String,
}

/// POST main/upload: a multipart body with a freshly stamped PNG (unique bytes, same size).
async fn upload(user: &mut GooseUser) -> TransactionResult {
    let shared = shared();
    let stamp = shared.stamp_base.wrapping_add(shared.counter.fetch_add(1, Ordering::Relaxed));
    let image = Bytes::from(shared.image.stamped(stamp));
    let sha256 = sha256_hex(&image);
    let body = http::multipart("file", "loadtest.png", "image/png", image.len(), |b| b.extend_from_slice(&image));
    let url = base_url(user).join("main/upload").map_err(|e| Box::new(TransactionError::Url(e)))?;
    let request = user
        .client
        .post(url)
        .header(CONTENT_TYPE, body.content_type)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"))
        .header(USER_AGENT, HeaderValue::from_static(picshelf_loadtest::USER_AGENT))
        .body(body.body)
        .build()
        .map_err(|e| Box::new(TransactionError::Reqwest(e)))?;
    user.set_session_data(Session { last: None });
    let (mut sample, elapsed, answer) = timed_exchange(&user.client, "upload", request).await;
    if let Some(answer) = answer {
        if answer.status != reqwest::StatusCode::CREATED {
            sample.error = status_error(&answer);
        } else {
            match serde_json::from_slice::<UploadAnswer>(&answer.body).ok().and_then(|a| a.files.into_iter().next()) {
                None => sample.error = "201 without a files[0] entry in JSON".into(),
                Some(file) => {
                    // Every 201 is recorded for the verifier, with what was really sent.
                    let record = UploadRecord {
                        id: file.id.clone(),
                        url: file.url.clone(),
                        sha256: sha256.clone(),
                        size: image.len() as u64,
                        delete_token: file.delete_token.clone(),
                    };
                    if let Ok(line) = serde_json::to_string(&record) {
                        let mut out = shared.uploads.lock().expect("not poisoned");
                        let _ = writeln!(out, "{line}");
                    }
                    if file.sha256 != sha256 || file.size != image.len() as u64 {
                        sample.error = format!("server stored {} bytes sha256 {}", file.size, file.sha256);
                    } else {
                        sample.ok = true;
                        user.set_session_data(Session { last: Some(LastUpload { url: file.url, image }) });
                    }
                }
            }
        }
    }
    record(user, "POST", sample, elapsed).await
}

/// GET the URL the upload answered, to the last byte; the bytes must be the ones uploaded.
async fn view(user: &mut GooseUser) -> TransactionResult {
    // No successful upload in this iteration: nothing to view (as JMeter's "start next loop").
    let Some(last) = user.get_session_data_mut::<Session>().and_then(|s| s.last.take()) else {
        return Ok(());
    };
    let request = user
        .client
        .get(&last.url)
        .header(ACCEPT, HeaderValue::from_static("image/*"))
        .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"))
        .header(USER_AGENT, HeaderValue::from_static(picshelf_loadtest::USER_AGENT))
        .build()
        .map_err(|e| Box::new(TransactionError::Reqwest(e)))?;
    let (mut sample, elapsed, answer) = timed_exchange(&user.client, "view", request).await;
    if let Some(answer) = answer {
        if answer.status != reqwest::StatusCode::OK {
            sample.error = status_error(&answer);
        } else if answer.content_type != "image/png" {
            sample.error = format!("Content-Type {:?}, expected image/png", answer.content_type);
        } else if answer.body.len() != last.image.len() {
            sample.error = format!("{} bytes, expected {}", answer.body.len(), last.image.len());
        } else if answer.body != last.image {
            sample.error = "bytes differ from the upload".into();
        } else {
            sample.ok = true;
        }
    }
    record(user, "GET", sample, elapsed).await
}
