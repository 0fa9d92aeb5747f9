//! The HTML side: the page, the image page, and errors for browsers.

use crate::helpers::{Backend, FilePart, error_of, spawn_app, text};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn the_page_greets_and_has_a_plain_upload_form() {
    let app = spawn_app(Backend::Fs).await;
    let response = app.get("/main/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains("welcome to CI/CD world 🌏"));
    assert!(html.contains(r#"action="upload" method="post" enctype="multipart/form-data""#));
    assert!(html.contains(r#"name="file" type="file""#));
    assert!(html.contains(r#"<base href="/main/">"#));
}

#[tokio::test]
async fn the_page_links_stay_under_the_proxy_prefix() {
    let app = spawn_app(Backend::Fs).await;
    let html = text(app.client.get(app.url("/main/")).header("X-Forwarded-Prefix", "/test")).await;
    assert!(html.contains(r#"<base href="/test/main/">"#), "{html}");
}

#[tokio::test]
async fn the_root_and_main_lead_to_the_page() {
    let app = spawn_app(Backend::Fs).await;
    for path in ["/", "/main"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 308, "{path}");
        assert_eq!(response.headers()["location"], "main/", "{path}");
    }
}

#[tokio::test]
async fn browsers_get_html_errors_and_programs_get_json() {
    let app = spawn_app(Backend::Fs).await;

    let html = app.client.get(app.url("/main/nothing-here")).header("Accept", BROWSER_ACCEPT).send().await.unwrap();
    assert_eq!(html.status(), 404);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let page = html.text().await.unwrap();
    assert!(page.contains("404 Not Found") && page.contains("not_found"), "{page}");

    let json = app.get("/main/nothing-here").await;
    assert_eq!(json.status(), 404);
    assert_eq!(error_of(json).await.code, "not_found");

    let wrong_method = app.client.patch(app.url("/main/upload")).header("Accept", BROWSER_ACCEPT).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert!(wrong_method.text().await.unwrap().contains("405 Method Not Allowed"));

    let forbidden = app
        .client
        .delete(app.url("/main/download/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
        .header("Accept", BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.text().await.unwrap().contains("403 Forbidden"));

    let too_large = app.upload(vec![]).await;
    assert_eq!(too_large.status(), 400);
}

#[tokio::test]
async fn the_image_page_shows_details_and_only_valid_tokens() {
    let app = spawn_app(Backend::Fs).await;
    let file = app.upload_ok(FilePart::png("cat.png", 40, 30)).await;

    let page = app.get(&format!("/main/view/{}?token={}", file.id, file.delete_token)).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("cat.png") && html.contains("40 × 30") && html.contains("image/png"), "{html}");
    assert!(html.contains(&format!("href=\"download/{}?download\"", file.id)));
    assert!(html.contains(&file.delete_token));

    let forged =
        app.get(&format!("/main/view/{}?token=00000000000000000000000000000000", file.id)).await.text().await.unwrap();
    assert!(!forged.contains("00000000000000000000000000000000"));

    assert_eq!(app.get("/main/view/not-an-id").await.status(), 404);
    assert_eq!(app.get("/main/view/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").await.status(), 404);
}

#[tokio::test]
async fn static_assets_are_served_with_their_types() {
    let app = spawn_app(Backend::Fs).await;
    let html = app.get("/main/").await.text().await.unwrap();
    for (name, content_type) in [
        ("app.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let start = html.find(&format!("static/{name}?v=")).unwrap_or_else(|| panic!("page links {name}"));
        let link = &html[start..html[start..].find('"').map(|end| start + end).unwrap()];
        let response = app.get(&format!("/main/{link}")).await;
        assert_eq!(response.status(), 200, "{link}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
    }
    assert_eq!(app.get("/main/static/../Cargo.toml").await.status(), 404);
    assert_eq!(app.get("/main/static/nope.js").await.status(), 404);
}

/// The contract as a page, rendered by the app (no script, no CDN).
#[tokio::test]
async fn the_api_page_shows_every_operation_and_links_the_json() {
    let app = spawn_app(Backend::Fs).await;
    let response = app.get("/main/api").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<a href="openapi.json">"#), "{html}");
    for operation in ["POST /main/upload", "GET /main/download/{id}", "DELETE /main/download/{id}", "GET /readyz"] {
        assert!(html.contains(operation), "the page lacks {operation}");
    }
    assert!(html.contains("unsupported_type") && html.contains("415"));
    assert!(!html.contains("<script>") && !html.contains("https://"), "no inline script, nothing from elsewhere");
}
