//! A dead or hung store gives a quick 503, never a hung request.

use std::time::Duration;

use picshelf::config::Backend as StorageBackend;

use crate::helpers::{Backend, FilePart, TestApp, error_of, spawn_app, spawn_app_with};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_that_accepts_but_never_answers_is_503_after_the_read_timeout() {
    let port = silent_endpoint().await;
    let app = spawn_app_with(
        Backend::S3,
        |s| {
            s.storage.s3.endpoint = format!("http://127.0.0.1:{port}");
            s.storage.s3.read_timeout_ms = 500;
            s.storage.s3.max_attempts = 1;
        },
        None,
    )
    .await;
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
    let port = silent_endpoint().await;
    let app = spawn_app_with(
        Backend::S3,
        |s| {
            s.storage.s3.endpoint = format!("http://127.0.0.1:{port}");
            s.storage.s3.read_timeout_ms = 1000;
            s.storage.s3.max_attempts = 2;
        },
        None,
    )
    .await;
    let patient_enough = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let response = patient_enough.get(app.url("/readyz")).send().await.expect("an answer within 10 s");
    assert_eq!(response.status(), 503);
}
