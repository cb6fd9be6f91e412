//! The blob seam: where file bytes live. [`BlobStore`] is the trait; [`LocalBlobs`] keeps blobs
//! in a directory (the embedded default, `<data>/files`), [`S3Blobs`] in any S3-compatible
//! bucket. Both run the same contract suite (`testsuite` feature).
//!
//! Keys are chosen by the services (random ids), never by clients, and are still validated
//! ([`valid_key`]) so no key can name a path outside the store. Bodies travel as streams of
//! [`Bytes`] chunks: nothing here holds a whole file in memory.

mod local;
mod s3;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Config};

/// A body: chunks of bytes, or the error that ended it.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    /// The body grew past the limit given to [`BlobStore::put`]; nothing was stored.
    #[error("blob larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("invalid blob key")]
    InvalidKey,
    /// The body stream failed (the client went away); nothing was stored.
    #[error("body: {0}")]
    Body(String),
    #[error("blob backend: {0}")]
    Backend(String),
}

pub type BlobResult<T> = Result<T, BlobError>;

/// What [`BlobStore::get`] returns.
pub struct Blob {
    /// The bytes asked for: the whole blob, or the range.
    pub body: ByteStream,
    /// Length of `body`.
    pub len: u64,
    /// Size of the whole blob.
    pub size: u64,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("len", &self.len).field("size", &self.size).finish_non_exhaustive()
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing any blob there, and returns its size. A body longer
    /// than `limit` bytes is refused with [`BlobError::TooLarge`] and nothing is stored; a
    /// reader never sees a partly written blob.
    async fn put(&self, key: &str, body: ByteStream, limit: u64) -> BlobResult<u64>;
    /// The blob, or the bytes `range` of it (clamped to its size; the caller resolves HTTP
    /// ranges against the size it knows).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> BlobResult<Blob>;
    /// The blob's size, `None` when there is none.
    async fn head(&self, key: &str) -> BlobResult<Option<u64>>;
    /// Removes the blob; removing a missing blob is not an error.
    async fn delete(&self, key: &str) -> BlobResult<()>;
}

/// The handle services hold.
pub type BlobRef = Arc<dyn BlobStore>;

/// Keys are 1–200 characters of `[A-Za-z0-9._-]`, `/`-separated segments that are neither
/// empty nor `.`/`..`: safe as a relative path and as an S3 key.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.starts_with('.')
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// A stream over one chunk (tests, small generated blobs such as thumbnails).
pub fn once(bytes: impl Into<Bytes>) -> ByteStream {
    let bytes = bytes.into();
    Box::pin(futures_util::stream::iter([Ok(bytes)]))
}

/// Reads a whole stream into memory: only for small blobs (thumbnails, avatars, tests).
pub async fn collect(mut body: ByteStream, limit: usize) -> BlobResult<Vec<u8>> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(BlobError::TooLarge { limit: limit as u64 });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(valid_key("abc"));
        assert!(valid_key("uploads/AbC-12_x.png"));
        for bad in ["", "..", "../x", "a/../b", "/abs", "a//b", ".hidden", "a\\b", "a b", "é"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(!valid_key(&"a".repeat(201)));
    }
}
