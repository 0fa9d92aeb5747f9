//! Test images: the workspace's one generator (`crates/test-images`).

pub use picshelf_test_images::*;
