//! The stepped load test's report: per user level, the original JMeter
//! report's columns (per transaction and in total) as CSV and Markdown, and a
//! plot of throughput and p50/p90/p99 latency against users (SVG).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::stats::{self, Summary};
use crate::svg;

/// What `picshelf-loadtest run` writes next to its samples (`meta.json`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LevelMeta {
    pub users: usize,
    pub host: String,
    pub think_ms: u64,
    pub run_time_s: u64,
    pub image_bytes: usize,
    /// Requests goose counted, per label: [successes, failures].
    pub goose_counts: std::collections::BTreeMap<String, [usize; 2]>,
}

pub struct Level {
    pub meta: LevelMeta,
    pub upload: Summary,
    pub view: Summary,
    pub total: Summary,
    pub errors: Vec<(String, usize)>,
}

pub const LABELS: [&str; 3] = ["upload", "view", "TOTAL"];

/// Reads every `users-*` directory under `dir` (with `meta.json` and `samples.csv`), by users.
pub fn read_levels(dir: &Path) -> anyhow::Result<Vec<Level>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("users-")))
        .collect();
    dirs.sort();
    let mut levels = Vec::new();
    for d in dirs {
        let meta: LevelMeta = serde_json::from_slice(
            &std::fs::read(d.join("meta.json")).with_context(|| format!("{}: no meta.json", d.display()))?,
        )
        .with_context(|| format!("{}/meta.json", d.display()))?;
        let samples = stats::read_samples(&d.join("samples.csv"))?;
        levels.push(Level {
            upload: stats::summarize(samples.iter().filter(|s| s.label == "upload")),
            view: stats::summarize(samples.iter().filter(|s| s.label == "view")),
            total: stats::summarize(&samples),
            errors: stats::error_counts(&samples),
            meta,
        });
    }
    levels.sort_by_key(|l| l.meta.users);
    Ok(levels)
}

pub const COLUMNS: [&str; 14] = [
    "users",
    "label",
    "samples",
    "mean ms",
    "median ms",
    "p90 ms",
    "p95 ms",
    "p99 ms",
    "min ms",
    "max ms",
    "error %",
    "throughput/s",
    "KB/s received",
    "KB/s sent",
];

pub fn row(users: usize, label: &str, s: &Summary) -> Vec<String> {
    vec![
        users.to_string(),
        label.to_owned(),
        s.samples.to_string(),
        format!("{:.1}", s.mean_ms),
        format!("{:.1}", s.median_ms),
        format!("{:.1}", s.p90_ms),
        format!("{:.1}", s.p95_ms),
        format!("{:.1}", s.p99_ms),
        format!("{:.1}", s.min_ms),
        format!("{:.1}", s.max_ms),
        format!("{:.2}", s.error_pct),
        format!("{:.1}", s.throughput_per_s),
        format!("{:.1}", s.recv_kb_per_s),
        format!("{:.1}", s.sent_kb_per_s),
    ]
}

pub fn rows(levels: &[Level], labels: &[&str]) -> Vec<Vec<String>> {
    let mut rows = vec![COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()];
    for l in levels {
        for label in labels {
            let s = match *label {
                "upload" => &l.upload,
                "view" => &l.view,
                _ => &l.total,
            };
            rows.push(row(l.meta.users, label, s));
        }
    }
    rows
}

pub fn csv(levels: &[Level]) -> String {
    let header = "users,label,samples,mean_ms,median_ms,p90_ms,p95_ms,p99_ms,min_ms,max_ms,error_pct,throughput_per_s,recv_kb_per_s,sent_kb_per_s\n";
    let mut out = header.to_owned();
    for r in rows(levels, &LABELS).iter().skip(1) {
        out.push_str(&r.join(","));
        out.push('\n');
    }
    out
}

pub fn markdown(levels: &[Level], context: &str) -> String {
    let mut md = String::from("# picshelf load test: upload + view\n\n");
    md.push_str(context);
    if let Some(first) = levels.first() {
        let _ =
            writeln!(md, "\nThe image: a {}-byte PNG (noisy RGB, a unique stamp per upload).", first.meta.image_bytes);
    }
    md.push_str(
        "\nTimes are from sending the request to the last byte of the answer (ms). `upload` is the \
         multipart POST of the image, `view` the GET of the URL it answered, `TOTAL` both. Error % counts \
         every sample that was not the expected answer (status, JSON, sha256, bytes). Throughput and KB/s \
         are over each level's span, first request start to last request end; received and sent count \
         status/request lines, headers and bodies.\n\n",
    );
    md.push_str("## All requests per level\n\n");
    md.push_str(&stats::markdown_table(&rows(levels, &["TOTAL"])));
    md.push_str("\n## Per transaction\n\n");
    md.push_str(&stats::markdown_table(&rows(levels, &["upload", "view"])));
    let with_errors: Vec<&Level> = levels.iter().filter(|l| !l.errors.is_empty()).collect();
    md.push_str("\n## Errors\n\n");
    if with_errors.is_empty() {
        md.push_str("None at any level.\n");
    }
    for l in with_errors {
        let _ = writeln!(md, "- {} users:", l.meta.users);
        for (reason, n) in &l.errors {
            let _ = writeln!(md, "  - {n} × {reason}");
        }
    }
    md.push_str("\n## Cross-check with goose's own counts\n\n");
    md.push_str("| users | goose POST upload ok/failed | goose GET view ok/failed | samples here upload/view |\n");
    md.push_str("|---:|---:|---:|---:|\n");
    for l in levels {
        let g = |k: &str| l.meta.goose_counts.get(k).map_or("-".to_owned(), |[ok, bad]| format!("{ok}/{bad}"));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}/{} |",
            l.meta.users,
            g("upload"),
            g("view"),
            l.upload.samples,
            l.view.samples
        );
    }
    md
}

pub fn plot(levels: &[Level], title: &str) -> String {
    let xs: Vec<f64> = levels.iter().map(|l| l.meta.users as f64).collect();
    let notes: Vec<String> = levels.iter().map(|l| format!("err {:.2}%", l.total.error_pct)).collect();
    let throughput = svg::Chart {
        title: "Throughput (requests per second)".into(),
        x_label: "users (levels evenly spaced)".into(),
        y_label: "requests/s".into(),
        xs: xs.clone(),
        series: vec![
            svg::Series {
                name: "all requests".into(),
                color: svg::COLORS[0],
                values: levels.iter().map(|l| l.total.throughput_per_s).collect(),
                dashed: false,
            },
            svg::Series {
                name: "successful requests".into(),
                color: svg::COLORS[1],
                values: levels.iter().map(|l| l.total.ok_per_s).collect(),
                dashed: false,
            },
            svg::Series {
                name: "uploads".into(),
                color: svg::COLORS[3],
                values: levels.iter().map(|l| l.upload.throughput_per_s).collect(),
                dashed: true,
            },
            svg::Series {
                name: "views".into(),
                color: svg::COLORS[2],
                values: levels.iter().map(|l| l.view.throughput_per_s).collect(),
                dashed: true,
            },
        ],
        log_y: false,
        notes: notes.clone(),
    };
    let pick = |f: fn(&Summary) -> f64| levels.iter().map(|l| f(&l.total)).collect::<Vec<f64>>();
    let latency = svg::Chart {
        title: "Response time of all requests, to the last byte (ms)".into(),
        x_label: "users (levels evenly spaced)".into(),
        y_label: "ms".into(),
        xs,
        series: vec![
            svg::Series { name: "p50".into(), color: svg::COLORS[0], values: pick(|s| s.median_ms), dashed: false },
            svg::Series { name: "p90".into(), color: svg::COLORS[4], values: pick(|s| s.p90_ms), dashed: false },
            svg::Series { name: "p99".into(), color: svg::COLORS[1], values: pick(|s| s.p99_ms), dashed: false },
        ],
        log_y: true,
        notes,
    };
    svg::document(title, &[throughput, latency], 900.0, 380.0)
}

/// Writes report.csv, report.md and report.svg into `dir`; returns the text table.
pub fn write(dir: &Path, context: &str) -> anyhow::Result<String> {
    let levels = read_levels(dir)?;
    anyhow::ensure!(!levels.is_empty(), "no users-* level directories with results under {}", dir.display());
    std::fs::write(dir.join("report.csv"), csv(&levels))?;
    std::fs::write(dir.join("report.md"), markdown(&levels, context))?;
    let title = format!(
        "picshelf upload + view: {} (think {} ms)",
        levels[0].meta.host.trim_end_matches('/'),
        levels[0].meta.think_ms
    );
    std::fs::write(dir.join("report.svg"), plot(&levels, &title))?;
    Ok(stats::text_table(&rows(&levels, &LABELS)))
}
