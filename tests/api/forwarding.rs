//! Forwarding headers (`Forwarded`, `X-Forwarded-*`) shape the URLs in
//! answers and pages only when they come from a trusted proxy, and only when
//! well-formed.

use crate::helpers::{Backend, FilePart, UploadResponse, form, spawn_app, spawn_app_with, text};

async fn upload_url(app: &crate::helpers::TestApp, headers: &[(&str, &str)]) -> (String, String) {
    let mut request = app.client.post(app.url("/main/upload")).multipart(form(vec![FilePart::png("a.png", 4, 4)]));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: UploadResponse = response.json().await.unwrap();
    (body.files[0].url.clone(), location)
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // The test client connects from 127.0.0.1; this app trusts another network.
    let app =
        spawn_app_with(Backend::Fs, |s| s.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()], None).await;
    let own = app.url("/main/download/");
    for headers in [
        vec![("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Prefix", "/x")],
        vec![("Forwarded", "proto=https;host=evil.example")],
    ] {
        let (url, location) = upload_url(&app, &headers).await;
        assert!(url.starts_with(&own), "{headers:?}: {url}");
        assert_eq!(url, location);
    }
    let page = app.client.get(app.url("/main/")).header("X-Forwarded-Prefix", "/x").send().await.unwrap();
    assert!(page.text().await.unwrap().contains(r#"<base href="/main/">"#));
}

#[tokio::test]
async fn malformed_forwarding_headers_are_ignored_even_from_the_proxy() {
    let app = spawn_app(Backend::Fs).await;
    let own = app.url("/main/download/");
    for headers in [
        vec![("X-Forwarded-Proto", "javascript")],
        vec![("X-Forwarded-Host", "//evil.example")],
        vec![("X-Forwarded-Host", "x\"><script>alert(1)</script>")],
        vec![("X-Forwarded-Host", "user@evil.example")],
        vec![("Forwarded", "proto=javascript;host=\"evil.example:1/x\"")],
        vec![("X-Forwarded-Prefix", "//evil.example")],
        vec![("X-Forwarded-Prefix", "/\"><script>alert(1)</script>")],
    ] {
        let (url, location) = upload_url(&app, &headers).await;
        assert!(url.starts_with(&own), "{headers:?}: {url}");
        assert!(!url.contains("javascript") && !url.contains("evil") && !url.contains('<'), "{url}");
        assert_eq!(url, location);
    }
}

#[tokio::test]
async fn well_formed_headers_from_the_proxy_are_followed() {
    let app = spawn_app(Backend::Fs).await;
    let (url, _) = upload_url(&app, &[("Forwarded", "proto=https;host=\"img.example.com:8443\"")]).await;
    assert!(url.starts_with("https://img.example.com:8443/main/download/"), "{url}");
    let (url, _) = upload_url(
        &app,
        &[("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "img.example.com"), ("X-Forwarded-Prefix", "/dev")],
    )
    .await;
    assert!(url.starts_with("https://img.example.com/dev/main/download/"), "{url}");
}

#[tokio::test]
async fn the_page_base_stays_a_plain_path_whatever_the_headers_say() {
    let app = spawn_app(Backend::Fs).await;
    for prefix in ["//evil.example", "/\"><script>alert(1)</script>", "javascript:alert(1)", "/a/../b"] {
        let request = app
            .client
            .get(app.url("/main/"))
            .header("X-Forwarded-Prefix", prefix)
            .header("Forwarded", "host=evil.example");
        let html = text(request).await;
        assert!(html.contains(r#"<base href="/main/">"#), "{prefix}: {html}");
        assert!(!html.contains("evil") && !html.contains("javascript:"), "{prefix}");
    }
}
