//! The report: Markdown for the artifacts and the README, text for the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use picshelf_loadtest::stats::{markdown_table, text_table};

use super::cells::CellResult;
use super::memory::{Memory, human_bytes};
use super::stripping::{self, Stripping};
use super::variants::VariantFigures;
use super::{Args, KIB, MIB, Row, Target, size_name};

pub struct Rendered {
    pub markdown: String,
    pub text: String,
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

pub fn render(
    args: &Args,
    uploads: &[Row],
    downloads: &[Row],
    memory: &[Memory],
    stripping: Option<&Stripping>,
    variants: Option<&VariantFigures>,
    took: Duration,
) -> Rendered {
    let mut md = String::from("# picshelf benchmark\n\n");
    let _ = writeln!(
        md,
        "Measured {} in {:.0} s on {}; client, nginx, picshelf and Garage on the same machine, over loopback. \
         One HTTP client (reqwest, HTTP/1.1 keep-alive), {} requests in flight for every cell; each cell \
         starts after a warm-up of as many requests. {}\n",
        httpdate::fmt_http_date(std::time::SystemTime::now()),
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
    if let Some(s) = stripping {
        let (off, on) = (Stripping::mib_per_s(&s.off), Stripping::mib_per_s(&s.on));
        let requests: usize = s.on.iter().map(|c| c.requests).sum();
        let table = vec![
            ["upload.strip_metadata", "MiB/s", "p50 ms", "÷ off"].map(str::to_owned).to_vec(),
            vec!["false".into(), format!("{off:.1}"), format!("{:.1}", Stripping::p50(&s.off)), "1.00".into()],
            vec![
                "true".into(),
                format!("{on:.1}"),
                format!("{:.1}", Stripping::p50(&s.on)),
                format!("{:.2}", on / off),
            ],
        ];
        let _ = writeln!(
            md,
            "## Metadata stripping\n\n\
             Two fresh release picshelf processes, disk backend (in `/dev/shm`: the CPU's cost, not the \
             disk's), alike but for `upload.strip_metadata`; \
             {} uploads of a different {} JPEG each (a camera's EXIF block with GPS, make and serial \
             number, then entropy-coded data with stuffed bytes, as encoders write it) per setting, {} in \
             flight, in {} rounds whose order alternates. Stripping keeps the Orientation and drops the rest as the \
             bytes pass.\n\n{}",
            requests,
            human_bytes(stripping::FILE_BYTES as u64),
            args.concurrency,
            s.on.len(),
            markdown_table(&table)
        );
        let _ = writeln!(
            text,
            "Metadata stripping, 4 MiB JPEG with EXIF:
{}",
            text_table(&table)
        );
    }
    if let Some(v) = variants {
        let table = vec![
            ["", "MiB/s", "req/s", "p50 ms", "bytes each"].map(str::to_owned).to_vec(),
            vec![
                "originals (12 MP JPEG)".into(),
                format!("{:.1}", v.originals.mib_per_s()),
                format!("{:.0}", v.originals.req_per_s()),
                format!("{:.1}", v.originals.p(50.0)),
                v.original_bytes.to_string(),
            ],
            vec![
                "stored variants (320 px WebP)".into(),
                format!("{:.1}", v.stored.mib_per_s()),
                format!("{:.0}", v.stored.req_per_s()),
                format!("{:.1}", v.stored.p(50.0)),
                v.variant_bytes.to_string(),
            ],
            vec![
                "variants ÷ originals".into(),
                format!("{:.2}", v.stored.mib_per_s() / v.originals.mib_per_s()),
                format!("{:.2}", v.stored.req_per_s() / v.originals.req_per_s()),
                format!("{:.2}", v.stored.p(50.0) / v.originals.p(50.0)),
                format!("{:.3}", v.variant_bytes as f64 / v.original_bytes as f64),
            ],
        ];
        let _ = writeln!(
            md,
            "## Variants\n\n\
             A fresh release picshelf, disk backend. First variants: {} different 4000 × 3000 JPEGs, \
             `?width=320` requested once each, one at a time (decoded at 1/8 scale, resized, encoded as \
             WebP, stored, then served): median **{:.0} ms** to the last byte (min {} ms, max {} ms). Then \
             the stored variants and the originals downloaded, {} in flight:\n\n{}\n\
             Memory: another fresh picshelf, eight different 6000 × 4000 (24-megapixel) JPEGs uploaded, \
             then `?width=1280` of all eight requested at once (`variants.max_concurrent` renderings, \
             the rest queued): idle RSS {:.1} MiB, peak RSS (VmHWM, reset after the uploads) **{:.1} MiB** \
             while the {} variants were rendered.\n",
            v.first_ms.len(),
            v.first_median_ms(),
            v.first_ms.first().copied().unwrap_or(0),
            v.first_ms.last().copied().unwrap_or(0),
            args.concurrency,
            markdown_table(&table),
            v.idle_kib as f64 / 1024.0,
            v.peak_kib as f64 / 1024.0,
            v.at_once,
        );
        let _ = writeln!(
            text,
            "Variants: first 320 px variant of a 12 MP JPEG, median {:.0} ms; peak RSS {:.1} MiB (idle {:.1})              with {} 24 MP renderings requested at once
{}",
            v.first_median_ms(),
            v.peak_kib as f64 / 1024.0,
            v.idle_kib as f64 / 1024.0,
            v.at_once,
            text_table(&table)
        );
    }
    Rendered { markdown: md, text }
}
