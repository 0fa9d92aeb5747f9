//! Size, count and pixel limits: a precise 413, and nothing stored.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::every_backend;
use crate::helpers::raw_http::{self, RawUpload, read_response};
use crate::helpers::{Backend, FilePart, error_of, images, spawn_app, spawn_app_with};

every_backend!(
    a_declared_length_over_the_limit_is_refused_before_the_body_is_read,
    a_chunked_upload_over_the_file_limit_is_stopped_midway_and_leaves_nothing,
    a_file_over_the_limit_with_a_content_length_is_refused_and_leaves_nothing,
    too_many_files_in_one_request_are_refused_and_nothing_is_kept,
    an_image_with_too_many_pixels_is_refused,
    a_stalled_upload_is_abandoned_with_408_and_leaves_nothing,
    uploads_beyond_the_concurrency_cap_get_503_with_retry_after,
    an_oversized_upload_that_expects_100_continue_is_refused_without_inviting_the_body,
);

async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let limit = app.settings.upload.max_request_bytes;

    let mut stream = raw_http::connect(app.port).await;
    let head = RawUpload::head_with_length(limit as usize + 1);
    raw_http::send(&mut stream, head.as_bytes()).await.unwrap();
    // Not one byte of the body is sent: the answer must come anyway.
    let response = read_response(&mut stream, Duration::from_secs(20)).await.expect("an answer before the body");

    assert_eq!(response.status, 413);
    assert!(response.body.contains("\"request_too_large\""), "{}", response.body);
    assert!(response.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", response.head);
    app.assert_stores_nothing().await;
}

/// 20 MiB sent chunked (no Content-Length) against a 7 MiB limit: on S3 a
/// multipart upload has begun (5 MiB parts) when the limit trips, and must be aborted.
async fn a_chunked_upload_over_the_file_limit_is_stopped_midway_and_leaves_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.max_file_bytes = 7 * 1024 * 1024, None).await;
    let upload = RawUpload::new(&images::big_png(20 * 1024 * 1024, 3000, 2000, 11));

    let stream = raw_http::connect(app.port).await;
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(RawUpload::head_chunked().as_bytes()).await?;
        let pieces = std::iter::once(upload.start.as_slice())
            .chain(upload.file.chunks(256 * 1024))
            .chain(std::iter::once(upload.end.as_slice()));
        for piece in pieces {
            writer.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
            writer.write_all(piece).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(writer)
    });

    let response = read_response(&mut reader, Duration::from_secs(60)).await.expect("a 413 answer");
    assert_eq!(response.status, 413);
    assert!(response.body.contains("\"file_too_large\""), "{}", response.body);
    // The server stopped before reading everything.
    drop(sender);
    app.assert_stores_nothing().await;
}

async fn a_file_over_the_limit_with_a_content_length_is_refused_and_leaves_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.max_file_bytes = 6 * 1024 * 1024, None).await;
    let file = images::big_png(6 * 1024 * 1024 + 1, 3000, 2000, 12);

    let response = app.upload(vec![FilePart::new("big.png", file, "image/png")]).await;

    assert_eq!(response.status(), 413);
    let error = error_of(response).await;
    assert_eq!(error.code, "file_too_large");
    assert!(error.message.contains(&(6 * 1024 * 1024).to_string()), "{}", error.message);
    app.assert_stores_nothing().await;
}

async fn too_many_files_in_one_request_are_refused_and_nothing_is_kept(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.max_files = 2, None).await;

    let response = app.upload((0..3).map(|n| FilePart::png(&format!("{n}.png"), 4, 4)).collect()).await;

    assert_eq!(response.status(), 413);
    assert_eq!(error_of(response).await.code, "too_many_files");
    // The two accepted before the third was refused are rolled back.
    app.assert_stores_nothing().await;
    assert_eq!(app.upload((0..2).map(|n| FilePart::png(&format!("{n}.png"), 4, 4)).collect()).await.status(), 201);
}

async fn an_image_with_too_many_pixels_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.max_pixels = 1_000_000, None).await;
    // A tiny file declaring 20000 x 20000: a decompression bomb in the making.
    let bomb = images::big_png(4096, 20_000, 20_000, 3);

    let response = app.upload(vec![FilePart::new("bomb.png", bomb, "image/png")]).await;

    assert_eq!(response.status(), 413);
    let error = error_of(response).await;
    assert_eq!(error.code, "too_many_pixels");
    assert!(error.message.contains("20000x20000"), "{}", error.message);
    app.assert_stores_nothing().await;
    assert_eq!(app.upload(vec![FilePart::png("ok.png", 1000, 1000)]).await.status(), 201);
}

/// A client that sends part of an upload and then nothing: after
/// `upload.idle_timeout_secs` the upload is abandoned with a 408, and what it
/// had stored so far (on S3, an open multipart upload) is cleaned up.
async fn a_stalled_upload_is_abandoned_with_408_and_leaves_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.upload.idle_timeout_secs = 1, None).await;
    let upload = RawUpload::new(&images::big_png(12 * 1024 * 1024, 3000, 2000, 13));

    // Past the first 5 MiB part, then silence.
    let mut stream = upload.begin(app.port, 7 * 1024 * 1024).await;
    let started = std::time::Instant::now();

    let response = read_response(&mut stream, Duration::from_secs(20)).await.expect("an answer to the stalled upload");
    assert_eq!(response.status, 408, "{response:?}");
    assert!(response.body.contains("\"upload_timeout\""), "{}", response.body);
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());
    app.assert_stores_nothing().await;
    assert_eq!(app.metric_sum("picshelf_uploads_in_flight").await, 0.0);
}

/// Beyond `upload.max_concurrent` uploads in progress, the next one is
/// refused with 503 and `Retry-After` before its body is read; a slot that
/// frees up is used again.
async fn uploads_beyond_the_concurrency_cap_get_503_with_retry_after(backend: Backend) {
    let app = spawn_app_with(
        backend,
        |s| {
            s.upload.max_concurrent = 2;
            s.upload.idle_timeout_secs = 2;
        },
        None,
    )
    .await;
    let upload = RawUpload::new(&images::big_png(2 * 1024 * 1024, 800, 600, 14));
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let stream = upload.begin(app.port, 1024 * 1024).await;
        stalled.push(stream);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.metric_sum("picshelf_uploads_in_flight").await < 2.0 {
        assert!(std::time::Instant::now() < deadline, "the two uploads did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let refused = app.upload(vec![FilePart::png("third.png", 4, 4)]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(error_of(refused).await.code, "too_many_uploads");

    for mut stream in stalled {
        let response = read_response(&mut stream, Duration::from_secs(20)).await.expect("the stalled upload ends");
        assert_eq!(response.status, 408, "{response:?}");
    }
    let after = app.upload_ok(FilePart::png("later.png", 4, 4)).await;
    app.assert_stores(&[crate::helpers::Expected::new(
        &after.id,
        &images::png(4, 4),
        "image/png",
        Some("later.png"),
        4,
        4,
    )])
    .await;
}

/// `Expect: 100-continue` with a declared body over the limit: the 413 comes
/// at once, without a `100 Continue` inviting the body first.
async fn an_oversized_upload_that_expects_100_continue_is_refused_without_inviting_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let limit = app.settings.upload.max_request_bytes;

    let mut stream = raw_http::connect(app.port).await;
    let head = RawUpload::head_with_length(limit as usize + 1).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    raw_http::send(&mut stream, head.as_bytes()).await.unwrap();
    let response = read_response(&mut stream, Duration::from_secs(10)).await.expect("an answer before the body");

    assert_eq!(response.status, 413, "no 100 Continue first: {response:?}");
    assert!(response.body.contains("\"request_too_large\""), "{}", response.body);

    // Within the limit, the body is invited as usual.
    let file = images::png(4, 4);
    let upload = RawUpload::new(&file);
    let mut stream = raw_http::connect(app.port).await;
    let head = upload.head_for_this().replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    raw_http::send(&mut stream, head.as_bytes()).await.unwrap();
    let interim = read_response(&mut stream, Duration::from_secs(10)).await.expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");
    let body = [upload.start.as_slice(), upload.file.as_slice(), upload.end.as_slice()].concat();
    raw_http::send(&mut stream, &body).await.unwrap();
    let created = read_response(&mut stream, Duration::from_secs(10)).await.expect("the upload's answer");
    assert_eq!(created.status, 201, "{created:?}");
}
