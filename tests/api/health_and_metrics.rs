//! Liveness, readiness, Prometheus metrics and request ids.

use crate::every_backend;
use crate::helpers::{Backend, FilePart, spawn_app};

every_backend!(health_and_readiness_are_200_when_storage_works, metrics_count_requests_bytes_and_storage_calls);

async fn health_and_readiness_are_200_when_storage_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

async fn metrics_count_requests_bytes_and_storage_calls(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::png("a.png", 16, 16)).await;
    app.download(&file.id).await.bytes().await.unwrap();
    app.download("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    let has = |needle: &str| assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    has(r#"picshelf_http_requests_total{method="POST",route="/main/upload",status="201"} 1"#);
    has(r#"picshelf_http_requests_total{method="GET",route="/main/download/{id}",status="200"} 1"#);
    has(r#"picshelf_http_requests_total{method="GET",route="/main/download/{id}",status="404"} 1"#);
    has(r#"picshelf_http_request_duration_seconds_bucket{"#);
    has(&format!("picshelf_upload_bytes_total {}", file.size));
    has(&format!("picshelf_download_bytes_total {}", file.size));
    has(r#"picshelf_storage_operations_total{operation="put",outcome="ok"} 1"#);
    has(r#"picshelf_storage_operations_total{operation="get",outcome="not_found"} 1"#);
    has("picshelf_uploads_in_flight 0");
    has("picshelf_images_stored_total 1");
}

#[tokio::test]
async fn a_request_id_is_kept_when_sane_and_made_otherwise() {
    let app = spawn_app(Backend::Fs).await;
    let kept = app.client.get(app.url("/healthz")).header("X-Request-Id", "abc-123.x").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123.x");

    let made = app.get("/healthz").await;
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);

    let replaced =
        app.client.get(app.url("/healthz")).header("X-Request-Id", "has spaces\"and<tags>").send().await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "has spaces\"and<tags>");

    // Errors carry it too.
    let missing = app.client.get(app.url("/nope")).header("X-Request-Id", "trace-me").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-request-id"], "trace-me");
}

/// The contract the app serves is the one committed for review.
#[tokio::test]
async fn the_served_contract_is_the_committed_one() {
    let app = spawn_app(Backend::Fs).await;
    let response = app.get("/main/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert!(served == committed, "GET /main/openapi.json differs from docs/openapi.json");
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let head = app.client.head(app.url("/main/openapi.json")).send().await.unwrap();
    assert_eq!(head.status(), 200);
}
