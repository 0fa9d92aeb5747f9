//! picshelf: a self-hosted image upload service.
//!
//! Uploads stream from an actix-web handler into an [`storage::ImageStore`]
//! (local disk or any S3-compatible bucket); downloads stream back with
//! exact headers, ranges and conditional requests.

pub mod config;
pub mod delete_token;
pub mod error;
pub mod http;
pub mod image;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod timeouts;
pub mod upload;
