//! picshelf against its baselines, measured side by side in one run with one
//! HTTP client and one concurrency (see loadtest/README.md, "bench"):
//!
//! - upload and download throughput for 4 KiB, 256 KiB and 4 MiB files on the
//!   S3 and the disk backend: picshelf direct, through nginx (downloads with
//!   its cache cold, then warm), the original Flask service under gunicorn,
//!   and Garage directly (presigned requests), in interleaved rounds
//!   ([`throughput`]);
//! - peak resident memory of a picshelf process during one streamed 1 GiB
//!   upload against its idle memory (S3 backend on the same Garage, and disk);
//! - what metadata stripping costs, and what payload signing costs: two
//!   processes alike but for one setting, in alternating rounds ([`ab`]);
//! - variants: time to a first variant of a 12-megapixel JPEG, stored
//!   variants against originals, and memory while eight variants of
//!   24-megapixel JPEGs are rendered at once.
//!
//! Started by scripts/bench, which runs the stack (Garage, picshelf, nginx)
//! and the Flask baseline this measures. Every figure is measured in the run.

mod ab;
mod cells;
mod memory;
mod progress;
mod render;
mod signing;
mod stripping;
mod throughput;
mod variants;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Parser;
use picshelf_loadtest::USER_AGENT;
use progress::Progress;

use self::cells::S3;
use self::memory::{human_bytes, memory_test};
use self::render::render;
use self::signing::signing_test;
use self::stripping::stripping_test;
use self::throughput::{Backend, Cell, Endpoints, Plan};
use self::variants::variants_test;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

#[derive(Parser)]
#[command(name = "bench", about = "picshelf vs Garage throughput, and picshelf's memory during a 1 GiB upload")]
pub struct Args {
    /// picshelf directly (its own port), e.g. http://127.0.0.1:18101
    #[arg(long)]
    app: String,
    /// the same picshelf through nginx, e.g. http://127.0.0.1:18180
    #[arg(long)]
    nginx: String,
    /// A picshelf on the disk backend, directly, e.g. http://127.0.0.1:18102
    #[arg(long)]
    disk_app: Option<String>,
    /// The same through nginx, its environment's prefix included, e.g. http://127.0.0.1:18180/dev
    #[arg(long)]
    disk_nginx: Option<String>,
    /// The original Flask service (loadtest/flask) under gunicorn, on the S3 backend (the same bucket, under flask/).
    #[arg(long)]
    flask_s3: String,
    /// The same on the disk backend.
    #[arg(long)]
    flask_disk: Option<String>,
    /// Rounds of every cell; the targets take turns within a round, and a figure is the median of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Garage's S3 endpoint, e.g. http://127.0.0.1:13910
    #[arg(long)]
    s3_endpoint: String,
    /// The same Garage through a relay that only copies bytes (nginx proxy_pass, unbuffered), e.g.
    /// http://127.0.0.1:18192: presigned requests through it measure what one hop costs.
    #[arg(long)]
    garage_relay: Option<String>,
    #[arg(long, default_value = "garage")]
    region: String,
    /// The bucket the picshelf behind --app writes to (its key: BENCH_S3_KEY_ID, BENCH_S3_SECRET).
    #[arg(long)]
    bucket: String,
    /// Requests at once, for every cell.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Multiplies the number of requests per cell, all rounds together (4 KiB: 2000, 256 KiB: 1000, 4 MiB: 150).
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
    /// Only the throughput cells (no memory, stripping or variants tests).
    #[arg(long)]
    skip_extras: bool,
    /// The backends of the throughput cells, comma-separated: s3, disk.
    #[arg(long, default_value = "s3,disk", value_delimiter = ',')]
    backends: Vec<String>,
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

/// The services of each backend measured.
fn endpoints(args: &Args) -> anyhow::Result<Vec<Endpoints>> {
    let s3 = |endpoint: &str| -> anyhow::Result<S3> {
        Ok(S3::new(endpoint, &args.region, &args.bucket, &env("BENCH_S3_KEY_ID")?, &env("BENCH_S3_SECRET")?))
    };
    let mut backends = vec![Endpoints {
        backend: Backend::S3,
        app: args.app.clone(),
        nginx: args.nginx.clone(),
        flask: args.flask_s3.clone(),
        garage: Some(s3(&args.s3_endpoint)?),
        garage_relay: args.garage_relay.as_deref().map(s3).transpose()?,
    }];
    if let (Some(app), Some(nginx), Some(flask)) = (&args.disk_app, &args.disk_nginx, &args.flask_disk) {
        backends.push(Endpoints {
            backend: Backend::Disk,
            app: app.clone(),
            nginx: nginx.clone(),
            flask: flask.clone(),
            garage: None,
            garage_relay: None,
        });
    } else {
        ensure!(
            args.disk_app.is_none() && args.disk_nginx.is_none() && args.flask_disk.is_none(),
            "--disk-app, --disk-nginx and --flask-disk go together"
        );
    }
    Ok(backends)
}

pub fn size_name(size: usize) -> String {
    if size >= MIB { format!("{} MiB", size / MIB) } else { format!("{} KiB", size / KIB) }
}

pub fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(300))
        .build()?;
    let c = args.concurrency;
    let run_tag = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());

    let plan = Plan { concurrency: c, scale: args.scale, rounds: args.rounds.max(1), run_tag };
    let mut backends = if args.skip_throughput { Vec::new() } else { endpoints(&args)? };
    backends.retain(|e| args.backends.iter().any(|b| b == e.backend.key()));
    // The binary for the tests beyond the throughput cells, unless they are skipped.
    let extras_bin = args.picshelf_bin.as_ref().filter(|_| !args.skip_extras);
    let extra_steps = if extras_bin.is_some() { 2 + if args.skip_throughput { 0 } else { 3 } } else { 0 };
    let mut progress = Progress::new(backends.len() * throughput::steps(plan.rounds) + extra_steps);
    let mut cells = Vec::new();
    for endpoints in &backends {
        cells.extend(throughput::measure_backend(&client, &plan, endpoints, &mut progress).await?);
    }

    let mut memory = Vec::new();
    if let Some(bin) = extras_bin {
        for backend in ["s3", "fs"] {
            eprintln!("bench: memory, {} streamed upload, {backend} backend", human_bytes(args.mem_bytes));
            memory.push(memory_test(&args, bin, backend, &client).await?);
            progress.step(&format!("memory, {backend} backend"));
        }
    }

    let (mut stripping, mut signing, mut variants) = (None, None, None);
    if let Some(bin) = extras_bin.filter(|_| !args.skip_throughput) {
        eprintln!("bench: metadata stripping, 4 MiB JPEGs with EXIF, strip_metadata off and on (disk backend)");
        stripping = Some(stripping_test(&args, bin, &client).await?);
        progress.step("metadata stripping");
        eprintln!("bench: payload signing, 4 MiB uploads to S3, payload_signing always and never");
        signing = Some(signing_test(&args, bin, &client).await?);
        progress.step("payload signing");
        eprintln!("bench: variants of 12- and 24-megapixel JPEGs (disk backend)");
        variants = Some(variants_test(&args, bin, &client).await?);
        progress.step("variants");
    }

    let report =
        render(&args, &cells, &memory, stripping.as_ref(), signing.as_ref(), variants.as_ref(), started.elapsed());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &report.markdown)?;
    println!("{}", report.text);
    println!("bench: written to {}", args.out.display());
    let errors: usize = cells.iter().map(Cell::errors).sum();
    ensure!(errors == 0, "{errors} requests failed; see the tables");
    Ok(())
}
