//! Per-request samples and the summary the original JMeter report had:
//! samples, mean, median, 90/95/99 %, min, max, error %, throughput and KB/s.

use std::fmt::Write as _;
use std::io::BufRead;

/// One request as the load test measured it (to the last byte of the answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub label: String,
    /// When the request started, microseconds since the Unix epoch.
    pub start_us: u64,
    /// From sending the request to having read the last byte of the answer.
    pub elapsed_us: u64,
    /// HTTP status, 0 when there was no answer.
    pub status: u16,
    pub ok: bool,
    /// Status line, headers and body received.
    pub recv_bytes: u64,
    /// Request line, headers and body sent.
    pub sent_bytes: u64,
    /// Why it failed (empty when ok).
    pub error: String,
}

pub const SAMPLE_HEADER: &str = "label,start_us,elapsed_us,status,ok,recv_bytes,sent_bytes,error";

impl Sample {
    pub fn csv_line(&self) -> String {
        let error: String =
            self.error.chars().map(|c| if c == ',' || c == '\n' || c == '\r' || c == '"' { ';' } else { c }).collect();
        format!(
            "{},{},{},{},{},{},{},{}",
            self.label, self.start_us, self.elapsed_us, self.status, self.ok, self.recv_bytes, self.sent_bytes, error
        )
    }

    pub fn parse(line: &str) -> anyhow::Result<Self> {
        let f: Vec<&str> = line.splitn(8, ',').collect();
        anyhow::ensure!(f.len() == 8, "expected 8 fields: {line}");
        Ok(Self {
            label: f[0].to_owned(),
            start_us: f[1].parse()?,
            elapsed_us: f[2].parse()?,
            status: f[3].parse()?,
            ok: f[4].parse()?,
            recv_bytes: f[5].parse()?,
            sent_bytes: f[6].parse()?,
            error: f[7].to_owned(),
        })
    }
}

pub fn read_samples(path: &std::path::Path) -> anyhow::Result<Vec<Sample>> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut samples = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if n == 0 {
            anyhow::ensure!(line == SAMPLE_HEADER, "{}: not a samples file (header {line:?})", path.display());
            continue;
        }
        if !line.is_empty() {
            samples.push(Sample::parse(&line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?);
        }
    }
    Ok(samples)
}

/// The original report's columns for one label (or all of them).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub samples: usize,
    pub errors: usize,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub error_pct: f64,
    /// Samples per second over the span from the first start to the last end.
    pub throughput_per_s: f64,
    /// Successful samples per second over the same span.
    pub ok_per_s: f64,
    pub recv_kb_per_s: f64,
    pub sent_kb_per_s: f64,
    pub span_s: f64,
}

/// Nearest-rank percentile of an ascending, non-empty slice (as JMeter's
/// aggregate report and `loadtest/jmeter/check-results` compute it).
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn summarize<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Summary {
    let samples: Vec<&Sample> = samples.into_iter().collect();
    if samples.is_empty() {
        return Summary::default();
    }
    let mut times: Vec<u64> = samples.iter().map(|s| s.elapsed_us).collect();
    times.sort_unstable();
    let n = times.len();
    let errors = samples.iter().filter(|s| !s.ok).count();
    let start = samples.iter().map(|s| s.start_us).min().unwrap_or(0);
    let end = samples.iter().map(|s| s.start_us + s.elapsed_us).max().unwrap_or(0);
    let span_s = ((end - start) as f64 / 1e6).max(1e-3);
    let ms = |us: u64| us as f64 / 1000.0;
    let recv: u64 = samples.iter().map(|s| s.recv_bytes).sum();
    let sent: u64 = samples.iter().map(|s| s.sent_bytes).sum();
    Summary {
        samples: n,
        errors,
        mean_ms: times.iter().sum::<u64>() as f64 / n as f64 / 1000.0,
        median_ms: ms(percentile(&times, 50.0)),
        p90_ms: ms(percentile(&times, 90.0)),
        p95_ms: ms(percentile(&times, 95.0)),
        p99_ms: ms(percentile(&times, 99.0)),
        min_ms: ms(times[0]),
        max_ms: ms(times[n - 1]),
        error_pct: 100.0 * errors as f64 / n as f64,
        throughput_per_s: n as f64 / span_s,
        ok_per_s: (n - errors) as f64 / span_s,
        recv_kb_per_s: recv as f64 / 1024.0 / span_s,
        sent_kb_per_s: sent as f64 / 1024.0 / span_s,
        span_s,
    }
}

/// Failure reasons and how often each occurred, most frequent first.
pub fn error_counts<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for s in samples.into_iter().filter(|s| !s.ok) {
        *counts.entry(format!("{}: {}", s.label, s.error)).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// A fixed-width text table (header row first), for terminals.
pub fn text_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// A Markdown table (header row first; first column left-aligned, the rest right-aligned).
pub fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&row.join(" | "));
        out.push_str(" |\n");
        if n == 0 {
            let aligns: Vec<&str> = (0..row.len()).map(|i| if i == 0 { "---" } else { "---:" }).collect();
            out.push_str("| ");
            out.push_str(&aligns.join(" | "));
            out.push_str(" |\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(label: &str, start_us: u64, elapsed_us: u64, ok: bool) -> Sample {
        Sample {
            label: label.into(),
            start_us,
            elapsed_us,
            status: if ok { 200 } else { 429 },
            ok,
            recv_bytes: 1024,
            sent_bytes: 512,
            error: if ok { String::new() } else { "429, rate_limited".into() },
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
    }

    #[test]
    fn summary_counts_errors_and_rates_over_the_span() {
        let samples = vec![
            sample("view", 0, 1_000, true),
            sample("view", 500_000, 3_000, true),
            sample("view", 1_000_000, 1_000_000, false),
            sample("view", 1_500_000, 2_000, true),
        ];
        let s = summarize(&samples);
        assert_eq!(s.samples, 4);
        assert_eq!(s.errors, 1);
        assert_eq!(s.error_pct, 25.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 1000.0);
        assert_eq!(s.median_ms, 2.0);
        assert_eq!(s.span_s, 2.0);
        assert_eq!(s.throughput_per_s, 2.0);
        assert_eq!(s.recv_kb_per_s, 2.0);
        assert_eq!(s.sent_kb_per_s, 1.0);
    }

    #[test]
    fn samples_round_trip_through_csv_without_breaking_on_commas() {
        let s = sample("upload", 12, 34, false);
        let back = Sample::parse(&s.csv_line()).unwrap();
        assert_eq!(back.error, "429; rate_limited");
        assert_eq!(Sample { error: back.error.clone(), ..s }, back);
    }
}
