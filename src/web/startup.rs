//! Builds the application: storage, state, listener and server. Binding
//! happens here, so `server.port = 0` gives a free port (tests use it).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use anyhow::Context;
use tokio_util::task::AbortOnDropHandle;
use tracing_actix_web::TracingLogger;

use super::forwarded::TrustedProxies;
use super::state::AppState;
use super::{negotiate, request_id, request_metrics, routes, server};
use crate::config::Settings;
use crate::delete_token::DeleteTokens;
use crate::image::{IdGenerator, UuidV7Generator};
use crate::ingest::RewriteLimits;
use crate::metrics::Metrics;
use crate::storage::{self, ImageStore, instrumented::InstrumentedStore, sweeper};
use crate::variants::Variants;

/// How long background storage cleanup may take after the server stopped.
const CLEANUP_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    port: u16,
    server: Server,
    store: Arc<dyn ImageStore>,
    sweeper: AbortOnDropHandle<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Arc::new(UuidV7Generator)).await
    }

    /// As [`Application::build`], with the generator of new image ids given (tests).
    pub async fn build_with(settings: Settings, ids: Arc<dyn IdGenerator>) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let backend = storage::open(&settings.storage).await.context("cannot open storage")?;
        let store: Arc<dyn ImageStore> = Arc::new(InstrumentedStore::new(backend, metrics.clone()));
        let sweeper = sweeper::start(store.clone(), &settings.storage);
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener =
            TcpListener::bind(address).with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
        let local_address = listener.local_addr()?;
        let port = local_address.port();
        let state = web::Data::new(AppState {
            store: store.clone(),
            ids,
            tokens: DeleteTokens::new(settings.security.delete_secret.clone()),
            metrics: metrics.clone(),
            limits: settings.upload.clone(),
            public_url: settings.server.public_url.clone(),
            trusted_proxies: TrustedProxies::new(settings.server.trusted_proxies.clone()),
            upload_slots: Arc::new(tokio::sync::Semaphore::new(settings.upload.max_concurrent)),
            ready_timeout: Duration::from_millis(settings.storage.ready_timeout_ms),
            local_address: local_address.to_string(),
            rewrites: RewriteLimits::new(settings.upload.max_rewrite_bytes, settings.upload.rewrite_memory_bytes),
            variants: Arc::new(Variants::new(store.clone(), settings.variants.clone(), metrics.clone())),
            redirect_downloads: settings.storage.backend == crate::config::Backend::S3
                && settings.storage.s3.redirect_downloads,
        });

        let server = server::serve(listener, &settings.server, state.clone(), move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                .wrap(from_fn(negotiate::html_errors))
                .wrap(from_fn(request_metrics::record_requests))
                .wrap(TracingLogger::<request_id::RequestSpan>::new())
                .wrap(from_fn(request_id::assign))
        })?;
        tracing::info!(
            environment = %settings.environment,
            backend = ?settings.storage.backend,
            address = %format!("{}:{port}", address.0),
            "picshelf listening"
        );
        Ok(Self { port, server, store, sweeper })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server gracefully from elsewhere (tests); SIGTERM and Ctrl-C do the same.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped; in-flight requests get `server.shutdown_timeout_secs`,
    /// then background storage cleanup gets a little more.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        drop(self.sweeper);
        self.store.drain(CLEANUP_GRACE).await;
        tracing::info!("picshelf stopped");
        result
    }
}
