//! Typed edges: what handlers receive instead of parsing requests themselves.
//!
//! - [`ImageId`] from the path's `{id}`: anything that is not a canonical
//!   uuid v7 is a 404 before the handler runs (and before storage is touched);
//! - [`ImageIds`] from `{ids}`, a comma-separated list of them;
//! - [`Lenient`] query structs: a query string that does not parse counts as
//!   empty, as clients adding their own parameters expect;
//! - [`DeleteToken`]: the `X-Delete-Token` header, else `?token=`.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use crate::image::ImageId;

impl FromRequest for ImageId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.match_info().get("id").and_then(ImageId::parse).ok_or_else(ApiError::not_found))
    }
}

/// One to `upload.max_files` image ids, comma-separated in the path's `{ids}`.
pub struct ImageIds(pub Vec<ImageId>);

impl FromRequest for ImageIds {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let most = req.app_data::<web::Data<AppState>>().map_or(1, |state| state.limits.max_files);
        let ids: Option<Vec<ImageId>> =
            req.match_info().get("ids").map(|ids| ids.split(',').map(ImageId::parse).collect()).unwrap_or_default();
        ready(match ids {
            Some(ids) if (1..=most).contains(&ids.len()) => Ok(Self(ids)),
            _ => Err(ApiError::not_found()),
        })
    }
}

/// A query struct, or its default when the query string does not parse.
pub struct Lenient<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest for Lenient<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = web::Query::<T>::from_query(req.query_string()).map(web::Query::into_inner).unwrap_or_default();
        ready(Ok(Self(query)))
    }
}

/// `GET /main/download/{id}?download`: save as an attachment;
/// `?width=W[&format=F]`: a variant instead of the original.
#[derive(Debug, Default, Deserialize)]
pub struct DownloadQuery {
    pub download: Option<String>,
    pub width: Option<String>,
    pub format: Option<String>,
}

impl DownloadQuery {
    pub fn attachment(&self) -> bool {
        self.download.is_some()
    }
}

/// `?token=` on a delete, or `?token=a,b` on the page of several images.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

impl TokenQuery {
    /// The tokens of a comma-separated list, in order.
    pub fn tokens(&self) -> Vec<&str> {
        self.token.as_deref().map(|t| t.split(',').collect()).unwrap_or_default()
    }
}

pub const DELETE_TOKEN_HEADER: &str = "x-delete-token";

/// The delete token a client presents: the `X-Delete-Token` header, else the
/// `token` query parameter.
pub struct DeleteToken(pub Option<String>);

impl FromRequest for DeleteToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = match req.headers().get(DELETE_TOKEN_HEADER) {
            Some(value) => value.to_str().ok().map(str::to_owned),
            None => web::Query::<TokenQuery>::from_query(req.query_string()).ok().and_then(|q| q.into_inner().token),
        };
        ready(Ok(Self(token)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[actix_web::test]
    async fn queries_that_do_not_parse_count_as_empty() {
        let (req, mut payload) = TestRequest::with_uri("/x?download&token=%zz&token=a").to_http_parts();
        let Lenient(query) = Lenient::<DownloadQuery>::from_request(&req, &mut payload).await.unwrap();
        assert!(query.attachment());
        let (req, mut payload) = TestRequest::with_uri("/x?token=a,b").to_http_parts();
        let Lenient(query) = Lenient::<TokenQuery>::from_request(&req, &mut payload).await.unwrap();
        assert_eq!(query.tokens(), ["a", "b"]);
    }

    #[actix_web::test]
    async fn the_header_token_wins_over_the_query() {
        let (req, mut payload) =
            TestRequest::with_uri("/x?token=query").insert_header((DELETE_TOKEN_HEADER, "header")).to_http_parts();
        assert_eq!(DeleteToken::from_request(&req, &mut payload).await.unwrap().0.as_deref(), Some("header"));
        let (req, mut payload) = TestRequest::with_uri("/x?token=query").to_http_parts();
        assert_eq!(DeleteToken::from_request(&req, &mut payload).await.unwrap().0.as_deref(), Some("query"));
    }
}
