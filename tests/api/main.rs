//! API tests: the app on port 0, driven over HTTP, every storage behaviour
//! against the disk backend and against a real Garage server.

mod helpers;

mod bad_input;
mod delete;
mod download;
mod forwarding;
mod health_and_metrics;
mod limits;
mod metadata;
mod pages;
mod pipelining;
mod process;
mod s3_compat;
mod storage_failures;
mod upload;
mod variants;
