//! Streaming a local crate file to a client with one copy and, usually, no thread hand-off.
//!
//! A download from the local store is read in [`CHUNK`]-sized pieces straight into the buffers
//! the response sends. On Linux each piece is first read on the calling task with
//! `preadv2(RWF_NOWAIT)`, which copies from the page cache or fails with `EAGAIN` instead of
//! waiting for the disk: a cached file (the usual case for a registry's popular crates) is
//! served without blocking a worker and without a hand-off to the blocking pool. Pieces that
//! are not cached, and every piece on other systems, are read on the blocking pool.
//!
//! Compared with `tokio::fs::File` behind a `ReaderStream`, this drops one copy and the
//! intermediate buffer per connection, and the hand-off per piece for cached files.

use std::fs::File;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::BlobError;

/// How much one read takes. Small enough that 64 concurrent downloads hold a few MiB of
/// buffers; large enough that a 1 MB crate is 16 reads.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Where the next read starts and how much is left.
struct Position {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
}

/// Opens `path` and returns its size and a stream of its bytes.
pub(crate) async fn open(
    path: std::path::PathBuf,
    key: &str,
) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
    let opened = ktra_core::task::spawn_blocking(move || {
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        Ok::<_, std::io::Error>((file, size))
    })
    .await
    .map_err(|error| BlobError::Unavailable(error.to_string()))?;
    let (file, size) = match opened {
        Ok(found) => found,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(BlobError::NotFound(key.to_owned()));
        }
        Err(error) => return Err(BlobError::Unavailable(format!("{key}: {error}"))),
    };
    let start = Position {
        file: Arc::new(file),
        offset: 0,
        remaining: size,
    };
    let owned_key = key.to_owned();
    let stream = futures::stream::try_unfold(start, |position| async move {
        if position.remaining == 0 {
            return Ok(None);
        }
        let len = usize::try_from(position.remaining).map_or(CHUNK, |left| left.min(CHUNK));
        let chunk = match read_cached(&position.file, position.offset, len) {
            Some(read) => read?,
            None => {
                let file = Arc::clone(&position.file);
                let offset = position.offset;
                ktra_core::task::spawn_blocking(move || read_blocking(&file, offset, len))
                    .await
                    .map_err(std::io::Error::other)??
            }
        };
        if chunk.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than its size",
            ));
        }
        let read = chunk.len() as u64;
        Ok(Some((
            chunk,
            Position {
                offset: position.offset + read,
                remaining: position.remaining.saturating_sub(read),
                file: position.file,
            },
        )))
    })
    .map_err(move |error| BlobError::Unavailable(format!("{owned_key}: {error}")))
    .boxed();
    Ok((size, stream))
}

/// Reads `len` bytes at `offset` if they are in the page cache; `None` when the read would
/// wait for the disk (or the system cannot tell), so the caller reads on the blocking pool.
#[cfg(target_os = "linux")]
fn read_cached(file: &File, offset: u64, len: usize) -> Option<std::io::Result<Bytes>> {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    let mut buffer = BytesMut::zeroed(len);
    let result = preadv2(
        file,
        &mut [std::io::IoSliceMut::new(&mut buffer)],
        offset,
        ReadWriteFlags::NOWAIT,
    );
    match result {
        Ok(read) => {
            buffer.truncate(read);
            Some(Ok(buffer.freeze()))
        }
        Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS) => None,
        Err(error) => Some(Err(error.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _offset: u64, _len: usize) -> Option<std::io::Result<Bytes>> {
    None
}

/// Reads up to `len` bytes at `offset`, waiting for the disk if need be.
fn read_blocking(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buffer = BytesMut::zeroed(len);
    let read = file.read_at(&mut buffer, offset)?;
    buffer.truncate(read);
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    async fn collect(path: &Path) -> (u64, Vec<Bytes>) {
        let (size, stream) = open(path.to_owned(), "key").await.unwrap();
        (size, stream.try_collect().await.unwrap())
    }

    #[tokio::test]
    async fn streams_a_file_in_chunks_whatever_its_size() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let path = dir.path().join(format!("f{size}"));
            let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &content).unwrap();
            let (reported, chunks) = collect(&path).await;
            assert_eq!(reported, size as u64);
            assert!(chunks.iter().all(|chunk| chunk.len() <= CHUNK));
            assert_eq!(chunks.concat(), content, "{size} bytes");
        }
    }

    #[tokio::test]
    async fn the_blocking_path_reads_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(&read_blocking(&file, 3, 4).unwrap()[..], b"3456");
        assert_eq!(&read_blocking(&file, 8, 4).unwrap()[..], b"89");
        if let Some(cached) = read_cached(&file, 3, 4) {
            assert_eq!(&cached.unwrap()[..], b"3456");
        }
    }

    #[tokio::test]
    async fn a_missing_file_is_not_found_and_a_shrunk_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            open(dir.path().join("none"), "none").await,
            Err(BlobError::NotFound(_))
        ));
        let path = dir.path().join("shrinks");
        std::fs::write(&path, vec![1_u8; 3 * CHUNK]).unwrap();
        let (_, mut stream) = open(path.clone(), "shrinks").await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().len(), CHUNK);
        std::fs::write(&path, vec![1_u8; CHUNK]).unwrap();
        let rest: Vec<_> = stream.collect().await;
        assert!(rest.last().unwrap().is_err(), "{rest:?}");
    }
}
