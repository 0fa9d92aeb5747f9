//! The report: Markdown for the artifacts and the README, text for the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use picshelf_loadtest::stats::{markdown_table, text_table};

use super::ab::Ab;
use super::memory::{Memory, human_bytes};
use super::throughput::{self, Backend, Cell, Direction, Target};
use super::variants::VariantFigures;
use super::{Args, KIB, MIB, size_name};
use super::{signing, stripping};

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
    cells: &[Cell],
    memory: &[Memory],
    stripping: Option<&Ab>,
    signing: Option<&Ab>,
    variants: Option<&VariantFigures>,
    took: Duration,
) -> Rendered {
    let mut md = String::from("# picshelf benchmark\n\n");
    let _ = writeln!(
        md,
        "Measured {} in {:.0} s on {}; client, nginx, picshelf, gunicorn and Garage on the same machine, over \
         loopback, data on the local disk. One HTTP client (reqwest, HTTP/1.1 keep-alive), {} requests in flight \
         in every cell. Every cell runs in {} rounds after a warm-up of {} requests; within a round the services \
         take turns, and each figure is the **median of the rounds**. {}\n",
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        took.as_secs_f64(),
        machine(),
        args.concurrency,
        args.rounds,
        args.concurrency,
        args.context
    );
    let _ = writeln!(
        md,
        "- **picshelf**: multipart `POST /main/upload` and `GET /main/download/{{id}}` on the app's own port: \
         S3 backend {}, disk backend {}.\n\
         - **via nginx**: the same through nginx ({} and {}). **Cold**: the first download of each \
         object through nginx (its cache misses); **warm**: the same objects again right after (served from \
         nginx's cache when it has one).\n\
         - **Flask**: the original service (`loadtest/flask/app.py`: `request.files`, a uuid name, `put_object` \
         or `save`, a streamed download or `send_file`) under gunicorn, 2 workers × 8 threads, on the same \
         bucket or disk.\n\
         - **Garage**: presigned `PUT` of new objects and presigned `GET` of the very objects picshelf stored \
         (bucket `{}`), with the same client.\n\
         - **Garage via a relay**: the same presigned requests through nginx doing nothing but `proxy_pass` \
         to Garage (no buffering, no cache: `scripts/bench`). Every picshelf S3 transfer crosses one such \
         hop, so **relay ÷ Garage** is what one hop keeps of Garage's rate on this machine.\n\
         - Every upload is a new object with different bytes (no block deduplication); MiB/s counts file bytes \
         (not multipart framing or headers). Ratios are picshelf ÷ a baseline, measured in the same run.\n",
        args.app,
        args.disk_app.as_deref().unwrap_or("(not measured)"),
        args.nginx,
        args.disk_nginx.as_deref().unwrap_or("(not measured)"),
        args.bucket
    );
    let mut text = String::new();
    for backend in [Backend::S3, Backend::Disk] {
        for direction in [Direction::Upload, Direction::Download] {
            let of = |size: usize, target: Target| {
                cells
                    .iter()
                    .find(|c| c.backend == backend && c.direction == direction && c.size == size && c.target == target)
            };
            let sizes: Vec<usize> =
                throughput::SIZES.iter().map(|s| s.0).filter(|&s| of(s, Target::Direct).is_some()).collect();
            if sizes.is_empty() {
                continue;
            }
            let targets: Vec<Target> = [
                Target::Direct,
                Target::NginxCold,
                Target::NginxWarm,
                Target::Flask,
                Target::Garage,
                Target::GarageRelay,
            ]
            .into_iter()
            .filter(|&t| of(sizes[0], t).is_some())
            .collect();
            // Ratios: picshelf and nginx against each baseline there is.
            let mut ratios: Vec<(Target, Target)> = Vec::new();
            for base in [Target::Flask, Target::Garage] {
                if targets.contains(&base) {
                    ratios.push((Target::Direct, base));
                }
            }
            // What one hop that only copies bytes keeps of Garage's rate.
            if targets.contains(&Target::GarageRelay) {
                ratios.push((Target::GarageRelay, Target::Garage));
            }
            ratios.push((
                if direction == Direction::Upload { Target::NginxCold } else { Target::NginxWarm },
                Target::Flask,
            ));
            if targets.contains(&Target::Garage) {
                ratios.push((
                    if direction == Direction::Upload { Target::NginxCold } else { Target::NginxWarm },
                    Target::Garage,
                ));
            }
            let short = |t: Target| match t {
                Target::Direct => "picshelf",
                Target::NginxCold if direction == Direction::Upload => "nginx",
                Target::NginxCold => "nginx cold",
                Target::NginxWarm => "nginx warm",
                Target::Flask => "Flask",
                Target::Garage => "Garage",
                Target::GarageRelay => "relay",
            };
            let mut head = vec!["size".to_owned()];
            head.extend(targets.iter().map(|t| format!("{} MiB/s", t.name(direction))));
            head.extend(ratios.iter().map(|(a, b)| format!("{} ÷ {}", short(*a), short(*b))));
            let mut table = vec![head];
            let mut lat_head = vec!["size".to_owned()];
            lat_head.extend(targets.iter().map(|t| format!("{} p50 / p99 ms", short(*t))));
            lat_head.push("requests".into());
            lat_head.push("errors".into());
            let mut lat = vec![lat_head];
            let mut cache_notes = Vec::new();
            for &size in &sizes {
                let get = |t: Target| of(size, t).expect("measured");
                let mut row = vec![size_name(size)];
                row.extend(targets.iter().map(|&t| format!("{:.1}", get(t).mib_per_s())));
                row.extend(ratios.iter().map(|&(a, b)| format!("{:.2}", get(a).mib_per_s() / get(b).mib_per_s())));
                table.push(row);
                let mut row = vec![size_name(size)];
                row.extend(targets.iter().map(|&t| format!("{:.1} / {:.1}", get(t).p(50.0), get(t).p(99.0))));
                row.push(targets.iter().map(|&t| get(t).requests().to_string()).collect::<Vec<_>>().join(" / "));
                row.push(targets.iter().map(|&t| get(t).errors().to_string()).collect::<Vec<_>>().join(" / "));
                lat.push(row);
                for t in [Target::NginxCold, Target::NginxWarm] {
                    if let Some(cell) = of(size, t)
                        && direction == Direction::Download
                    {
                        let statuses = cell.cache_statuses();
                        let listed: Vec<String> = statuses.iter().map(|(k, v)| format!("{v} {k}")).collect();
                        cache_notes.push(format!(
                            "{} {}: {}",
                            size_name(size),
                            short(t),
                            if listed.is_empty() { "no X-Cache-Status".into() } else { listed.join(", ") }
                        ));
                    }
                }
            }
            let title =
                format!("{} {}", backend.name(), if direction == Direction::Upload { "uploads" } else { "downloads" });
            let _ = writeln!(md, "## {title}\n\n{}", markdown_table(&table));
            let _ = writeln!(md, "Latency (per request, to the last byte, all rounds):\n\n{}", markdown_table(&lat));
            if !cache_notes.is_empty() {
                let _ = writeln!(md, "nginx's `X-Cache-Status` answers: {}.\n", cache_notes.join("; "));
            }
            let _ = writeln!(
                text,
                "{title}, {} in flight, medians of {} rounds:\n{}",
                args.concurrency,
                args.rounds,
                text_table(&table)
            );
        }
    }
    // Small answers that take ~40 ms on a keep-alive connection: the receiver's delayed-ACK
    // timer meeting Nagle's algorithm on a server socket without TCP_NODELAY.
    let stalled: Vec<String> = cells
        .iter()
        .filter(|c| c.size <= 4 * KIB && c.direction == Direction::Download && (35.0..=60.0).contains(&c.p(50.0)))
        .map(|c| format!("{} {}", c.backend.name(), c.target.name(c.direction)))
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
             go in parts of `storage.s3.part_size_bytes` (6 MiB by default), `parts_in_flight` (1) uploading while the next fills.\n\n{}",
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
        let requests = s.requests();
        let table = s.table("upload.strip_metadata", ["false", "true"], "÷ off");
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
            s.b.len(),
            markdown_table(&table)
        );
        let _ = writeln!(text, "Metadata stripping, 4 MiB JPEG with EXIF:\n{}", text_table(&table));
    }
    if let Some(s) = signing {
        let requests = s.requests();
        let table = s.table("storage.s3.payload_signing", ["always", "never"], "÷ always");
        let _ = writeln!(
            md,
            "## Payload signing\n\n\
             Two fresh release picshelf processes on the S3 backend (the same Garage), alike but for \
             `storage.s3.payload_signing`: `always` signs every body's SHA-256 for the store to check (what \
             `auto` does over plain HTTP; a file sent in one PutObject with the hash picshelf computed as it \
             streamed in, parts hashed by the SDK), `never` sends `UNSIGNED-PAYLOAD` (what `auto` does over \
             HTTPS, where TLS checks the bytes). {} uploads of a different {} file per setting, {} in flight, in {} rounds \
             whose order alternates.\n\n{}",
            requests,
            human_bytes(signing::FILE_BYTES as u64),
            args.concurrency,
            s.a.len(),
            markdown_table(&table)
        );
        let _ = writeln!(text, "Payload signing, 4 MiB uploads to S3:\n{}", text_table(&table));
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
            "Variants: first 320 px variant of a 12 MP JPEG, median {:.0} ms; peak RSS {:.1} MiB (idle {:.1}) \
             with {} 24 MP renderings requested at once\n{}",
            v.first_median_ms(),
            v.peak_kib as f64 / 1024.0,
            v.idle_kib as f64 / 1024.0,
            v.at_once,
            text_table(&table)
        );
    }
    Rendered { markdown: md, text }
}
