//! A dead or hung store gives a quick 503, never a hung request.

use std::sync::Arc;
use std::time::Duration;

use picshelf::config::Backend as StorageBackend;

use crate::helpers::garage::{self, Garage};
use crate::helpers::raw_http::{self, RawUpload, read_response};
use crate::helpers::{
    Backend, FilePart, Storage, TestApp, UploadedFile, error_of, form, images, new_bucket, spawn_app, spawn_app_in,
    spawn_app_with,
};

fn closed_port() -> u16 {
    // Bound then released: nothing listens there.
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port that accepts connections and holds them open, never answering: a hung store.
async fn silent_endpoint() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

async fn assert_unavailable(app: &TestApp) {
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(error_of(ready).await.code, "storage_unavailable");

    let upload = app.upload(vec![FilePart::png("a.png", 4, 4)]).await;
    assert_eq!(upload.status(), 503);
    assert_eq!(upload.headers()["retry-after"], "5");
    let error = error_of(upload).await;
    assert_eq!(error.code, "storage_unavailable");
    assert!(!error.message.contains("127.0.0.1"), "no internals in the message: {}", error.message);

    let download = app.download("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").await;
    assert_eq!(download.status(), 503);

    // Liveness does not depend on storage.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_with_nothing_listening_is_503() {
    let port = closed_port();
    let app = spawn_app_with(Backend::S3, |s| s.storage.s3.endpoint = format!("http://127.0.0.1:{port}"), None).await;
    assert_unavailable(&app).await;
}

/// An app whose store accepts connections and never answers.
async fn app_on_a_silent_store(operation_timeout_ms: u64, max_attempts: u32) -> TestApp {
    let port = silent_endpoint().await;
    let configure = |s: &mut picshelf::config::Settings| {
        s.storage.s3.endpoint = format!("http://127.0.0.1:{port}");
        s.storage.s3.operation_timeout_ms = operation_timeout_ms;
        s.storage.s3.max_attempts = max_attempts;
    };
    spawn_app_with(Backend::S3, configure, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_that_accepts_but_never_answers_is_503_after_the_read_timeout() {
    let app = app_on_a_silent_store(500, 1).await;
    // The test client gives up after 60 s; the service must answer long before.
    assert_unavailable(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refusing_our_credentials_is_503_without_leaking_them() {
    let app = spawn_app_with(
        Backend::S3,
        |s| s.storage.s3.secret_access_key = secrecy::SecretString::from("wrong-secret-0123456789abcdef".to_owned()),
        None,
    )
    .await;
    let upload = app.upload(vec![FilePart::png("a.png", 4, 4)]).await;
    assert_eq!(upload.status(), 503);
    let body = upload.text().await.unwrap();
    assert!(!body.contains("wrong-secret") && !body.contains("Signature"), "{body}");
}

#[tokio::test]
async fn a_vanished_storage_directory_is_503() {
    let app = spawn_app(Backend::Fs).await;
    assert_eq!(app.settings.storage.backend, StorageBackend::Fs);
    assert_eq!(app.get("/readyz").await.status(), 200);
    std::fs::remove_dir_all(&app.settings.storage.fs.root).unwrap();
    assert_unavailable(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_rather_than_hang_even_when_storage_is_slow() {
    // The same property seen from a client with a short patience: within 10 s.
    let app = app_on_a_silent_store(1000, 2).await;
    let patient_enough = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let response = patient_enough.get(app.url("/readyz")).send().await.expect("an answer within 10 s");
    assert_eq!(response.status(), 503);
}

/// How long a client waited for a route's answer, and the status it got.
async fn timed(request: reqwest::RequestBuilder) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let response = request.send().await.expect("an answer");
    (response.status().as_u16(), started.elapsed())
}

/// Every route that touches storage, as a client would call it.
fn storage_routes(app: &TestApp, file: &UploadedFile) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    let download = app.url(&format!("/main/download/{}", file.id));
    vec![
        ("GET /readyz", app.client.get(app.url("/readyz"))),
        ("GET download", app.client.get(&download)),
        ("HEAD download", app.client.head(&download)),
        ("ranged GET download", app.client.get(&download).header("Range", "bytes=0-9")),
        ("GET view", app.client.get(app.url(&format!("/main/view/{}", file.id)))),
        ("DELETE download", app.client.delete(&download).header("X-Delete-Token", &file.delete_token)),
        ("POST upload", app.client.post(app.url("/main/upload")).multipart(form(vec![FilePart::png("b.png", 4, 4)]))),
    ]
}

/// Every route of `routes` answers 503 within 5 s; `label` names the failure in the output.
async fn assert_every_route_fails_fast<'a>(
    label: &str,
    routes: impl IntoIterator<Item = (&'a str, reqwest::RequestBuilder)>,
) {
    for (route, request) in routes {
        let (status, took) = timed(request).await;
        eprintln!("{label}: {route} -> {status} in {took:?}");
        assert_eq!(status, 503, "{route}");
        assert!(took < Duration::from_secs(5), "{route} took {took:?}");
    }
}

/// Waits until the app reports ready again; the time it took.
async fn recovery_time(app: &TestApp, patience: Duration) -> Duration {
    let started = std::time::Instant::now();
    loop {
        if app.get("/readyz").await.status() == 200 {
            return started.elapsed();
        }
        assert!(started.elapsed() < patience, "not ready again after {patience:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An app on a Garage of its own (to freeze or kill), with one image stored.
async fn app_on_its_own_garage() -> (Arc<Garage>, TestApp, UploadedFile) {
    let garage = Arc::new(Garage::start());
    let app = spawn_app_in(new_bucket(garage.clone()).await, |_| {}, None).await;
    let file = app.upload_ok(FilePart::png("a.png", 8, 8)).await;
    (garage, app, file)
}

/// Frozen with SIGSTOP, the store accepts connections and never answers.
/// With the repository's default timeouts every route answers 503 within
/// 5 s, and the service is back on its own once the store thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_frozen_store_gives_503_within_seconds_on_every_route_and_recovers() {
    let (garage, app, file) = app_on_its_own_garage().await;

    garage.freeze();
    assert_every_route_fails_fast("frozen store", storage_routes(&app, &file)).await;
    assert_eq!(app.get("/healthz").await.status(), 200, "liveness does not depend on storage");

    garage.thaw();
    let recovered = recovery_time(&app, Duration::from_secs(15)).await;
    eprintln!("frozen store: ready again {recovered:?} after the thaw");
    assert_eq!(app.download(&file.id).await.status(), 200);
    assert_eq!(app.upload(vec![FilePart::png("c.png", 4, 4)]).await.status(), 201);
}

/// Killed, the store refuses connections: 503 at once; restarted, the
/// service picks it up again without a restart of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_killed_store_gives_503_at_once_and_recovers_when_it_returns() {
    let (garage, app, file) = app_on_its_own_garage().await;

    garage.kill();
    assert_every_route_fails_fast("dead store", storage_routes(&app, &file)).await;

    garage.restart();
    let recovered = recovery_time(&app, Duration::from_secs(15)).await;
    eprintln!("dead store: ready again {recovered:?} after the restart");
    assert_eq!(app.download(&file.id).await.status(), 200);
}

/// A hung disk (a network filesystem that stopped answering) seen through a
/// FIFO in place of an object's metadata: opening it blocks until a writer
/// comes. Downloads and the image page answer 503 within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_hung_disk_gives_503_within_the_deadline() {
    let app = spawn_app(Backend::Fs).await;
    let file = app.upload_ok(FilePart::png("a.png", 8, 8)).await;
    let meta = app
        .settings
        .storage
        .fs
        .root
        .join("objects")
        .join(&file.id[file.id.len() - 2..])
        .join(&file.id)
        .join("meta.json");
    std::fs::remove_file(&meta).unwrap();
    let path = std::ffi::CString::new(meta.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);

    // Readiness, uploads and deletes do not read an object's metadata.
    let reads = storage_routes(&app, &file)
        .into_iter()
        .filter(|(route, _)| ["GET download", "HEAD download", "ranged GET download", "GET view"].contains(route));
    assert_every_route_fails_fast("hung disk", reads).await;
    // Release the blocked readers (each open of the FIFO waits for a writer).
    let fifo = meta.clone();
    std::thread::spawn(move || {
        for _ in 0..8 {
            if let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                use std::io::Write;
                let _ = writer.write_all(b"{}");
            }
        }
    });
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Garage dies after 11 of 20 MiB of a multipart upload and stays down for
/// 15 s, longer than any single cleanup attempt. The client gets a clean
/// error at once; the abort keeps retrying in the background and, once the
/// store is back, nothing is left: no object, no incomplete upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_an_upload_cut_by_a_store_outage_is_cleaned_up_after_the_store_returns() {
    let garage = Arc::new(Garage::start());
    let app = spawn_app_in(new_bucket(garage.clone()).await, |_| {}, None).await;
    let upload = RawUpload::new(&images::big_png(20 * 1024 * 1024, 3000, 2000, 31));

    let mut stream = upload.begin(app.port, 11 * 1024 * 1024).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.metric_sum("picshelf_uploads_in_flight").await, 1.0);

    garage.kill();
    let _ = raw_http::send(&mut stream, &upload.file[11 * 1024 * 1024..]).await;
    let _ = raw_http::send(&mut stream, &upload.end).await;
    if let Some(response) = read_response(&mut stream, Duration::from_secs(20)).await {
        assert_eq!(response.status, 503, "{response:?}");
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    garage.restart();

    app.assert_stores_within(&[], Duration::from_secs(40)).await;
}

/// What a crash left (an incomplete multipart upload and an assembled
/// staging object, both under this store's prefix and older than
/// `stale_upload_secs`) is removed at start-up; the same leftovers under
/// another prefix are not this store's and stay. Two replicas sweep the same
/// bucket at once without tripping over each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_leftovers_of_a_crash_are_swept_at_start_up_by_every_replica_safely() {
    let garage = garage::garage();
    let storage = new_bucket(garage.clone()).await;
    let Storage::S3 { bucket, .. } = &storage else { unreachable!() };
    let bucket = bucket.clone();
    let s3 = garage.client();
    for prefix in ["mine/", "theirs/"] {
        let upload = s3
            .create_multipart_upload()
            .bucket(&bucket)
            .key(format!("{prefix}staging/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
            .send()
            .await
            .unwrap();
        assert!(upload.upload_id().is_some());
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{prefix}staging/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"))
            .body(b"half an image".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let settings = |s: &mut picshelf::config::Settings| {
        s.storage.s3.prefix = "mine/".into();
        s.upload.max_duration_secs = 1;
        s.storage.stale_upload_secs = 2;
    };
    let replica_a = spawn_app_in(storage, settings, None).await;
    let replica_b = spawn_app_in(Storage::S3 { bucket: bucket.clone(), garage: garage.clone() }, settings, None).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
        let upload_keys: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.key()).collect();
        let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
        let object_keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
        if upload_keys == ["theirs/staging/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]
            && object_keys == ["theirs/staging/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"]
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still there: uploads {upload_keys:?}, objects {object_keys:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A delete of what the other replica just deleted succeeds too, so a
    // leftover may be counted by both.
    let removed = replica_a.metric_sum("picshelf_leftovers_removed_total").await
        + replica_b.metric_sum("picshelf_leftovers_removed_total").await;
    assert!((2.0..=4.0).contains(&removed), "{removed} removals of 2 leftovers");
    for replica in [&replica_a, &replica_b] {
        let metrics = replica.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains(r#"picshelf_sweeps_total{outcome="ok"}"#), "{metrics}");
        assert!(!metrics.contains(r#"picshelf_sweeps_total{outcome="error"}"#), "{metrics}");
        assert_eq!(replica.upload(vec![FilePart::png("a.png", 4, 4)]).await.status(), 201);
    }
}

/// On disk, a crash leaves entries in `tmp/`: the sweeper removes those older
/// than `stale_upload_secs`, at start-up and then periodically, and leaves
/// uploads in progress alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_leftovers_of_a_crash_are_swept_periodically() {
    let app = spawn_app_with(
        Backend::Fs,
        |s| {
            s.storage.sweep_interval_secs = 1;
            s.upload.max_duration_secs = 300;
            s.storage.stale_upload_secs = 600;
        },
        None,
    )
    .await;
    let tmp = app.settings.storage.fs.root.join("tmp");
    let stale = tmp.join("upload-crashed");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("data"), b"half").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&stale).unwrap().set_modified(hour_ago).unwrap();
    let fresh = tmp.join("upload-in-progress");
    std::fs::create_dir(&fresh).unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stale.exists() {
        assert!(std::time::Instant::now() < deadline, "the stale entry was not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fresh.exists(), "a fresh entry is not a leftover");
    // The sweeper counts the entry once it is gone: a moment after this loop may see it gone.
    while app.metric_sum("picshelf_leftovers_removed_total").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the sweep was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.metric_sum("picshelf_leftovers_removed_total").await, 1.0);
    assert!(fresh.exists(), "a fresh entry is not a leftover");
}

/// The store wrote the image but its answer was lost (it died right after, or
/// the reply was dropped): the upload answers 503, and the image it did not
/// hand out must not stay behind under a name nobody knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_write_whose_answer_is_lost_leaves_no_image_behind() {
    use crate::helpers::lossy_relay::app_behind_relay;
    let (app, relay) = app_behind_relay(|settings| settings.storage.s3.operation_timeout_ms = 1000).await;

    relay.lose_answers(true);
    let response = app.upload(vec![FilePart::png("lost.png", 64, 48)]).await;
    assert_eq!(response.status(), 503, "{:?}", response.text().await);
    relay.lose_answers(false);
    // The store did write it (only its answer was lost; before the fix the
    // image stayed for good): it goes, in the background.
    app.assert_stores_within(&[], Duration::from_secs(20)).await;
}
