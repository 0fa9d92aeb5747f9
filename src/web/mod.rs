//! Everything that knows actix: the server and its start-up, the routes,
//! middleware, extractors, error answers, pages and static files. Nothing
//! outside this module imports actix or this module (a test checks it), so
//! the core ([`crate::ingest`], [`crate::storage`], [`crate::image`]) can be
//! read, tested and reused without HTTP.
//!
//! - [`startup`]: [`Application`] — storage, state, listener, server;
//! - [`server`], [`one_at_a_time`]: the HTTP/1 server and its pipelining fix;
//! - [`routes`]: one module per resource;
//! - [`extract`]: typed path, query and header extractors;
//! - [`error`]: [`error::ApiError`], the HTTP face of [`crate::error_code::ErrorCode`];
//! - [`negotiate`], [`request_id`], [`request_metrics`]: middleware;
//! - [`conditional`], [`range`]: `If-None-Match`, `If-Range`, `Range`;
//! - [`forwarded`], [`public_url`]: what the client sees behind a proxy;
//! - [`openapi`]: the API's contract, served and committed.

pub mod conditional;
pub mod error;
pub mod extract;
pub mod form;
pub mod forwarded;
pub mod negotiate;
pub mod one_at_a_time;
pub mod openapi;
pub mod public_url;
pub mod range;
pub mod request_id;
pub mod request_metrics;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;

pub use startup::Application;

use crate::config::Settings;

/// Serves until SIGTERM or Ctrl-C: what `picshelf serve` runs. Starts the
/// actix system the server lives in.
pub fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        Application::build(settings).await?.run_until_stopped().await?;
        Ok(())
    })
}
