//! `DELETE /main/download/{id}` with the upload's delete token.

use crate::every_backend;
use crate::helpers::{Backend, Expected, FilePart, error_of, images, spawn_app};

every_backend!(
    the_token_deletes_the_image_then_it_is_gone,
    a_wrong_or_missing_token_is_403_and_deletes_nothing,
    the_token_also_works_as_a_query_parameter,
);

async fn the_token_deletes_the_image_then_it_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    let keep_bytes = images::png(5, 5);
    let keep = app.upload_ok(FilePart::new("keep.png", keep_bytes.clone(), "image/png")).await;
    let doomed = app.upload_ok(FilePart::png("doomed.png", 6, 6)).await;

    let response = app.delete(&doomed.id, Some(&doomed.delete_token)).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_eq!(app.download(&doomed.id).await.status(), 404);
    let again = app.delete(&doomed.id, Some(&doomed.delete_token)).await;
    assert_eq!(again.status(), 404);
    app.assert_stores(&[Expected::new(&keep.id, &keep_bytes, "image/png", Some("keep.png"), 5, 5)]).await;
}

async fn a_wrong_or_missing_token_is_403_and_deletes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = images::png(5, 5);
    let file = app.upload_ok(FilePart::new("a.png", bytes.clone(), "image/png")).await;
    let other = app.upload_ok(FilePart::png("b.png", 5, 5)).await;

    let mut flipped = file.delete_token.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    for token in [
        None,
        Some(String::new()),
        Some("nope".to_owned()),
        Some(String::from_utf8(flipped).unwrap()),
        Some(other.delete_token.clone()),
    ] {
        let response = app.delete(&file.id, token.as_deref()).await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert_eq!(error_of(response).await.code, "invalid_delete_token");
    }

    assert_eq!(app.download(&file.id).await.bytes().await.unwrap(), bytes);
}

async fn the_token_also_works_as_a_query_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = app.upload_ok(FilePart::png("a.png", 5, 5)).await;

    let url = app.url(&format!("/main/download/{}?token={}", file.id, file.delete_token));
    assert_eq!(app.client.delete(url).send().await.unwrap().status(), 204);
    assert_eq!(app.download(&file.id).await.status(), 404);
    app.assert_stores_nothing().await;
}
