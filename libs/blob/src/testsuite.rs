//! The contract every blob backend keeps. Each function takes a fresh, empty store; a backend's
//! tests instantiate them all with [`blob_contract_tests!`](crate::blob_contract_tests).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use crate::{BlobError, BlobStore, ByteStream, collect, once};

/// Instantiates every contract test. `$make` yields something that dereferences to a fresh,
/// empty [`BlobStore`](crate::BlobStore).
#[macro_export]
macro_rules! blob_contract_tests {
    ($make:expr) => {
        $crate::blob_contract_tests!(@tests $make;
            put_get_roundtrip, ranges, head_and_delete, too_large_stores_nothing,
            failed_body_stores_nothing, invalid_keys_refused, large_streamed_blob, replace_keeps_last);
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make;
                $crate::testsuite::$name(&*store).await;
            }
        )*
    };
}

fn chunks(parts: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p)))))
}

fn key(name: &str) -> String {
    format!("t{:08x}/{name}", rand::random::<u32>())
}

pub async fn put_get_roundtrip(store: &dyn BlobStore) {
    let k = key("a");
    let size = store.put(&k, chunks(vec![b"hello ".to_vec(), b"world".to_vec()]), 100).await.unwrap();
    assert_eq!(size, 11);
    let blob = store.get(&k, None).await.unwrap();
    assert_eq!((blob.len, blob.size), (11, 11));
    assert_eq!(collect(blob.body, 1000).await.unwrap(), b"hello world");
    // An empty blob is a blob.
    let e = key("empty");
    assert_eq!(store.put(&e, chunks(vec![]), 10).await.unwrap(), 0);
    assert_eq!(store.head(&e).await.unwrap(), Some(0));
    assert!(collect(store.get(&e, None).await.unwrap().body, 10).await.unwrap().is_empty());
}

pub async fn ranges(store: &dyn BlobStore) {
    let k = key("r");
    store.put(&k, once(&b"0123456789"[..]), 100).await.unwrap();
    let blob = store.get(&k, Some(2..5)).await.unwrap();
    assert_eq!((blob.len, blob.size), (3, 10));
    assert_eq!(collect(blob.body, 100).await.unwrap(), b"234");
    let tail = store.get(&k, Some(7..10)).await.unwrap();
    assert_eq!(collect(tail.body, 100).await.unwrap(), b"789");
}

pub async fn head_and_delete(store: &dyn BlobStore) {
    let k = key("h");
    assert_eq!(store.head(&k).await.unwrap(), None);
    assert!(matches!(store.get(&k, None).await, Err(BlobError::NotFound)));
    store.put(&k, once(&b"abc"[..]), 100).await.unwrap();
    assert_eq!(store.head(&k).await.unwrap(), Some(3));
    store.delete(&k).await.unwrap();
    assert_eq!(store.head(&k).await.unwrap(), None);
    // Deleting again is fine.
    store.delete(&k).await.unwrap();
}

pub async fn too_large_stores_nothing(store: &dyn BlobStore) {
    let k = key("big");
    let r = store.put(&k, chunks(vec![vec![1; 6], vec![2; 6]]), 10).await;
    assert!(matches!(r, Err(BlobError::TooLarge { limit: 10 })), "{r:?}");
    assert_eq!(store.head(&k).await.unwrap(), None);
    // Exactly the limit is allowed.
    assert_eq!(store.put(&k, chunks(vec![vec![1; 5], vec![2; 5]]), 10).await.unwrap(), 10);
}

pub async fn failed_body_stores_nothing(store: &dyn BlobStore) {
    let k = key("fail");
    let body: ByteStream = Box::pin(futures_util::stream::iter([
        Ok(Bytes::from_static(b"part")),
        Err(std::io::Error::other("client went away")),
    ]));
    assert!(matches!(store.put(&k, body, 100).await, Err(BlobError::Body(_))));
    assert_eq!(store.head(&k).await.unwrap(), None);
}

pub async fn invalid_keys_refused(store: &dyn BlobStore) {
    for bad in ["../escape", "a/../../b", "", "/etc/passwd", ".tmp/x"] {
        assert!(matches!(store.put(bad, once(&b"x"[..]), 10).await, Err(BlobError::InvalidKey)), "{bad}");
        assert!(matches!(store.get(bad, None).await, Err(BlobError::InvalidKey)), "{bad}");
    }
}

/// Larger than one S3 multipart part, sent in uneven chunks.
pub async fn large_streamed_blob(store: &dyn BlobStore) {
    let k = key("large");
    let total: usize = 12 * 1024 * 1024 + 123;
    let pattern = |i: usize| (i % 251) as u8;
    let mut parts = Vec::new();
    let mut at = 0;
    while at < total {
        let n = (700_001).min(total - at);
        parts.push((at..at + n).map(pattern).collect::<Vec<u8>>());
        at += n;
    }
    assert_eq!(store.put(&k, chunks(parts), total as u64).await.unwrap(), total as u64);
    let blob = store.get(&k, None).await.unwrap();
    assert_eq!(blob.size, total as u64);
    let bytes = collect(blob.body, total).await.unwrap();
    assert_eq!(bytes.len(), total);
    assert!(bytes.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    let mid = store.get(&k, Some(9_000_000..9_000_010)).await.unwrap();
    let expect: Vec<u8> = (9_000_000..9_000_010).map(pattern).collect();
    assert_eq!(collect(mid.body, 100).await.unwrap(), expect);
    // Over the limit by one byte, across parts: refused, the earlier blob stays.
    let over = vec![vec![0u8; 8 * 1024 * 1024], vec![0u8; 8 * 1024 * 1024]];
    assert!(matches!(
        store.put(&k, chunks(over), 16 * 1024 * 1024 - 1).await,
        Err(BlobError::TooLarge { .. })
    ));
    assert_eq!(store.head(&k).await.unwrap(), Some(total as u64));
    store.delete(&k).await.unwrap();
}

pub async fn replace_keeps_last(store: &dyn BlobStore) {
    let k = key("rep");
    store.put(&k, once(&b"first"[..]), 100).await.unwrap();
    store.put(&k, once(&b"second!"[..]), 100).await.unwrap();
    assert_eq!(collect(store.get(&k, None).await.unwrap().body, 100).await.unwrap(), b"second!");
}
