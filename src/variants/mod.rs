//! Resized variants on demand (`?width=W`): generated once, stored beside
//! the original, then served from the store like any object.
//!
//! [`Variants::ensure`] makes sure a variant is in the store: a stored one is
//! used as is; otherwise one request per variant (the others wait for it,
//! [`single_flight`]) takes a place in the bounded [`pool`], reads the
//! original, renders it off the async workers within decoder limits
//! ([`crate::image::variant::render`]) and stores the result. No HTTP here:
//! the web layer maps [`VariantError`] to statuses.

pub mod pool;
pub mod single_flight;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use self::pool::{Pool, PoolError};
use self::single_flight::{Joined, SingleFlight, follow};
use crate::config::VariantSettings;
use crate::error_code::ErrorCode;
use crate::image::variant::{DecodeLimits, OutputFormat, RenderError, Variant, can_render, render};
use crate::image::{ImageFormat, ImageId};
use crate::metrics::Metrics;
use crate::storage::{ImageStore, NewVariant, ObjectKey, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum VariantError {
    #[error("{0}")]
    Invalid(String),
    #[error("variants of {0} images are not available; the original is")]
    Unsupported(&'static str),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Undecodable(String),
    #[error("{0}")]
    Busy(String),
    #[error("the variant was not ready within {0} ms; retry shortly")]
    TimedOut(u64),
    /// The store failed; shared between the requests waiting on one rendering.
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl VariantError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidVariant,
            Self::Unsupported(_) => ErrorCode::VariantUnsupported,
            Self::TooLarge(_) => ErrorCode::TooLargeForVariants,
            Self::Undecodable(_) => ErrorCode::UndecodableImage,
            Self::Busy(_) => ErrorCode::TooManyVariants,
            Self::TimedOut(_) => ErrorCode::VariantTimeout,
            Self::Store(e) => e.code(),
        }
    }
}

impl From<StoreError> for VariantError {
    fn from(e: StoreError) -> Self {
        Self::Store(Arc::new(e))
    }
}

impl From<RenderError> for VariantError {
    fn from(e: RenderError) -> Self {
        match e {
            RenderError::TooLarge { .. } => Self::TooLarge(e.to_string()),
            RenderError::Undecodable(_) | RenderError::Encoding(_) => Self::Undecodable(e.to_string()),
            RenderError::Unsupported(format) => Self::Unsupported(format),
        }
    }
}

/// Whether the image exists (its variant is then in the store).
type Outcome = Result<bool, VariantError>;

pub struct Variants {
    store: Arc<dyn ImageStore>,
    settings: VariantSettings,
    pool: Pool,
    flights: SingleFlight<(ImageId, Variant), Outcome>,
    metrics: Arc<Metrics>,
}

impl Variants {
    pub fn new(store: Arc<dyn ImageStore>, settings: VariantSettings, metrics: Arc<Metrics>) -> Self {
        let pool = Pool::new(settings.slots(), settings.max_queue, metrics.variant_queue.clone());
        Self { store, settings, pool, flights: SingleFlight::default(), metrics }
    }

    pub fn widths(&self) -> &[u32] {
        &self.settings.widths
    }

    /// The variant `?width=` and `?format=` ask for; `None` for the original.
    pub fn parse(&self, width: Option<&str>, format: Option<&str>) -> Result<Option<Variant>, VariantError> {
        let allowed = || self.settings.widths.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let Some(width) = width else {
            return match format {
                None => Ok(None),
                Some(_) => Err(VariantError::Invalid(format!("format needs a width; widths: {}", allowed()))),
            };
        };
        let width = width.parse::<u32>().ok().filter(|w| self.settings.widths.contains(w)).ok_or_else(|| {
            VariantError::Invalid(format!("width {width:?} is not one of the variant widths: {}", allowed()))
        })?;
        let format = match format.map(str::to_ascii_lowercase).as_deref() {
            None => OutputFormat::WebP,
            Some("jpg") => OutputFormat::Jpeg,
            Some(name) => OutputFormat::parse(name).ok_or_else(|| {
                let names: Vec<_> = OutputFormat::ALL.iter().map(|f| f.name()).collect();
                VariantError::Invalid(format!("format {name:?} is not one of: {}", names.join(", ")))
            })?,
        };
        Ok(Some(Variant { width, format }))
    }

    /// Makes sure `variant` of `id` is in the store. `Ok(false)`: there is no such image.
    pub async fn ensure(&self, id: &ImageId, variant: Variant) -> Result<bool, VariantError> {
        let key = ObjectKey::variant(id, &variant);
        loop {
            if self.store.head(&key).await?.is_some() {
                self.metrics.variants_from_store.inc();
                return Ok(true);
            }
            match self.flights.join(&(*id, variant)) {
                Joined::Leader(leader) => {
                    let deadline = Duration::from_millis(self.settings.timeout_ms);
                    let outcome = tokio::time::timeout(deadline, self.generate(id, variant))
                        .await
                        .unwrap_or(Err(VariantError::TimedOut(self.settings.timeout_ms)));
                    leader.finish(outcome.clone());
                    return outcome;
                }
                Joined::Follower(receiver) => {
                    if let Some(outcome) = follow(receiver).await {
                        return outcome;
                    }
                    // The leader's request went away: look again, maybe lead.
                }
            }
        }
    }

    async fn generate(&self, id: &ImageId, variant: Variant) -> Outcome {
        let ticket = self.pool.admit().map_err(|e| VariantError::Busy(e.to_string()))?;
        let Some(info) = self.store.head(&ObjectKey::image(id)).await? else { return Ok(false) };
        let format = ImageFormat::from_mime_type(&info.content_type)
            .ok_or_else(|| VariantError::Undecodable(format!("stored as {:?}", info.content_type)))?;
        if !can_render(format) {
            return Err(VariantError::Unsupported(format.name()));
        }
        // The original is read only once a slot is free: waiting requests hold no bytes.
        let slot = ticket.slot().await;
        let Some(source) = self.read_original(id).await? else { return Ok(false) };
        let limits =
            DecodeLimits { max_pixels: self.settings.max_decoded_pixels, max_alloc: self.settings.max_decode_bytes };
        let started = Instant::now();
        let rendered = slot.run(move || render(&source, format, variant, limits)).await.map_err(|e| match e {
            PoolError::Full(_) => VariantError::Busy(e.to_string()),
            PoolError::Panicked(message) => {
                tracing::error!(%id, message, "a decoder panicked; the image is treated as undecodable");
                VariantError::Undecodable("the image cannot be decoded".into())
            }
        })??;
        self.metrics.variant_generation.observe(started.elapsed().as_secs_f64());
        let stored = NewVariant {
            name: variant.name(),
            sha256: hex::encode(Sha256::digest(&rendered.bytes)),
            bytes: Bytes::from(rendered.bytes),
            format: rendered.format,
            width: rendered.width.into(),
            height: rendered.height.into(),
            file_name: info.file_name,
        };
        let kept = self.store.put_variant(id, &stored).await?;
        if kept {
            self.metrics.variants_generated.inc();
            tracing::info!(%id, variant = stored.name, size = stored.bytes.len(), "variant stored");
        }
        Ok(kept)
    }

    async fn read_original(&self, id: &ImageId) -> Result<Option<Vec<u8>>, VariantError> {
        let Some(object) = self.store.get(&ObjectKey::image(id), None).await? else { return Ok(None) };
        let limit = self.settings.max_source_bytes;
        if object.info.size > limit {
            return Err(VariantError::TooLarge(format!(
                "the image is {} bytes; variants are made from images of at most {limit} bytes",
                object.info.size
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(object.info.size).unwrap_or(0));
        let mut body = object.body;
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() as u64 > limit {
                return Err(VariantError::TooLarge(format!("the image is larger than {limit} bytes")));
            }
        }
        Ok(Some(bytes))
    }
}
