//! `DELETE /main/download/{id}` with the upload's delete token, in an
//! `X-Delete-Token` header or a `?token=` query.

use actix_web::{HttpResponse, web};

use crate::image::ImageId;
use crate::web::error::ApiError;
use crate::web::extract::DeleteToken;
use crate::web::state::AppState;

pub async fn delete(id: ImageId, token: DeleteToken, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The token is checked before storage is touched.
    let token = token.0.ok_or_else(ApiError::invalid_delete_token)?;
    if !state.tokens.verify(&id, &token) {
        return Err(ApiError::invalid_delete_token());
    }
    if state.store.delete(&id).await? {
        tracing::info!(%id, "image deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found())
    }
}
