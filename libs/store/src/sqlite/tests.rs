#![allow(clippy::unwrap_used)]

use crate::SqliteStore;

crate::store_contract_tests!(SqliteStore::open_temp().unwrap());

#[tokio::test]
async fn reopening_keeps_data_and_schema() {
    use crate::UserStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_user(crate::testsuite::user("u1", "alice", "a@x.io")).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.user_by_id("u1").await.unwrap().is_some());
}
