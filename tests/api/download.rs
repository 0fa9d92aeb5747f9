//! `GET` and `HEAD /main/download/{id}`: headers, ranges, conditional requests.

use crate::every_backend;
use crate::helpers::{Backend, FilePart, TestApp, UploadedFile, error_of, images, sha256_hex, spawn_app};

every_backend!(
    a_download_streams_the_exact_bytes_with_every_header,
    head_answers_the_headers_without_a_body,
    a_single_range_gets_206_with_content_range,
    an_unsatisfiable_range_gets_416,
    several_or_malformed_ranges_get_the_whole_image,
    if_range_with_another_tag_gets_the_whole_image,
    if_none_match_gets_304,
    download_query_makes_an_attachment_named_with_the_real_extension,
    ids_that_are_not_well_formed_are_404_before_storage_is_touched,
    an_unknown_id_is_404,
);

async fn stored(app: &TestApp, len: usize) -> (UploadedFile, Vec<u8>) {
    let bytes = images::big_png(len, 100, 80, len as u64);
    let file = app.upload_ok(FilePart::new("photo.png", bytes.clone(), "image/png")).await;
    (file, bytes)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap().to_owned()
}

async fn a_download_streams_the_exact_bytes_with_every_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 300_000).await;

    let response = app.download(&file.id).await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "image/png");
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    assert_eq!(header(&response, "etag"), format!("\"{}\"", sha256_hex(&bytes)));
    assert!(httpdate::parse_http_date(&header(&response, "last-modified")).is_ok());
    assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("sandbox"), "{csp}");
    assert!(header(&response, "content-disposition").starts_with("inline"));
    assert_eq!(response.bytes().await.unwrap(), bytes);
}

async fn head_answers_the_headers_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 50_000).await;

    let response = app.client.head(app.url(&format!("/main/download/{}", file.id))).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    assert_eq!(header(&response, "content-type"), "image/png");
    assert_eq!(header(&response, "etag"), format!("\"{}\"", file.sha256));
    assert!(response.bytes().await.unwrap().is_empty());
}

async fn ranged(app: &TestApp, id: &str, range: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("/main/download/{id}"))).header("Range", range).send().await.unwrap()
}

async fn a_single_range_gets_206_with_content_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 100_000).await;
    let size = bytes.len();

    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, size - 1),
        ("bytes=-500", size - 500, size - 1),
        ("bytes=99990-200000", 99_990, size - 1),
    ] {
        let response = ranged(&app, &file.id, range).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(header(&response, "content-range"), format!("bytes {from}-{to}/{size}"), "{range}");
        assert_eq!(header(&response, "content-length"), (to - from + 1).to_string(), "{range}");
        assert_eq!(header(&response, "etag"), format!("\"{}\"", file.sha256));
        assert_eq!(response.bytes().await.unwrap(), bytes[from..=to], "{range}");
    }
}

async fn an_unsatisfiable_range_gets_416(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 10_000).await;

    let response = ranged(&app, &file.id, "bytes=10000-").await;

    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), format!("bytes */{}", bytes.len()));
    assert_eq!(error_of(response).await.code, "range_not_satisfiable");
}

async fn several_or_malformed_ranges_get_the_whole_image(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 10_000).await;

    for range in ["bytes=0-1,5-6", "bytes=abc", "pages=1-2", "bytes=50-10"] {
        let response = ranged(&app, &file.id, range).await;
        assert_eq!(response.status(), 200, "{range}");
        assert!(response.headers().get("content-range").is_none());
        assert_eq!(response.bytes().await.unwrap(), bytes, "{range}");
    }
}

async fn if_range_with_another_tag_gets_the_whole_image(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 10_000).await;
    let url = app.url(&format!("/main/download/{}", file.id));

    let stale = app.client.get(&url).header("Range", "bytes=0-9").header("If-Range", "\"old\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap(), bytes);

    let current = format!("\"{}\"", file.sha256);
    let fresh = app.client.get(&url).header("Range", "bytes=0-9").header("If-Range", current).send().await.unwrap();
    assert_eq!(fresh.status(), 206);
    assert_eq!(fresh.bytes().await.unwrap(), bytes[..10]);
}

async fn if_none_match_gets_304(backend: Backend) {
    let app = spawn_app(backend).await;
    let (file, bytes) = stored(&app, 10_000).await;
    let url = app.url(&format!("/main/download/{}", file.id));
    let etag = app.download(&file.id).await.headers()["etag"].to_str().unwrap().to_owned();

    let cached = app.client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(header(&cached, "etag"), etag);
    assert_eq!(header(&cached, "cache-control"), "public, max-age=31536000, immutable");
    assert!(cached.bytes().await.unwrap().is_empty());

    let listed = app.client.get(&url).header("If-None-Match", format!("\"other\", W/{etag}")).send().await.unwrap();
    assert_eq!(listed.status(), 304);

    let changed = app.client.get(&url).header("If-None-Match", "\"other\"").send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.bytes().await.unwrap(), bytes);
}

async fn download_query_makes_an_attachment_named_with_the_real_extension(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = images::png(10, 10);
    // A PNG named like a web page must never be saved as one.
    let file = app.upload_ok(FilePart::new("page.html", bytes, "text/html")).await;

    let response = app.get(&format!("/main/download/{}?download", file.id)).await;

    assert_eq!(response.status(), 200);
    let disposition = header(&response, "content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains(&format!("filename=\"{}.png\"", file.id)), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''page.png"), "{disposition}");
    assert!(!disposition.contains(".html"), "{disposition}");
}

async fn ids_that_are_not_well_formed_are_404_before_storage_is_touched(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::png("a.png", 4, 4)).await;
    let calls_before = app.metric_sum("picshelf_storage_operations_total").await;

    let long = "0".repeat(5000);
    let upper = file.id.to_uppercase();
    for path in [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2fconfig%2fdefault.toml",
        upper.as_str(),
        &file.id[..35],
        &format!("{}0", file.id),
        &format!("{{{}}}", file.id),
        "0190a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b",
        long.as_str(),
    ] {
        let response = app.get(&format!("/main/download/{path}")).await;
        assert_eq!(response.status(), 404, "{path}");
        let delete = app.delete(path, Some(&file.delete_token)).await;
        assert_eq!(delete.status(), 404, "DELETE {path}");
    }

    let calls_after = app.metric_sum("picshelf_storage_operations_total").await;
    assert_eq!(calls_before, calls_after, "storage was touched");
    assert_eq!(app.download(&file.id).await.status(), 200);
}

async fn an_unknown_id_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.download("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await.code, "not_found");
    let head = app.client.head(app.url("/main/download/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")).send().await.unwrap();
    assert_eq!(head.status(), 404);
}
