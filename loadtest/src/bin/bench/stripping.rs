//! What removing metadata costs: upload throughput of a 4 MiB JPEG carrying
//! a camera's EXIF block (GPS, make, serial number) into two picshelf
//! processes that differ only in `upload.strip_metadata`, disk backend in
//! memory (`/dev/shm` where there is one: the disk's write-back would
//! otherwise measure the disk), same client and concurrency, rounds whose
//! order alternates in one run.

use std::path::Path;

use anyhow::ensure;
use picshelf_test_images::{BigWithMetadata, Container};

use super::cells::{CellResult, run_cell, upload_job};
use super::memory::Instance;
use super::{Args, MIB};

pub const FILE_BYTES: usize = 4 * MIB;
const ROUNDS: usize = 3;

pub struct Stripping {
    /// Per setting (off, on): the cells of every round.
    pub off: Vec<CellResult>,
    pub on: Vec<CellResult>,
}

impl Stripping {
    /// Throughput over all rounds of one setting: bytes ÷ time.
    pub fn mib_per_s(cells: &[CellResult]) -> f64 {
        let bytes: u64 = cells.iter().map(|c| c.payload_bytes).sum();
        let secs: f64 = cells.iter().map(|c| c.wall.as_secs_f64()).sum();
        bytes as f64 / MIB as f64 / secs
    }

    /// The median latency over all rounds of one setting, in ms.
    pub fn p50(cells: &[CellResult]) -> f64 {
        let mut all: Vec<u64> = cells.iter().flat_map(|c| c.latencies_us.iter().copied()).collect();
        all.sort_unstable();
        picshelf_loadtest::stats::percentile(&all, 50.0) as f64 / 1000.0
    }
}

/// Distinct files (each its own noise), so no layer can cache or deduplicate.
fn files(count: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            BigWithMetadata::new(Container::Jpeg, FILE_BYTES, 4000, 3000, seed + i as u64)
                .pieces(MIB)
                .flatten()
                .collect()
        })
        .collect()
}

pub async fn stripping_test(args: &Args, bin: &Path, client: &reqwest::Client) -> anyhow::Result<Stripping> {
    let c = args.concurrency;
    let count = ((150.0 * args.scale).round() as usize).max(c);
    let mut instances = Vec::new();
    let shm = Path::new("/dev/shm");
    let mut data_dirs = Vec::new();
    for strip in [false, true] {
        let mut extra = vec![("PICSHELF__UPLOAD__STRIP_METADATA", strip.to_string())];
        if shm.is_dir() {
            let dir = shm.join(format!("picshelf-bench-strip-{strip}-{}", std::process::id()));
            extra.push(("PICSHELF__STORAGE__FS__ROOT", dir.display().to_string()));
            data_dirs.push(dir);
        }
        instances.push(Instance::start(args, bin, &format!("strip-{strip}"), "fs", &extra, client).await?);
    }
    let mut result = Stripping { off: Vec::new(), on: Vec::new() };
    let mut seed = 0x5717_0000;
    let outcome: anyhow::Result<()> = async {
        for round in 0..ROUNDS {
            let order = if round % 2 == 0 {
                [(false, &instances[0]), (true, &instances[1])]
            } else {
                [(true, &instances[1]), (false, &instances[0])]
            };
            for (strip, instance) in order {
                let mut jobs: Vec<_> = files(c + count, seed).iter().map(|f| upload_job(&instance.base(), f)).collect();
                seed += (c + count) as u64;
                let measured = jobs.split_off(c);
                let warmup = run_cell(client, jobs, c, false).await;
                ensure!(warmup.errors == 0, "strip={strip}: warm-up failed: {:?}", warmup.first_error);
                let cell = run_cell(client, measured, c, false).await;
                ensure!(cell.errors == 0, "strip={strip}: {:?}", cell.first_error);
                eprintln!(
                    "bench:   round {} strip_metadata={strip:<5} {:>8.1} MiB/s {:>8.1} req/s",
                    round + 1,
                    cell.mib_per_s(),
                    cell.req_per_s()
                );
                if strip { result.on.push(cell) } else { result.off.push(cell) }
            }
        }
        Ok(())
    }
    .await;
    for instance in instances {
        instance.stop(outcome.is_err()).await;
    }
    for dir in data_dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome.map(|()| result)
}
