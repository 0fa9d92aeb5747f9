//! Peak resident memory of a picshelf process while one large upload
//! streams in, against its idle memory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use futures_util::StreamExt as _;
use picshelf_loadtest::http;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};

use super::cells::{run_cell, template, upload_job};
use super::{Args, KIB, MIB, env};

pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else {
        format!("{:.0} MiB", n as f64 / MIB as f64)
    }
}

pub struct Memory {
    pub backend: &'static str,
    pub idle_kib: u64,
    pub peak_kib: u64,
    pub sampled_max_kib: u64,
    pub after_kib: u64,
    pub upload: Duration,
    pub bytes: u64,
}

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A picshelf process of its own, for a measurement.
pub struct Instance {
    child: tokio::process::Child,
    pub pid: u32,
    pub port: u16,
    work: std::path::PathBuf,
}

impl Instance {
    /// Starts `bin` in `work_dir/name` on a free port with `backend` ("s3":
    /// the memory test's bucket; "fs": a directory of its own) and `extra`
    /// settings, and waits until it is ready.
    pub async fn start(
        args: &Args,
        bin: &Path,
        name: &str,
        backend: &str,
        extra: &[(&str, String)],
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let work = args.work_dir.join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("instance"))?;
        let work = work.canonicalize()?;
        let config_dir = args.config_dir.canonicalize().context("--config-dir")?;
        let port = free_port()?;
        let secret = format!("bench-delete-secret-{:032x}", std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15);
        let log = std::fs::File::create(work.join("picshelf.log"))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PICSHELF_ENV", &args.mem_env)
            .env("PICSHELF_CONFIG_DIR", &config_dir)
            .env("PICSHELF_INSTANCE_DIR", work.join("instance"))
            .env("PICSHELF__SERVER__HOST", "127.0.0.1")
            .env("PICSHELF__SERVER__PORT", port.to_string())
            .env("PICSHELF__SECURITY__DELETE_SECRET", &secret)
            .env("PICSHELF__LOG__LEVEL", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for kv in &args.mem_extra_env {
            let (k, v) = kv.split_once('=').with_context(|| format!("--mem-extra-env {kv}: not KEY=VALUE"))?;
            cmd.env(k, v);
        }
        if backend == "s3" {
            cmd.env("PICSHELF__STORAGE__BACKEND", "s3")
                .env("PICSHELF__STORAGE__S3__ENDPOINT", &args.s3_endpoint)
                .env("PICSHELF__STORAGE__S3__REGION", &args.region)
                .env("PICSHELF__STORAGE__S3__PATH_STYLE", "true")
                .env("PICSHELF__STORAGE__S3__BUCKET", &args.mem_bucket)
                .env("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", env("BENCH_MEM_S3_KEY_ID")?)
                .env("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", env("BENCH_MEM_S3_SECRET")?);
        } else {
            cmd.env("PICSHELF__STORAGE__BACKEND", "fs").env("PICSHELF__STORAGE__FS__ROOT", work.join("data"));
        }
        // Last: they may move the data too.
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("picshelf exited at once")?;
        let instance = Self { child, pid, port, work };
        if let Err(e) = instance.wait_ready(client).await {
            instance.stop(true).await;
            return Err(e);
        }
        Ok(instance)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "picshelf on port {} did not become ready", self.port);
            ensure!(proc_status_kib(self.pid, "VmRSS:").is_some(), "picshelf exited while starting");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, as a deployment stops it; SIGKILL if it lingers. With
    /// `show_log`, its log goes to stderr (after a failure).
    pub async fn stop(mut self, show_log: bool) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        if show_log {
            eprintln!("bench: picshelf log ({}):", self.work.join("picshelf.log").display());
            eprintln!("{}", std::fs::read_to_string(self.work.join("picshelf.log")).unwrap_or_default());
        }
        let _ = std::fs::remove_dir_all(self.work.join("data"));
    }
}

pub async fn memory_test(
    args: &Args,
    bin: &Path,
    backend: &'static str,
    client: &reqwest::Client,
) -> anyhow::Result<Memory> {
    let limit = (args.mem_bytes + 64 * MIB as u64).to_string();
    let extra = [("PICSHELF__UPLOAD__MAX_FILE_BYTES", limit.clone()), ("PICSHELF__UPLOAD__MAX_REQUEST_BYTES", limit)];
    let instance = Instance::start(args, bin, &format!("memory-{backend}"), backend, &extra, client).await?;
    let result = measure_memory(client, instance.pid, instance.port, backend, args.mem_bytes).await;
    instance.stop(result.is_err()).await;
    result
}

async fn measure_memory(
    client: &reqwest::Client,
    pid: u32,
    port: u16,
    backend: &'static str,
    bytes: u64,
) -> anyhow::Result<Memory> {
    let base = format!("http://127.0.0.1:{port}");

    // One warm-up request each way, then let it settle: that is "idle".
    let small = template(64 * KIB, 1);
    let job = upload_job(&base, &small);
    let warm = run_cell(client, vec![job], 1, true).await;
    ensure!(warm.errors == 0, "warm-up upload failed: {:?}", warm.first_error);
    let v: serde_json::Value = serde_json::from_slice(&warm.bodies[0])?;
    let id = v["files"][0]["id"].as_str().context("no id")?.to_owned();
    let got = client.get(format!("{base}/main/download/{id}")).send().await?.bytes().await?;
    ensure!(got.len() == small.len(), "warm-up download: {} bytes", got.len());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_kib = proc_status_kib(pid, "VmRSS:").context("VmRSS")?;

    // Sample VmRSS while a streamed upload of `bytes` goes in.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                    max = max.max(kib);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            max
        })
    };
    let head = http::multipart_head("file", "big.png", "image/png");
    let tail = http::multipart_tail();
    let file_len = bytes;
    // The file, a framed PNG of noise, made piece by piece as the client sends it.
    let file = picshelf_test_images::BigPng::new(usize::try_from(file_len)?, 64, 64, 42);
    let pieces =
        futures_util::stream::iter(file.pieces(256 * KIB).map(|piece| Ok::<Bytes, std::io::Error>(Bytes::from(piece))));
    let prefix = Bytes::from(head.into_bytes());
    let body = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(prefix.clone())])
        .chain(pieces)
        .chain(futures_util::stream::iter([Ok(Bytes::from(tail.clone().into_bytes()))]));
    let content_length = prefix.len() as u64 + file_len + tail.len() as u64;
    let t = Instant::now();
    let response = client
        .post(format!("{base}/main/upload"))
        .header(CONTENT_TYPE, http::multipart_content_type())
        .header(CONTENT_LENGTH, content_length)
        .header(ACCEPT, "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    let upload = t.elapsed();
    let after_kib = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled_max_kib = sampler.await?;
    let peak_kib = proc_status_kib(pid, "VmHWM:").context("VmHWM")?;
    let response = response.context("the streamed upload")?;
    let status = response.status();
    let answer = response.bytes().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("streamed upload: {status}: {}", String::from_utf8_lossy(&answer));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer)?;
    let size = v["files"][0]["size"].as_u64().context("no size")?;
    ensure!(size == file_len, "picshelf stored {size} bytes, {file_len} sent");
    // Remove the big object again.
    if let (Some(url), Some(token)) = (v["files"][0]["url"].as_str(), v["files"][0]["delete_token"].as_str()) {
        let d = client.delete(url).header("X-Delete-Token", token).send().await?;
        ensure!(d.status() == reqwest::StatusCode::NO_CONTENT, "deleting the big upload: {}", d.status());
    }
    Ok(Memory { backend, idle_kib, peak_kib, sampled_max_kib, after_kib, upload, bytes })
}
