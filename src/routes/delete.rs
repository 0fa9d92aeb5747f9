//! `DELETE /main/download/{id}` with the upload's delete token, in an
//! `X-Delete-Token` header or a `?token=` query.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::routes::download::path_id;
use crate::state::AppState;

pub const TOKEN_HEADER: &str = "x-delete-token";

fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(TOKEN_HEADER) {
        return value.to_str().ok().map(str::to_owned);
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|query| query.get("token").cloned())
}

pub async fn delete(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&req)?;
    // The token is checked before storage is touched.
    let token = presented_token(&req).ok_or(ApiError::Forbidden)?;
    if !state.tokens.verify(&id, &token) {
        return Err(ApiError::Forbidden);
    }
    if state.store.delete(&id).await? {
        tracing::info!(%id, "image deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
