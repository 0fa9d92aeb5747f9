//! Two fresh picshelf processes alike but for one setting, given the same
//! uploads in rounds whose order alternates (A B, B A, A B): what one
//! setting costs, measured in one run with one client.

use anyhow::ensure;

use super::MIB;
use super::cells::{CellResult, run_cell, upload_job};
use super::memory::Instance;

pub const ROUNDS: usize = 3;

/// The cells of every round, per setting (as the two instances were given).
pub struct Ab {
    pub a: Vec<CellResult>,
    pub b: Vec<CellResult>,
}

impl Ab {
    /// Throughput over all rounds of one setting: bytes ÷ time.
    fn mib_per_s(cells: &[CellResult]) -> f64 {
        let bytes: u64 = cells.iter().map(|c| c.payload_bytes).sum();
        let secs: f64 = cells.iter().map(|c| c.wall.as_secs_f64()).sum();
        bytes as f64 / MIB as f64 / secs
    }

    /// The median latency over all rounds of one setting, in ms.
    fn p50(cells: &[CellResult]) -> f64 {
        CellResult::p_of_all(cells, 50.0)
    }

    /// Uploads measured per setting, all rounds together.
    pub fn requests(&self) -> usize {
        self.a.iter().map(|c| c.requests).sum()
    }

    /// The report's table: `setting`, then a row per value (`values`, A then
    /// B) with MiB/s, median latency and the ratio to A (headed `ratio_head`).
    pub fn table(&self, setting: &str, values: [&str; 2], ratio_head: &str) -> Vec<Vec<String>> {
        let (a, b) = (Self::mib_per_s(&self.a), Self::mib_per_s(&self.b));
        vec![
            vec![setting.to_owned(), "MiB/s".into(), "p50 ms".into(), ratio_head.to_owned()],
            vec![values[0].to_owned(), format!("{a:.1}"), format!("{:.1}", Self::p50(&self.a)), "1.00".into()],
            vec![
                values[1].to_owned(),
                format!("{b:.1}"),
                format!("{:.1}", Self::p50(&self.b)),
                format!("{:.2}", b / a),
            ],
        ]
    }
}

/// Uploads `count` new files (after a warm-up of `concurrency`) into each of
/// `instances` per round, `files(n, seed)` making `n` distinct files; then
/// stops both (showing their logs after a failure).
pub async fn alternating_rounds(
    client: &reqwest::Client,
    concurrency: usize,
    count: usize,
    instances: [(&str, Instance); 2],
    files: impl Fn(usize, u64) -> Vec<Vec<u8>>,
) -> anyhow::Result<Ab> {
    let outcome = rounds(client, concurrency, count, &instances, files).await;
    for (_, instance) in instances {
        instance.stop(outcome.is_err()).await;
    }
    outcome
}

async fn rounds(
    client: &reqwest::Client,
    concurrency: usize,
    count: usize,
    instances: &[(&str, Instance); 2],
    files: impl Fn(usize, u64) -> Vec<Vec<u8>>,
) -> anyhow::Result<Ab> {
    let c = concurrency;
    let mut result = Ab { a: Vec::new(), b: Vec::new() };
    let mut seed = 0x5717_0000;
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (label, instance) = &instances[which];
            let mut jobs: Vec<_> = files(c + count, seed).iter().map(|f| upload_job(&instance.base(), f)).collect();
            seed += (c + count) as u64;
            let measured = jobs.split_off(c);
            let warmup = run_cell(client, jobs, c, false).await;
            ensure!(warmup.errors == 0, "{label}: warm-up failed: {:?}", warmup.first_error);
            let cell = run_cell(client, measured, c, false).await;
            ensure!(cell.errors == 0, "{label}: {:?}", cell.first_error);
            eprintln!(
                "bench:   round {} {label:<32} {:>8.1} MiB/s {:>8.1} req/s",
                round + 1,
                cell.mib_per_s(),
                cell.req_per_s()
            );
            if which == 0 { result.a.push(cell) } else { result.b.push(cell) }
        }
    }
    Ok(result)
}
