//! Resized variants (`?width=W[&format=F]`): made once from the original,
//! upright and without metadata, stored beside it, served with the same
//! headers, deleted with it; bounded work; precise errors.

use std::time::Duration;

use futures_util::future::join_all;
use image::GenericImageView;

use crate::both_backends;
use crate::helpers::images::{self, ImageFormat};
use crate::helpers::{Backend, Expected, FilePart, TestApp, error_of, sha256_hex, spawn_app, spawn_app_with};

both_backends!(
    every_width_is_made_upright_from_every_format,
    a_variant_is_made_once_then_served_from_the_store,
    variants_are_served_like_originals_and_deleted_with_them,
    bad_requests_and_undecodable_images_get_precise_errors,
);

const WIDTHS: [u32; 4] = [160, 320, 640, 1280];

struct Got {
    status: u16,
    content_type: String,
    bytes: Vec<u8>,
}

async fn variant(app: &TestApp, id: &str, query: &str) -> Got {
    let response = app.get(&format!("/main/download/{id}?{query}")).await;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Got { status, content_type, bytes: response.bytes().await.expect("body").to_vec() }
}

fn decoded(got: &Got) -> image::DynamicImage {
    image::load_from_memory(&got.bytes).expect("the variant decodes")
}

/// The expected size of a variant `width` wide of a picture `w` × `h` as shown.
fn fitted(w: u32, h: u32, width: u32) -> (u32, u32) {
    if width >= w { (w, h) } else { (width, (f64::from(h) * f64::from(width) / f64::from(w)).round() as u32) }
}

async fn every_width_is_made_upright_from_every_format(backend: Backend) {
    let app = spawn_app(backend).await;
    // Stored 1600 × 1200 with Orientation 6: shown 1200 × 1600, the red quarter top right.
    let jpeg = app.upload_ok(FilePart::new("phone.jpg", images::jpeg_oriented(1600, 1200, 6), "image/jpeg")).await;
    let png = app.upload_ok(FilePart::new("logo.png", images::png_with_alpha(800, 600), "image/png")).await;
    let gif = app.upload_ok(FilePart::new("a.gif", images::encode(ImageFormat::Gif, 640, 480), "image/gif")).await;
    let webp = app.upload_ok(FilePart::new("b.webp", images::encode(ImageFormat::WebP, 700, 500), "image/webp")).await;

    for width in WIDTHS {
        let got = variant(&app, &jpeg.id, &format!("width={width}")).await;
        assert_eq!((got.status, got.content_type.as_str()), (200, "image/webp"), "jpeg at {width}");
        let picture = decoded(&got);
        let (w, h) = fitted(1200, 1600, width);
        assert_eq!(picture.dimensions(), (w, h), "jpeg at {width}: upright and in proportion");
        let top_right = picture.get_pixel(w * 7 / 8, h / 8).0;
        let top_left = picture.get_pixel(w / 8, h / 8).0;
        assert!(top_right[0] > 150 && top_right[2] < 100, "jpeg at {width}: red is top right: {top_right:?}");
        assert!(top_left[2] > 150, "jpeg at {width}: blue is top left: {top_left:?}");
        assert!(
            exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&got.bytes)).is_err(),
            "a variant carries no EXIF"
        );

        let got = variant(&app, &png.id, &format!("width={width}")).await;
        assert_eq!(got.status, 200);
        let picture = decoded(&got);
        assert_eq!(picture.dimensions(), fitted(800, 600, width), "png at {width}");
        let (w, h) = picture.dimensions();
        assert_eq!(picture.get_pixel(w / 4, h / 2).0[3], 255, "png at {width}: the left stays opaque");
        assert_eq!(picture.get_pixel(w * 3 / 4, h / 2).0[3], 0, "png at {width}: the right stays transparent");

        for (file, (w, h)) in [(&gif, (640, 480)), (&webp, (700, 500))] {
            let got = variant(&app, &file.id, &format!("width={width}")).await;
            assert_eq!(got.status, 200, "{} at {width}", file.content_type);
            assert_eq!(decoded(&got).dimensions(), fitted(w, h, width), "{} at {width}", file.content_type);
        }
    }

    // An animated GIF gives its first frame (red), not the second (blue).
    let animated = app.upload_ok(FilePart::new("anim.gif", images::animated_gif(400, 300), "image/gif")).await;
    let got = variant(&app, &animated.id, "width=160").await;
    assert_eq!(got.status, 200);
    let picture = decoded(&got);
    assert_eq!(picture.dimensions(), (160, 120));
    let pixel = picture.get_pixel(80, 60).0;
    assert!(pixel[0] > 180 && pixel[2] < 60, "the first frame: {pixel:?}");

    // Other formats on request, also from a picture with transparency.
    for (format, content_type) in
        [("jpeg", "image/jpeg"), ("jpg", "image/jpeg"), ("PNG", "image/png"), ("webp", "image/webp")]
    {
        let got = variant(&app, &png.id, &format!("width=320&format={format}")).await;
        assert_eq!((got.status, got.content_type.as_str()), (200, content_type), "{format}");
        assert_eq!(decoded(&got).dimensions(), (320, 240), "{format}");
    }
    let flat = decoded(&variant(&app, &png.id, "width=320&format=jpeg").await);
    assert!(flat.get_pixel(300, 120).0[..3].iter().all(|c| *c >= 250), "transparency becomes white in a JPEG");
}

async fn a_variant_is_made_once_then_served_from_the_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::new("big.jpg", images::jpeg_oriented(2000, 1500, 1), "image/jpeg")).await;
    let generated = || app.metric_sum("picshelf_variants_generated_total");
    let from_store = || app.metric_sum("picshelf_variants_served_from_store_total");

    let first = variant(&app, &file.id, "width=320").await;
    assert_eq!(first.status, 200);
    assert_eq!((generated().await, from_store().await), (1.0, 0.0));
    let second = variant(&app, &file.id, "width=320").await;
    assert_eq!(second.bytes, first.bytes);
    assert_eq!((generated().await, from_store().await), (1.0, 1.0), "the second came from the store");

    // Twenty at once for a variant nobody asked for yet: rendered once.
    let answers = join_all((0..20).map(|_| variant(&app, &file.id, "width=640"))).await;
    assert!(answers.iter().all(|got| got.status == 200 && got.bytes == answers[0].bytes));
    assert_eq!(generated().await, 2.0, "twenty concurrent first requests rendered it once");
    let histogram = app.metric_sum("picshelf_variant_generation_duration_seconds_count").await;
    assert_eq!(histogram, 2.0);
    assert!(app.get("/metrics").await.text().await.unwrap().contains("picshelf_variant_queue_depth 0"));
}

async fn variants_are_served_like_originals_and_deleted_with_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let original = images::jpeg_oriented(1200, 900, 1);
    let file = app.upload_ok(FilePart::new("x.jpg", original.clone(), "image/jpeg")).await;
    let url = format!("/main/download/{}?width=160", file.id);

    let response = app.get(&url).await;
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    assert_eq!(headers["etag"], etag.as_str());
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert!(headers.contains_key("last-modified"));
    assert!(headers["content-disposition"].to_str().unwrap().contains(".webp"));

    let head = app.client.head(app.url(&url)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert_eq!(head.headers()["content-length"], bytes.len().to_string().as_str());
    let ranged = app.client.get(app.url(&url)).header("range", "bytes=0-9").send().await.unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], format!("bytes 0-9/{}", bytes.len()).as_str());
    assert_eq!(ranged.bytes().await.unwrap(), bytes[..10]);
    let cached = app.client.get(app.url(&url)).header("if-none-match", etag.as_str()).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    let png = variant(&app, &file.id, "width=320&format=png").await;
    app.assert_stores(&[Expected::new(&file.id, &original, "image/jpeg", Some("x.jpg"), 1200, 900)
        .with_variant("w160.webp", &bytes, "image/webp")
        .with_variant("w320.png", &png.bytes, "image/png")])
        .await;

    let deleted = app.delete(&file.id, Some(&file.delete_token)).await;
    assert_eq!(deleted.status(), 204);
    app.assert_stores_nothing().await;
    assert_eq!(app.get(&url).await.status(), 404, "the variant went with the image");
}

async fn bad_requests_and_undecodable_images_get_precise_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::png("a.png", 400, 300)).await;
    for query in [
        "width=100",
        "width=abc",
        "width=",
        "width=-160",
        "width=160.0",
        "width=99999999999",
        "format=png",
        "width=160&format=gif",
        "width=160&format=bmp",
    ] {
        let response = app.get(&format!("/main/download/{}?{query}", file.id)).await;
        assert_eq!(response.status(), 400, "{query}");
        let error = error_of(response).await;
        assert_eq!(error.code, "invalid_variant", "{query}");
    }
    let error = error_of(app.get(&format!("/main/download/{}?width=100", file.id)).await).await;
    assert!(error.message.contains("160, 320, 640, 1280"), "{}", error.message);
    let missing = "01890a5d-ac96-774b-bcce-b302099a8057";
    assert_eq!(app.get(&format!("/main/download/{missing}?width=160")).await.status(), 404);

    let avif = app.upload_ok(FilePart::new("a.avif", images::avif(64, 64), "image/avif")).await;
    let response = app.get(&format!("/main/download/{}?width=160", avif.id)).await;
    assert_eq!(response.status(), 415);
    assert_eq!(error_of(response).await.code, "variant_unsupported");

    // A valid header, then data that is not an image: 422, and the server carries on.
    let broken = app.upload_ok(FilePart::new("noise.png", images::big_png(200_000, 400, 300, 3), "image/png")).await;
    let response = app.get(&format!("/main/download/{}?width=160", broken.id)).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_of(response).await.code, "undecodable_image");
    assert_eq!(app.get(&format!("/main/download/{}", broken.id)).await.status(), 200, "the original stays");
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(variant(&app, &file.id, "width=160").await.status, 200);
}

/// Decoder limits: a picture over `variants.max_decoded_pixels` gets a 413
/// for variants (the original stays downloadable), unless JPEG's scaled
/// decoding brings it under: a 1600 × 1200 JPEG decodes at 1/8 for 160.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoder_limits_refuse_large_pictures_but_scaled_jpeg_fits() {
    let app = spawn_app_with(Backend::Fs, |s| s.variants.max_decoded_pixels = 40_000, None).await;
    let png = app.upload_ok(FilePart::png("big.png", 400, 300)).await;
    let response = app.get(&format!("/main/download/{}?width=160", png.id)).await;
    assert_eq!(response.status(), 413);
    let error = error_of(response).await;
    assert_eq!(error.code, "too_large_for_variants");
    assert!(error.message.contains("40000"), "{}", error.message);
    assert_eq!(app.download(&png.id).await.status(), 200);

    let jpeg = app.upload_ok(FilePart::new("big.jpg", images::jpeg_oriented(1600, 1200, 1), "image/jpeg")).await;
    let got = variant(&app, &jpeg.id, "width=160").await;
    assert_eq!(got.status, 200, "decoded at 1/8: 200 × 150 pixels");
    assert_eq!(decoded(&got).dimensions(), (160, 120));
    assert_eq!(variant(&app, &jpeg.id, "width=1280").await.status, 413, "at full size it is 1.9 megapixels");
}

/// The pool: one slot and no queue, so a second rendering at once is a 503
/// with Retry-After; a rendering slower than `variants.timeout_ms` is a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_limit_and_the_timeout_give_503() {
    let app = spawn_app_with(
        Backend::Fs,
        |s| {
            s.variants.max_concurrent = 1;
            s.variants.max_queue = 0;
        },
        None,
    )
    .await;
    let mut ids = Vec::new();
    for seed in 0..4 {
        let jpeg = images::jpeg_oriented(3000 + seed * 16, 2000, 1);
        ids.push(app.upload_ok(FilePart::new("big.jpg", jpeg, "image/jpeg")).await.id);
    }
    let urls: Vec<String> = ids.iter().map(|id| format!("/main/download/{id}?width=1280&format=png")).collect();
    let responses = join_all(urls.iter().map(|url| app.get(url))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.contains(&200), "{statuses:?}");
    let busy: Vec<_> = responses.into_iter().filter(|r| r.status() == 503).collect();
    assert!(!busy.is_empty(), "four renderings at once with one slot and no queue: {statuses:?}");
    for response in busy {
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(error_of(response).await.code, "too_many_variants");
    }

    let slow = spawn_app_with(Backend::Fs, |s| s.variants.timeout_ms = 1, None).await;
    let file = slow.upload_ok(FilePart::new("big.jpg", images::jpeg_oriented(3000, 2000, 1), "image/jpeg")).await;
    let response = slow.get(&format!("/main/download/{}?width=1280&format=png", file.id)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(error_of(response).await.code, "variant_timeout");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(slow.get("/healthz").await.status(), 200);
}
