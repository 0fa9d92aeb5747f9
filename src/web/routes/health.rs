use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::storage::within;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// Liveness: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the bucket or directory can be used, and answers within
/// `storage.ready_timeout_ms` (a frozen store makes the instance not ready).
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    within("readiness check", state.ready_timeout, state.store.check_ready()).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
