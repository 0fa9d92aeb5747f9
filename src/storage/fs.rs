//! Local-disk storage, the embedded default.
//!
//! Layout under the root:
//! ```text
//! objects/<last two hex digits of the id>/<id>/data        the bytes
//! objects/<last two hex digits of the id>/<id>/meta.json   type, size, sha256, file name
//! objects/…/<id>/variants/<name>/{data,meta.json}           its variants (`w320.webp`)
//! tmp/                                                      uploads in progress, deletions
//! ```
//! An upload (and a variant) is written into its own directory under `tmp/`,
//! fsynced, and renamed into `objects/` in one step, so readers see the whole
//! object or nothing. Deleting an image renames its directory away, variants
//! and all. A failed or dropped upload removes its temp directory; what a
//! crash leaves in `tmp/` is swept. Reads and deletes have a deadline
//! (`storage.fs.operation_timeout_ms`): a hung disk gives a 503, not a hang.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::fs;
use tokio::io::{AsyncWriteExt, BufWriter};

use super::file_chunks::{file_chunks, open_data};
use super::{
    ByteRange, ImageStore, NewObject, NewVariant, Object, ObjectInfo, ObjectKey, StoreError, StoredObject, Swept,
    UploadBody, etag_for, within,
};
use crate::config::FsSettings;
use crate::image::ImageId;
use crate::image::metadata::Removed;
use crate::timeouts::IdleTimeout;

const WRITE_BUFFER: usize = 256 * 1024;
/// Downloads read the file in chunks of this size, from the page cache on the
/// worker thread when cached ([`file_chunks`]). actix-web copies each chunk into
/// its connection's write buffer and keeps that buffer for the next chunk only
/// while it stays within 128 KiB; a bigger chunk costs a fresh buffer (and
/// fresh pages) every time. 4 MiB files, 16 in flight, curl: 120 KiB chunks
/// served them in 1.8-2.2 s per 2,000, 160 KiB in 2.8-3.3 s, 512 KiB in
/// 2.2-2.6 s, 1 MiB in 5.6 s, and tokio's `File` with 512 KiB chunks in 3.0-3.6 s.
const READ_CHUNK: usize = 120 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    content_type: String,
    size: u64,
    sha256: String,
    file_name: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    /// What metadata was removed on the way in (`["gps", "exif"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    metadata_removed: Vec<String>,
}

pub struct FsStore {
    objects: PathBuf,
    tmp: PathBuf,
    deadline: Duration,
}

fn io_error(context: &str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::unavailable(context, e)
}

impl FsStore {
    /// Creates the directory layout if needed.
    pub async fn open(settings: &FsSettings) -> std::io::Result<Self> {
        let root = &settings.root;
        let store = Self {
            objects: root.join("objects"),
            tmp: root.join("tmp"),
            deadline: Duration::from_millis(settings.operation_timeout_ms),
        };
        fs::create_dir_all(&store.objects).await?;
        fs::create_dir_all(&store.tmp).await?;
        Ok(store)
    }

    async fn remove_stale_tmp(&self, older_than: Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut entries = fs::read_dir(&self.tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            let age = entry.metadata().await?.modified()?.elapsed().unwrap_or_default();
            if age > older_than {
                remove_entry(&entry.path()).await?;
                tracing::info!(path = %entry.path().display(), "removed a stale temp entry");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The object's info, its data file and the byte range to serve (offset, length).
    async fn open_object(
        &self,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<Option<(ObjectInfo, std::fs::File, u64, u64)>, StoreError> {
        let dir = self.key_dir(key);
        let Some(info) = self.read_info(key).await? else { return Ok(None) };
        // Deletion renames the directory away; a file opened before that stays readable.
        let file = match open_data(dir.join("data")).await {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::unavailable("opening object", e)),
        };
        let (start, len) = match &range {
            Some(r) => (*r.start(), r.end() - r.start() + 1),
            None => (0, info.size),
        };
        Ok(Some((info, file, start, len)))
    }

    async fn read_info(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let dir = self.key_dir(key);
        let Some(meta) = self.read_meta(&dir).await? else { return Ok(None) };
        let stat = match fs::metadata(dir.join("data")).await {
            Ok(stat) => stat,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::unavailable("reading object size", e)),
        };
        if stat.len() != meta.size {
            return Err(StoreError::Corrupt(format!(
                "{}: {} bytes on disk, {} in metadata",
                dir.display(),
                stat.len(),
                meta.size
            )));
        }
        Ok(Some(ObjectInfo {
            size: meta.size,
            content_type: meta.content_type,
            etag: etag_for(&meta.sha256),
            last_modified: stat.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            file_name: meta.file_name,
            width: meta.width,
            height: meta.height,
            metadata_removed: Removed::from_names(meta.metadata_removed.iter().map(String::as_str)),
        }))
    }

    async fn remove_object(&self, id: &ImageId) -> Result<bool, StoreError> {
        let target = self.object_dir(id);
        let doomed = self.fresh_tmp_path("deleted", id);
        match fs::rename(&target, &doomed).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.check_objects_dir().await?;
                return Ok(false);
            }
            Err(e) => return Err(StoreError::unavailable("deleting object", e)),
        }
        if let Some(shard) = target.parent() {
            sync_dir(shard).await?;
        }
        remove_entry(&doomed).await.map_err(io_error("removing deleted object"))?;
        Ok(true)
    }

    fn object_dir(&self, id: &ImageId) -> PathBuf {
        let text = id.to_string();
        self.objects.join(&text[ImageId::LEN - 2..]).join(text)
    }

    /// An image's directory, or one of its variants' (names come from
    /// `Variant::name`: letters, digits and one dot).
    fn key_dir(&self, key: &ObjectKey) -> PathBuf {
        match &key.variant {
            None => self.object_dir(&key.id),
            Some(name) => self.object_dir(&key.id).join("variants").join(name),
        }
    }

    async fn store_variant(&self, id: &ImageId, variant: &NewVariant) -> Result<bool, StoreError> {
        let staging = TempDir::create(self.fresh_tmp_path("variant", id)).await?;
        fs::write(staging.path().join("data"), &variant.bytes).await.map_err(io_error("writing variant"))?;
        let meta = Meta {
            content_type: variant.format.mime_type().to_owned(),
            size: variant.bytes.len() as u64,
            sha256: variant.sha256.clone(),
            file_name: variant.file_name.clone(),
            width: Some(variant.width),
            height: Some(variant.height),
            metadata_removed: Vec::new(),
        };
        write_meta(staging.path(), &meta).await?;
        sync_file(&staging.path().join("data")).await?;
        sync_dir(staging.path()).await?;
        // Never `create_dir_all`: a deleted image must not come back as an empty directory.
        let variants = self.object_dir(id).join("variants");
        match fs::create_dir(&variants).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::unavailable("creating variants directory", e)),
        }
        match fs::rename(staging.path(), variants.join(&variant.name)).await {
            Ok(()) => staging.disarm(),
            // Another replica stored it first: the same bytes; ours goes.
            Err(e) if matches!(e.kind(), ErrorKind::DirectoryNotEmpty | ErrorKind::AlreadyExists) => {}
            // The image was deleted meanwhile, its directory with it.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::unavailable("publishing variant", e)),
        }
        sync_dir(&variants).await?;
        Ok(true)
    }

    fn fresh_tmp_path(&self, label: &str, id: &ImageId) -> PathBuf {
        self.tmp.join(format!("{label}-{id}-{}", uuid::Uuid::new_v4().simple()))
    }

    async fn read_meta(&self, dir: &Path) -> Result<Option<Meta>, StoreError> {
        match fs::read(dir.join("meta.json")).await {
            Ok(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", dir.display()))),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // "No such image" only if the store itself is there.
                self.check_objects_dir().await?;
                Ok(None)
            }
            Err(e) => Err(StoreError::unavailable("reading object metadata", e)),
        }
    }

    async fn check_objects_dir(&self) -> Result<(), StoreError> {
        let is_dir = fs::metadata(&self.objects).await.map_err(io_error("storage directory"))?.is_dir();
        if is_dir {
            Ok(())
        } else {
            Err(StoreError::unavailable(
                "storage directory",
                std::io::Error::new(ErrorKind::NotADirectory, self.objects.display().to_string()),
            ))
        }
    }
}

#[async_trait(?Send)]
impl ImageStore for FsStore {
    async fn put(&self, object: &NewObject, mut body: UploadBody<'_>) -> Result<StoredObject, StoreError> {
        let staging = TempDir::create(self.fresh_tmp_path("upload", &object.id)).await?;
        let file = fs::File::create(staging.path().join("data")).await.map_err(io_error("creating temp file"))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            writer.write_all(&chunk).await.map_err(io_error("writing temp file"))?;
        }
        writer.flush().await.map_err(io_error("writing temp file"))?;
        writer.into_inner().sync_all().await.map_err(io_error("syncing temp file"))?;

        let finished = body.finish();
        let meta = Meta {
            content_type: object.format.mime_type().to_owned(),
            size: finished.size,
            sha256: finished.sha256.clone(),
            file_name: object.file_name.clone(),
            width: Some(object.width),
            height: Some(object.height),
            metadata_removed: finished.metadata_removed.names().into_iter().map(str::to_owned).collect(),
        };
        write_meta(staging.path(), &meta).await?;
        sync_dir(staging.path()).await?;

        let target = self.object_dir(&object.id);
        let shard = target.parent().expect("object directories live in a shard directory");
        fs::create_dir_all(shard).await.map_err(io_error("creating shard directory"))?;
        // Only an injected id generator can reuse an id; the new upload replaces the old one.
        if fs::try_exists(&target).await.map_err(io_error("checking object directory"))? {
            self.remove_object(&object.id).await?;
        }
        fs::rename(staging.path(), &target).await.map_err(io_error("publishing object"))?;
        staging.disarm();
        sync_dir(shard).await?;
        Ok(finished)
    }

    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> Result<Option<Object>, StoreError> {
        let opened = within("opening object", self.deadline, self.open_object(key, range)).await?;
        let Some((info, file, start, len)) = opened else { return Ok(None) };
        let chunks =
            file_chunks(file, start, len, READ_CHUNK).boxed().map_err(|e| StoreError::unavailable("reading object", e));
        let pause = self.deadline;
        let body =
            IdleTimeout::new(chunks, pause, move || StoreError::TimedOut { what: "reading object", after: pause });
        Ok(Some(Object { info, body: body.boxed() }))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        within("reading object metadata", self.deadline, self.read_info(key)).await
    }

    async fn put_variant(&self, id: &ImageId, variant: &NewVariant) -> Result<bool, StoreError> {
        within("storing variant", self.deadline, self.store_variant(id, variant)).await
    }

    async fn delete(&self, id: &ImageId) -> Result<bool, StoreError> {
        within("deleting object", self.deadline, self.remove_object(id)).await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        within("checking the storage directory", self.deadline, async {
            self.check_objects_dir().await?;
            let probe = self.tmp.join(format!("ready-{}", uuid::Uuid::new_v4().simple()));
            fs::write(&probe, b"ok").await.map_err(io_error("writing to storage directory"))?;
            fs::remove_file(&probe).await.map_err(io_error("writing to storage directory"))?;
            Ok(())
        })
        .await
    }

    async fn sweep(&self, older_than: Duration) -> Result<Swept, StoreError> {
        let objects = self.remove_stale_tmp(older_than).await.map_err(io_error("sweeping temp entries"))?;
        Ok(Swept { uploads: 0, objects })
    }

    fn drain(&self, _timeout: Duration) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

async fn write_meta(dir: &Path, meta: &Meta) -> Result<(), StoreError> {
    let meta_json = serde_json::to_vec(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut meta_file = fs::File::create(dir.join("meta.json")).await.map_err(io_error("creating metadata file"))?;
    meta_file.write_all(&meta_json).await.map_err(io_error("writing metadata file"))?;
    meta_file.sync_all().await.map_err(io_error("syncing metadata file"))
}

async fn sync_file(path: &Path) -> Result<(), StoreError> {
    let file = fs::File::open(path).await.map_err(io_error("syncing file"))?;
    file.sync_all().await.map_err(io_error("syncing file"))
}

async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| StoreError::unavailable("syncing directory", e))?
        .map_err(|e| StoreError::unavailable("syncing directory", e))
}

async fn remove_entry(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path).await {
        Ok(stat) if stat.is_dir() => fs::remove_dir_all(path).await,
        Ok(_) => fs::remove_file(path).await,
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A directory under `tmp/` that is removed unless disarmed (after its rename).
struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl TempDir {
    async fn create(path: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir(&path).await.map_err(io_error("creating temp directory"))?;
        Ok(Self { path, armed: true })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let path = std::mem::take(&mut self.path);
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an abandoned upload");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}
