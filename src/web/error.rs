//! Every failure a client can see, as an HTTP answer: the status and code
//! come from the [`ErrorCode`] registry, the body is
//! `{"error": {"code": "...", "message": "..."}}` (an HTML page for browsers,
//! see [`super::negotiate`]). A 500 says nothing about its cause; the cause
//! chain goes to the log.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error_code::ErrorCode;
use crate::ingest::IngestError;
use crate::storage::StoreError;
use crate::telemetry::cause_chain;
use crate::variants::VariantError;
use std::sync::Arc;

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// A header the answer needs besides the body (`Allow`, `Content-Range`).
    header: Option<(HeaderName, String)>,
    /// What went wrong underneath, for the log.
    cause: Option<Cause>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), header: None, cause: None }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "there is nothing here")
    }

    pub fn method_not_allowed(method: &str, allow: &'static str) -> Self {
        Self::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed here; use {allow}"))
            .with_header(header::ALLOW, allow.to_owned())
    }

    pub fn invalid_delete_token() -> Self {
        Self::new(ErrorCode::InvalidDeleteToken, "the delete token is missing or does not match this image")
    }

    pub fn range_not_satisfiable(size: u64) -> Self {
        Self::new(
            ErrorCode::RangeNotSatisfiable,
            format!("the requested range is not satisfiable: the image has {size} bytes"),
        )
        .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
    }

    pub fn too_many_uploads() -> Self {
        Self::new(ErrorCode::TooManyUploads, "the service is handling as many uploads as it may; retry shortly")
    }

    pub fn storage_unavailable(cause: StoreError) -> Self {
        Self::new(ErrorCode::StorageUnavailable, "image storage is unavailable, please retry shortly").caused_by(cause)
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::new(ErrorCode::InternalError, "internal server error").caused_by(cause)
    }

    fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.header = Some((name, value));
        self
    }

    fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.code() {
            ErrorCode::StorageUnavailable => Self::storage_unavailable(e),
            ErrorCode::InternalError => Self::internal(e),
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<VariantError> for ApiError {
    fn from(e: VariantError) -> Self {
        match e {
            VariantError::Store(store) => match Arc::try_unwrap(store) {
                Ok(store) => store.into(),
                Err(shared) => Self::from_shared_store_error(&shared),
            },
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl ApiError {
    /// A store error several requests share (they waited on one rendering).
    fn from_shared_store_error(e: &StoreError) -> Self {
        match e.code() {
            ErrorCode::StorageUnavailable => {
                Self::new(ErrorCode::StorageUnavailable, "image storage is unavailable, please retry shortly")
                    .caused_by(cause_chain(e))
            }
            ErrorCode::InternalError => Self::internal(cause_chain(e)),
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(store) => store.into(),
            client => Self::new(client.code(), client.to_string()),
        }
    }
}

/// The error as clients see it; also kept in the response's extensions so
/// the negotiation middleware can render it as HTML.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

pub fn json_error_response(status: StatusCode, body: ErrorBody) -> HttpResponse {
    let json = serde_json::to_string(&Envelope { error: &body })
        .unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"internal server error"}}"#.to_owned());
    let mut response = HttpResponse::build(status).content_type("application/json").body(json);
    response.extensions_mut().insert(body);
    response
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error.code = %self.code, error.cause_chain = %cause_chain(self), "request failed");
        } else {
            tracing::debug!(error.code = %self.code, error.message = %self, "request rejected");
        }
        let mut response =
            json_error_response(status, ErrorBody { code: self.code.as_str(), message: self.message.clone() });
        let headers = response.headers_mut();
        if let Some((name, value)) = &self.header
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name.clone(), value);
        }
        if let Some(seconds) = self.code.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // A refused upload's body may still be arriving: do not reuse the connection.
        if matches!(status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT)
            || self.code == ErrorCode::TooManyUploads
        {
            response.head_mut().set_connection_type(ConnectionType::Close);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = ApiError::internal(anyhow::anyhow!("database password is hunter2"));
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, r#"{"error":{"code":"internal_error","message":"internal server error"}}"#);
    }

    #[test]
    fn the_cause_chain_joins_every_source() {
        let error = ApiError::internal(anyhow::anyhow!("disk on fire").context("writing meta"));
        assert_eq!(cause_chain(&error), "internal server error: writing meta: disk on fire");
    }

    #[test]
    fn every_code_answers_with_its_registered_status() {
        for code in ErrorCode::all() {
            let response = ApiError::new(code, "x").error_response();
            assert_eq!(response.status().as_u16(), code.status(), "{code}");
            assert_eq!(response.headers().contains_key(header::RETRY_AFTER), code.retry_after_secs().is_some());
        }
    }
}
