//! `spawn_app` and what tests need around it.

pub mod audit;
pub mod forward_proxy;
pub mod garage;
pub mod images;
pub mod lossy_relay;
pub mod oss_front;
pub mod raw_http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use picshelf::config::{Backend as StorageBackend, Environment, Settings, Sources};
use picshelf::image::IdGenerator;
use picshelf::web::Application;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use audit::Expected;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Fs,
    /// Garage, path-style.
    S3,
    /// Garage virtual-hosted, behind a front that refuses path-style as Aliyun OSS does.
    S3VirtualHosted,
    /// Garage path-style, every request through a forward proxy (tinyproxy).
    S3ThroughProxy,
}

/// Runs each named `async fn(Backend)` of the calling module as two tests,
/// `fs::<name>` and `s3::<name>`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::Fs).await } )*
        }
        mod s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::S3).await } )*
        }
    };
}

/// As [`both_backends!`], and on S3 twice more: virtual-hosted through the
/// OSS-like front, and through a forward proxy: the storage contract's tests.
#[macro_export]
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!($($name),*);
        mod s3_virtual_hosted {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::S3VirtualHosted).await } )*
        }
        mod s3_through_proxy {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::S3ThroughProxy).await } )*
        }
    };
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `test` environment's settings from the repository's config files,
/// with no instance file and no environment overrides.
pub fn base_settings() -> Settings {
    let instance = tempfile::tempdir().expect("temp dir");
    let sources = Sources { config_dir: repo_root().join("config"), instance_dir: instance.path().to_path_buf() };
    let mut settings =
        Settings::load_with_overrides(Environment::Test, &sources, HashMap::new()).expect("repository config loads");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.server.shutdown_timeout_secs = 2;
    settings
}

fn init_test_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let mut log = base_settings().log;
            log.level = "debug".into();
            let _ = picshelf::telemetry::init(&log);
        }
    });
}

/// Where a test app keeps its images.
pub enum Storage {
    Fs { root: PathBuf, _dir: tempfile::TempDir },
    S3 { bucket: String, garage: Arc<garage::Garage> },
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub storage: Storage,
    pub settings: Settings,
    handle: ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command now; the server winds down on its own threads.
        drop(self.handle.stop(false));
    }
}

pub use picshelf::web::routes::upload::{UploadResponse, UploadedFile};

#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// One file of a multipart upload as the client describes it.
pub struct FilePart {
    pub name: String,
    pub bytes: Vec<u8>,
    /// What the client claims; the server must not believe it.
    pub mime: String,
}

impl FilePart {
    pub fn new(name: &str, bytes: Vec<u8>, mime: &str) -> Self {
        Self { name: name.into(), bytes, mime: mime.into() }
    }

    pub fn png(name: &str, width: u32, height: u32) -> Self {
        Self::new(name, images::png(width, height), "image/png")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn form(files: Vec<FilePart>) -> Form {
    files.into_iter().fold(Form::new(), |form, f| {
        form.part("file", Part::bytes(f.bytes).file_name(f.name).mime_str(&f.mime).expect("valid mime"))
    })
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}, None).await
}

/// Starts an app on a free port with `configure` applied to its settings
/// (after the backend is set up) and, optionally, a given id generator.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    ids: Option<Arc<dyn IdGenerator>>,
) -> TestApp {
    let storage = match backend {
        Backend::Fs => {
            let dir = tempfile::tempdir().expect("temp dir");
            Storage::Fs { root: dir.path().join("images"), _dir: dir }
        }
        Backend::S3 => new_bucket(garage::garage()).await,
        Backend::S3ThroughProxy => {
            let proxy = forward_proxy::forward_proxy().url.clone();
            return spawn_app_in(
                new_bucket(garage::garage()).await,
                move |settings| {
                    settings.storage.s3.proxy = proxy.into();
                    configure(settings);
                },
                ids,
            )
            .await;
        }
        Backend::S3VirtualHosted => {
            let garage = garage::garage();
            let bucket = garage.create_bucket().await;
            let front = garage.clone();
            let bucket_name = bucket.clone();
            return spawn_app_in(
                Storage::S3 { bucket, garage },
                move |settings| {
                    front.configure_virtual_hosted(settings, &bucket_name);
                    configure(settings);
                },
                ids,
            )
            .await;
        }
    };
    spawn_app_in(storage, configure, ids).await
}

/// A fresh bucket on `garage`.
pub async fn new_bucket(garage: Arc<garage::Garage>) -> Storage {
    let bucket = garage.create_bucket().await;
    Storage::S3 { bucket, garage }
}

/// Starts an app on a free port storing into `storage`.
pub async fn spawn_app_in(
    storage: Storage,
    configure: impl FnOnce(&mut Settings),
    ids: Option<Arc<dyn IdGenerator>>,
) -> TestApp {
    init_test_logging();
    let mut settings = base_settings();
    match &storage {
        Storage::Fs { root, .. } => {
            settings.storage.backend = StorageBackend::Fs;
            settings.storage.fs.root = root.clone();
        }
        Storage::S3 { bucket, garage } => garage.configure(&mut settings, bucket),
    }
    configure(&mut settings);
    settings.validate().expect("test settings are valid");

    let application = match ids {
        Some(ids) => Application::build_with(settings.clone(), ids).await,
        None => Application::build(settings.clone()).await,
    }
    .expect("application builds");
    let port = application.port();
    let handle = application.handle();
    tokio::spawn(application.run_until_stopped());

    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        storage,
        settings,
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn upload(&self, files: Vec<FilePart>) -> reqwest::Response {
        self.client.post(self.url("/main/upload")).multipart(form(files)).send().await.expect("upload request")
    }

    /// Uploads one file and insists on a 201.
    pub async fn upload_ok(&self, file: FilePart) -> UploadedFile {
        let response = self.upload(vec![file]).await;
        assert_eq!(response.status(), 201, "upload failed: {}", response.text().await.unwrap_or_default());
        let mut body: UploadResponse = response.json().await.expect("upload JSON");
        assert_eq!(body.files.len(), 1);
        body.files.remove(0)
    }

    pub async fn download(&self, id: &str) -> reqwest::Response {
        self.get(&format!("/main/download/{id}")).await
    }

    pub async fn delete(&self, id: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.delete(self.url(&format!("/main/download/{id}")));
        if let Some(token) = token {
            request = request.header("X-Delete-Token", token);
        }
        request.send().await.expect("delete request")
    }

    /// The sum of a counter family in `/metrics`, e.g. `picshelf_storage_operations_total`.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("metrics");
        text.lines()
            .filter(|line| {
                line.starts_with(name) && (line[name.len()..].starts_with('{') || line[name.len()..].starts_with(' '))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Asserts the store holds exactly `expected` and nothing half-done
    /// (disk: no temp files; S3: checked by boto3, no incomplete multipart uploads).
    pub async fn assert_stores(&self, expected: &[Expected]) {
        audit::assert_stores(&self.storage, expected).await;
    }

    /// As [`TestApp::assert_stores`], waiting up to `patience` for background cleanup.
    pub async fn assert_stores_within(&self, expected: &[Expected], patience: Duration) {
        audit::assert_stores_within(&self.storage, expected, patience).await;
    }

    pub async fn assert_stores_nothing(&self) {
        self.assert_stores(&[]).await;
    }
}

/// An id generator that hands out the same id every time.
pub struct FixedId(pub picshelf::image::ImageId);

impl IdGenerator for FixedId {
    fn generate(&self) -> picshelf::image::ImageId {
        self.0
    }
}

/// Sends `request` and reads its answer as text.
pub async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.expect("request").text().await.expect("body")
}

pub async fn error_of(response: reqwest::Response) -> ErrorBody {
    let text = response.text().await.expect("body");
    serde_json::from_str::<ErrorEnvelope>(&text).unwrap_or_else(|e| panic!("not a JSON error ({e}): {text}")).error
}
