use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

pub async fn render(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state.metrics.render().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
