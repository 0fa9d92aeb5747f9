//! Checks of what a backend really holds, made without the service: the disk
//! layout read directly, S3 buckets read by boto3 (`scripts/s3-audit`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{Storage, garage, repo_root, sha256_hex};

/// An image the store must hold.
#[derive(Clone, Debug)]
pub struct Expected {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub file_name: Option<String>,
    pub width: u64,
    pub height: u64,
    /// What the service says it stripped, in the order it lists it.
    pub metadata_removed: Vec<String>,
    /// The variants stored beside it.
    pub variants: Vec<ExpectedVariant>,
}

/// A variant a store must hold beside its image: `w320.webp`.
#[derive(Clone, Debug)]
pub struct ExpectedVariant {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
}

impl Expected {
    pub fn new(id: &str, bytes: &[u8], content_type: &str, file_name: Option<&str>, width: u64, height: u64) -> Self {
        Self {
            id: id.to_owned(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            content_type: content_type.to_owned(),
            file_name: file_name.map(str::to_owned),
            width,
            height,
            metadata_removed: Vec::new(),
            variants: Vec::new(),
        }
    }

    /// With a variant as it was downloaded.
    pub fn with_variant(mut self, name: &str, bytes: &[u8], content_type: &str) -> Self {
        self.variants.push(ExpectedVariant {
            name: name.to_owned(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            content_type: content_type.to_owned(),
        });
        self
    }

    pub fn with_removed(mut self, removed: &[String]) -> Self {
        self.metadata_removed = removed.to_vec();
        self
    }
}

/// Cleanup after a failure may run in the background for a moment: retry
/// until the store is as expected, then fail with what is still wrong.
pub async fn assert_stores(storage: &Storage, expected: &[Expected]) {
    assert_stores_within(storage, expected, Duration::from_secs(15)).await;
}

/// As [`assert_stores`], waiting up to `patience` for background cleanup.
pub async fn assert_stores_within(storage: &Storage, expected: &[Expected], patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let problems = match storage {
            Storage::Fs { root, .. } => audit_fs(root, expected),
            Storage::S3 { bucket, garage } => audit_s3(garage, bucket, expected).await,
        };
        if problems.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the store is not as expected:\n  {}", problems.join("\n  "));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn audit_fs(root: &Path, expected: &[Expected]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found = BTreeSet::new();
    for shard in std::fs::read_dir(root.join("objects")).expect("objects dir").flatten() {
        for object in std::fs::read_dir(shard.path()).expect("shard dir").flatten() {
            found.insert(object.file_name().to_string_lossy().into_owned());
        }
    }
    let wanted: BTreeSet<String> = expected.iter().map(|e| e.id.clone()).collect();
    for stray in found.difference(&wanted) {
        problems.push(format!("unexpected object {stray}"));
    }
    for want in expected {
        if !found.contains(&want.id) {
            problems.push(format!("missing object {}", want.id));
            continue;
        }
        let dir = root.join("objects").join(&want.id[want.id.len() - 2..]).join(&want.id);
        let data = std::fs::read(dir.join("data")).unwrap_or_default();
        if sha256_hex(&data) != want.sha256 || data.len() as u64 != want.size {
            problems.push(format!("{}: bytes differ", want.id));
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap_or_default()).unwrap_or_default();
        let mut expected_meta = json!({
            "content_type": want.content_type,
            "size": want.size,
            "sha256": want.sha256,
            "file_name": want.file_name,
            "width": want.width,
            "height": want.height,
        });
        if !want.metadata_removed.is_empty() {
            expected_meta["metadata_removed"] = json!(want.metadata_removed);
        }
        if meta != expected_meta {
            problems.push(format!("{}: metadata {meta}, expected {expected_meta}", want.id));
        }
        problems.extend(audit_fs_variants(&dir, want));
    }
    let leftovers: Vec<String> = std::fs::read_dir(root.join("tmp"))
        .expect("tmp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !leftovers.is_empty() {
        problems.push(format!("temp entries left behind: {leftovers:?}"));
    }
    problems
}

fn audit_fs_variants(dir: &Path, want: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    let found: BTreeSet<String> = std::fs::read_dir(dir.join("variants"))
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let wanted: BTreeSet<String> = want.variants.iter().map(|v| v.name.clone()).collect();
    if found != wanted {
        problems.push(format!("{}: variants {found:?}, expected {wanted:?}", want.id));
    }
    for variant in &want.variants {
        let data = std::fs::read(dir.join("variants").join(&variant.name).join("data")).unwrap_or_default();
        if sha256_hex(&data) != variant.sha256 || data.len() as u64 != variant.size {
            problems.push(format!("{}: variant {} bytes differ", want.id, variant.name));
        }
    }
    problems
}

async fn audit_s3(garage: &garage::Garage, bucket: &str, expected: &[Expected]) -> Vec<String> {
    let expect: Vec<_> = expected
        .iter()
        .flat_map(|e| {
            let mut metadata = json!({
                "sha256": e.sha256,
                "width": e.width.to_string(),
                "height": e.height.to_string(),
            });
            if let Some(name) = &e.file_name {
                metadata["filename"] = json!(percent_encode_like_the_service(name));
            }
            if !e.metadata_removed.is_empty() {
                metadata["metadata-removed"] = json!(e.metadata_removed.join(","));
            }
            let image = json!({ "key": e.id, "sha256": e.sha256, "size": e.size, "content_type": e.content_type, "metadata": metadata });
            let variants = e.variants.iter().map(|v| {
                json!({
                    "key": format!("{}/{}", e.id, v.name),
                    "sha256": v.sha256,
                    "size": v.size,
                    "content_type": v.content_type,
                    "metadata": { "sha256": v.sha256 },
                })
            });
            std::iter::once(image).chain(variants).collect::<Vec<_>>()
        })
        .collect();
    let request = json!({
        "endpoint": garage.s3_endpoint,
        "region": garage::REGION,
        "bucket": bucket,
        "access_key_id": garage.access_key_id,
        "secret_access_key": garage.secret_access_key,
        "expect": expect,
    });
    let mut child = tokio::process::Command::new(garage::python())
        .arg(repo_root().join("scripts/s3-audit"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("s3-audit runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(request.to_string().as_bytes()).await.expect("write audit request");
    drop(stdin);
    let output = child.wait_with_output().await.expect("s3-audit output");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("s3-audit failed: {}", String::from_utf8_lossy(&output.stderr)));
    report["problems"].as_array().into_iter().flatten().map(|p| p.as_str().unwrap_or_default().to_owned()).collect()
}

/// Names are stored percent-encoded (metadata is ASCII); letters, digits and `-_. ()` stay.
fn percent_encode_like_the_service(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b' ' | b'(' | b')' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
