//! The real `picshelf` binary as operators run it: startup errors, secrets
//! in logs and printed settings, graceful shutdown, and memory that stays
//! flat during a large streamed upload.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::helpers::raw_http::{self, RawUpload, read_response};
use crate::helpers::{Expected, Storage, garage, images, repo_root, text};

const BINARY: &str = env!("CARGO_BIN_EXE_picshelf");

/// The binary with the repository's config and an empty instance directory.
fn command(env: &str, vars: &[(&str, String)]) -> (Command, tempfile::TempDir) {
    let instance = tempfile::tempdir().unwrap();
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PICSHELF_ENV", env)
        .env("PICSHELF_CONFIG_DIR", repo_root().join("config"))
        .env("PICSHELF_INSTANCE_DIR", instance.path())
        .current_dir(instance.path());
    for (key, value) in vars {
        command.env(key, value);
    }
    (command, instance)
}

/// Runs `command` to completion, killing it (and failing) if it outlives `limit`.
fn output_within(command: &mut Command, limit: Duration) -> std::process::Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("picshelf runs");
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(limit).is_err() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        panic!("picshelf {:?} did not finish within {limit:?}", command.get_args().collect::<Vec<_>>());
    }
    waiter.join().expect("waiter").expect("output")
}

struct Running {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
    _instance: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(env: &str, vars: &[(&str, String)]) -> Self {
        let mut vars = vars.to_vec();
        vars.push(("PICSHELF__SERVER__PORT", "0".into()));
        vars.push(("PICSHELF__SERVER__WORKERS", "1".into()));
        vars.push(("PICSHELF__LOG__FORMAT", "json".into()));
        if !vars.iter().any(|(k, _)| *k == "RUST_LOG") {
            vars.push(("PICSHELF__LOG__LEVEL", "info".into()));
        }
        let (mut command, instance) = command(env, &vars);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("picshelf starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            let port_tx = port_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("picshelf listening") {
                        let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                        if let Some(port) =
                            log["address"].as_str().and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok())
                        {
                            let _ = port_tx.send(port);
                        }
                    }
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("picshelf did not start:\n{}", output.lock().unwrap()));
        Self { child, port, output, _instance: instance }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "picshelf did not exit:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Peak and current resident memory of the process, in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc status"))
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

fn s3_vars(bucket: &str, secret: &str) -> Vec<(&'static str, String)> {
    let g = garage::garage();
    vec![
        ("PICSHELF__STORAGE__BACKEND", "s3".into()),
        ("PICSHELF__STORAGE__S3__BUCKET", bucket.into()),
        ("PICSHELF__STORAGE__S3__ENDPOINT", g.s3_endpoint.clone()),
        ("PICSHELF__STORAGE__S3__REGION", garage::REGION.into()),
        ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", g.access_key_id.clone()),
        ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", secret.into()),
        ("PICSHELF__STORAGE__S3__PART_SIZE_BYTES", (5 * 1024 * 1024).to_string()),
        ("PICSHELF__STORAGE__S3__PARTS_IN_FLIGHT", "2".into()),
    ]
}

fn fs_vars(root: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![("PICSHELF__STORAGE__BACKEND", "fs".into()), ("PICSHELF__STORAGE__FS__ROOT", root.display().to_string())]
}

fn upload_form(file: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(file).file_name("a.png").mime_str("image/png").unwrap())
}

#[test]
fn bad_settings_stop_startup_with_the_key_named() {
    for (env, vars, key) in [
        ("test", vec![("PICSHELF__UPLOAD__MAX_FILES", "0".to_owned())], "upload.max_files"),
        ("test", vec![("PICSHELF__SERVER__PORT", "eighty".to_owned())], "server.port"),
        ("dev", vec![("PICSHELF__LOG__LEVEL", "loud!!".to_owned())], "log.level"),
        // dev can never be pointed at the prod bucket, even by mistake.
        (
            "dev",
            vec![
                ("PICSHELF__STORAGE__BACKEND", "s3".to_owned()),
                ("PICSHELF__STORAGE__S3__BUCKET", "picshelf-prod".to_owned()),
                ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK00".to_owned()),
                ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s".to_owned()),
            ],
            "storage.s3.bucket",
        ),
        (
            "prod",
            vec![
                ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", "GK00".to_owned()),
                ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "s".to_owned()),
            ],
            "security.delete_secret",
        ),
        ("staging", vec![], "PICSHELF_ENV"),
    ] {
        let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
        let (mut command, _instance) = command(env, &vars);
        let output = output_within(&mut command, Duration::from_secs(20));
        assert_eq!(output.status.code(), Some(2), "{env} {vars:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
}

#[test]
fn the_config_command_prints_effective_settings_with_secrets_redacted() {
    let secret = "config-secret-d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6";
    let (mut command, _instance) = command(
        "dev",
        &[
            ("PICSHELF__SECURITY__DELETE_SECRET", secret.to_owned()),
            ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", secret.to_owned()),
            ("PICSHELF__SERVER__PORT", "9123".to_owned()),
        ],
    );
    let output = output_within(command.arg("config"), Duration::from_secs(20));
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains(secret), "{printed}");
    assert!(printed.contains("delete_secret = \"[redacted]\""), "{printed}");
    assert!(printed.contains("port = 9123"), "{printed}");
    assert!(printed.contains("environment = \"dev\""), "{printed}");
    assert!(printed.contains("bucket = \"picshelf-dev\""), "{printed}");
}

#[test]
fn the_command_line_has_help_a_version_and_refuses_what_it_does_not_know() {
    let (mut cmd, _instance) = command("dev", &[]);
    let version = output_within(cmd.arg("--version"), Duration::from_secs(20));
    assert!(version.status.success());
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("picshelf {}", env!("CARGO_PKG_VERSION")));

    let (mut cmd, _instance) = command("dev", &[]);
    let help = output_within(cmd.arg("--help"), Duration::from_secs(20));
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("serve") && help.contains("config") && help.contains("PICSHELF_ENV"), "{help}");

    let (mut cmd, _instance) = command("dev", &[]);
    let unknown = output_within(cmd.arg("frobnicate"), Duration::from_secs(20));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("frobnicate"));
}

/// Run from a directory without `config/`, the binary still has its
/// defaults: they are compiled in.
#[test]
fn a_bare_binary_runs_on_the_compiled_in_defaults_anywhere() {
    let (mut cmd, instance) = command("dev", &[]);
    cmd.env_remove("PICSHELF_CONFIG_DIR");
    assert!(!instance.path().join("config").exists());
    let output = output_within(cmd.arg("config"), Duration::from_secs(20));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("backend = \"fs\""), "{printed}");
    assert!(printed.contains("bucket = \"picshelf-dev\""), "{printed}");
}

/// Secrets pass through settings, the S3 client, failing S3 calls and error
/// responses; none of them may print one, even at debug level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_even_at_debug_level() {
    let bucket = garage::garage().create_bucket().await;
    let wrong_secret = "leaky-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let delete_secret = "delete-secret-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";
    let mut vars = s3_vars(&bucket, wrong_secret);
    vars.push(("PICSHELF__SECURITY__DELETE_SECRET", delete_secret.into()));
    vars.push(("RUST_LOG", "debug".into()));
    let running = Running::start("test", &vars);
    let client = reqwest::Client::new();

    let upload =
        client.post(running.url("/main/upload")).multipart(upload_form(images::png(4, 4))).send().await.unwrap();
    assert_eq!(upload.status(), 503, "the store refuses the wrong secret");
    let upload_body = upload.text().await.unwrap();
    let ready = text(client.get(running.url("/readyz"))).await;
    let delete = text(
        client
            .delete(running.url("/main/download/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
            .header("X-Delete-Token", "0123"),
    )
    .await;

    let logs = running.output();
    assert!(logs.contains("storage unavailable"), "the failure is logged with its cause:\n{logs}");
    for secret in [wrong_secret, delete_secret] {
        for (what, text) in
            [("logs", &logs), ("upload body", &upload_body), ("readyz body", &ready), ("delete body", &delete)]
        {
            assert!(!text.contains(secret), "{what} contain a secret");
        }
    }
}

/// SIGTERM while an upload is arriving: the server stops taking new work but
/// lets the upload finish (shutdown_timeout_secs = 30 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_upload_finish() {
    let root = tempfile::tempdir().unwrap();
    let mut running = Running::start("test", &fs_vars(root.path()));
    let file = images::big_png(3 * 1024 * 1024, 800, 600, 21);
    let upload = RawUpload::new(&file);
    let half = upload.file.len() / 2;

    let mut stream = upload.begin(running.port, half).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    running.sigterm();
    tokio::time::sleep(Duration::from_millis(500)).await;
    raw_http::send(&mut stream, &upload.file[half..]).await.unwrap();
    raw_http::send(&mut stream, &upload.end).await.unwrap();

    let response = read_response(&mut stream, Duration::from_secs(30)).await.expect("the upload is answered");
    assert_eq!(response.status, 201, "{response:?}");
    let status = running.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "clean exit: {status:?}\n{}", running.output());
    let stored: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    let id = stored["files"][0]["id"].as_str().unwrap();
    let audit = Storage::Fs { root: root.path().to_path_buf(), _dir: tempfile::tempdir().unwrap() };
    crate::helpers::audit::assert_stores(&audit, &[Expected::new(id, &file, "image/png", Some("x.png"), 800, 600)])
        .await;
}

/// SIGTERM with an upload that stalls past the shutdown timeout: the upload
/// is dropped and its S3 multipart upload aborted before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_timeout_aborts_a_stalled_upload_cleanly() {
    let bucket = garage::garage().create_bucket().await;
    let mut vars = s3_vars(&bucket, &garage::garage().secret_access_key);
    vars.push(("PICSHELF__SERVER__SHUTDOWN_TIMEOUT_SECS", "1".into()));
    let mut running = Running::start("test", &vars);
    let upload = RawUpload::new(&images::big_png(20 * 1024 * 1024, 3000, 2000, 22));

    // Past the first 5 MiB part: a multipart upload is open on the store.
    let mut stream = upload.begin(running.port, 12 * 1024 * 1024).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    running.sigterm();
    let status = running.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "clean exit: {status:?}\n{}", running.output());
    stream.shutdown().await.ok();
    crate::helpers::audit::assert_stores(&Storage::S3 { bucket, garage: garage::garage() }, &[]).await;
}

/// What a large upload sends, as a stream the test does not hold either.
enum BigUpload {
    /// No metadata: stored exactly as sent.
    Png(images::BigPng),
    /// A camera's EXIF block to strip as the bytes pass.
    WithMetadata(images::BigWithMetadata),
}

impl BigUpload {
    fn pieces(&self) -> Box<dyn Iterator<Item = Vec<u8>> + Send> {
        match self {
            Self::Png(png) => Box::new(png.pieces(1 << 20)),
            Self::WithMetadata(file) => Box::new(file.pieces(1 << 20)),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Png(_) => "png".into(),
            Self::WithMetadata(file) => format!("{:?}", file.container).to_lowercase(),
        }
    }
}

fn sha256_of(pieces: impl Iterator<Item = Vec<u8>>) -> String {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for piece in pieces {
        sha2::Digest::update(&mut hasher, &piece);
    }
    hex::encode(sha2::Digest::finalize(hasher))
}

/// Checks what was stored for a [`BigUpload::WithMetadata`], streaming it
/// back: its image data is the bytes sent, byte for byte; the metadata
/// around it keeps the Orientation and nothing of the camera or the place.
async fn assert_stripped_copy(
    client: &reqwest::Client,
    url: &str,
    sent: &images::BigWithMetadata,
    answer: &serde_json::Value,
) {
    use futures_util::StreamExt;
    let noise = sent.noise_len();
    let tail = sent.tail().len();
    let stored_len = answer["size"].as_u64().unwrap() as usize;
    let noise_at = stored_len - noise - tail;
    let sent_noise = sha256_of(sent.noise(1 << 20));
    let mut stream = client.get(url).send().await.unwrap().bytes_stream();
    let (mut whole, mut data) = (<sha2::Sha256 as sha2::Digest>::new(), <sha2::Sha256 as sha2::Digest>::new());
    let (mut framing, mut at) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        sha2::Digest::update(&mut whole, &chunk);
        // This chunk's part of the image data, and the framing around it.
        let (start, end) =
            (noise_at.clamp(at, at + chunk.len()) - at, (noise_at + noise).clamp(at, at + chunk.len()) - at);
        framing.extend_from_slice(&chunk[..start]);
        sha2::Digest::update(&mut data, &chunk[start..end]);
        framing.extend_from_slice(&chunk[end..]);
        at += chunk.len();
    }
    assert_eq!(at, stored_len);
    assert_eq!(hex::encode(sha2::Digest::finalize(whole)), answer["sha256"].as_str().unwrap());
    assert_eq!(hex::encode(sha2::Digest::finalize(data)), sent_noise, "the image data is what was sent");
    for secret in [images::SECRET_MAKE, images::SECRET_SERIAL] {
        assert!(!framing.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} came back");
    }
    if sent.container == images::Container::Gif {
        assert_eq!(answer["metadata_removed"], serde_json::json!(["comment"]));
        return;
    }
    let exif_at = framing.windows(4).position(|w| w == b"MM\0*").expect("an EXIF block is left");
    let exif = exif::Reader::new().read_raw(framing[exif_at..].to_vec()).expect("a readable EXIF block");
    let tags: Vec<_> = exif.fields().map(|f| f.tag).collect();
    assert_eq!(tags, [exif::Tag::Orientation], "only the Orientation is left");
    assert_eq!(answer["metadata_removed"], serde_json::json!(["gps", "exif"]));
}

/// A 256 MiB upload of each streaming format (PNG, JPEG, WebP, GIF) through
/// each backend: peak memory grows by a small, fixed amount (S3: at most
/// three 5 MiB parts), not by the file size, with metadata stripped as the
/// bytes pass. (TIFF and AVIF are refused above their in-memory cap: see
/// `metadata::tiff_and_avif_are_rewritten_in_bounded_memory`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_during_a_large_streamed_upload() {
    const SIZE: usize = 256 * 1024 * 1024;
    const ALLOWED_GROWTH_KIB: u64 = 64 * 1024;
    let bucket = garage::garage().create_bucket().await;
    let root = tempfile::tempdir().unwrap();
    for (backend, vars) in [("fs", fs_vars(root.path())), ("s3", s3_vars(&bucket, &garage::garage().secret_access_key))]
    {
        let mut vars = vars;
        vars.push(("PICSHELF__UPLOAD__MAX_FILE_BYTES", (SIZE * 2).to_string()));
        vars.push(("PICSHELF__UPLOAD__MAX_REQUEST_BYTES", (SIZE * 2).to_string()));
        let running = Running::start("test", &vars);
        let client = reqwest::Client::new();
        // Warm up: the first request allocates what every request needs.
        let warm =
            client.post(running.url("/main/upload")).multipart(upload_form(images::png(64, 64))).send().await.unwrap();
        assert_eq!(warm.status(), 201);
        let (_, baseline) = running.memory_kib();

        for upload in [
            BigUpload::Png(images::BigPng::new(SIZE, 4000, 3000, 1)),
            BigUpload::WithMetadata(images::BigWithMetadata::new(images::Container::Jpeg, SIZE, 4000, 3000, 2)),
            BigUpload::WithMetadata(images::BigWithMetadata::new(images::Container::WebP, SIZE, 4000, 3000, 3)),
            BigUpload::WithMetadata(images::BigWithMetadata::new(images::Container::Gif, SIZE, 4000, 3000, 4)),
        ] {
            let name = format!("{backend}, {}", upload.name());
            let body =
                reqwest::Body::wrap_stream(futures_util::stream::iter(upload.pieces().map(Ok::<_, std::io::Error>)));
            let part = reqwest::multipart::Part::stream_with_length(body, SIZE as u64)
                .file_name("huge.img")
                .mime_str("application/octet-stream")
                .unwrap();
            let response = client
                .post(running.url("/main/upload"))
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "{name}: {}", response.text().await.unwrap_or_default());
            let stored: serde_json::Value = response.json().await.unwrap();
            let stored = &stored["files"][0];

            let (peak, _) = running.memory_kib();
            let growth = peak.saturating_sub(baseline);
            eprintln!(
                "{name}: baseline {baseline} KiB, peak {peak} KiB, growth {growth} KiB for a {} MiB upload",
                SIZE >> 20
            );
            assert!(
                growth < ALLOWED_GROWTH_KIB,
                "{name}: peak memory grew by {growth} KiB during a {} MiB upload",
                SIZE >> 20
            );

            match &upload {
                BigUpload::Png(png) => assert_eq!(stored["sha256"], sha256_of(png.pieces(1 << 20)), "{name}"),
                BigUpload::WithMetadata(sent) => {
                    let url = stored["url"].as_str().unwrap();
                    assert_stripped_copy(&client, url, sent, stored).await;
                }
            }
        }
    }
}

/// Twenty clients each send 12 MiB of an upload to S3 and stall. At most
/// `upload.max_concurrent` (4) are taken in, so memory grows by at most
/// 4 × part size × (parts in flight + 1), the bound the README states; the
/// rest get 503 before their bodies are read, and the four stalled ones are
/// abandoned after the idle timeout with nothing left in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_cannot_pin_more_memory_than_the_stated_bound() {
    const PART: u64 = 5 * 1024 * 1024;
    const CONCURRENT: u64 = 4;
    let bucket = garage::garage().create_bucket().await;
    let mut vars = s3_vars(&bucket, &garage::garage().secret_access_key);
    vars.push(("PICSHELF__UPLOAD__MAX_CONCURRENT", CONCURRENT.to_string()));
    vars.push(("PICSHELF__UPLOAD__IDLE_TIMEOUT_SECS", "4".into()));
    vars.push(("PICSHELF__UPLOAD__MAX_FILE_BYTES", (64 * 1024 * 1024).to_string()));
    let running = Running::start("test", &vars);
    let client = reqwest::Client::new();
    let warm =
        client.post(running.url("/main/upload")).multipart(upload_form(images::png(64, 64))).send().await.unwrap();
    assert_eq!(warm.status(), 201);
    let warm: serde_json::Value = warm.json().await.unwrap();
    let warm = Expected::new(
        warm["files"][0]["id"].as_str().unwrap(),
        &images::png(64, 64),
        "image/png",
        Some("a.png"),
        64,
        64,
    );
    let (_, baseline) = running.memory_kib();

    let upload = RawUpload::new(&images::big_png(40 * 1024 * 1024, 3000, 2000, 23));
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut stream = raw_http::connect(running.port).await;
        raw_http::send(&mut stream, upload.head_for_this().as_bytes()).await.unwrap();
        // Refused uploads close their connection: a failed write is fine.
        let _ = raw_http::send(&mut stream, &upload.start).await;
        let _ = raw_http::send(&mut stream, &upload.file[..12 * 1024 * 1024]).await;
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (peak, _) = running.memory_kib();
    let growth = peak.saturating_sub(baseline);
    let bound_kib = CONCURRENT * PART * 3 / 1024;
    eprintln!(
        "20 stalled uploads: baseline {baseline} KiB, peak {peak} KiB, growth {growth} KiB, bound {bound_kib} KiB"
    );
    assert!(growth < bound_kib, "memory grew by {growth} KiB, over the bound of {bound_kib} KiB");

    let mut statuses = Vec::new();
    for mut stream in streams {
        statuses.push(read_response(&mut stream, Duration::from_secs(30)).await.map(|r| r.status));
    }
    let count = |status| statuses.iter().filter(|s| **s == Some(status)).count() as u64;
    assert_eq!(count(408), CONCURRENT, "{statuses:?}");
    assert_eq!(count(503), 20 - CONCURRENT, "{statuses:?}");
    crate::helpers::audit::assert_stores(&Storage::S3 { bucket, garage: garage::garage() }, &[warm]).await;
}
