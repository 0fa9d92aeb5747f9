//! What removing metadata costs: upload throughput of a 4 MiB JPEG carrying
//! a camera's EXIF block (GPS, make, serial number) into two picshelf
//! processes that differ only in `upload.strip_metadata`, disk backend in
//! memory (`/dev/shm` where there is one: the disk's write-back would
//! otherwise measure the disk), same client and concurrency, rounds whose
//! order alternates in one run.

use std::path::Path;

use picshelf_test_images::{BigWithMetadata, Container};

use super::ab::{Ab, alternating_rounds};
use super::memory::Instance;
use super::{Args, MIB};

pub const FILE_BYTES: usize = 4 * MIB;

/// Distinct files (each its own noise), so no layer can cache or deduplicate.
fn files(count: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            BigWithMetadata::new(Container::Jpeg, FILE_BYTES, 4000, 3000, seed + i as u64)
                .pieces(MIB)
                .flatten()
                .collect()
        })
        .collect()
}

/// The cells of strip_metadata off (`a`) and on (`b`).
pub async fn stripping_test(args: &Args, bin: &Path, client: &reqwest::Client) -> anyhow::Result<Ab> {
    let c = args.concurrency;
    let count = ((150.0 * args.scale).round() as usize).max(c);
    let mut instances = Vec::new();
    let shm = Path::new("/dev/shm");
    let mut data_dirs = Vec::new();
    for strip in [false, true] {
        let mut extra = vec![("PICSHELF__UPLOAD__STRIP_METADATA", strip.to_string())];
        if shm.is_dir() {
            let dir = shm.join(format!("picshelf-bench-strip-{strip}-{}", std::process::id()));
            extra.push(("PICSHELF__STORAGE__FS__ROOT", dir.display().to_string()));
            data_dirs.push(dir);
        }
        instances.push(Instance::start(args, bin, &format!("strip-{strip}"), "fs", &extra, client).await?);
    }
    let [off, on]: [Instance; 2] = instances.try_into().map_err(|_| anyhow::anyhow!("two instances"))?;
    let outcome =
        alternating_rounds(client, c, count, [("strip_metadata=false", off), ("strip_metadata=true", on)], files).await;
    for dir in data_dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}
