//! Privacy by default: location, camera and personal metadata leave every
//! upload, and nothing else changes. Fixtures carrying everything a phone or
//! an editor writes (`scripts/metadata-fixtures`: GPS, camera make, model
//! and serial, artist, dates, XMP with GPS, IPTC, comments, an ICC profile,
//! Orientation 6) are uploaded, downloaded, and read back by independent
//! tools (`scripts/metadata-audit`): exiftool says what metadata remains,
//! Pillow compares the decoded pixels with the orientation applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::garage::python;
use crate::helpers::images::{self, ImageFormat};
use crate::helpers::raw_http::{RawUpload, read_response};
use crate::helpers::{
    Backend, Expected, FilePart, TestApp, error_of, repo_root, sha256_hex, spawn_app, spawn_app_with,
};

both_backends!(
    every_format_loses_its_metadata_and_looks_exactly_the_same,
    with_stripping_off_files_are_stored_untouched,
    broken_metadata_is_refused_precisely_and_stores_nothing,
);

/// The fixtures, written once per test process.
struct Fixtures {
    dir: tempfile::TempDir,
    /// File name to what the generator says it put in.
    manifest: BTreeMap<String, Value>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Command::new(python())
            .arg(repo_root().join("scripts/metadata-fixtures"))
            .arg(dir.path())
            .output()
            .expect("scripts/metadata-fixtures runs");
        assert!(output.status.success(), "metadata-fixtures failed: {}", String::from_utf8_lossy(&output.stderr));
        let manifest = serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
        Fixtures { dir, manifest }
    })
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("fixture")
    }
}

/// What exiftool and Pillow say about `stored` against `original`.
fn audit(original: &Path, stored: &[u8]) -> Value {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), stored).expect("write stored copy");
    let output = Command::new(python())
        .arg(repo_root().join("scripts/metadata-audit"))
        .arg(original)
        .arg(file.path())
        .output()
        .expect("scripts/metadata-audit runs");
    assert!(output.status.success(), "metadata-audit failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("audit JSON")
}

/// The Orientation a reader applies: EXIF's, else XMP's (GIF has only XMP);
/// and HEIF's rotation property.
fn orientation(audit: &Value) -> (Value, Value) {
    let o = &audit["orientation"];
    let tag = if o["exif"].is_null() { o["xmp"].clone() } else { o["exif"].clone() };
    (tag, o["heif_irot_degrees_ccw"].clone())
}

async fn download(app: &TestApp, id: &str) -> Vec<u8> {
    let response = app.download(id).await;
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body").to_vec()
}

async fn every_format_loses_its_metadata_and_looks_exactly_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    let fixtures = fixtures();
    let mut expected = Vec::new();
    for (name, facts) in &fixtures.manifest {
        let original = fixtures.bytes(name);
        // The client's type is a lie; the bytes decide.
        let file = app.upload_ok(FilePart::new(name, original.clone(), "application/octet-stream")).await;
        let stored = download(&app, &file.id).await;

        // The answer describes the stored bytes.
        assert_eq!(file.sha256, sha256_hex(&stored), "{name}");
        assert_eq!(file.size, stored.len() as u64, "{name}");
        assert_ne!(stored, original, "{name}: stored untouched");
        for kind in ["gps", "xmp"] {
            assert!(
                file.metadata_removed.iter().any(|k| k == kind),
                "{name}: {kind} not in {:?}",
                file.metadata_removed
            );
        }
        if facts["orientation_sources"].as_array().is_some_and(|s| s.iter().any(|s| s == "exif")) {
            assert!(file.metadata_removed.iter().any(|k| k == "exif"), "{name}: {:?}", file.metadata_removed);
        }

        let before = audit(&fixtures.path(name), &original);
        let after = audit(&fixtures.path(name), &stored);
        assert!(!before["remaining"].as_object().expect("remaining").is_empty(), "{name}: the fixture has metadata");
        assert_eq!(after["remaining"], serde_json::json!({}), "{name}: metadata left in the stored file");
        assert_eq!(orientation(&after), orientation(&before), "{name}: orientation changed");
        assert_eq!(after["icc"]["identical"], true, "{name}: ICC profile changed: {}", after["icc"]);
        assert_eq!(after["pixels"]["identical"], true, "{name}: pixels changed: {}", after["pixels"]);
        assert_eq!(after["pixels"]["stored_size"], facts["pillow_transposed_size"], "{name}: displayed size");

        // Dimensions are the stored pixel grid; for HEIF the header's own
        // rotation (`irot`) is part of it, as `imagesize` reads it.
        let size = if facts["format"] == "AVIF" { &facts["pillow_transposed_size"] } else { &facts["size"] };
        let (width, height) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
        assert_eq!((file.width, file.height), (width, height), "{name}");
        expected.push(
            Expected::new(&file.id, &stored, &file.content_type, Some(name), width, height)
                .with_removed(&file.metadata_removed),
        );
    }
    app.assert_stores(&expected).await;

    // The page says so, and /metrics counts it.
    let page = app.get(&format!("/main/view/{}", expected[0].id)).await.text().await.unwrap();
    assert!(page.contains("Location removed"), "{page}");
    let gps = app.metric_sum("picshelf_metadata_removed_total{kind=\"gps\"}").await;
    assert_eq!(gps, fixtures.manifest.len() as f64);
}

async fn with_stripping_off_files_are_stored_untouched(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.strip_metadata = false, None).await;
    let fixtures = fixtures();
    for name in fixtures.manifest.keys() {
        let original = fixtures.bytes(name);
        let file = app.upload_ok(FilePart::new(name, original.clone(), "image/jpeg")).await;
        assert!(file.metadata_removed.is_empty(), "{name}: {:?}", file.metadata_removed);
        assert_eq!(file.sha256, sha256_hex(&original), "{name}");
        assert_eq!(download(&app, &file.id).await, original, "{name}");
    }
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xFF, marker];
    bytes.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// `file` with `bytes` put in after its first `at` bytes.
fn spliced(file: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    [&file[..at], bytes, &file[at..]].concat()
}

fn png_chunk(kind: &[u8; 4], declared_len: u32, data: &[u8]) -> Vec<u8> {
    let mut chunk = declared_len.to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32fast::hash(&[kind.as_slice(), data].concat()).to_be_bytes());
    chunk
}

async fn broken_metadata_is_refused_precisely_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let jpeg = images::encode(ImageFormat::Jpeg, 32, 24);
    let png = images::png(32, 24);
    let webp = images::encode(ImageFormat::WebP, 32, 24);
    let tiff = images::encode(ImageFormat::Tiff, 32, 24);
    let exif_header = |len: u16| [&[0xFF, 0xE1][..], &len.to_be_bytes(), b"Exif\0\0MM\0*\0\0\0\x08"].concat();

    let mut webp_lying = webp.clone();
    webp_lying[16..20].copy_from_slice(&0x7FFF_FFF0_u32.to_le_bytes()); // the first chunk's size
    // IFD0 stays readable (it has the dimensions); the next IFD it names is past the end.
    let mut tiff_lying = tiff.clone();
    let ifd0 = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
    let next = ifd0 + 2 + 12 * u16::from_le_bytes(tiff[ifd0..ifd0 + 2].try_into().unwrap()) as usize;
    tiff_lying[next..next + 4].copy_from_slice(&0xFFFF_FF00_u32.to_le_bytes());
    // Where the header itself is cut short, the dimensions cannot be read: 415.
    let damaged = (415, "unsupported_type");
    let malformed = (400, "malformed_image");
    let cases: Vec<(&str, Vec<u8>, (u16, &str))> = vec![
        ("a JPEG that ends inside its APP1", [&jpeg[..2], &exif_header(4000)].concat(), damaged),
        (
            "a JPEG segment declaring a length of 1",
            spliced(&jpeg, jpeg.len() - 2, &[0xFF, 0xE1, 0x00, 0x01, 0xAB]),
            malformed,
        ),
        (
            "a JPEG APP1 longer than the rest of the file",
            [&jpeg[..jpeg.len() - 2], &exif_header(60_000)].concat(),
            malformed,
        ),
        ("a PNG chunk claiming 4 GiB", spliced(&png, 33, &png_chunk(b"tEXt", u32::MAX, b"k\0v")), malformed),
        (
            "a PNG text chunk claiming 2 GiB, then the end",
            spliced(&png, 33, &png_chunk(b"tEXt", 0x7FFF_FFF0, b"k")),
            malformed,
        ),
        ("a PNG without IEND", png[..png.len() - 12].to_vec(), malformed),
        ("a WebP chunk longer than the file", webp_lying, malformed),
        ("a TIFF whose second IFD is past its end", tiff_lying, malformed),
    ];
    for (what, file, expected) in cases {
        let response = app.upload(vec![FilePart::new("bad.img", file, "image/jpeg")]).await;
        let status = response.status().as_u16();
        let error = error_of(response).await;
        assert_eq!((status, error.code.as_str()), expected, "{what}: {}", error.message);
    }
    app.assert_stores_nothing().await;

    // Thousands of tiny segments, trailing data, a polyglot: stripped, not refused.
    let tiny = segment(0xFE, b"").repeat(20_000);
    let file = app.upload_ok(FilePart::new("tiny.jpg", spliced(&jpeg, 2, &tiny), "image/jpeg")).await;
    assert_eq!(download(&app, &file.id).await, jpeg, "20,000 empty comments are removed");
    assert_eq!(file.metadata_removed, ["comment"]);

    let html = b"<html><script>alert(document.cookie)</script></html>";
    let gif = images::encode(ImageFormat::Gif, 16, 16);
    let mut comment = vec![0x21, 0xFE, html.len() as u8];
    comment.extend_from_slice(html);
    comment.push(0);
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00 a zip archive after the trailer";
    let polyglot = [spliced(&gif, gif.len() - 1, &comment), zip.to_vec()].concat();
    let file = app.upload_ok(FilePart::new("polyglot.gif", polyglot, "image/gif")).await;
    let stored = download(&app, &file.id).await;
    assert_eq!(stored, gif, "the comment and the archive are gone");
    assert_eq!(file.metadata_removed, ["comment", "trailing_data"]);
}

/// TIFF and AVIF are rewritten in memory: above `upload.max_rewrite_bytes`
/// a precise 413, and all of them together hold at most
/// `upload.rewrite_memory_bytes` (503 beyond, without waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiff_and_avif_are_rewritten_in_bounded_memory() {
    const CAP: u64 = 64 * 1024;
    let app = spawn_app_with(
        Backend::Fs,
        |s| {
            s.upload.max_rewrite_bytes = CAP;
            s.upload.rewrite_memory_bytes = CAP;
        },
        None,
    )
    .await;
    let big_tiff = images::encode(ImageFormat::Tiff, 200, 200);
    let mut big_avif = images::avif(640, 480);
    big_avif.extend_from_slice(&[&(80_000_u32 + 8).to_be_bytes()[..], b"free", &[0; 80_000]].concat());
    for (name, file) in [("big.tiff", big_tiff), ("big.avif", big_avif)] {
        assert!(file.len() as u64 > CAP);
        let response = app.upload(vec![FilePart::new(name, file, "image/tiff")]).await;
        assert_eq!(response.status(), 413, "{name}");
        let error = error_of(response).await;
        assert_eq!(error.code, "too_large_to_strip", "{name}");
        assert!(error.message.contains(&CAP.to_string()), "{}", error.message);
    }
    app.assert_stores_nothing().await;

    // An upload whose file has arrived but not its form's end holds its 40 KB
    // of the 64 KiB (this encoder puts the IFD last: the header is the whole
    // file); another one's 40 KB do not fit.
    let tiff = images::encode(ImageFormat::Tiff, 120, 110);
    assert!(tiff.len() > 39_000 && (tiff.len() as u64) < CAP, "{}", tiff.len());
    let slow = RawUpload::new(&tiff);
    let mut holding = slow.begin(app.port, tiff.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app.upload(vec![FilePart::new("second.tiff", tiff.clone(), "image/tiff")]).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(error_of(response).await.code, "too_many_uploads");

    // The first one finishes and gives its memory back.
    crate::helpers::raw_http::send(&mut holding, &slow.end).await.unwrap();
    let first = read_response(&mut holding, Duration::from_secs(10)).await.expect("an answer");
    assert_eq!(first.status, 201);
    app.upload_ok(FilePart::new("third.tiff", tiff, "image/tiff")).await;
}
