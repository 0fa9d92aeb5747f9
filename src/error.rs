//! Every failure a client can see, with its status and stable error code.
//! Bodies are `{"error": {"code": "...", "message": "..."}}` (an HTML page for
//! browsers, see [`crate::http::negotiate`]). A 500 says nothing about its
//! cause; the cause chain goes to the log.

use std::fmt::Write as _;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("there is nothing here")]
    NotFound,
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("the delete token is missing or does not match this image")]
    Forbidden,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    #[error("{message}")]
    UnsupportedMediaType { code: &'static str, message: String },
    #[error("the requested range is not satisfiable: the image has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("{message}")]
    RequestTimeout { message: String },
    #[error("the service is handling as many uploads as it may; retry shortly")]
    Busy,
    #[error("image storage is unavailable, please retry shortly")]
    StorageUnavailable(#[source] StoreError),
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::PayloadTooLarge { code, message: message.into() }
    }

    pub fn unsupported(code: &'static str, message: impl Into<String>) -> Self {
        Self::UnsupportedMediaType { code, message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Forbidden => "invalid_delete_token",
            Self::BadRequest { code, .. }
            | Self::PayloadTooLarge { code, .. }
            | Self::UnsupportedMediaType { code, .. } => code,
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::RequestTimeout { .. } => "upload_timeout",
            Self::Busy => "too_many_uploads",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(_) => Self::Internal(e.into()),
            StoreError::Body(_) | StoreError::Unavailable { .. } | StoreError::TimedOut { .. } => {
                Self::StorageUnavailable(e)
            }
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

/// `source: source: ...` for the log.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(chain, ": {cause}");
        source = cause.source();
    }
    chain
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
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Busy | Self::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error.code = self.code(), error.cause_chain = %cause_chain(self), "request failed");
        } else {
            tracing::debug!(error.code = self.code(), error.message = %self, "request rejected");
        }
        let mut response = json_error_response(status, ErrorBody { code: self.code(), message: self.to_string() });
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            Self::StorageUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            _ => {}
        }
        // A rejected upload body may still be arriving; do not reuse the connection.
        if matches!(self, Self::PayloadTooLarge { .. } | Self::RequestTimeout { .. } | Self::Busy) {
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
        let error = ApiError::Internal(anyhow::anyhow!("database password is hunter2"));
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, r#"{"error":{"code":"internal_error","message":"internal server error"}}"#);
    }

    #[test]
    fn the_cause_chain_joins_every_source() {
        let error = ApiError::Internal(anyhow::anyhow!("disk on fire").context("writing meta"));
        assert_eq!(cause_chain(&error), "internal server error: writing meta: disk on fire");
    }
}
