//! The storage where users run it: virtual-hosted addressing behind a front
//! that refuses path-style (as Aliyun OSS does), a forward proxy, host names
//! resolved by `storage.s3.resolve`, multipart copies for large objects,
//! lifecycle rules, presigned download redirects, and `picshelf check-store`
//! telling each misconfiguration apart. (The whole storage contract also runs
//! virtual-hosted: `every_backend!` in the upload, download, delete, limits
//! and health modules.)

use std::process::Command;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};

use crate::helpers::forward_proxy::forward_proxy;
use crate::helpers::garage::{self, REGION, ROOT_DOMAIN};
use crate::helpers::oss_front::{self, PATH_STYLE_REFUSED};
use crate::helpers::{Backend, Expected, FilePart, error_of, images, repo_root, sha256_hex, spawn_app_with};

const BINARY: &str = env!("CARGO_BIN_EXE_picshelf");

/// Environment variables for the binary.
type Vars = Vec<(&'static str, String)>;

/// `picshelf check-store` with the test environment's files and `vars`.
fn check_store(vars: &[(&str, String)]) -> (bool, String, String) {
    let instance = tempfile::tempdir().unwrap();
    let mut command = Command::new(BINARY);
    command
        .arg("check-store")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PICSHELF_ENV", "test")
        .env("PICSHELF_CONFIG_DIR", repo_root().join("config"))
        .env("PICSHELF_INSTANCE_DIR", instance.path());
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command.output().expect("picshelf check-store runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The store settings of a bucket on the shared Garage, path-style, no proxy.
fn s3_vars(bucket: &str) -> Vars {
    let g = garage::garage();
    vec![
        ("PICSHELF__STORAGE__BACKEND", "s3".into()),
        ("PICSHELF__STORAGE__S3__BUCKET", bucket.into()),
        ("PICSHELF__STORAGE__S3__ENDPOINT", g.s3_endpoint.clone()),
        ("PICSHELF__STORAGE__S3__REGION", REGION.into()),
        ("PICSHELF__STORAGE__S3__ACCESS_KEY_ID", g.access_key_id.clone()),
        ("PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", g.secret_access_key.clone()),
        ("PICSHELF__STORAGE__S3__PROXY", "none".into()),
    ]
}

fn with(mut vars: Vars, key: &'static str, value: impl Into<String>) -> Vars {
    vars.retain(|(k, _)| *k != key);
    vars.push((key, value.into()));
    vars
}

fn virtual_hosted(vars: Vars) -> Vars {
    let front = oss_front::port(&garage::garage());
    let vars = with(vars, "PICSHELF__STORAGE__S3__ENDPOINT", format!("http://{ROOT_DOMAIN}:{front}"));
    let vars = with(vars, "PICSHELF__STORAGE__S3__PATH_STYLE", "false");
    with(vars, "PICSHELF__STORAGE__S3__RESOLVE", format!("{ROOT_DOMAIN}=127.0.0.1,*.{ROOT_DOMAIN}=127.0.0.1"))
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_store_proves_a_good_store_and_reports_what_it_sees() {
    let bucket = garage::garage().create_bucket().await;
    // Lifecycle rules as deploy/garage-init sets them, read back by the check.
    let rules = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id("abort-incomplete-uploads")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build(),
                )
                .build()
                .unwrap(),
        )
        .rules(
            LifecycleRule::builder()
                .id("expire-staging")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("staging/").build())
                .expiration(LifecycleExpiration::builder().days(1).build())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    garage::garage()
        .client()
        .put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(rules)
        .send()
        .await
        .expect("Garage takes lifecycle rules");

    let (ok, out, err) = check_store(&s3_vars(&bucket));
    assert!(ok, "{out}\n{err}");
    for line in [
        "addressing: path-style",
        "upload bodies: hashed into their signatures (storage.s3.payload_signing = auto)",
        "checksums: only where an operation requires one",
        "ok: the bucket answers",
        "ok: clock skew",
        "ok: wrote, read back, range-read and deleted a 4096-byte probe",
        "ok: lifecycle aborts incomplete multipart uploads after 1 day(s)",
        "ok: lifecycle expires staging/ after 1 day(s)",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }

    let (ok, out, err) = check_store(&virtual_hosted(s3_vars(&bucket)));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("addressing: virtual-hosted"), "{out}");
    assert!(out.contains("ok: wrote, read back, range-read and deleted"), "{out}");

    // The probe goes up as uploads will: here unsigned, and the store takes it.
    let mut unsigned = s3_vars(&bucket);
    unsigned.push(("PICSHELF__STORAGE__S3__PAYLOAD_SIGNING", "never".into()));
    let (ok, out, err) = check_store(&unsigned);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("upload bodies: UNSIGNED-PAYLOAD (storage.s3.payload_signing = never)"), "{out}");
    assert!(out.contains("ok: wrote, read back, range-read and deleted"), "{out}");

    // A bucket without rules: warnings, not failures.
    let bare = garage::garage().create_bucket().await;
    let (ok, out, _) = check_store(&s3_vars(&bare));
    assert!(ok);
    assert!(out.contains("warning: no lifecycle rule aborts incomplete multipart uploads"), "{out}");
    // The disk backend too.
    let dir = tempfile::tempdir().unwrap();
    let fs = [
        ("PICSHELF__STORAGE__BACKEND", "fs".to_owned()),
        ("PICSHELF__STORAGE__FS__ROOT", dir.path().display().to_string()),
    ];
    let (ok, out, err) = check_store(&fs);
    assert!(ok && out.contains("ok: wrote, read back and deleted"), "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_store_tells_each_misconfiguration_apart_in_one_line() {
    let bucket = garage::garage().create_bucket().await;
    let good = s3_vars(&bucket);
    let unknown_key = format!("GK{}", "0".repeat(24));
    let cases: Vec<(&str, Vars, &str)> = vec![
        (
            "unknown key",
            with(good.clone(), "PICSHELF__STORAGE__S3__ACCESS_KEY_ID", unknown_key),
            "does not know this access key",
        ),
        (
            "wrong secret",
            with(good.clone(), "PICSHELF__STORAGE__S3__SECRET_ACCESS_KEY", "0".repeat(64)),
            "secret does not match",
        ),
        ("wrong region", with(good.clone(), "PICSHELF__STORAGE__S3__REGION", "eu-west-1"), "expects another region"),
        (
            "missing bucket",
            with(good.clone(), "PICSHELF__STORAGE__S3__BUCKET", "no-such-bucket-test"),
            "bucket does not exist",
        ),
        (
            "path-style through the OSS-like front",
            with(virtual_hosted(good.clone()), "PICSHELF__STORAGE__S3__PATH_STYLE", "true"),
            "refuses path-style requests",
        ),
        (
            "a name that does not resolve",
            with(good.clone(), "PICSHELF__STORAGE__S3__ENDPOINT", "http://no-such-store.invalid:3900"),
            "does not resolve",
        ),
        (
            "an endpoint where nothing listens",
            with(good.clone(), "PICSHELF__STORAGE__S3__ENDPOINT", format!("http://127.0.0.1:{}", closed_port())),
            "nothing answers at the endpoint",
        ),
        (
            "a proxy where nothing listens",
            with(good.clone(), "PICSHELF__STORAGE__S3__PROXY", format!("http://127.0.0.1:{}", closed_port())),
            "the proxy failed",
        ),
    ];
    let mut messages = Vec::new();
    for (what, vars, expected) in cases {
        let (ok, out, err) = check_store(&vars);
        assert!(!ok, "{what}: the check passed:\n{out}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line, not:\n{err}");
        assert!(lines[0].starts_with("picshelf check-store: "), "{what}: {}", lines[0]);
        assert!(lines[0].contains(expected), "{what}: {:?} does not say {expected:?}", lines[0]);
        assert!(!err.contains(&garage::garage().secret_access_key), "{what}: the secret was printed");
        messages.push(expected);
    }
    messages.dedup();
    assert_eq!(messages.len(), 8, "each misconfiguration has its own message");
}

/// The proxy of `storage.s3.proxy`, and the environment's (`HTTP_PROXY`, with
/// `NO_PROXY` honoured), carry the store's requests: tinyproxy counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_proxy_carries_every_store_request() {
    let proxy = forward_proxy();
    let before = proxy.relayed();
    let url = proxy.url.clone();
    let app = spawn_app_with(Backend::S3, move |s| s.storage.s3.proxy = url.clone().into(), None).await;
    let bytes = images::big_png(7 * 1024 * 1024, 300, 200, 5);
    let file = app.upload_ok(FilePart::new("big.png", bytes.clone(), "image/png")).await;
    assert_eq!(app.download(&file.id).await.bytes().await.unwrap(), bytes);
    let relayed = proxy.relayed() - before;
    // A multipart upload (create, two parts, complete, copy, delete staging) and a read at least.
    assert!(relayed >= 7, "the proxy relayed {relayed} requests");
    app.assert_stores(&[Expected::new(&file.id, &bytes, "image/png", Some("big.png"), 300, 200)]).await;

    let bucket = garage::garage().create_bucket().await;
    let from_env = with(s3_vars(&bucket), "PICSHELF__STORAGE__S3__PROXY", "");
    let before = proxy.relayed();
    let (ok, out, err) = check_store(&with(from_env.clone(), "HTTP_PROXY", proxy.url.clone()));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("proxy: from the environment"), "{out}");
    assert!(proxy.relayed() - before >= 5, "HTTP_PROXY was not used");
    let before = proxy.relayed();
    let exempt = with(with(from_env, "HTTP_PROXY", proxy.url.clone()), "NO_PROXY", "127.0.0.1");
    let (ok, out, err) = check_store(&exempt);
    assert!(ok, "{out}\n{err}");
    assert_eq!(proxy.relayed(), before, "NO_PROXY exempts the store");
}

/// Virtual-hosted requests pass the front; path-style ones get OSS's 403,
/// and the app says what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_refuses_path_style_as_oss_does_and_the_app_says_so() {
    let front = oss_front::port(&garage::garage());
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{front}/picshelf-test/anything"))
        .header("host", format!("{ROOT_DOMAIN}:{front}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains(PATH_STYLE_REFUSED));

    let app = spawn_app_with(Backend::S3VirtualHosted, |s| s.storage.s3.path_style = true, None).await;
    let response = app.upload(vec![FilePart::png("a.png", 8, 8)]).await;
    assert_eq!(response.status(), 503, "a refused store is unavailable to clients");
    assert_eq!(error_of(response).await.code, "storage_unavailable");
    assert_eq!(app.get("/readyz").await.status(), 503);
}

/// With a copy threshold below the file size, the staged upload is copied
/// into place in parts (UploadPartCopy), as OSS needs beyond 1 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_are_copied_into_place_in_parts() {
    for backend in [Backend::S3, Backend::S3VirtualHosted] {
        let app = spawn_app_with(
            backend,
            |s| {
                s.storage.s3.copy_threshold_bytes = 6 * 1024 * 1024;
                s.storage.s3.copy_part_bytes = 5 * 1024 * 1024;
            },
            None,
        )
        .await;
        let bytes = images::big_png(13 * 1024 * 1024 + 77, 640, 480, 9);
        let file = app.upload_ok(FilePart::new("large.png", bytes.clone(), "image/png")).await;
        assert_eq!(file.sha256, sha256_hex(&bytes));
        let copies = app.metric_sum("picshelf_storage_operations_total{operation=\"put\",outcome=\"ok\"}").await;
        assert_eq!(copies, 1.0);
        assert_eq!(app.download(&file.id).await.bytes().await.unwrap(), bytes, "{backend:?}");
        // An object assembled from three parts has the ETag of a multipart upload: "<md5>-3".
        let crate::helpers::Storage::S3 { bucket, garage } = &app.storage else { unreachable!() };
        let head = garage.client().head_object().bucket(bucket).key(&file.id).send().await.unwrap();
        assert!(head.e_tag().unwrap_or_default().ends_with("-3\""), "{backend:?}: {:?}", head.e_tag());
        app.assert_stores(&[Expected::new(&file.id, &bytes, "image/png", Some("large.png"), 640, 480)]).await;
    }
}

/// `storage.s3.redirect_downloads`: a GET answers 302 to a presigned URL
/// from which the bucket serves the bytes with the headers picshelf would
/// send; HEAD, 304 and Range keep working. Both addressing modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_redirect_to_presigned_urls_the_bucket_serves() {
    for backend in [Backend::S3, Backend::S3VirtualHosted] {
        let app = spawn_app_with(backend, |s| s.storage.s3.redirect_downloads = true, None).await;
        let bytes = images::png(40, 30);
        let file = app.upload_ok(FilePart::new("photo.png", bytes.clone(), "image/png")).await;
        let url = format!("/main/download/{}", file.id);

        let redirect = app.get(&url).await;
        assert_eq!(redirect.status(), 302, "{backend:?}");
        assert_eq!(redirect.headers()["cache-control"], "no-store");
        let location = redirect.headers()["location"].to_str().unwrap().to_owned();
        let target = reqwest::Url::parse(&location).unwrap();
        assert!(target.query().unwrap_or_default().contains("X-Amz-Signature="), "{location}");
        // The bucket's own host name: resolved here as the app's resolve map does.
        let store = reqwest::Client::builder()
            .resolve(target.host_str().unwrap(), "127.0.0.1:0".parse().unwrap())
            .build()
            .unwrap();
        let served = store.get(location.as_str()).send().await.unwrap();
        assert_eq!(served.status(), 200, "{backend:?}: {location}");
        let headers = served.headers().clone();
        assert_eq!(headers["content-type"], "image/png");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        assert!(headers["content-disposition"].to_str().unwrap().starts_with("inline"), "{headers:?}");
        assert!(headers["content-disposition"].to_str().unwrap().contains("photo.png"));
        assert_eq!(served.bytes().await.unwrap(), bytes);
        let ranged = store.get(location.as_str()).header("range", "bytes=2-5").send().await.unwrap();
        assert_eq!(ranged.status(), 206);
        assert_eq!(ranged.bytes().await.unwrap(), bytes[2..6]);

        let attachment = app.get(&format!("{url}?download")).await;
        let location = attachment.headers()["location"].to_str().unwrap().to_owned();
        let served = store.get(location.as_str()).send().await.unwrap();
        assert!(served.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));

        let head = app.client.head(app.url(&url)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD is answered by picshelf");
        assert_eq!(head.headers()["content-length"], bytes.len().to_string().as_str());
        let etag = format!("\"{}\"", file.sha256);
        let cached = app.client.get(app.url(&url)).header("if-none-match", etag.as_str()).send().await.unwrap();
        assert_eq!(cached.status(), 304);
        let missing = app.get("/main/download/01890a5d-ac96-774b-bcce-b302099a8057").await;
        assert_eq!(missing.status(), 404);
    }
}

/// `storage.s3.payload_signing`: over plain HTTP ("auto") every upload body,
/// a single PutObject and each UploadPart alike, carries its SHA-256 in the
/// signature; with "never" (what "auto" does over HTTPS) each says
/// UNSIGNED-PAYLOAD, the store takes it, and the files come back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_payload_signing_hashes_bodies_over_http_and_never_is_unsigned_and_whole() {
    use picshelf::config::PayloadSigning;

    use crate::helpers::lossy_relay::app_behind_relay;
    for (setting, unsigned) in [(PayloadSigning::Auto, false), (PayloadSigning::Never, true)] {
        let (app, relay) = app_behind_relay(move |settings| {
            settings.storage.s3.payload_signing = setting;
            settings.storage.s3.part_size_bytes = 5 * 1024 * 1024;
        })
        .await;
        let small = images::png(64, 48);
        let large = images::big_png(11 * 1024 * 1024 / 2, 300, 200, 77);
        let mut small_sha256 = String::new();
        for bytes in [&small, &large] {
            let response = app.upload(vec![FilePart::new("signed.png", bytes.clone(), "image/png")]).await;
            assert_eq!(response.status(), 201, "{setting:?}");
            let body: serde_json::Value = response.json().await.unwrap();
            let id = body["files"][0]["id"].as_str().unwrap().to_owned();
            if bytes == &small {
                small_sha256 = body["files"][0]["sha256"].as_str().unwrap().to_owned();
            }
            let download = app.download(&id).await;
            assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice(), "{setting:?}");
        }

        let heads = relay.request_heads("PUT");
        let parts = heads.iter().filter(|h| h.lines().next().unwrap().contains("partNumber=")).count();
        assert!(parts >= 2, "{setting:?}: the large file went up in parts: {heads:#?}");
        let bodies: Vec<&String> =
            heads.iter().filter(|h| !h.to_ascii_lowercase().contains("\r\nx-amz-copy-source:")).collect();
        assert_eq!(bodies.len(), parts + 1, "{setting:?}: each part and the small file's PutObject: {heads:#?}");
        for head in bodies {
            let hash = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-amz-content-sha256:").map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| panic!("no x-amz-content-sha256 in {head}"));
            if unsigned {
                assert_eq!(hash, "unsigned-payload", "{setting:?}: {head}");
            } else {
                assert!(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{setting:?}: {head}");
            }
        }
        if !unsigned {
            // The single PutObject is signed with the SHA-256 the answer reports, which
            // the store checked against the bytes it got.
            let singles: Vec<&String> =
                heads.iter().filter(|h| h.lines().next().unwrap().contains("x-id=PutObject")).collect();
            assert_eq!(singles.len(), 1, "{heads:#?}");
            let signed_with = singles[0].lines().find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("x-amz-content-sha256:").map(|v| v.trim().to_owned())
            });
            assert_eq!(signed_with.as_deref(), Some(small_sha256.as_str()), "the small file's PutObject: {heads:#?}");
        }
    }
}

/// An upload's SHA-256, computed as its bytes stream in, signs its PutObject
/// as it is: the body is not hashed again, and the store refuses a body that
/// does not match it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_put_object_is_signed_with_the_hash_it_is_given_and_the_store_checks_it() {
    use picshelf::storage::s3::client::send_put_object;
    let garage = garage::garage();
    let bucket = garage.create_bucket().await;
    let client = garage.client();
    let body = b"picshelf payload hash".to_vec();
    let put = |key: &str, sha256: &str| {
        let request = client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()));
        send_put_object(request, true, Some(sha256))
    };
    put("right", &sha256_hex(&body)).await.expect("the right hash is taken");
    let wrong = sha256_hex(b"other bytes");
    let refused = put("wrong", &wrong).await.expect_err("a hash that is not the body's is refused");
    let code = refused.as_service_error().and_then(|e| e.meta().code()).unwrap_or_default().to_owned();
    // AWS says XAmzContentSHA256Mismatch, Garage InvalidDigest.
    assert!(
        ["XAmzContentSHA256Mismatch", "InvalidDigest", "BadDigest"].contains(&code.as_str()),
        "{code}: {refused:?}"
    );
    let listed = client.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["right"], "the refused body was not stored");
}
