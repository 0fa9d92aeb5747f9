//! picshelf against its own object store, measured side by side in one run
//! with one HTTP client and one concurrency (see loadtest/README.md, "bench"):
//!
//! - upload and download throughput for 4 KiB, 256 KiB and 4 MiB objects:
//!   picshelf direct (its port), picshelf through nginx, and Garage directly
//!   (presigned PUT/GET of the same kind of object; for downloads, the very
//!   objects picshelf stored);
//! - peak resident memory of a picshelf process during one streamed 1 GiB
//!   upload against its idle memory (S3 backend on the same Garage, and disk).
//!
//! Started by scripts/bench, which runs the stack (Garage, picshelf, nginx)
//! this measures. Every figure is measured in the run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt as _;
use picshelf_loadtest::png::{XorShift, png_header};
use picshelf_loadtest::stats::{markdown_table, percentile, text_table};
use picshelf_loadtest::{USER_AGENT, http};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

#[derive(Parser)]
#[command(name = "bench", about = "picshelf vs Garage throughput, and picshelf's memory during a 1 GiB upload")]
struct Args {
    /// picshelf directly (its own port), e.g. http://127.0.0.1:18101
    #[arg(long)]
    app: String,
    /// the same picshelf through nginx, e.g. http://127.0.0.1:18180
    #[arg(long)]
    nginx: String,
    /// Garage's S3 endpoint, e.g. http://127.0.0.1:13910
    #[arg(long)]
    s3_endpoint: String,
    #[arg(long, default_value = "garage")]
    region: String,
    /// The bucket the picshelf behind --app writes to (its key: BENCH_S3_KEY_ID, BENCH_S3_SECRET).
    #[arg(long)]
    bucket: String,
    /// Requests at once, for every cell.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Multiplies the number of requests per cell (4 KiB: 2000, 256 KiB: 1000, 4 MiB: 150).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The picshelf binary for the memory test (release build).
    #[arg(long)]
    picshelf_bin: Option<PathBuf>,
    /// picshelf's config directory (config/).
    #[arg(long, default_value = "config")]
    config_dir: PathBuf,
    /// Bucket and environment of the memory test's picshelf (key: BENCH_MEM_S3_KEY_ID, BENCH_MEM_S3_SECRET).
    #[arg(long, default_value = "picshelf-test")]
    mem_bucket: String,
    #[arg(long, default_value = "test")]
    mem_env: String,
    /// Size of the streamed upload of the memory test.
    #[arg(long, default_value_t = 1 << 30)]
    mem_bytes: u64,
    /// Extra environment of the memory test's picshelf, KEY=VALUE, repeatable (e.g. MALLOC_ARENA_MAX=2).
    #[arg(long = "mem-extra-env", value_name = "KEY=VALUE")]
    mem_extra_env: Vec<String>,
    /// Only the memory test.
    #[arg(long)]
    skip_throughput: bool,
    /// Where the memory test's instances keep their files (fs backend data, logs).
    #[arg(long, default_value = ".cache/bench/work")]
    work_dir: PathBuf,
    /// The Markdown report.
    #[arg(long, default_value = "artifacts/bench/bench.md")]
    out: PathBuf,
    /// A line about the setup, put into the report.
    #[arg(long, default_value = "")]
    context: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Nginx,
    Garage,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Direct => "picshelf direct",
            Target::Nginx => "picshelf via nginx",
            Target::Garage => "Garage direct",
        }
    }
}

/// One request to send: method, URL, body, headers.
#[derive(Clone)]
struct Job {
    method: reqwest::Method,
    url: String,
    body: Option<Bytes>,
    headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    /// Expected status and, for downloads, body length.
    expect_status: u16,
    expect_len: Option<u64>,
}

struct CellResult {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
    payload_bytes: u64,
    latencies_us: Vec<u64>,
    /// Answers of successful requests (upload JSON), in no particular order.
    bodies: Vec<Bytes>,
}

impl CellResult {
    fn mib_per_s(&self) -> f64 {
        self.payload_bytes as f64 / MIB as f64 / self.wall.as_secs_f64()
    }
    fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
    fn p(&self, pct: f64) -> f64 {
        if self.latencies_us.is_empty() { f64::NAN } else { percentile(&self.latencies_us, pct) as f64 / 1000.0 }
    }
}

/// One request's time (µs), payload bytes moved, and its answer when kept; or why it failed.
type Outcome = Result<(u64, u64, Option<Bytes>), String>;

/// Runs `jobs` with `concurrency` in flight, reading every answer to its end.
async fn run_cell(client: &reqwest::Client, jobs: Vec<Job>, concurrency: usize, keep_bodies: bool) -> CellResult {
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
                Ok((us, moved, keep_bodies.then_some(body)))
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
    };
    for o in outcomes {
        match o {
            Ok((us, moved, body)) => {
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

/// A file of exactly `size` bytes that picshelf accepts as a 64x64 PNG: the
/// signature and IHDR, then noise. `stamp` makes each one different in every
/// 4 KiB, so that Garage cannot deduplicate blocks across objects.
fn file_bytes(template: &[u8], stamp: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(template);
    let file = &mut out[start..];
    let mut at = 64;
    while at + 8 <= file.len() {
        file[at..at + 8].copy_from_slice(&stamp.to_le_bytes());
        at += 4 * KIB;
    }
}

fn template(size: usize, seed: u64) -> Vec<u8> {
    let mut t = png_header(64, 64);
    assert!(size >= t.len() + 64);
    let mut noise = vec![0u8; size - t.len()];
    XorShift::new(seed).fill(&mut noise);
    t.extend_from_slice(&noise);
    t
}

fn common_headers() -> Vec<(reqwest::header::HeaderName, HeaderValue)> {
    vec![(ACCEPT_ENCODING, HeaderValue::from_static("identity"))]
}

fn upload_job(base: &str, file: &[u8]) -> Job {
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

struct S3 {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3 {
    fn new(endpoint: &str, region: &str, bucket: &str, key_id: &str, secret: &str) -> Self {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(key_id, secret, None, None, "bench"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Self { client: aws_sdk_s3::Client::from_conf(conf), bucket: bucket.to_owned() }
    }

    fn presigning() -> PresigningConfig {
        PresigningConfig::expires_in(Duration::from_secs(3600)).expect("a valid expiry")
    }

    async fn put_job(&self, key: &str, file: Bytes) -> anyhow::Result<Job> {
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

    async fn get_job(&self, key: &str, len: u64) -> anyhow::Result<Job> {
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

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set"))
}

struct Row {
    size: usize,
    results: Vec<(Target, CellResult)>,
}

fn size_name(size: usize) -> String {
    if size >= MIB { format!("{} MiB", size / MIB) } else { format!("{} KiB", size / KIB) }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let s3 = S3::new(&args.s3_endpoint, &args.region, &args.bucket, &env("BENCH_S3_KEY_ID")?, &env("BENCH_S3_SECRET")?);
    let client = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(300))
        .build()?;
    let c = args.concurrency;
    let run_tag = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());

    let mut uploads = Vec::new();
    let mut downloads = Vec::new();
    let sizes: &[(usize, f64)] =
        if args.skip_throughput { &[] } else { &[(4 * KIB, 2000.0), (256 * KIB, 1000.0), (4 * MIB, 150.0)] };
    for (n, &(size, base_count)) in sizes.iter().enumerate() {
        let count = ((base_count * args.scale).round() as usize).max(c);
        let warm = c;
        let tpl = template(size, 0xbe7c + n as u64);
        let mut stamp = 0u64;
        let mut next_file = || {
            stamp += 1;
            let mut f = Vec::with_capacity(size);
            file_bytes(&tpl, stamp, &mut f);
            f
        };
        eprintln!("bench: {} objects, {count} requests per cell, {c} at once", size_name(size));

        // Uploads: the same number of new objects into each target.
        let mut up = Row { size, results: Vec::new() };
        let mut picshelf_ids: Vec<String> = Vec::new();
        for target in [Target::Direct, Target::Nginx, Target::Garage] {
            let mut jobs = Vec::with_capacity(warm + count);
            for i in 0..warm + count {
                let file = next_file();
                jobs.push(match target {
                    Target::Direct => upload_job(&args.app, &file),
                    Target::Nginx => upload_job(&args.nginx, &file),
                    Target::Garage => s3.put_job(&format!("bench-{run_tag}/{size}/{i}"), Bytes::from(file)).await?,
                });
            }
            let measured = jobs.split_off(warm);
            let warmup = run_cell(&client, jobs, c, false).await;
            ensure!(warmup.errors == 0, "{} upload warm-up failed: {:?}", target.name(), warmup.first_error);
            let result = run_cell(&client, measured, c, target == Target::Direct).await;
            if target == Target::Direct {
                for body in &result.bodies {
                    let v: serde_json::Value = serde_json::from_slice(body)?;
                    let id = v["files"][0]["id"].as_str().context("upload answer without files[0].id")?;
                    picshelf_ids.push(id.to_owned());
                }
            }
            eprintln!(
                "bench:   upload   {:<20} {:>8.1} MiB/s {:>8.1} req/s  {} errors",
                target.name(),
                result.mib_per_s(),
                result.req_per_s(),
                result.errors
            );
            up.results.push((target, CellResult { bodies: Vec::new(), ..result }));
        }
        uploads.push(up);

        // Downloads: the objects picshelf stored (direct), through each target.
        ensure!(!picshelf_ids.is_empty(), "no picshelf uploads to download");
        let mut down = Row { size, results: Vec::new() };
        for target in [Target::Direct, Target::Nginx, Target::Garage] {
            let mut jobs = Vec::with_capacity(warm + count);
            for i in 0..warm + count {
                let id = &picshelf_ids[i % picshelf_ids.len()];
                jobs.push(match target {
                    Target::Direct | Target::Nginx => {
                        let base = if target == Target::Direct { &args.app } else { &args.nginx };
                        let mut headers = common_headers();
                        headers.push((ACCEPT, HeaderValue::from_static("image/*")));
                        Job {
                            method: reqwest::Method::GET,
                            url: format!("{}/main/download/{id}", base.trim_end_matches('/')),
                            body: None,
                            headers,
                            expect_status: 200,
                            expect_len: Some(size as u64),
                        }
                    }
                    Target::Garage => s3.get_job(id, size as u64).await?,
                });
            }
            let measured = jobs.split_off(warm);
            let warmup = run_cell(&client, jobs, c, false).await;
            ensure!(warmup.errors == 0, "{} download warm-up failed: {:?}", target.name(), warmup.first_error);
            let result = run_cell(&client, measured, c, false).await;
            eprintln!(
                "bench:   download {:<20} {:>8.1} MiB/s {:>8.1} req/s  {} errors",
                target.name(),
                result.mib_per_s(),
                result.req_per_s(),
                result.errors
            );
            down.results.push((target, result));
        }
        downloads.push(down);
    }

    let mut memory = Vec::new();
    if let Some(bin) = &args.picshelf_bin {
        for backend in ["s3", "fs"] {
            eprintln!("bench: memory, {} streamed upload, {backend} backend", human_bytes(args.mem_bytes));
            memory.push(memory_test(&args, bin, backend, &client).await?);
        }
    }

    let report = render(&args, &uploads, &downloads, &memory, started.elapsed());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &report.markdown)?;
    println!("{}", report.text);
    println!("bench: written to {}", args.out.display());
    let errors: usize =
        uploads.iter().chain(&downloads).flat_map(|r| r.results.iter().map(|(_, x)| x.errors)).sum::<usize>();
    ensure!(errors == 0, "{errors} requests failed; see the tables");
    Ok(())
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else {
        format!("{:.0} MiB", n as f64 / MIB as f64)
    }
}

struct Memory {
    backend: &'static str,
    idle_kib: u64,
    peak_kib: u64,
    sampled_max_kib: u64,
    after_kib: u64,
    upload: Duration,
    bytes: u64,
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn memory_test(
    args: &Args,
    bin: &Path,
    backend: &'static str,
    client: &reqwest::Client,
) -> anyhow::Result<Memory> {
    let work = args.work_dir.join(format!("memory-{backend}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("instance"))?;
    let work = work.canonicalize()?;
    let config_dir = args.config_dir.canonicalize().context("--config-dir")?;
    let port = free_port()?;
    let limit = (args.mem_bytes + 64 * MIB as u64).to_string();
    let secret = format!("bench-delete-secret-{:032x}", std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15);
    let log = std::fs::File::create(work.join("picshelf.log"))?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PICSHELF_ENV", &args.mem_env)
        .env("PICSHELF_CONFIG_DIR", &config_dir)
        .env("PICSHELF_INSTANCE_DIR", work.join("instance"))
        .env("PICSHELF__SERVER__HOST", "127.0.0.1")
        .env("PICSHELF__SERVER__PORT", port.to_string())
        .env("PICSHELF__UPLOAD__MAX_FILE_BYTES", &limit)
        .env("PICSHELF__UPLOAD__MAX_REQUEST_BYTES", &limit)
        .env("PICSHELF__SECURITY__DELETE_SECRET", &secret)
        .env("PICSHELF__LOG__LEVEL", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    for kv in &args.mem_extra_env {
        let (k, v) = kv.split_once('=').with_context(|| format!("--mem-extra-env {kv}: not KEY=VALUE"))?;
        cmd.env(k, v);
    }
    if backend == "s3" {
        cmd.env("PICSHELF__STORAGE__BACKEND", "s3")
            .env("PICSHELF__STORAGE__S3__ENDPOINT", &args.s3_endpoint)
            .env("PICSHELF__STORAGE__S3__REGION", &args.region)
            .env("PICSHELF__STORAGE__S3__PATH_STYLE", "true")
            .env("PICSHELF__STORAGE__S3__BUCKET", &args.mem_bucket)
            .env("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", env("BENCH_MEM_S3_KEY_ID")?)
            .env("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", env("BENCH_MEM_S3_SECRET")?);
    } else {
        cmd.env("PICSHELF__STORAGE__BACKEND", "fs").env("PICSHELF__STORAGE__FS__ROOT", work.join("data"));
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("picshelf exited at once")?;
    let result = measure_memory(client, pid, port, backend, args.mem_bytes).await;
    // SIGTERM, as a deployment stops it; SIGKILL if it lingers.
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
    if result.is_err() {
        eprintln!("bench: picshelf log ({}):", work.join("picshelf.log").display());
        eprintln!("{}", std::fs::read_to_string(work.join("picshelf.log")).unwrap_or_default());
    }
    let _ = std::fs::remove_dir_all(work.join("data"));
    result
}

async fn measure_memory(
    client: &reqwest::Client,
    pid: u32,
    port: u16,
    backend: &'static str,
    bytes: u64,
) -> anyhow::Result<Memory> {
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        ensure!(Instant::now() < deadline, "picshelf on port {port} did not become ready");
        ensure!(proc_status_kib(pid, "VmRSS:").is_some(), "picshelf exited while starting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One warm-up request each way, then let it settle: that is "idle".
    let small = template(64 * KIB, 1);
    let job = upload_job(&base, &small);
    let warm = run_cell(client, vec![job], 1, true).await;
    ensure!(warm.errors == 0, "warm-up upload failed: {:?}", warm.first_error);
    let v: serde_json::Value = serde_json::from_slice(&warm.bodies[0])?;
    let id = v["files"][0]["id"].as_str().context("no id")?.to_owned();
    let got = client.get(format!("{base}/main/download/{id}")).send().await?.bytes().await?;
    ensure!(got.len() == small.len(), "warm-up download: {} bytes", got.len());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_kib = proc_status_kib(pid, "VmRSS:").context("VmRSS")?;

    // Sample VmRSS while a streamed upload of `bytes` goes in.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                    max = max.max(kib);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            max
        })
    };
    let head = http::multipart_head("file", "big.png", "image/png");
    let tail = http::multipart_tail();
    let header = png_header(64, 64);
    let file_len = bytes;
    let chunk = 256 * KIB;
    // The file: PNG header, then noise made chunk by chunk as the client sends it.
    let noise_len = file_len - header.len() as u64;
    let state = (XorShift::new(42), noise_len, 0u8);
    let noise = futures_util::stream::unfold(state, move |(mut rng, left, _)| async move {
        if left == 0 {
            return None;
        }
        let n = left.min(chunk as u64) as usize;
        let mut buf = vec![0u8; n];
        rng.fill(&mut buf);
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), (rng, left - n as u64, 0)))
    });
    let prefix = {
        let mut p = head.into_bytes();
        p.extend_from_slice(&header);
        Bytes::from(p)
    };
    let body = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(prefix.clone())])
        .chain(noise)
        .chain(futures_util::stream::iter([Ok(Bytes::from(tail.clone().into_bytes()))]));
    let content_length = prefix.len() as u64 + noise_len + tail.len() as u64;
    let t = Instant::now();
    let response = client
        .post(format!("{base}/main/upload"))
        .header(CONTENT_TYPE, http::multipart_content_type())
        .header(CONTENT_LENGTH, content_length)
        .header(ACCEPT, "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    let upload = t.elapsed();
    let after_kib = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled_max_kib = sampler.await?;
    let peak_kib = proc_status_kib(pid, "VmHWM:").context("VmHWM")?;
    let response = response.context("the streamed upload")?;
    let status = response.status();
    let answer = response.bytes().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("streamed upload: {status}: {}", String::from_utf8_lossy(&answer));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer)?;
    let size = v["files"][0]["size"].as_u64().context("no size")?;
    ensure!(size == file_len, "picshelf stored {size} bytes, {file_len} sent");
    // Remove the big object again.
    if let (Some(url), Some(token)) = (v["files"][0]["url"].as_str(), v["files"][0]["delete_token"].as_str()) {
        let d = client.delete(url).header("X-Delete-Token", token).send().await?;
        ensure!(d.status() == reqwest::StatusCode::NO_CONTENT, "deleting the big upload: {}", d.status());
    }
    Ok(Memory { backend, idle_kib, peak_kib, sampled_max_kib, after_kib, upload, bytes })
}

struct Rendered {
    markdown: String,
    text: String,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {:.0} GiB RAM", mem_kib as f64 / (1024.0 * 1024.0))
}

fn render(args: &Args, uploads: &[Row], downloads: &[Row], memory: &[Memory], took: Duration) -> Rendered {
    let mut md = String::from("# picshelf benchmark\n\n");
    let _ = writeln!(
        md,
        "Measured {} in {:.0} s on {}; client, nginx, picshelf and Garage on the same machine, over loopback. \
         One HTTP client (reqwest, HTTP/1.1 keep-alive), {} requests in flight for every cell; each cell \
         starts after a warm-up of as many requests. {}\n",
        chrono_like_now(),
        took.as_secs_f64(),
        machine(),
        args.concurrency,
        args.context
    );
    let _ = writeln!(
        md,
        "- **picshelf direct**: multipart `POST /main/upload` and `GET /main/download/{{id}}` on the app's own port ({}).\n\
         - **picshelf via nginx**: the same through nginx ({}).\n\
         - **Garage direct**: presigned `PUT` of new objects and presigned `GET` of the very objects picshelf stored \
         (bucket `{}`), with the same client.\n\
         - Every upload is a new object with different bytes (no block deduplication); MiB/s counts file bytes \
         (not multipart framing or headers). Ratios are picshelf ÷ Garage, measured in the same run.\n",
        args.app, args.nginx, args.bucket
    );
    let mut text = String::new();
    for (title, rows) in [("Upload", uploads), ("Download", downloads)] {
        if rows.is_empty() {
            continue;
        }
        let mut table = vec![
            [
                "size",
                "requests",
                "picshelf direct MiB/s (req/s)",
                "via nginx MiB/s (req/s)",
                "Garage MiB/s (req/s)",
                "direct ÷ Garage",
                "nginx ÷ Garage",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        let mut lat = vec![
            [
                "size",
                "picshelf direct p50 / p99 ms",
                "via nginx p50 / p99 ms",
                "Garage p50 / p99 ms",
                "errors (direct / nginx / Garage)",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for row in rows {
            let get = |t: Target| row.results.iter().find(|(x, _)| *x == t).map(|(_, r)| r).expect("measured");
            let (d, n, g) = (get(Target::Direct), get(Target::Nginx), get(Target::Garage));
            let cell = |r: &CellResult| format!("{:.1} ({:.0})", r.mib_per_s(), r.req_per_s());
            table.push(vec![
                size_name(row.size),
                d.requests.to_string(),
                cell(d),
                cell(n),
                cell(g),
                format!("{:.2}", d.mib_per_s() / g.mib_per_s()),
                format!("{:.2}", n.mib_per_s() / g.mib_per_s()),
            ]);
            let pl = |r: &CellResult| format!("{:.1} / {:.1}", r.p(50.0), r.p(99.0));
            lat.push(vec![
                size_name(row.size),
                pl(d),
                pl(n),
                pl(g),
                format!("{} / {} / {}", d.errors, n.errors, g.errors),
            ]);
        }
        let _ = writeln!(md, "## {title} throughput\n\n{}", markdown_table(&table));
        let _ = writeln!(md, "{title} latency (per request, to the last byte):\n\n{}", markdown_table(&lat));
        let _ = writeln!(text, "{title} throughput, {} in flight:\n{}", args.concurrency, text_table(&table));
    }
    // Small answers that take ~40 ms on a keep-alive connection: the receiver's delayed-ACK
    // timer meeting Nagle's algorithm on a server socket without TCP_NODELAY.
    let stalled: Vec<&str> = downloads
        .iter()
        .filter(|r| r.size <= 4 * KIB)
        .flat_map(|r| r.results.iter())
        .filter(|(_, x)| (35.0..=60.0).contains(&x.p(50.0)))
        .map(|(t, _)| t.name())
        .collect();
    if !stalled.is_empty() {
        let _ = writeln!(
            md,
            "Note: 4 KiB downloads with a median near 40 ms ({}) are a receiver's delayed-ACK timer (40 ms \
             on Linux) meeting Nagle's algorithm on a sender without TCP_NODELAY, which writes headers and \
             body separately: the small second write waits for an ACK that is delayed. picshelf sets \
             TCP_NODELAY; Garage does not, and picshelf reads every S3 download from Garage, so its \
             small downloads inherit the stall. See loadtest/README.md.\n",
            stalled.join(", ")
        );
    }
    if !memory.is_empty() {
        let mut table = vec![
            [
                "backend",
                "idle RSS MiB",
                "peak RSS MiB (VmHWM)",
                "peak ÷ idle",
                "max sampled RSS MiB",
                "RSS after MiB",
                "upload s",
                "upload MiB/s",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for m in memory {
            let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
            table.push(vec![
                if m.backend == "s3" { "S3 (Garage)".into() } else { "disk (fs)".into() },
                mib(m.idle_kib),
                mib(m.peak_kib),
                format!("{:.2}", m.peak_kib as f64 / m.idle_kib as f64),
                mib(m.sampled_max_kib),
                mib(m.after_kib),
                format!("{:.1}", m.upload.as_secs_f64()),
                format!("{:.0}", m.bytes as f64 / MIB as f64 / m.upload.as_secs_f64()),
            ]);
        }
        let _ = writeln!(
            md,
            "## Memory during one streamed {} upload\n\n\
             A fresh release picshelf (its own port, upload limits raised above {}), one warm-up upload and \
             download, 1.5 s of rest: idle = VmRSS then. Then one multipart upload of {} whose body the \
             client generates while sending (Content-Length known, nothing held in memory); VmRSS is sampled \
             every 10 ms meanwhile, and peak = the kernel's VmHWM (high-water mark) at the end. S3 uploads \
             go in parts of `storage.s3.part_size_bytes` (8 MiB), `parts_in_flight` (2) at once.\n\n{}",
            human_bytes(memory[0].bytes),
            human_bytes(memory[0].bytes),
            human_bytes(memory[0].bytes),
            markdown_table(&table)
        );
        let _ = writeln!(
            text,
            "Memory during one streamed {} upload:\n{}",
            human_bytes(memory[0].bytes),
            text_table(&table)
        );
    }
    Rendered { markdown: md, text }
}

/// UTC date and time, without a date library.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}
