//! picshelf against its own object store, measured side by side in one run
//! with one HTTP client and one concurrency (see loadtest/README.md, "bench"):
//!
//! - upload and download throughput for 4 KiB, 256 KiB and 4 MiB objects:
//!   picshelf direct (its port), picshelf through nginx, and Garage directly
//!   (presigned PUT/GET of the same kind of object; for downloads, the very
//!   objects picshelf stored);
//! - peak resident memory of a picshelf process during one streamed 1 GiB
//!   upload against its idle memory (S3 backend on the same Garage, and disk);
//! - what metadata stripping costs: 4 MiB JPEGs with EXIF uploaded with
//!   `upload.strip_metadata` off and on;
//! - variants: time to a first variant of a 12-megapixel JPEG, stored
//!   variants against originals, and memory while eight variants of
//!   24-megapixel JPEGs are rendered at once.
//!
//! Started by scripts/bench, which runs the stack (Garage, picshelf, nginx)
//! this measures. Every figure is measured in the run.

mod cells;
mod memory;
mod progress;
mod render;
mod stripping;
mod variants;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use clap::Parser;
use picshelf_loadtest::USER_AGENT;
use progress::Progress;
use reqwest::header::{ACCEPT, HeaderValue};

use self::cells::{CellResult, Job, S3, common_headers, file_bytes, run_cell, template, upload_job};
use self::memory::{human_bytes, memory_test};
use self::render::render;
use self::stripping::stripping_test;
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
pub enum Target {
    Direct,
    Nginx,
    Garage,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "picshelf direct",
            Target::Nginx => "picshelf via nginx",
            Target::Garage => "Garage direct",
        }
    }
}

pub struct Row {
    pub size: usize,
    pub results: Vec<(Target, CellResult)>,
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
    let with_bin = args.picshelf_bin.is_some();
    let extra_steps = if with_bin { 2 + if args.skip_throughput { 0 } else { 2 } } else { 0 };
    let mut progress = Progress::new(sizes.len() * 6 + extra_steps);
    for (n, &(size, base_count)) in sizes.iter().enumerate() {
        let count = ((base_count * args.scale).round() as usize).max(c);
        let warm = c;
        let tpl = template(size, 0xbe7c + n as u64);
        let mut stamp = 0u64;
        let mut next_file = || {
            stamp += 1;
            file_bytes(&tpl, stamp)
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
            progress.step(&format!("{} upload, {}", size_name(size), target.name()));
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
            progress.step(&format!("{} download, {}", size_name(size), target.name()));
        }
        downloads.push(down);
    }

    let mut memory = Vec::new();
    if let Some(bin) = &args.picshelf_bin {
        for backend in ["s3", "fs"] {
            eprintln!("bench: memory, {} streamed upload, {backend} backend", human_bytes(args.mem_bytes));
            memory.push(memory_test(&args, bin, backend, &client).await?);
            progress.step(&format!("memory, {backend} backend"));
        }
    }

    let mut stripping = None;
    if let Some(bin) = &args.picshelf_bin
        && !args.skip_throughput
    {
        eprintln!("bench: metadata stripping, 4 MiB JPEGs with EXIF, strip_metadata off and on (disk backend)");
        stripping = Some(stripping_test(&args, bin, &client).await?);
        progress.step("metadata stripping");
    }
    let mut variants = None;
    if let Some(bin) = &args.picshelf_bin
        && !args.skip_throughput
    {
        eprintln!("bench: variants of 12- and 24-megapixel JPEGs (disk backend)");
        variants = Some(variants_test(&args, bin, &client).await?);
        progress.step("variants");
    }

    let report = render(&args, &uploads, &downloads, &memory, stripping.as_ref(), variants.as_ref(), started.elapsed());
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
