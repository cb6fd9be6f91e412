//! Blobs as files under one directory. A put writes `<root>/.tmp/<random>` and renames it into
//! place only once the whole body arrived within the limit, so readers never see half a file.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{Blob, BlobError, BlobResult, BlobStore, ByteStream, valid_key};

/// Chunk size of reads.
const READ_CHUNK: usize = 64 * 1024;

pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Uses (creating) `root`; stale temporary files of an earlier run are removed.
    pub fn open(root: &Path) -> BlobResult<Self> {
        let tmp = root.join(".tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(backend)?;
        Ok(Self { root: root.to_owned() })
    }

    fn path(&self, key: &str) -> BlobResult<PathBuf> {
        if !valid_key(key) {
            return Err(BlobError::InvalidKey);
        }
        Ok(self.root.join(key))
    }
}

fn backend(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

/// Removes a half-written file however the put ends: an error, or the caller dropping the
/// future (a client that hangs up mid-upload) — not only the paths that return.
struct TmpFile(Option<PathBuf>);

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn not_found_or(e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound { BlobError::NotFound } else { backend(e) }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &str, mut body: ByteStream, limit: u64) -> BlobResult<u64> {
        let path = self.path(key)?;
        let tmp = self.root.join(".tmp").join(format!("{:016x}", rand::random::<u64>()));
        let mut guard = TmpFile(Some(tmp.clone()));
        let size = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(backend)?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                file.write_all(&chunk).await.map_err(backend)?;
            }
            file.sync_all().await.map_err(backend)?;
            Ok(size)
        }
        .await?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(backend)?;
        }
        tokio::fs::rename(&tmp, &path).await.map_err(backend)?;
        guard.0 = None;
        Ok(size)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> BlobResult<Blob> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(not_found_or)?;
        let size = file.metadata().await.map_err(backend)?.len();
        let (start, end) = match range {
            Some(r) => (r.start.min(size), r.end.min(size).max(r.start.min(size))),
            None => (0, size),
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(backend)?;
        }
        let len = end - start;
        let reader = file.take(len);
        let body = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK);
        Ok(Blob { body: Box::pin(body), len, size })
    }

    async fn head(&self, key: &str) -> BlobResult<Option<u64>> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LocalBlobs;

    struct Fresh {
        blobs: LocalBlobs,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for Fresh {
        type Target = LocalBlobs;
        fn deref(&self) -> &LocalBlobs {
            &self.blobs
        }
    }

    fn fresh() -> Fresh {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = LocalBlobs::open(&dir.path().join("files")).expect("open");
        Fresh { blobs, _dir: dir }
    }

    crate::blob_contract_tests!(fresh());

    #[tokio::test]
    async fn a_put_abandoned_midway_leaves_no_partial_file() {
        use crate::BlobStore;
        use futures_util::StreamExt;
        let blobs = fresh();
        // One chunk, then a client that never sends the rest and is given up on.
        let body = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"half"))])
            .chain(futures_util::stream::pending());
        let put = blobs.put("k", Box::pin(body), u64::MAX);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), put).await.is_err());
        let tmp = blobs.root.join(".tmp");
        assert_eq!(std::fs::read_dir(&tmp).map(Iterator::count).ok(), Some(0));
        assert!(matches!(blobs.head("k").await, Ok(None)));
    }
}
