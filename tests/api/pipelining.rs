//! HTTP/1.1 pipelining: requests written back to back on one connection get
//! their answers in order, each framed for its own request (a HEAD answer
//! never has a body, a GET answer always has its whole body).

use std::time::Duration;

use crate::both_backends;
use crate::helpers::raw_http::{self, read_pipelined};
use crate::helpers::{Backend, FilePart, images, sha256_hex, spawn_app};

both_backends!(
    health_then_head_of_an_image_then_health_all_answer,
    get_head_get_of_an_image_keep_every_body_whole,
    a_get_followed_by_a_head_keeps_its_body,
    top_level_routes_answer_head_without_a_body,
);

/// Writes `requests` back to back on one connection and reads their answers.
async fn pipelined(port: u16, requests: &[(&str, &str)]) -> Vec<raw_http::RawResponse> {
    let mut stream = raw_http::connect(port).await;
    let written: String =
        requests.iter().map(|(method, path)| format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")).collect();
    raw_http::send(&mut stream, written.as_bytes()).await.unwrap();
    let methods: Vec<&str> = requests.iter().map(|(method, _)| *method).collect();
    read_pipelined(&mut stream, &methods, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn health_then_head_of_an_image_then_health_all_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::png("a.png", 20, 20)).await;
    let image = format!("/main/download/{}", file.id);

    let answers = pipelined(
        app.port,
        &[("GET", "/healthz"), ("HEAD", &image), ("GET", "/healthz"), ("HEAD", "/healthz"), ("GET", "/readyz")],
    )
    .await;

    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 200, 200, 200, 200]);
    assert!(answers[0].body.contains("\"ok\""), "{:?}", answers[0]);
    assert!(
        answers[1].head.to_ascii_lowercase().contains(&format!("content-length: {}", file.size)),
        "{:?}",
        answers[1]
    );
    assert!(answers[1].head.contains("image/png"), "{:?}", answers[1]);
    assert!(answers[2].body.contains("\"ok\""), "{:?}", answers[2]);
    assert!(answers[4].body.contains("\"ready\""), "{:?}", answers[4]);
}

/// Stores a `len`-byte image; its bytes and its download path.
async fn stored_image(app: &crate::helpers::TestApp, len: usize) -> (Vec<u8>, String) {
    let bytes = images::big_png(len, 200, 100, len as u64);
    let file = app.upload_ok(FilePart::new("a.png", bytes.clone(), "image/png")).await;
    (bytes, format!("/main/download/{}", file.id))
}

async fn get_head_get_of_an_image_keep_every_body_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bytes, image) = stored_image(&app, 300_000).await;
    for _ in 0..5 {
        let answers = pipelined(app.port, &[("GET", &image), ("HEAD", &image), ("GET", &image)]).await;
        assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 200, 200]);
        for answer in [&answers[0], &answers[2]] {
            assert_eq!(answer.bytes.len(), bytes.len());
            assert_eq!(sha256_hex(&answer.bytes), sha256_hex(&bytes));
        }
    }
}

/// The HEAD arrives while the GET before it waits for storage: the GET's
/// answer keeps its body all the same.
async fn a_get_followed_by_a_head_keeps_its_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bytes, image) = stored_image(&app, 200_000).await;
    for _ in 0..5 {
        let answers = pipelined(app.port, &[("GET", &image), ("HEAD", &image)]).await;
        assert_eq!(sha256_hex(&answers[0].bytes), sha256_hex(&bytes));
        assert!(answers[1].bytes.is_empty());
    }
}

/// Every top-level route answers HEAD like GET, without the body: written
/// back to back on one connection, each answer is exactly a head.
async fn top_level_routes_answer_head_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let paths = ["/healthz", "/readyz", "/metrics", "/", "/main", "/main/"];
    let requests: Vec<(&str, &str)> = paths.iter().map(|path| ("HEAD", *path)).chain([("GET", "/healthz")]).collect();
    let answers = pipelined(app.port, &requests).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200, 308, 308, 200, 200]);
    assert!(answers[..paths.len()].iter().all(|a| a.bytes.is_empty()));
    assert!(answers[paths.len()].body.contains("\"ok\""));
}
