//! picshelf's load test (goose) and benchmark, and what they share:
//! multipart bodies, byte accounting, the report's statistics and plot. Test
//! images come from `picshelf-test-images`.

pub mod faults;
pub mod http;
pub mod report;
pub mod stats;
pub mod svg;
pub mod verify;

/// One upload that got a 201, as the verifier reads it back (JSON lines).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct UploadRecord {
    pub id: String,
    /// The absolute URL from the upload's answer.
    pub url: String,
    /// sha256 and size of the bytes that were sent (not what the server claimed).
    pub sha256: String,
    pub size: u64,
    pub delete_token: String,
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// The HTTP User-Agent of every request the load test and the benchmark send.
pub const USER_AGENT: &str = concat!("picshelf-loadtest/", env!("CARGO_PKG_VERSION"));
