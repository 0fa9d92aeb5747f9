//! One module per resource. [`configure`] mounts them: the app lives under
//! `/main` (as the blueprint it descends from did); health and metrics at the root.

pub mod delete;
pub mod download;
pub mod health;
pub mod metrics;
pub mod pages;
pub mod static_files;
pub mod upload;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::web::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/healthz", "GET, HEAD").route(web::get().to(health::live)).route(web::head().to(health::live)),
    )
    .service(resource("/readyz", "GET, HEAD").route(web::get().to(health::ready)).route(web::head().to(health::ready)))
    .service(
        resource("/metrics", "GET, HEAD").route(web::get().to(metrics::render)).route(web::head().to(metrics::render)),
    )
    .service(resource("/", "GET, HEAD").route(web::get().to(redirect_to_main)).route(web::head().to(redirect_to_main)))
    .service(
        resource("/main", "GET, HEAD").route(web::get().to(redirect_to_main)).route(web::head().to(redirect_to_main)),
    )
    .service(
        web::scope("/main")
            .service(resource("/", "GET, HEAD").route(web::get().to(pages::index)).route(web::head().to(pages::index)))
            .service(resource("/upload", "POST").route(web::post().to(upload::upload)))
            .service(
                resource("/download/{id}", "GET, HEAD, DELETE")
                    .route(web::get().to(download::download))
                    .route(web::head().to(download::download))
                    .route(web::delete().to(delete::delete)),
            )
            .service(
                resource("/view/{ids}", "GET, HEAD")
                    .route(web::get().to(pages::view))
                    .route(web::head().to(pages::view)),
            )
            .service(resource("/api", "GET, HEAD").route(web::get().to(pages::api)).route(web::head().to(pages::api)))
            .service(
                resource("/openapi.json", "GET, HEAD")
                    .route(web::get().to(crate::web::openapi::serve))
                    .route(web::head().to(crate::web::openapi::serve)),
            )
            .service(
                resource("/static/{name}", "GET, HEAD")
                    .route(web::get().to(static_files::serve))
                    .route(web::head().to(static_files::serve)),
            ),
    );
}

/// A resource whose other methods get a 405 naming the allowed ones.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(req.method().as_str(), allow))
    }))
}

/// `/` and `/main` lead to the page. The target is relative, so it stays
/// right behind a proxy that mounts the app under a prefix.
/// (`main/` resolves to `/main/` from both `/` and `/main`.)
async fn redirect_to_main() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "main/")).finish()
}

/// Anything else.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}
