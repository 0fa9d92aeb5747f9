//! Real Garage servers. One is shared by the whole test process (started on
//! first use, a fresh bucket per test); tests that freeze, kill and restart
//! their store start a private one. Garage is installed (and cached) by
//! `scripts/install-test-tools`; nothing is skipped when it is missing.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use picshelf::config::{Backend, Settings};
use secrecy::SecretString;
use serde_json::json;

use super::repo_root;

pub const REGION: &str = "garage";
/// Buckets are also reachable as `<bucket>.s3.garage.localhost` (virtual-hosted).
pub const ROOT_DOMAIN: &str = "s3.garage.localhost";

pub struct Garage {
    pub s3_endpoint: String,
    admin_endpoint: String,
    admin_token: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    config_path: PathBuf,
    log_path: PathBuf,
    pid: Mutex<i32>,
    _dir: tempfile::TempDir,
}

static GARAGE: OnceLock<Arc<Garage>> = OnceLock::new();
static PYTHON: OnceLock<String> = OnceLock::new();
static BUCKETS: AtomicU32 = AtomicU32::new(0);

fn run_script(name: &str) -> String {
    let output = Command::new(repo_root().join("scripts").join(name))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{name}: {e}"));
    assert!(output.status.success(), "scripts/{name} failed");
    String::from_utf8(output.stdout).expect("utf-8 path").trim().to_owned()
}

/// The Python with boto3 that audits buckets.
pub fn python() -> &'static str {
    PYTHON.get_or_init(|| run_script("install-test-tools"))
}

/// Starts `command` as a child that dies with the test process, and returns its pid.
pub fn spawn_tied_to_this_process(mut command: Command) -> std::io::Result<i32> {
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    // PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits,
    // so a thread that never exits spawns it (and reaps it when it ends).
    let (spawned, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        match command.spawn() {
            Ok(mut child) => {
                spawned.send(Ok(child.id() as i32)).expect("report spawn");
                let _ = child.wait();
            }
            Err(e) => spawned.send(Err(e)).expect("report spawn"),
        }
        loop {
            std::thread::park();
        }
    });
    started.recv().expect("spawn thread")
}

fn garage_binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| run_script("install-garage"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand_byte())).collect()
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// The server shared by the test process. A static is never dropped: it is
/// stopped and its directory removed when the process exits (before, every
/// test process left its Garage's data in the temp directory, up to 1 GiB
/// each: 30 GB over a few days of runs).
pub fn garage() -> Arc<Garage> {
    GARAGE
        .get_or_init(|| {
            // SAFETY: registers a plain function without arguments to run at exit.
            unsafe {
                libc::atexit(remove_shared_garage);
            }
            Arc::new(Garage::start())
        })
        .clone()
}

extern "C" fn remove_shared_garage() {
    if let Some(garage) = GARAGE.get() {
        if let Ok(pid) = garage.pid.lock() {
            signal(*pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(garage._dir.path());
    }
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) on a process this harness started.
    unsafe {
        libc::kill(pid, signal);
    }
}

impl Garage {
    /// Starts a server of its own (for tests that stop or freeze it). It dies
    /// with the test process, and when dropped. Its ports are picked free and
    /// bound by Garage a moment later, so another process may take one in
    /// between (with a test per process, dozens pick ports at once): a server
    /// that is not healthy in time is killed and started on other ports.
    pub fn start() -> Garage {
        let _ = python();
        for attempt in 1..=3 {
            let garage = Self::configure_new();
            garage.spawn();
            if garage.healthy_within(Duration::from_secs(20)) {
                return garage;
            }
            signal(*garage.pid.lock().unwrap(), libc::SIGKILL);
            eprintln!("garage was not healthy on {} (attempt {attempt}); trying other ports", garage.s3_endpoint);
        }
        panic!("garage did not become healthy on three sets of ports");
    }

    /// A server's directory, configuration and free ports; not started yet.
    fn configure_new() -> Garage {
        let dir = tempfile::tempdir().expect("garage dir");
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let admin_token = random_hex(16);
        let config = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"
[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".{ROOT_DOMAIN}"
[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
            dir = dir.path().display(),
            rpc_secret = random_hex(32),
        );
        let config_path = dir.path().join("garage.toml");
        std::fs::write(&config_path, config).expect("garage config");
        Garage {
            s3_endpoint: format!("http://127.0.0.1:{s3_port}"),
            admin_endpoint: format!("http://127.0.0.1:{admin_port}"),
            admin_token,
            access_key_id: format!("GK{}", random_hex(12)),
            secret_access_key: random_hex(32),
            config_path,
            log_path: dir.path().join("garage.log"),
            pid: Mutex::new(0),
            _dir: dir,
        }
    }

    /// Starts the server process and waits until it is healthy.
    fn launch(&self) {
        self.spawn();
        assert!(
            self.healthy_within(Duration::from_secs(60)),
            "garage did not become healthy; see {}",
            self.log_path.display()
        );
    }

    /// Starts the server process.
    fn spawn(&self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).expect("garage log");
        let mut command = Command::new(garage_binary());
        command
            .arg("-c")
            .arg(&self.config_path)
            .args(["server", "--single-node", "--default-bucket"])
            .envs([
                ("GARAGE_DEFAULT_ACCESS_KEY", self.access_key_id.clone()),
                ("GARAGE_DEFAULT_SECRET_KEY", self.secret_access_key.clone()),
                ("GARAGE_DEFAULT_BUCKET", "picshelf-test".to_owned()),
                ("RUST_LOG", "garage=warn".to_owned()),
            ])
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        *self.pid.lock().unwrap() = spawn_tied_to_this_process(command).expect("garage starts");
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung store).
    pub fn freeze(&self) {
        signal(*self.pid.lock().unwrap(), libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        signal(*self.pid.lock().unwrap(), libc::SIGCONT);
    }

    /// SIGKILL, and waits until the S3 port refuses connections.
    pub fn kill(&self) {
        signal(*self.pid.lock().unwrap(), libc::SIGKILL);
        let address = self.s3_endpoint.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&address).is_ok() {
            assert!(Instant::now() < deadline, "garage did not die");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same ports and data after [`Garage::kill`].
    pub fn restart(&self) {
        self.launch();
    }

    /// Whether the admin API answers /health with 200 within `patience`. Every
    /// step is bounded: whatever holds the port may never answer.
    fn healthy_within(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let address: std::net::SocketAddr =
            self.admin_endpoint.trim_start_matches("http://").parse().expect("admin address");
        loop {
            let healthy = (|| -> std::io::Result<bool> {
                use std::io::{Read, Write};
                let step = Duration::from_secs(2);
                let mut stream = std::net::TcpStream::connect_timeout(&address, step)?;
                stream.set_read_timeout(Some(step))?;
                stream.set_write_timeout(Some(step))?;
                stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"))
            })()
            .unwrap_or(false);
            if healthy {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    async fn admin(&self, endpoint: &str, body: serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
            .post(format!("{}/v2/{endpoint}", self.admin_endpoint))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .expect("garage admin request");
        assert!(response.status().is_success(), "garage {endpoint}: {}", response.text().await.unwrap_or_default());
        response.json().await.expect("garage admin JSON")
    }

    /// A new, empty bucket of the test environment, writable by the test key.
    pub async fn create_bucket(&self) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("t{n}-{}-test", random_hex(4));
        let created = self.admin("CreateBucket", json!({ "globalAlias": bucket })).await;
        let id = created["id"].as_str().expect("bucket id").to_owned();
        self.admin(
            "AllowBucketKey",
            json!({
                "bucketId": id,
                "accessKeyId": self.access_key_id,
                "permissions": { "read": true, "write": true, "owner": true },
            }),
        )
        .await;
        bucket
    }

    /// Points `settings` at `bucket` on this server, with small parts so
    /// multipart paths are exercised by modest files. Timeouts stay the
    /// repository's defaults.
    pub fn configure(&self, settings: &mut Settings, bucket: &str) {
        settings.storage.backend = Backend::S3;
        let s3 = &mut settings.storage.s3;
        s3.bucket = bucket.to_owned();
        s3.endpoint = self.s3_endpoint.clone();
        s3.region = REGION.to_owned();
        s3.path_style = true;
        s3.access_key_id = self.access_key_id.clone();
        s3.secret_access_key = SecretString::from(self.secret_access_key.clone());
        s3.part_size_bytes = 5 * 1024 * 1024;
        s3.parts_in_flight = 2;
        // Directly, whatever proxy the environment names: tests that want one say so.
        s3.proxy = SecretString::from("none");
    }

    /// As [`Garage::configure`], virtual-hosted (`<bucket>.s3.garage.localhost`)
    /// through the OSS-like front, which refuses path-style requests; the
    /// names resolve through `storage.s3.resolve`, as they would not otherwise.
    pub fn configure_virtual_hosted(&self, settings: &mut Settings, bucket: &str) {
        self.configure(settings, bucket);
        let s3 = &mut settings.storage.s3;
        s3.endpoint = format!("http://{ROOT_DOMAIN}:{}", super::oss_front::port(self));
        s3.path_style = false;
        s3.resolve = vec![format!("{ROOT_DOMAIN}=127.0.0.1"), format!("*.{ROOT_DOMAIN}=127.0.0.1")];
    }

    pub fn s3_port(&self) -> u16 {
        self.s3_endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("an endpoint with a port")
    }

    /// An SDK client of this server, for what the tests do behind the service's back.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let mut settings = super::base_settings();
        self.configure(&mut settings, "unused-test");
        picshelf::storage::s3::client::build(&settings.storage.s3).expect("the test client builds")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let pid = *self.pid.lock().unwrap();
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGKILL);
    }
}
