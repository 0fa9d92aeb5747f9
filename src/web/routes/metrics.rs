use actix_web::{HttpResponse, web};

use crate::metrics::CONTENT_TYPE;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn render(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
