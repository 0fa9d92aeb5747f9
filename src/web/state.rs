//! What every handler shares, built once in [`super::startup`].

use std::sync::Arc;

use super::forwarded::TrustedProxies;
use crate::config::UploadSettings;
use crate::delete_token::DeleteTokens;
use crate::image::IdGenerator;
use crate::ingest::RewriteLimits;
use crate::metrics::Metrics;
use crate::storage::ImageStore;
use crate::variants::Variants;

pub struct AppState {
    pub store: Arc<dyn ImageStore>,
    pub ids: Arc<dyn IdGenerator>,
    pub tokens: DeleteTokens,
    pub metrics: Arc<Metrics>,
    pub limits: UploadSettings,
    /// `server.public_url`; empty means "derive from the request".
    pub public_url: String,
    pub trusted_proxies: TrustedProxies,
    /// One permit per upload request in progress (`upload.max_concurrent`).
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// `storage.ready_timeout_ms`.
    pub ready_timeout: std::time::Duration,
    /// `host:port` the server listens on: the host of last resort in URLs.
    pub local_address: String,
    /// Room for TIFF and AVIF files stripped in memory.
    pub rewrites: RewriteLimits,
    pub variants: Arc<Variants>,
    /// `storage.s3.redirect_downloads` on the S3 backend: GETs answer 302
    /// to a presigned URL.
    pub redirect_downloads: bool,
}

impl AppState {
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.limits.idle_timeout_secs)
    }
}
