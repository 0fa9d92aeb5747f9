//! `POST /main/upload`: what gets stored, under which name and type.

use std::sync::Arc;

use image::ImageFormat as Encoding;
use picshelf::image::ImageId;

use crate::every_backend;
use crate::helpers::{
    Backend, Expected, FilePart, FixedId, UploadResponse, error_of, images, sha256_hex, spawn_app, spawn_app_with,
};

every_backend!(
    a_png_upload_answers_201_with_location_and_the_full_description,
    every_accepted_format_is_stored_under_the_type_its_bytes_declare,
    the_fixed_id_generator_names_the_upload,
    several_files_in_one_request_are_all_stored,
    a_browser_form_post_is_redirected_to_the_page_of_the_images,
    the_json_urls_follow_the_proxy_prefix,
    a_multi_part_sized_upload_is_stored_whole,
    a_top_down_bmp_is_accepted_with_its_real_height,
);

async fn a_png_upload_answers_201_with_location_and_the_full_description(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = images::png(64, 48);

    let response = app.upload(vec![FilePart::new("holiday (1).png", bytes.clone(), "image/png")]).await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: UploadResponse = response.json().await.unwrap();
    let file = &body.files[0];
    assert!(ImageId::parse(&file.id).is_some(), "id {} is a uuid v7", file.id);
    assert_eq!(file.url, app.url(&format!("/main/download/{}", file.id)));
    assert_eq!(location, file.url);
    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(file.content_type, "image/png");
    assert_eq!((file.width, file.height), (64, 48));
    assert_eq!(file.sha256, sha256_hex(&bytes));
    assert_eq!(file.delete_token.len(), 32);
    assert_eq!(file.file_name.as_deref(), Some("holiday (1).png"));
    assert_eq!(file.message, format!("upload success, filename is {}", file.id));

    app.assert_stores(&[Expected::new(&file.id, &bytes, "image/png", Some("holiday (1).png"), 64, 48)]).await;
}

async fn every_accepted_format_is_stored_under_the_type_its_bytes_declare(backend: Backend) {
    let app = spawn_app(backend).await;
    let samples = [
        (images::encode(Encoding::Png, 20, 10), "image/png"),
        (images::encode(Encoding::Jpeg, 21, 11), "image/jpeg"),
        (images::encode(Encoding::Gif, 22, 12), "image/gif"),
        (images::encode(Encoding::WebP, 23, 13), "image/webp"),
        (images::avif(24, 14), "image/avif"),
        (images::encode(Encoding::Bmp, 25, 15), "image/bmp"),
        (images::encode(Encoding::Tiff, 26, 16), "image/tiff"),
    ];
    let mut expected = Vec::new();
    for (n, (bytes, mime)) in samples.into_iter().enumerate() {
        // The client lies about the type and the name: neither matters.
        let file = app.upload_ok(FilePart::new("innocent.svg", bytes.clone(), "text/html")).await;
        assert_eq!(file.content_type, mime);
        assert_eq!((file.width, file.height), (20 + n as u64, 10 + n as u64), "{mime}");

        let download = app.download(&file.id).await;
        assert_eq!(download.status(), 200);
        assert_eq!(download.headers()["content-type"], mime);
        assert_eq!(download.bytes().await.unwrap(), bytes);
        expected.push(Expected::new(&file.id, &bytes, mime, Some("innocent.svg"), file.width, file.height));
    }
    app.assert_stores(&expected).await;
}

async fn the_fixed_id_generator_names_the_upload(backend: Backend) {
    let id = ImageId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
    let app = spawn_app_with(backend, |_| {}, Some(Arc::new(FixedId(id)))).await;

    let file = app.upload_ok(FilePart::png("a.png", 8, 8)).await;

    assert_eq!(file.id, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(file.message, "upload success, filename is 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(app.download("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").await.status(), 200);
}

async fn several_files_in_one_request_are_all_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, c) = (images::png(10, 10), images::encode(Encoding::Jpeg, 30, 20), images::encode(Encoding::Gif, 5, 6));

    let response = app
        .upload(vec![
            FilePart::new("a.png", a.clone(), "image/png"),
            FilePart::new("b.jpg", b.clone(), "image/jpeg"),
            FilePart::new("c.gif", c.clone(), "image/gif"),
        ])
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: UploadResponse = response.json().await.unwrap();
    assert_eq!(body.files.len(), 3);
    assert_eq!(location, body.files[0].url);
    for (file, bytes) in body.files.iter().zip([&a, &b, &c]) {
        assert_eq!(app.download(&file.id).await.bytes().await.unwrap(), *bytes);
    }
    app.assert_stores(&[
        Expected::new(&body.files[0].id, &a, "image/png", Some("a.png"), 10, 10),
        Expected::new(&body.files[1].id, &b, "image/jpeg", Some("b.jpg"), 30, 20),
        Expected::new(&body.files[2].id, &c, "image/gif", Some("c.gif"), 5, 6),
    ])
    .await;
}

async fn a_browser_form_post_is_redirected_to_the_page_of_the_images(backend: Backend) {
    let app = spawn_app(backend).await;
    let form = crate::helpers::form(vec![FilePart::png("a.png", 8, 8), FilePart::png("b.png", 9, 9)]);

    let response = app
        .client
        .post(app.url("/main/upload"))
        .header("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .multipart(form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("view/"), "relative to /main/upload: {location}");
    let page = app.get(&format!("/main/{location}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    let ids: Vec<&str> = location["view/".len()..].split('?').next().unwrap().split(',').collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        // A variant as wide as the page, with the others in srcset, and the original one click away.
        assert!(html.contains(&format!("src=\"download/{id}?width=640\"")), "page shows {id}");
        assert!(html.contains(&format!("download/{id}?width=160 160w, download/{id}?width=320 320w")), "{html}");
        assert!(html.contains(&format!("href=\"download/{id}\"")), "links the original of {id}");
        assert_eq!(app.get(&format!("/main/download/{id}?width=640")).await.status(), 200);
        assert_eq!(app.download(id).await.status(), 200);
    }
    // The no-JavaScript uploader still gets the delete tokens.
    assert!(html.contains("Delete token"));
}

async fn the_json_urls_follow_the_proxy_prefix(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/main/upload"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "img.example.com")
        .header("X-Forwarded-Prefix", "/dev")
        .multipart(crate::helpers::form(vec![FilePart::png("a.png", 4, 4)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: UploadResponse = response.json().await.unwrap();
    assert_eq!(body.files[0].url, format!("https://img.example.com/dev/main/download/{}", body.files[0].id));
}

/// 12 MiB with 5 MiB parts: S3 takes the multipart path (three parts, two in flight).
async fn a_multi_part_sized_upload_is_stored_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = images::big_png(12 * 1024 * 1024 + 12345, 4000, 3000, 7);

    let file = app.upload_ok(FilePart::new("big.png", bytes.clone(), "image/png")).await;

    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(file.sha256, sha256_hex(&bytes));
    let download = app.download(&file.id).await;
    assert_eq!(download.headers()["etag"].to_str().unwrap(), format!("\"{}\"", sha256_hex(&bytes)));
    assert_eq!(download.bytes().await.unwrap(), bytes);
    // Nothing but the final object: the staging copy is gone, no upload is left open.
    app.assert_stores(&[Expected::new(&file.id, &bytes, "image/png", Some("big.png"), 4000, 3000)]).await;
}

#[tokio::test]
async fn the_json_error_shape_is_stable() {
    let app = spawn_app(Backend::Fs).await;
    let response = app.upload(vec![FilePart::new("notes.txt", b"just text".to_vec(), "image/png")]).await;
    assert_eq!(response.status(), 415);
    let error = error_of(response).await;
    assert_eq!(error.code, "unsupported_type");
    assert!(error.message.contains("not an image"), "{}", error.message);
}

/// A BMP whose rows run top to bottom stores a negative height; its size is
/// the absolute value, not 2^32 minus it.
async fn a_top_down_bmp_is_accepted_with_its_real_height(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut bmp = images::encode(Encoding::Bmp, 16, 4);
    // BITMAPINFOHEADER: width at offset 18, height at 22 (i32, little-endian).
    assert_eq!(i32::from_le_bytes(bmp[22..26].try_into().unwrap()), 4);
    bmp[22..26].copy_from_slice(&(-4i32).to_le_bytes());
    assert!(image::load_from_memory(&bmp).is_ok(), "a valid top-down BMP");

    let file = app.upload_ok(FilePart::new("top-down.bmp", bmp.clone(), "image/bmp")).await;

    assert_eq!(file.content_type, "image/bmp");
    assert_eq!((file.width, file.height), (16, 4));
    app.assert_stores(&[Expected::new(&file.id, &bmp, "image/bmp", Some("top-down.bmp"), 16, 4)]).await;
}
