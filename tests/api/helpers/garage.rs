//! One real Garage server per test process, started on first use. Each test
//! gets its own bucket. Garage is installed (and cached) by
//! `scripts/install-test-tools`; nothing is skipped when it is missing.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use picshelf::config::{Backend, Settings};
use secrecy::SecretString;
use serde_json::json;

use super::repo_root;

pub const REGION: &str = "garage";

pub struct Garage {
    pub s3_endpoint: String,
    admin_endpoint: String,
    admin_token: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    _dir: tempfile::TempDir,
}

static GARAGE: OnceLock<Garage> = OnceLock::new();
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand_byte())).collect()
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

pub fn garage() -> &'static Garage {
    GARAGE.get_or_init(start)
}

fn start() -> Garage {
    let _ = python();
    let binary = run_script("install-garage");
    let dir = tempfile::tempdir().expect("garage dir");
    let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
    let admin_token = random_hex(16);
    let access_key_id = format!("GK{}", random_hex(12));
    let secret_access_key = random_hex(32);
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
[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
        dir = dir.path().display(),
        rpc_secret = random_hex(32),
    );
    let config_path = dir.path().join("garage.toml");
    std::fs::write(&config_path, config).expect("garage config");
    let log = std::fs::File::create(dir.path().join("garage.log")).expect("garage log");

    // Garage must die with the test process. PR_SET_PDEATHSIG fires when the
    // *thread* that spawned the child exits, so a thread that never exits spawns it.
    let (spawned, started) = std::sync::mpsc::channel();
    let environment = [
        ("GARAGE_DEFAULT_ACCESS_KEY", access_key_id.clone()),
        ("GARAGE_DEFAULT_SECRET_KEY", secret_access_key.clone()),
        ("GARAGE_DEFAULT_BUCKET", "picshelf-test".to_owned()),
        ("RUST_LOG", "garage=warn".to_owned()),
    ];
    std::thread::spawn(move || {
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&config_path)
            .args(["server", "--single-node", "--default-bucket"])
            .envs(environment)
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let result = command.spawn().map(|child| child.id());
        spawned.send(result).expect("report spawn");
        loop {
            std::thread::park();
        }
    });
    started.recv().expect("spawn thread").expect("garage starts");

    let garage = Garage {
        s3_endpoint: format!("http://127.0.0.1:{s3_port}"),
        admin_endpoint: format!("http://127.0.0.1:{admin_port}"),
        admin_token,
        access_key_id,
        secret_access_key,
        _dir: dir,
    };
    garage.wait_until_healthy();
    garage
}

impl Garage {
    fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = self.admin_endpoint.trim_start_matches("http://").to_owned();
        loop {
            let healthy = (|| -> std::io::Result<bool> {
                use std::io::{Read, Write};
                let mut stream = std::net::TcpStream::connect(&address)?;
                stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"))
            })()
            .unwrap_or(false);
            if healthy {
                return;
            }
            assert!(Instant::now() < deadline, "garage did not become healthy; see its log");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    async fn admin(&self, endpoint: &str, body: serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
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
    /// multipart paths are exercised by modest files.
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
        s3.connect_timeout_ms = 1000;
        s3.read_timeout_ms = 10_000;
        s3.max_attempts = 2;
    }
}
