//! The throughput matrix: uploads and downloads of 4 KiB, 256 KiB and 4 MiB
//! files through picshelf (directly and through nginx, whose cache is cold on
//! a first download and warm on the second), the original Flask service under
//! gunicorn, and Garage itself; on the S3 backend and on the disk backend.
//! Every cell runs in `rounds` rounds, each round running every target once
//! in turn (the services interleave), and a cell's figure is the median of
//! its rounds.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use reqwest::header::{ACCEPT, HeaderValue};

use super::cells::{CellResult, Job, S3, common_headers, file_bytes, run_cell, template, upload_job};
use super::progress::Progress;
use super::{KIB, MIB, size_name};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Backend {
    S3,
    Disk,
}

impl Backend {
    /// As `--backends` names it.
    pub fn key(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Disk => "disk",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::S3 => "S3 (Garage)",
            Backend::Disk => "disk",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Direction {
    Upload,
    Download,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Target {
    /// picshelf on its own port.
    Direct,
    /// picshelf through nginx: uploads, and downloads of objects nginx has not seen.
    NginxCold,
    /// Downloads through nginx of the objects of the cold cell just before.
    NginxWarm,
    /// The original Flask service under gunicorn, on its own port.
    Flask,
    /// Garage's S3 API, presigned requests (S3 backend only).
    Garage,
    /// The same requests through a relay that only copies bytes (nginx
    /// `proxy_pass`, unbuffered): what one hop costs on this machine.
    GarageRelay,
}

impl Target {
    pub fn name(self, direction: Direction) -> &'static str {
        match (self, direction) {
            (Target::Direct, _) => "picshelf",
            (Target::NginxCold, Direction::Upload) => "picshelf via nginx",
            (Target::NginxCold, Direction::Download) => "picshelf via nginx, cold",
            (Target::NginxWarm, _) => "picshelf via nginx, warm",
            (Target::Flask, _) => "Flask (gunicorn)",
            (Target::Garage, _) => "Garage",
            (Target::GarageRelay, _) => "Garage via a relay",
        }
    }
}

/// Where one backend's services answer.
pub struct Endpoints {
    pub backend: Backend,
    pub app: String,
    /// nginx, with the path prefix of the environment that app serves ("" or "/dev").
    pub nginx: String,
    pub flask: String,
    /// Garage (S3 backend only).
    pub garage: Option<S3>,
    /// Garage through a plain nginx relay (S3 backend only).
    pub garage_relay: Option<S3>,
}

impl Endpoints {
    fn targets(&self, direction: Direction) -> Vec<Target> {
        let mut targets = match direction {
            Direction::Upload => vec![Target::Direct, Target::NginxCold, Target::Flask],
            Direction::Download => vec![Target::Direct, Target::NginxCold, Target::NginxWarm, Target::Flask],
        };
        if self.garage.is_some() {
            targets.push(Target::Garage);
        }
        if self.garage_relay.is_some() {
            targets.push(Target::GarageRelay);
        }
        targets
    }

    /// Where presigned requests of `target` go: Garage, or Garage through the relay.
    fn s3(&self, target: Target) -> anyhow::Result<&S3> {
        let s3 = if target == Target::GarageRelay { &self.garage_relay } else { &self.garage };
        s3.as_ref().with_context(|| format!("{target:?} target without its endpoint"))
    }
}

/// The key prefix of a presigned target's uploads.
fn target_key(target: Target) -> &'static str {
    if target == Target::GarageRelay { "relay" } else { "garage" }
}

/// One cell: every round of one target for one backend, direction and size.
pub struct Cell {
    pub backend: Backend,
    pub direction: Direction,
    pub size: usize,
    pub target: Target,
    pub rounds: Vec<CellResult>,
}

impl Cell {
    /// One cell per target, no round measured yet.
    fn empty(backend: Backend, direction: Direction, size: usize, targets: &[Target]) -> Vec<Cell> {
        targets.iter().map(|&target| Cell { backend, direction, size, target, rounds: Vec::new() }).collect()
    }

    /// The median of the rounds' MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        median(self.rounds.iter().map(CellResult::mib_per_s).collect())
    }
    pub fn requests(&self) -> usize {
        self.rounds.iter().map(|r| r.requests).sum()
    }
    pub fn errors(&self) -> usize {
        self.rounds.iter().map(|r| r.errors).sum()
    }
    /// p-th percentile latency (ms) over every request of every round.
    pub fn p(&self, pct: f64) -> f64 {
        CellResult::p_of_all(&self.rounds, pct)
    }
    /// Answers by nginx's X-Cache-Status, over every round.
    pub fn cache_statuses(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for r in &self.rounds {
            for (k, v) in &r.cache_statuses {
                *all.entry(k.clone()).or_insert(0) += v;
            }
        }
        all
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

pub const SIZES: [(usize, f64); 3] = [(4 * KIB, 2000.0), (256 * KIB, 1000.0), (4 * MIB, 150.0)];

/// Downloads are cheap and quick: each download cell makes this many times
/// the requests of an upload cell, cycling over the uploaded objects, so that
/// a round lasts long enough to measure. (A cold cell cannot: each of its
/// requests needs an object nginx has not seen.)
pub const DOWNLOAD_FACTOR: usize = 4;

pub struct Plan {
    pub concurrency: usize,
    pub scale: f64,
    pub rounds: usize,
    pub run_tag: String,
}

impl Plan {
    /// Requests per round of one cell of `size`.
    pub fn per_round(&self, base_count: f64) -> usize {
        (((base_count * self.scale) / self.rounds as f64).round() as usize).max(self.concurrency)
    }
}

/// Every cell of one backend, size by size: uploads, then downloads of what was uploaded.
pub async fn measure_backend(
    client: &reqwest::Client,
    plan: &Plan,
    endpoints: &Endpoints,
    progress: &mut Progress,
) -> anyhow::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    let c = plan.concurrency;
    for (n, &(size, base_count)) in SIZES.iter().enumerate() {
        let per_round = plan.per_round(base_count);
        let total = c + per_round * plan.rounds;
        eprintln!(
            "bench: {}, {} files, {} rounds of {per_round} requests per cell, {c} at once",
            endpoints.backend.name(),
            size_name(size),
            plan.rounds
        );
        let tpl = template(size, 0xbe7c + n as u64 + 16 * endpoints.backend as u64);
        let mut stamp = 0u64;

        // Uploads: `total` new files into each target (the first `c` as the warm-up).
        let targets = endpoints.targets(Direction::Upload);
        let mut ids: BTreeMap<Target, Vec<String>> = BTreeMap::new();
        let mut up = Cell::empty(endpoints.backend, Direction::Upload, size, &targets);
        for round in 0..=plan.rounds {
            let count = if round == 0 { c } else { per_round };
            for (cell, &target) in up.iter_mut().zip(&targets) {
                let mut jobs = Vec::with_capacity(count);
                for i in 0..count {
                    stamp += 1;
                    let file = file_bytes(&tpl, stamp);
                    jobs.push(match target {
                        Target::Direct => upload_job(&endpoints.app, &file),
                        Target::NginxCold | Target::NginxWarm => upload_job(&endpoints.nginx, &file),
                        Target::Flask => upload_job(&endpoints.flask, &file),
                        Target::Garage | Target::GarageRelay => {
                            let key = format!("bench-{}/{}/{size}/{round}-{i}", plan.run_tag, target_key(target));
                            endpoints.s3(target)?.put_job(&key, Bytes::from(file)).await?
                        }
                    });
                }
                let keep = !matches!(target, Target::Garage | Target::GarageRelay);
                let result = run_round(client, jobs, c, keep, Direction::Upload, target, round).await?;
                let pool = ids.entry(target).or_default();
                for body in &result.bodies {
                    let v: serde_json::Value = serde_json::from_slice(body)?;
                    let id = v["files"][0]["id"].as_str().context("upload answer without files[0].id")?;
                    pool.push(id.to_owned());
                }
                if round > 0 {
                    report_line(endpoints.backend, Direction::Upload, target, round, &result);
                    cell.rounds.push(CellResult { bodies: Vec::new(), ..result });
                }
            }
            if round > 0 {
                progress.step(&format!("{}, {} uploads, round {round}", endpoints.backend.name(), size_name(size)));
            }
        }
        cells.extend(up);

        // Downloads.
        let direct_ids = ids.remove(&Target::Direct).unwrap_or_default();
        let nginx_ids = ids.remove(&Target::NginxCold).unwrap_or_default();
        let flask_ids = ids.remove(&Target::Flask).unwrap_or_default();
        ensure!(!direct_ids.is_empty() && !flask_ids.is_empty(), "no uploads to download");
        ensure!(nginx_ids.len() >= total, "nginx uploads: {} ids, {total} needed", nginx_ids.len());
        let targets = endpoints.targets(Direction::Download);
        let mut down = Cell::empty(endpoints.backend, Direction::Download, size, &targets);
        let mut cursor = 0usize;
        for round in 0..=plan.rounds {
            let cold_count = if round == 0 { c } else { per_round };
            // The cold cell's objects, never downloaded through nginx before; the warm cell's again.
            let fresh = &nginx_ids[cursor..cursor + cold_count];
            cursor += cold_count;
            for (cell, &target) in down.iter_mut().zip(&targets) {
                let count =
                    if round == 0 || target == Target::NginxCold { cold_count } else { per_round * DOWNLOAD_FACTOR };
                let mut jobs = Vec::with_capacity(count);
                for i in 0..count {
                    let k = (round * count + i) % direct_ids.len();
                    jobs.push(match target {
                        Target::Direct => download_job(&endpoints.app, &direct_ids[k], size),
                        Target::NginxCold | Target::NginxWarm => {
                            download_job(&endpoints.nginx, &fresh[i % fresh.len()], size)
                        }
                        Target::Flask => download_job(&endpoints.flask, &flask_ids[k % flask_ids.len()], size),
                        Target::Garage | Target::GarageRelay => {
                            endpoints.s3(target)?.get_job(&direct_ids[k], size as u64).await?
                        }
                    });
                }
                let result = run_round(client, jobs, c, false, Direction::Download, target, round).await?;
                if round > 0 {
                    report_line(endpoints.backend, Direction::Download, target, round, &result);
                    cell.rounds.push(result);
                }
            }
            if round > 0 {
                progress.step(&format!("{}, {} downloads, round {round}", endpoints.backend.name(), size_name(size)));
            }
        }
        cells.extend(down);
    }
    Ok(cells)
}

/// Runs one round of a cell (round 0: the warm-up, which must not fail).
async fn run_round(
    client: &reqwest::Client,
    jobs: Vec<Job>,
    concurrency: usize,
    keep_bodies: bool,
    direction: Direction,
    target: Target,
    round: usize,
) -> anyhow::Result<CellResult> {
    let result = run_cell(client, jobs, concurrency, keep_bodies).await;
    ensure!(result.errors == 0 || round > 0, "{} warm-up failed: {:?}", target.name(direction), result.first_error);
    Ok(result)
}

fn download_job(base: &str, id: &str, size: usize) -> Job {
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

fn report_line(backend: Backend, direction: Direction, target: Target, round: usize, r: &CellResult) {
    let cache: Vec<String> = r.cache_statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "bench:   {:<11} {:<8} {:<26} round {round}: {:>8.1} MiB/s {:>8.1} req/s  {} errors{}",
        backend.name(),
        if direction == Direction::Upload { "upload" } else { "download" },
        target.name(direction),
        r.mib_per_s(),
        r.req_per_s(),
        r.errors,
        if cache.is_empty() { String::new() } else { format!("  cache: {}", cache.join(", ")) }
    );
}

/// The cells of the steps count of [`measure_backend`]: rounds × (uploads + downloads) per size.
pub fn steps(rounds: usize) -> usize {
    SIZES.len() * rounds * 2
}
