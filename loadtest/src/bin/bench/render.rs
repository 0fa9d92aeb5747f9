//! The report: Markdown for the artifacts and the README, text for the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use picshelf_loadtest::stats::{markdown_table, text_table};

use super::cells::CellResult;
use super::memory::{Memory, human_bytes};
use super::stripping::{self, Stripping};
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
             Two fresh release picshelf processes, disk backend, alike but for `upload.strip_metadata`; \
             {} uploads of a different {} JPEG each (a camera's EXIF block with GPS, make and serial \
             number, then entropy-coded data with stuffed bytes, as encoders write it) per setting, {} in \
             flight, in {} alternating rounds. Stripping keeps the Orientation and drops the rest as the \
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
    Rendered { markdown: md, text }
}
