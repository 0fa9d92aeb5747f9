//! A byte range of a file as a stream of chunks: how the disk backend serves
//! downloads.
//!
//! Each chunk is first read on the calling thread with
//! `preadv2(…, RWF_NOWAIT)`: the kernel copies what is already in its page
//! cache and refuses (`EAGAIN`) rather than wait for the disk. Only what is not
//! cached is read on tokio's blocking pool. A download of a cached file thus
//! costs one copy out of the page cache per chunk and no thread hop, where
//! `tokio::fs::File` costs a hop to the blocking pool, a read into its own
//! buffer and a second copy into the chunk.
//!
//! - Data files are opened with `O_NOATIME` ([`open_data`]): a read then
//!   never updates the access time, which could wait on the file system's
//!   journal.
//! - Page-cache reads are tried on Linux 5.11 and later only: on 5.9 and 5.10
//!   such a read can return 0 in the middle of a file, and before 5.9 it could
//!   still start readahead. Only a blocking read decides that a file ended.
//! - Where they are not supported (older kernels, NFS, FUSE, tmpfs, other
//!   platforms) every read goes to the blocking pool.
//!
//! One buffer of at most `chunk` bytes serves the whole download: a chunk is
//! handed on, and once the server has written it out and dropped it, the next
//! chunk reuses the same allocation.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

/// `len` bytes of `file` from `offset`, in chunks of at most `chunk` bytes. A
/// file that ends before `offset + len` ends the stream with an
/// `UnexpectedEof` error.
pub fn file_chunks(file: File, offset: u64, len: u64, chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send {
    chunks(file, offset, len, chunk, page_cache_reads_work())
}

/// Opens a data file for reading (on the blocking pool), without access-time
/// updates where the kernel allows it (`O_NOATIME`: the file's owner only).
pub async fn open_data(path: PathBuf) -> io::Result<File> {
    tokio::task::spawn_blocking(move || {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOATIME).open(&path) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(&path),
                opened => opened,
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        File::open(&path)
    })
    .await
    .map_err(io::Error::other)?
}

/// Whether `RWF_NOWAIT` reads are tried: Linux 5.11 or later.
fn page_cache_reads_work() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|release| kernel_version(&release))
                .is_some_and(|version| version >= (5, 11))
    })
}

/// `(major, minor)` of a kernel release such as `6.18.44-fc-v1045`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.trim().split(|c: char| !c.is_ascii_digit());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

fn chunks(
    file: File,
    offset: u64,
    len: u64,
    chunk: usize,
    try_cache: bool,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    let reader =
        Reader { file: Arc::new(file), offset, remaining: len, chunk: chunk.max(1), buf: BytesMut::new(), try_cache };
    futures_util::stream::try_unfold(reader, Reader::next_chunk)
}

struct Reader {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    chunk: usize,
    buf: BytesMut,
    /// Whether a read from the page cache alone is worth trying (cleared when
    /// the kernel or the file system does not support it).
    try_cache: bool,
}

impl Reader {
    async fn next_chunk(mut self) -> io::Result<Option<(Bytes, Self)>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining).map_or(self.chunk, |remaining| remaining.min(self.chunk));
        // Reclaims the previous chunk's allocation when it has been dropped.
        self.buf.reserve(want);
        let cached = if self.try_cache {
            read_cached(&self.file, &mut self.buf, want, self.offset)
        } else {
            CacheRead::Unsupported
        };
        if matches!(cached, CacheRead::Unsupported) {
            self.try_cache = false;
        }
        let read = match cached {
            CacheRead::Got(n) if n > 0 => n,
            // Only a blocking read decides that the file ended.
            _ => self.read_blocking(want).await?,
        };
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended before its recorded size"));
        }
        self.offset += read as u64;
        self.remaining -= read as u64;
        let chunk = self.buf.split().freeze();
        Ok(Some((chunk, self)))
    }

    /// Reads up to `want` bytes on the blocking pool, appending them to the buffer.
    async fn read_blocking(&mut self, want: usize) -> io::Result<usize> {
        let file = Arc::clone(&self.file);
        let offset = self.offset;
        let mut buf = std::mem::take(&mut self.buf);
        let (buf, read) = tokio::task::spawn_blocking(move || {
            let read = read_at(&file, &mut buf, want, offset);
            (buf, read)
        })
        .await
        .map_err(io::Error::other)?;
        self.buf = buf;
        read
    }
}

/// What a read from the page cache alone gave.
enum CacheRead {
    /// This many bytes (fewer than asked when only some were cached).
    Got(usize),
    /// None: reading would wait for the disk.
    WouldWait,
    /// The kernel or the file system cannot read without waiting.
    Unsupported,
}

/// Appends up to `want` bytes at `offset` to `buf` if the page cache has
/// them, without waiting for the disk.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_cached(file: &File, buf: &mut BytesMut, want: usize, offset: u64) -> CacheRead {
    match preadv2(file, buf, want, offset, libc::RWF_NOWAIT) {
        Ok(n) => CacheRead::Got(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => CacheRead::WouldWait,
        // Unsupported flag (EOPNOTSUPP, EINVAL) or call (ENOSYS); any other
        // error comes back from the blocking read, which reports it.
        Err(_) => CacheRead::Unsupported,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_cached(_file: &File, _buf: &mut BytesMut, _want: usize, _offset: u64) -> CacheRead {
    CacheRead::Unsupported
}

/// Appends up to `want` bytes at `offset` to `buf`, waiting for the disk if need be.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_at(file: &File, buf: &mut BytesMut, want: usize, offset: u64) -> io::Result<usize> {
    preadv2(file, buf, want, offset, 0)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_at(file: &File, buf: &mut BytesMut, want: usize, offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt as _;
    let start = buf.len();
    buf.resize(start + want, 0);
    let read = loop {
        match file.read_at(&mut buf[start..], offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => break read,
        }
    };
    buf.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}

/// `preadv2` of up to `want` bytes at `offset` into the spare capacity of `buf`
/// (which must have room for them), growing `buf` by what was read; retried
/// when a signal interrupts it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn preadv2(file: &File, buf: &mut BytesMut, want: usize, offset: u64, flags: libc::c_int) -> io::Result<usize> {
    use std::os::fd::AsRawFd as _;
    let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let spare = buf.spare_capacity_mut();
    let len = want.min(spare.len());
    let iov = libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: len };
    let read = loop {
        // SAFETY: the one iovec points into `buf`'s spare capacity, valid for
        // `len` bytes and not aliased while the call runs; the kernel writes at
        // most `len` bytes there.
        let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, flags) };
        match usize::try_from(read) {
            Ok(read) => break read,
            Err(_) => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    };
    // SAFETY: the kernel initialised the first `read` (≤ `len`) spare bytes.
    unsafe { buf.set_len(buf.len() + read) };
    Ok(read)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use futures_util::TryStreamExt as _;

    use super::*;

    /// A file of `len` bytes under `target/` (a disk file system, where the
    /// page cache can be emptied: not tmpfs, which `/tmp` may be).
    fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp-unit");
        std::fs::create_dir_all(&dir).expect("target/tmp-unit");
        let mut file = tempfile::NamedTempFile::new_in(&dir).expect("a temp file");
        file.write_all(&data).expect("written");
        file.as_file().sync_all().expect("synced");
        (file, data)
    }

    async fn collect(stream: impl Stream<Item = io::Result<Bytes>>) -> io::Result<Vec<Bytes>> {
        stream.try_collect().await
    }

    #[tokio::test]
    async fn every_range_comes_back_exactly_in_chunks_of_at_most_the_chunk_size() {
        let (file, data) = file_of(300_001);
        for try_cache in [true, false] {
            for (offset, len) in [(0, 300_001), (0, 1), (1, 100_000), (99_999, 200_002), (300_000, 1), (5, 0)] {
                let opened = file.reopen().expect("reopened");
                let got = collect(chunks(opened, offset, len, 65_536, try_cache)).await.expect("read");
                assert!(got.iter().all(|c| !c.is_empty() && c.len() <= 65_536), "{offset}+{len}: chunk sizes");
                let start = offset as usize;
                assert_eq!(got.concat(), data[start..start + len as usize], "{offset}+{len}, try_cache {try_cache}");
            }
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_recorded_size_ends_in_an_error() {
        let (file, _) = file_of(10_000);
        for try_cache in [true, false] {
            let error = collect(chunks(file.reopen().expect("reopened"), 5_000, 6_000, 4_096, try_cache))
                .await
                .expect_err("the file ends 1,000 bytes early");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn kernel_releases_parse_to_major_and_minor() {
        assert_eq!(kernel_version("6.18.44-fc-v1045\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(kernel_version("4.18.0-553.el8_10.x86_64"), Some((4, 18)));
        assert_eq!(kernel_version("garbage"), None);
        assert!((5, 10) < (5, 11) && (6, 1) >= (5, 11), "compared as (major, minor)");
    }

    #[tokio::test]
    async fn data_files_open_without_access_time_updates_and_read_whole() {
        let (file, data) = file_of(200_000);
        let opened = open_data(file.path().to_owned()).await.expect("opened");
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: F_GETFL on a valid descriptor.
            let flags = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GETFL) };
            assert_ne!(flags & libc::O_NOATIME, 0, "O_NOATIME (the test owns the file)");
        }
        let got = collect(file_chunks(opened, 0, 200_000, 120 * 1024)).await.expect("read");
        assert_eq!(got.concat(), data);
        let missing = open_data(file.path().with_extension("missing")).await.expect_err("no such file");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[tokio::test]
    async fn a_file_out_of_the_page_cache_is_read_on_the_blocking_pool() {
        use std::os::fd::AsRawFd as _;
        assert!(page_cache_reads_work(), "this machine's kernel is 5.11 or later");
        let (file, data) = file_of(1 << 20);
        let evict = || {
            // SAFETY: advice on a valid descriptor; it only drops clean cached pages.
            let advised = unsafe { libc::posix_fadvise(file.as_file().as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(advised, 0, "posix_fadvise");
        };
        let opened = file.reopen().expect("reopened");
        let mut buf = BytesMut::with_capacity(4_096);
        assert!(matches!(read_cached(&opened, &mut buf, 4_096, 0), CacheRead::Got(4_096)), "a fresh file is cached");
        evict();
        let mut buf = BytesMut::with_capacity(4_096);
        assert!(
            matches!(read_cached(&opened, &mut buf, 4_096, 512 * 1024), CacheRead::WouldWait),
            "RWF_NOWAIT refuses a read that would wait for the disk (the temp dir must be on a disk file system)"
        );
        evict();
        let got = collect(file_chunks(opened, 0, 1 << 20, 120 * 1024)).await.expect("read");
        assert_eq!(got.concat(), data);
    }
}
