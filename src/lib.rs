//! picshelf: a self-hosted image upload service.
//!
//! - [`ingest`]: the upload as a pipeline of steps (limits, sniffing,
//!   metadata stripping, hashing) from a byte stream into an [`storage::ImageStore`];
//! - [`storage`]: the store trait, local disk and S3;
//! - [`image`]: formats, sniffing, image ids, metadata filters, rendering variants;
//! - [`variants`]: resized variants made once on a bounded pool, then stored;
//! - [`web`]: everything HTTP (actix-web), and nothing else imports it;
//! - [`config`], [`telemetry`], [`metrics`], [`error_code`], [`delete_token`],
//!   [`timeouts`], [`allocator`]: what they say.

pub mod allocator;
pub mod check_store;
pub mod config;
pub mod delete_token;
pub mod error_code;
pub mod image;
pub mod ingest;
pub mod metrics;
pub mod storage;
pub mod telemetry;
pub mod timeouts;
pub mod variants;
pub mod web;

#[cfg(test)]
mod architecture;
