//! The fault run's figures (`make faults`): the load test's samples cut into
//! the phases the driver recorded (a fault, then the time after it), and for
//! each phase: requests, errors by status, the error rate during the fault and
//! after it, the time until the service answered normally again, and p50/p99
//! latency during the fault.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::stats::{Sample, percentile};

/// One phase, as `scripts/faults` writes it to phases.csv (microseconds since
/// the Unix epoch): the fault starts, it is undone, the phase ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: String,
    pub fault_start_us: u64,
    pub fault_end_us: u64,
    pub end_us: u64,
}

pub const PHASES_HEADER: &str = "phase,fault_start_us,fault_end_us,end_us";

pub fn read_phases(path: &Path) -> anyhow::Result<Vec<Phase>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    anyhow::ensure!(lines.next() == Some(PHASES_HEADER), "{}: not a phases file", path.display());
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(f.len() == 4, "expected 4 fields: {line}");
            let phase = Phase {
                name: f[0].to_owned(),
                fault_start_us: f[1].parse()?,
                fault_end_us: f[2].parse()?,
                end_us: f[3].parse()?,
            };
            anyhow::ensure!(
                phase.fault_start_us <= phase.fault_end_us && phase.fault_end_us <= phase.end_us,
                "phase {} is out of order",
                phase.name
            );
            Ok(phase)
        })
        .collect()
}

/// What one phase did to the users.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseFigures {
    pub name: String,
    pub fault_secs: f64,
    pub requests_during: usize,
    pub requests_after: usize,
    /// Failed requests by status over the whole phase ("closed": no answer).
    pub errors: BTreeMap<String, usize>,
    pub error_rate_during: f64,
    pub error_rate_after: f64,
    /// From undoing the fault to the end of the last failed request after it
    /// (0: nothing failed after the fault was undone).
    pub recovery_secs: f64,
    pub p50_ms_during: f64,
    pub p99_ms_during: f64,
    /// 5xx answers other than 502, 503 and 504, anywhere in the phase.
    pub unexpected_5xx: usize,
}

fn status_name(sample: &Sample) -> String {
    if sample.status == 0 { "closed".to_owned() } else { sample.status.to_string() }
}

fn rate(failed: usize, total: usize) -> f64 {
    if total == 0 { 0.0 } else { failed as f64 / total as f64 }
}

/// When a request ended: when its outcome was seen (a request in flight when
/// a replica is killed fails then, not when it started).
fn ended(sample: &Sample) -> u64 {
    sample.start_us + sample.elapsed_us
}

/// The figures of each phase; samples are placed by the time they ended.
pub fn figures(samples: &[Sample], phases: &[Phase]) -> Vec<PhaseFigures> {
    phases
        .iter()
        .map(|phase| {
            let during: Vec<&Sample> =
                samples.iter().filter(|s| ended(s) >= phase.fault_start_us && ended(s) < phase.fault_end_us).collect();
            let after: Vec<&Sample> =
                samples.iter().filter(|s| ended(s) >= phase.fault_end_us && ended(s) < phase.end_us).collect();
            let mut errors = BTreeMap::new();
            for sample in during.iter().chain(&after).filter(|s| !s.ok) {
                *errors.entry(status_name(sample)).or_insert(0) += 1;
            }
            let unexpected_5xx = during
                .iter()
                .chain(&after)
                .filter(|s| (500..600).contains(&s.status) && !matches!(s.status, 502..=504))
                .count();
            let last_failure_end = after.iter().filter(|s| !s.ok).map(|s| ended(s)).max();
            let recovery_secs = last_failure_end.map_or(0.0, |end| end.saturating_sub(phase.fault_end_us) as f64 / 1e6);
            let mut latencies: Vec<u64> = during.iter().map(|s| s.elapsed_us).collect();
            latencies.sort_unstable();
            PhaseFigures {
                name: phase.name.clone(),
                fault_secs: (phase.fault_end_us - phase.fault_start_us) as f64 / 1e6,
                requests_during: during.len(),
                requests_after: after.len(),
                error_rate_during: rate(during.iter().filter(|s| !s.ok).count(), during.len()),
                error_rate_after: rate(after.iter().filter(|s| !s.ok).count(), after.len()),
                errors,
                recovery_secs,
                p50_ms_during: millis(&latencies, 50.0),
                p99_ms_during: millis(&latencies, 99.0),
                unexpected_5xx,
            }
        })
        .collect()
}

fn millis(sorted: &[u64], pct: f64) -> f64 {
    if sorted.is_empty() { 0.0 } else { percentile(sorted, pct) as f64 / 1e3 }
}

/// Failed requests that ended before the first fault: the setup is broken.
pub fn failures_before(samples: &[Sample], phases: &[Phase]) -> usize {
    let first = phases.iter().map(|p| p.fault_start_us).min().unwrap_or(u64::MAX);
    samples.iter().filter(|s| ended(s) < first && !s.ok).count()
}

pub fn markdown(figures: &[PhaseFigures]) -> String {
    let mut md = String::new();
    md.push_str(
        "| phase | fault | requests during / after | errors by status | error rate during | after | recovered after | p50 / p99 during |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let errors = if f.errors.is_empty() {
            "none".to_owned()
        } else {
            f.errors.iter().map(|(status, n)| format!("{n} × {status}")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} s | {} / {} | {errors} | {:.1} % | {:.1} % | {:.1} s | {:.0} / {:.0} ms |",
            f.name,
            f.fault_secs,
            f.requests_during,
            f.requests_after,
            f.error_rate_during * 100.0,
            f.error_rate_after * 100.0,
            f.recovery_secs,
            f.p50_ms_during,
            f.p99_ms_during,
        );
    }
    md
}

/// Everything that makes the run fail, one line each (empty: it passed).
pub fn violations(figures: &[PhaseFigures], failures_before: usize, max_recovery_secs: f64) -> Vec<String> {
    let mut out = Vec::new();
    if failures_before > 0 {
        out.push(format!("{failures_before} requests failed before the first fault"));
    }
    for f in figures {
        if f.unexpected_5xx > 0 {
            out.push(format!("{}: {} answers with a 5xx other than 502, 503, 504", f.name, f.unexpected_5xx));
        }
        if f.recovery_secs > max_recovery_secs {
            out.push(format!(
                "{}: recovered after {:.1} s, over the bound of {max_recovery_secs} s",
                f.name, f.recovery_secs
            ));
        }
        if f.requests_after == 0 {
            out.push(format!("{}: no request after the fault was undone", f.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_s: f64, elapsed_ms: u64, status: u16) -> Sample {
        Sample {
            label: "view".into(),
            start_us: (start_s * 1e6) as u64,
            elapsed_us: elapsed_ms * 1000,
            status,
            ok: status == 200 || status == 201,
            recv_bytes: 0,
            sent_bytes: 0,
            error: String::new(),
        }
    }

    fn phase() -> Phase {
        Phase { name: "store-down".into(), fault_start_us: 10_000_000, fault_end_us: 20_000_000, end_us: 40_000_000 }
    }

    #[test]
    fn samples_fall_into_the_fault_or_after_it_by_their_end() {
        let samples = vec![
            sample(5.0, 10, 200),   // before: not in the phase
            sample(9.5, 3000, 503), // started before, failed during
            sample(12.0, 100, 200),
            sample(19.9, 500, 0),    // closed: ended after the fault
            sample(21.0, 1000, 503), // after: ends at 22 s
            sample(25.0, 10, 200),
        ];
        let f = &figures(&samples, &[phase()])[0];
        assert_eq!((f.requests_during, f.requests_after), (2, 3));
        assert_eq!(f.errors, BTreeMap::from([("503".to_owned(), 2), ("closed".to_owned(), 1)]));
        assert!((f.error_rate_during - 0.5).abs() < 1e-9);
        assert!((f.error_rate_after - 2.0 / 3.0).abs() < 1e-9);
        assert!((f.recovery_secs - 2.0).abs() < 1e-9, "{}", f.recovery_secs);
        assert_eq!(f.unexpected_5xx, 0);
        assert_eq!(f.fault_secs, 10.0);
    }

    #[test]
    fn a_500_a_slow_recovery_and_early_failures_fail_the_run() {
        let samples = vec![sample(1.0, 10, 503), sample(12.0, 10, 500), sample(35.0, 1000, 503)];
        let figures = figures(&samples, &[phase()]);
        let problems = violations(&figures, failures_before(&samples, &[phase()]), 10.0);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("before the first fault"));
        assert!(problems[1].contains("other than 502"));
        assert!(problems[2].contains("recovered after 16.0 s"));
        assert!(markdown(&figures).contains("| store-down | 10 s | 1 / 1 |"));
    }

    #[test]
    fn phases_are_read_back_and_checked() {
        let path = std::env::temp_dir().join(format!("picshelf-phases-{}.csv", std::process::id()));
        std::fs::write(&path, format!("{PHASES_HEADER}\nnode-kill,1,2,3\n")).unwrap();
        assert_eq!(
            read_phases(&path).unwrap(),
            vec![Phase { name: "node-kill".into(), fault_start_us: 1, fault_end_us: 2, end_us: 3 }]
        );
        std::fs::write(&path, format!("{PHASES_HEADER}\nbad,3,2,1\n")).unwrap();
        assert!(read_phases(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
