//! What every handler shares, built once in [`crate::startup`].

use std::sync::Arc;

use crate::config::UploadSettings;
use crate::delete_token::DeleteTokens;
use crate::image::IdGenerator;
use crate::metrics::Metrics;
use crate::storage::ImageStore;

pub struct AppState {
    pub store: Arc<dyn ImageStore>,
    pub ids: Arc<dyn IdGenerator>,
    pub tokens: DeleteTokens,
    pub metrics: Arc<Metrics>,
    pub limits: UploadSettings,
    /// `server.public_url`; empty means "derive from the request".
    pub public_url: String,
}
