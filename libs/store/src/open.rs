//! Choosing the backend from where the data lives.

use std::path::Path;
use std::sync::Arc;

use crate::{SqliteStore, StoreRef, StoreResult};

/// Whether `location` is a MongoDB connection string (Rocket.Chat's `MONGO_URL`).
pub fn is_mongo_url(location: &str) -> bool {
    location.starts_with("mongodb://") || location.starts_with("mongodb+srv://")
}

/// Opens the store at `location`: `MongoStore` for a MongoDB URL, else the SQLite database
/// at that path. A MongoDB URL in a build without the `mongodb` feature is an error, never a
/// silent fallback to SQLite.
pub async fn open(location: &str) -> StoreResult<StoreRef> {
    if is_mongo_url(location) {
        return open_mongo(location).await;
    }
    Ok(Arc::new(SqliteStore::open(Path::new(location))?))
}

#[cfg(feature = "mongodb")]
async fn open_mongo(url: &str) -> StoreResult<StoreRef> {
    Ok(Arc::new(crate::MongoStore::connect(url).await?))
}

#[cfg(not(feature = "mongodb"))]
async fn open_mongo(_url: &str) -> StoreResult<StoreRef> {
    Err(crate::StoreError::Unavailable(NO_MONGODB.into()))
}

/// What a build without MongoDB says when asked for it.
#[cfg(any(test, not(feature = "mongodb")))]
pub(crate) const NO_MONGODB: &str = "MONGO_URL names a MongoDB server, but this binary was built \
     without MongoDB support: rebuild with the `mongodb` feature of apogee-store, or unset MONGO_URL \
     to use the embedded SQLite store";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::StoreError;

    #[test]
    fn mongo_urls_are_recognised() {
        assert!(is_mongo_url("mongodb://localhost:27017/rocketchat?replicaSet=rs0"));
        assert!(is_mongo_url("mongodb+srv://cluster.example.com/rocketchat"));
        assert!(!is_mongo_url("/var/lib/apogee/apogee.db"));
        assert!(!is_mongo_url("mongodb.db"));
    }

    #[tokio::test]
    async fn a_path_opens_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apogee.db");
        let store = open(path.to_str().unwrap()).await.unwrap();
        store.insert_user(crate::testsuite::user("u1", "alice", "a@x.io")).await.unwrap();
        assert!(store.user_by_id("u1").await.unwrap().is_some());
        assert!(path.exists());
    }

    #[cfg(not(feature = "mongodb"))]
    #[tokio::test]
    async fn a_mongo_url_without_the_feature_is_refused() {
        let err = open("mongodb://localhost:27017/rocketchat").await.err().unwrap();
        assert_eq!(err, StoreError::Unavailable(NO_MONGODB.into()));
    }

    /// The build without MongoDB says so in every test summary (the build with it has its own,
    /// in `mongo::tests`).
    #[cfg(not(feature = "mongodb"))]
    #[test]
    fn mongodb_contract_suite_skipped() {
        use std::io::Write;

        assert!(
            std::env::var("MONGODB_URI").is_err(),
            "MONGODB_URI is set, but this build has no `mongodb` feature: \
             run `cargo nextest run -p apogee-store --features mongodb`"
        );
        // Straight to stderr, past the test harness's capture.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP mongodb store contract: MONGODB_URI not set and apogee-store built without the `mongodb` feature"
        );
    }

    #[cfg(feature = "mongodb")]
    #[tokio::test]
    async fn a_mongo_url_with_the_feature_connects_to_mongodb() {
        // Nothing listens on port 1: the MongoDB driver must be the one failing, quickly.
        let err = open("mongodb://127.0.0.1:1/rocketchat?serverSelectionTimeoutMS=200").await.err().unwrap();
        let StoreError::Unavailable(detail) = err else { panic!("{err:?}") };
        assert_ne!(detail, NO_MONGODB);
        assert!(detail.contains("127.0.0.1:1"), "{detail}");
    }
}
