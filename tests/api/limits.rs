//! Size, count and pixel limits: a precise 413, and nothing stored.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::both_backends;
use crate::helpers::raw_http::{self, RawUpload, read_response};
use crate::helpers::{Backend, FilePart, error_of, images, spawn_app, spawn_app_with};

both_backends!(
    a_declared_length_over_the_limit_is_refused_before_the_body_is_read,
    a_chunked_upload_over_the_file_limit_is_stopped_midway_and_leaves_nothing,
    a_file_over_the_limit_with_a_content_length_is_refused_and_leaves_nothing,
    too_many_files_in_one_request_are_refused_and_nothing_is_kept,
    an_image_with_too_many_pixels_is_refused,
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
