//! Malformed requests and misbehaving clients: a precise 4xx (or a closed
//! connection), and nothing left behind.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::raw_http::{self, RawUpload, read_response};
use crate::helpers::{Backend, Expected, FilePart, error_of, images, spawn_app};

both_backends!(
    svg_text_and_html_are_refused_with_415,
    one_bad_file_among_good_ones_stores_none_of_them,
    a_body_that_is_not_multipart_is_415,
    a_multipart_type_without_boundary_is_400,
    garbage_in_a_multipart_body_is_400,
    a_form_without_a_file_field_is_400,
    an_empty_file_is_400,
    a_truncated_body_gets_400_or_a_closed_connection_and_stores_nothing,
    a_client_that_hangs_up_mid_upload_leaves_nothing_behind,
    a_multipart_body_that_is_not_form_data_is_415,
    invisible_direction_marks_are_removed_from_file_names,
);

const BOUNDARY: &str = "picshelf-test-boundary";

async fn svg_text_and_html_are_refused_with_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>"#;
    for (name, bytes, mime) in [
        ("x.svg", svg.to_vec(), "image/svg+xml"),
        ("x.png", b"<html><script>alert(1)</script></html>".to_vec(), "image/png"),
        ("notes.txt", b"plain text that is long enough to be sniffed properly, really".to_vec(), "text/plain"),
        ("doc.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj trailer".to_vec(), "application/pdf"),
    ] {
        let response = app.upload(vec![FilePart::new(name, bytes, mime)]).await;
        assert_eq!(response.status(), 415, "{name}");
        assert_eq!(error_of(response).await.code, "unsupported_type", "{name}");
    }
    app.assert_stores_nothing().await;
}

async fn one_bad_file_among_good_ones_stores_none_of_them(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .upload(vec![
            FilePart::png("a.png", 4, 4),
            FilePart::png("b.png", 5, 5),
            FilePart::new("c.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(), "image/svg+xml"),
        ])
        .await;

    assert_eq!(response.status(), 415);
    app.assert_stores_nothing().await;
}

async fn a_body_that_is_not_multipart_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/main/upload"))
        .header("Content-Type", "application/json")
        .body(r#"{"file": "iVBORw0KGgo="}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(error_of(response).await.code, "unsupported_content_type");

    let png = app
        .client
        .post(app.url("/main/upload"))
        .header("Content-Type", "image/png")
        .body(images::png(4, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 415);
    let none = app.client.post(app.url("/main/upload")).body("x").send().await.unwrap();
    assert_eq!(none.status(), 415);
    app.assert_stores_nothing().await;
}

async fn a_multipart_type_without_boundary_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/main/upload"))
        .header("Content-Type", "multipart/form-data")
        .body("--x\r\n\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await.code, "malformed_multipart");
}

async fn garbage_in_a_multipart_body_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        "this is not a multipart body at all".to_owned(),
        format!("--{BOUNDARY}\r\nno headers here\r\n\r\n--{BOUNDARY}--\r\n"),
        format!("--{BOUNDARY}\r\nContent-Disposition: attachment\r\n\r\nx\r\n--{BOUNDARY}--\r\n"),
    ] {
        let response = app
            .client
            .post(app.url("/main/upload"))
            .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let code = error_of(response).await.code;
        assert!(
            ["malformed_multipart", "incomplete_upload", "missing_file"].contains(&code.as_str()),
            "{body:?}: {code}"
        );
    }
    app.assert_stores_nothing().await;
}

async fn a_form_without_a_file_field_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let form = reqwest::multipart::Form::new()
        .text("title", "holiday")
        .part("image", reqwest::multipart::Part::bytes(images::png(4, 4)).file_name("a.png"));
    let response = app.client.post(app.url("/main/upload")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let error = error_of(response).await;
    assert_eq!(error.code, "missing_file");
    assert!(error.message.contains("\"file\""));
    app.assert_stores_nothing().await;
}

async fn an_empty_file_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.upload(vec![FilePart::new("empty.png", Vec::new(), "image/png")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await.code, "empty_file");
    app.assert_stores_nothing().await;
}

async fn a_truncated_body_gets_400_or_a_closed_connection_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let upload = RawUpload::new(&images::big_png(200_000, 100, 100, 5));

    let mut stream = upload.begin(app.port, upload.file.len() / 2).await;
    // The client says it is done, though it promised more.
    use tokio::io::AsyncWriteExt;
    stream.shutdown().await.unwrap();

    // A closed connection is a fine answer to a broken request; an answer must be this one.
    if let Some(response) = read_response(&mut stream, Duration::from_secs(20)).await {
        assert_eq!(response.status, 400, "{response:?}");
        assert!(response.body.contains("incomplete_upload"), "{}", response.body);
    }
    app.assert_stores_nothing().await;
}

/// 8 of 20 MiB sent, then the socket is gone: on S3 a multipart upload was
/// under way and must be aborted; on disk the temp file must go.
async fn a_client_that_hangs_up_mid_upload_leaves_nothing_behind(backend: Backend) {
    let app = spawn_app(backend).await;
    let keep = images::png(4, 4);
    let kept = app.upload_ok(FilePart::new("keep.png", keep.clone(), "image/png")).await;
    let upload = RawUpload::new(&images::big_png(20 * 1024 * 1024, 3000, 2000, 9));

    let mut stream = raw_http::connect(app.port).await;
    raw_http::send(&mut stream, upload.head_for_this().as_bytes()).await.unwrap();
    raw_http::send(&mut stream, &upload.start).await.unwrap();
    for chunk in upload.file[..8 * 1024 * 1024].chunks(512 * 1024) {
        raw_http::send(&mut stream, chunk).await.unwrap();
    }
    // Give the server time to start storing (and, on S3, to send a part).
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);

    app.assert_stores(&[Expected::new(&kept.id, &keep, "image/png", Some("keep.png"), 4, 4)]).await;
    assert_eq!(app.upload(vec![FilePart::png("after.png", 4, 4)]).await.status(), 201);
}

/// `multipart/mixed` (or `related`, `alternative`) is not a form upload, even
/// when it carries a well-formed image part.
async fn a_multipart_body_that_is_not_form_data_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let png = images::png(4, 4);
    for subtype in ["mixed", "related", "alternative", "byteranges"] {
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&png);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let response = app
            .client
            .post(app.url("/main/upload"))
            .header("Content-Type", format!("multipart/{subtype}; boundary={BOUNDARY}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "multipart/{subtype}");
        assert_eq!(error_of(response).await.code, "unsupported_content_type", "multipart/{subtype}");
    }
    app.assert_stores_nothing().await;
}

/// Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) could
/// make "photo\u{202E}gpj.exe" read as "photoexe.jpg" on the page; they are
/// removed like control characters.
async fn invisible_direction_marks_are_removed_from_file_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = images::png(4, 4);
    let file =
        app.upload_ok(FilePart::new("photo\u{202E}gpj.\u{2066}exe\u{2069}.png", bytes.clone(), "image/png")).await;
    assert_eq!(file.file_name.as_deref(), Some("photogpj.exe.png"));
    let page = app.get(&format!("/main/view/{}", file.id)).await.text().await.unwrap();
    assert!(!page.contains('\u{202E}') && !page.contains('\u{2066}'), "{page}");
    app.assert_stores(&[Expected::new(&file.id, &bytes, "image/png", Some("photogpj.exe.png"), 4, 4)]).await;
}
