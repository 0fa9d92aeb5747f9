//! What hashing each upload body into its S3 signature costs: 4 MiB uploads
//! into two picshelf processes on the S3 backend (the memory test's bucket on
//! the same Garage) that differ only in `storage.s3.payload_signing`
//! (`always`, as over plain HTTP by default, and `never`, as over HTTPS by
//! default), in rounds whose order alternates.

use std::path::Path;

use super::ab::{Ab, alternating_rounds};
use super::cells::{file_bytes, template};
use super::memory::Instance;
use super::{Args, MIB};

pub const FILE_BYTES: usize = 4 * MIB;

/// The cells of payload signing on (`a`) and off (`b`).
pub async fn signing_test(args: &Args, bin: &Path, client: &reqwest::Client) -> anyhow::Result<Ab> {
    let c = args.concurrency;
    let count = ((150.0 * args.scale).round() as usize).max(c);
    let start = |setting: &'static str| {
        let extra = [("PICSHELF__STORAGE__S3__PAYLOAD_SIGNING", setting.to_owned())];
        async move { Instance::start(args, bin, &format!("signing-{setting}"), "s3", &extra, client).await }
    };
    // A started instance that is dropped (the other failed to start) is killed.
    let always = start("always").await?;
    let never = start("never").await?;
    let tpl = template(FILE_BYTES, 0x5161);
    let files = |n: usize, seed: u64| (0..n as u64).map(|i| file_bytes(&tpl, seed + i)).collect();
    alternating_rounds(client, c, count, [("payload_signing=always", always), ("payload_signing=never", never)], files)
        .await
}
