//! picshelf through its proxy, as a user and an operator see it.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use picshelf_e2e::{Client, Response, Target, client, form, png, sha256_hex};
use serde_json::Value;

/// Uploads one file to the environment at `prefix`, waiting out the proxy's
/// rate limit (which the burst test provokes on purpose).
async fn upload(target: &Target, prefix: &str, name: &str, bytes: Vec<u8>) -> Value {
    let client = client();
    for _ in 0..20 {
        let response =
            client.post(target.url(prefix, "/main/upload")).multipart(form(name, bytes.clone())).send().await.unwrap();
        match response.status().as_u16() {
            201 => return response.json::<Value>().await.unwrap()["files"][0].clone(),
            429 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!("upload to {prefix}/main/upload: {other} {}", response.text().await.unwrap_or_default()),
        }
    }
    panic!("upload to {prefix}/main/upload kept being rate limited");
}

#[tokio::test]
async fn an_image_goes_up_comes_back_whole_in_ranges_and_from_cache_and_can_be_deleted() {
    let target = Target::from_env();
    let client = client();
    let bytes = png(300, 200, 1);

    let file = upload(&target, "", "e2e.png", bytes.clone()).await;
    let id = file["id"].as_str().unwrap();
    let url = file["url"].as_str().unwrap();
    // The absolute URL the app builds behind the proxy is the proxy's.
    assert_eq!(url, target.url("", &format!("/main/download/{id}")));
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["sha256"], sha256_hex(&bytes));

    let download = client.get(url).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.headers()["content-length"], bytes.len().to_string().as_str());
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert!(download.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    let etag = download.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(download.bytes().await.unwrap(), bytes);

    let range = client.get(url).header("Range", "bytes=100-199").send().await.unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-range"], format!("bytes 100-199/{}", bytes.len()).as_str());
    assert_eq!(range.bytes().await.unwrap(), bytes[100..200]);

    let cached = client.get(url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    let token = file["delete_token"].as_str().unwrap();
    let wrong = client.delete(url).header("X-Delete-Token", "0".repeat(32)).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let deleted = client.delete(url).header("X-Delete-Token", token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    gone_within(&client, url, target.cache_valid).await;
    assert_eq!(client.head(url).send().await.unwrap().status(), 404);
}

/// Polls `url` until it answers 404, and fails when that takes longer than
/// the proxy's download cache may serve a deleted image: its validity, one
/// second more (nginx counts whole seconds), and half a second for the polls.
async fn gone_within(client: &Client, url: &str, validity: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let response = client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        if status == 404 {
            return start.elapsed();
        }
        // 200 from the cache; a 503 (the store or a rendering slot busy) is not a serving.
        assert!(status == 200 || status == 503, "{url} after its DELETE: {status}");
        assert!(
            start.elapsed() <= validity + Duration::from_millis(1500),
            "{url} still served ({}) {:?} after its DELETE; the cache validity is {validity:?}",
            cache_status(&response),
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes an uploaded image (`file`: its upload answer) with its token: 204.
async fn delete_image(client: &Client, file: &Value) {
    let url = file["url"].as_str().unwrap();
    let token = file["delete_token"].as_str().unwrap();
    assert_eq!(client.delete(url).header("X-Delete-Token", token).send().await.unwrap().status(), 204, "{url}");
}

fn cache_status(response: &Response) -> String {
    response.headers().get("x-cache-status").map_or("(none)", |v| v.to_str().unwrap()).to_owned()
}

#[tokio::test]
async fn the_proxy_caches_downloads_per_environment_with_ranges_heads_and_304s() {
    let target = Target::from_env();
    let client = client();
    let bytes = png(320, 240, 7);
    let file = upload(&target, "", "cached.png", bytes.clone()).await;
    let id = file["id"].as_str().unwrap();
    let url = file["url"].as_str().unwrap();

    let first = client.get(url).send().await.unwrap();
    assert_eq!((first.status().as_u16(), cache_status(&first)), (200, "MISS".into()));
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.bytes().await.unwrap(), bytes);
    let second = client.get(url).send().await.unwrap();
    assert_eq!((second.status().as_u16(), cache_status(&second)), (200, "HIT".into()));
    assert_eq!(second.headers()["etag"], etag.as_str());
    assert_eq!(second.headers()["content-type"], "image/png");
    assert!(second.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(second.bytes().await.unwrap(), bytes);

    // Ranges, HEAD and If-None-Match, answered from the cached file.
    let len = bytes.len();
    for (range, start, end) in [("bytes=10-99", 10, 99), ("bytes=-50", len - 50, len - 1), ("bytes=100-", 100, len - 1)]
    {
        let part = client.get(url).header("Range", range).send().await.unwrap();
        assert_eq!((part.status().as_u16(), cache_status(&part)), (206, "HIT".into()), "{range}");
        assert_eq!(part.headers()["content-range"], format!("bytes {start}-{end}/{len}").as_str());
        assert_eq!(part.bytes().await.unwrap(), bytes[start..=end], "{range}");
    }
    let outside = client.get(url).header("Range", format!("bytes={len}-")).send().await.unwrap();
    assert_eq!(outside.status(), 416);
    let head = client.head(url).send().await.unwrap();
    assert_eq!((head.status().as_u16(), cache_status(&head)), (200, "HIT".into()));
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    let not_modified = client.get(url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!((not_modified.status().as_u16(), cache_status(&not_modified)), (304, "HIT".into()));

    // A variant is cached under its own URL.
    let variant = format!("{url}?width=160");
    let made = client.get(&variant).send().await.unwrap();
    assert_eq!((made.status().as_u16(), cache_status(&made)), (200, "MISS".into()));
    let made = made.bytes().await.unwrap();
    let again = client.get(&variant).send().await.unwrap();
    assert_eq!((again.status().as_u16(), cache_status(&again)), (200, "HIT".into()));
    assert_eq!(again.bytes().await.unwrap(), made);
    assert_ne!(made, bytes);

    // Cached in one environment, still served by no other.
    for (prefix, _) in target.buckets.iter().filter(|(prefix, _)| !prefix.is_empty()) {
        let other = client.get(target.url(prefix, &format!("/main/download/{id}"))).send().await.unwrap();
        assert_eq!(other.status(), 404, "{id} via {prefix}");
    }

    // A query the app does not read is not cached (nor written to the cache's disk).
    let busted = client.get(format!("{url}?nocache=1")).send().await.unwrap();
    assert_eq!((busted.status().as_u16(), cache_status(&busted)), (200, "BYPASS".into()));

    // Past its validity, nginx asks the app again (a 304 from the app) and serves it on.
    tokio::time::sleep(target.cache_valid + Duration::from_millis(1100)).await;
    let later = client.get(url).send().await.unwrap();
    assert_eq!((later.status().as_u16(), cache_status(&later)), (200, "REVALIDATED".into()));
    assert_eq!(later.bytes().await.unwrap(), bytes);

    // Deleted: neither the image nor its variant, both freshly cached, outlives
    // the validity, both timed from the DELETE's answer.
    let fresh = client.get(&variant).send().await.unwrap();
    assert!(["HIT", "REVALIDATED"].contains(&cache_status(&fresh).as_str()), "{}", cache_status(&fresh));
    delete_image(&client, &file).await;
    let (image_gone, variant_gone) = futures_util::future::join(
        gone_within(&client, url, target.cache_valid),
        gone_within(&client, &variant, target.cache_valid),
    )
    .await;
    eprintln!(
        "deleted image served {image_gone:?} more, its variant {variant_gone:?} (validity {:?})",
        target.cache_valid
    );
}

#[tokio::test]
async fn a_cold_range_request_gets_its_bytes_and_fills_the_cache() {
    let target = Target::from_env();
    let client = client();
    let bytes = png(200, 150, 9);
    let file = upload(&target, "", "cold.png", bytes.clone()).await;
    let url = file["url"].as_str().unwrap();
    let part = client.get(url).header("Range", "bytes=20-59").send().await.unwrap();
    assert_eq!(cache_status(&part), "MISS");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 20-59/{}", bytes.len()).as_str());
    assert_eq!(part.bytes().await.unwrap(), bytes[20..60]);
    let whole = client.get(url).send().await.unwrap();
    assert_eq!((whole.status().as_u16(), cache_status(&whole)), (200, "HIT".into()));
    assert_eq!(whole.bytes().await.unwrap(), bytes);
    delete_image(&client, &file).await;
}

#[tokio::test]
async fn each_environment_writes_to_its_own_bucket() {
    let target = Target::from_env();
    for (prefix, bucket) in &target.buckets {
        let bytes = png(40, 30, prefix.len() as u8);
        let file = upload(&target, prefix, "where.png", bytes.clone()).await;
        let id = file["id"].as_str().unwrap();
        assert!(file["url"].as_str().unwrap().starts_with(&target.url(prefix, "/main/download/")), "{file}");
        for (_, other) in &target.buckets {
            assert_eq!(target.bucket_has(other, id).await, other == bucket, "{prefix} upload {id} in bucket {other}?");
        }
        assert_eq!(target.bucket_bytes(bucket, id).await, bytes);
        // And it is served back only by its own environment.
        for (other_prefix, _) in &target.buckets {
            let status =
                client().get(target.url(other_prefix, &format!("/main/download/{id}"))).send().await.unwrap().status();
            assert_eq!(status.as_u16(), if other_prefix == prefix { 200 } else { 404 }, "{id} via {other_prefix:?}");
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_from_the_proxy_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = Target::from_env();
    let address = target.base_url.trim_start_matches("http://").trim_end_matches(&target.base_path).to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST {}/main/upload HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.base_path,
        target.max_request_bytes + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\"") || answer.contains("\"request_too_large\""), "{answer}");
}

#[tokio::test]
async fn a_file_over_the_app_limit_streams_through_the_proxy_and_is_refused() {
    let target = Target::from_env();
    // 26 MiB, over the app's 25 MiB file limit but under the proxy's body limit:
    // the proxy streams it (no request buffering) and the app refuses it.
    let mut big = png(16, 16, 9);
    big.resize(26 * 1024 * 1024, 7);
    let response =
        client().post(target.url(target.prefix("dev"), "/main/upload")).multipart(form("big.png", big)).send().await;
    match response {
        Ok(response) => {
            assert_eq!(response.status(), 413);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "file_too_large");
        }
        // The app may close the connection before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
}

#[tokio::test]
async fn what_is_not_an_image_is_415() {
    let target = Target::from_env();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    let response = client()
        .post(target.url(target.prefix("dev"), "/main/upload"))
        .multipart(form("x.svg", svg))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_type");
}

#[tokio::test]
async fn a_burst_of_uploads_meets_the_rate_limit_with_429() {
    let target = Target::from_env();
    let client = client();
    let bytes = png(8, 8, 3);
    let attempts = (0..60).map(|_| {
        let request =
            client.post(target.url(target.prefix("test"), "/main/upload")).multipart(form("burst.png", bytes.clone()));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or_default())
        }
    });
    let results = join_all(attempts).await;

    let limited: Vec<&Value> = results.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
    let created: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert!(!limited.is_empty(), "60 uploads at once were not rate limited");
    assert!(!created.is_empty(), "the burst allowance let nothing through");
    assert_eq!(limited.len() + created.len(), results.len(), "only 201 and 429: {results:?}");
    assert!(limited.iter().all(|b| b["error"]["code"] == "rate_limited"), "{limited:?}");

    // Leave the test bucket as it was.
    for body in created {
        delete_image(&client, &body["files"][0]).await;
    }
}

#[tokio::test]
async fn the_pages_work_under_every_prefix_and_internals_stay_inside() {
    let target = Target::from_env();
    let client = client();
    for (prefix, _) in &target.buckets {
        let page = client.get(target.url(prefix, "/main/")).send().await.unwrap();
        assert_eq!(page.status(), 200, "{prefix}");
        let html = page.text().await.unwrap();
        assert!(html.contains("welcome to CI/CD world 🌏"));
        assert!(html.contains(&format!("<base href=\"{}{prefix}/main/\">", target.base_path)), "{prefix}");
        let metrics = client.get(target.url(prefix, "/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 404, "metrics are not public via {prefix:?}");
    }
    let traced = client
        .get(target.url(target.prefix("dev"), "/main/"))
        .header("X-Request-Id", "e2e-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "e2e-trace-1");
    let ready = client.get(target.url("", "/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// A client's own forwarding headers never reach the app through the proxy:
/// the URLs in answers and the pages' base stay the proxy's own.
#[tokio::test]
async fn forwarding_headers_from_clients_do_not_shape_urls() {
    let target = Target::from_env();
    let client = client();
    for (prefix, _) in target.buckets.iter().take(2) {
        for _ in 0..20 {
            let response = client
                .post(target.url(prefix, "/main/upload"))
                .header("Forwarded", "proto=javascript;host=\"evil.example:1/x\"")
                .header("X-Forwarded-Proto", "javascript")
                .header("X-Forwarded-Prefix", "//evil.example")
                .multipart(form("fwd.png", png(8, 8, 3)))
                .send()
                .await
                .unwrap();
            if response.status() == 429 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert_eq!(response.status(), 201, "{prefix}");
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            let file = response.json::<Value>().await.unwrap()["files"][0].clone();
            let expected = target.url(prefix, &format!("/main/download/{}", file["id"].as_str().unwrap()));
            assert_eq!(file["url"], expected.as_str(), "{prefix}");
            assert_eq!(location, expected, "{prefix}");
            break;
        }
        let page = client
            .get(target.url(prefix, "/main/"))
            .header("Forwarded", "host=evil.example")
            .header("X-Forwarded-Prefix", "/evil")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("<base href=\"{}{prefix}/main/\">", target.base_path)), "{prefix}: {page}");
        assert!(!page.contains("evil"), "{prefix}");
    }
}

/// Every environment publishes the same contract, and the routes the other
/// tests do not reach answer by it too (the client checks each answer).
#[tokio::test]
async fn every_environment_serves_the_contract_and_keeps_it() {
    let target = Target::from_env();
    let client = client();
    let mut documents = Vec::new();
    for (prefix, _) in &target.buckets {
        let served = client.get(target.url(prefix, "/main/openapi.json")).send().await.unwrap();
        assert_eq!(served.status(), 200, "{prefix}");
        documents.push(served.json::<Value>().await.unwrap());
    }
    assert!(documents.iter().all(|d| d == &documents[0]), "the environments serve different contracts");
    assert_eq!(documents[0]["openapi"], "3.1.0");

    let dev = target.prefix("dev");
    let file = upload(&target, dev, "contract.png", png(64, 48, 7)).await;
    let id = file["id"].as_str().unwrap();
    let download = format!("/main/download/{id}");
    for (method, path, status) in [
        ("HEAD", download.clone(), 200),
        ("GET", format!("{download}?width=160"), 200),
        ("GET", format!("{download}?width=33"), 400),
        ("GET", format!("/main/view/{id}"), 200),
        ("GET", "/main/download/not-an-id".to_owned(), 404),
        ("PUT", download.clone(), 405),
        ("GET", "/main/nothing-here".to_owned(), 404),
        ("GET", "/main/static/app.css".to_owned(), 200),
        ("GET", "/main/api".to_owned(), 200),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = client.request(method.clone(), &target.url(dev, &path)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{method} {path}");
    }
    let upload_without_file = client
        .post(target.url(dev, "/main/upload"))
        .multipart(reqwest::multipart::Form::new().text("note", "no file"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload_without_file.status(), 400);
}
