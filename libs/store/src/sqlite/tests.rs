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

/// A text in more messages than the trigram index is asked for (the room read newest first)
/// and a rare one (the index's matches looked up) page and sort alike.
#[tokio::test]
async fn searches_page_alike_whichever_plan_they_take() {
    use crate::testsuite::{message, room};
    use crate::{MessageFilter, MessageSearch, MessageStore, RoomStore, RoomWrite};
    use apogee_types::PageRequest;
    let store = SqliteStore::open_temp().unwrap();
    for (rid, n) in [("r1", 2_100), ("r2", 100)] {
        let mut write = RoomWrite::new(rid);
        write.create = Some(room(rid, rid));
        write.messages = (0..n)
            .map(|i| {
                let mut m = message(&format!("{rid}-{i}"), rid, "u1", i);
                m.msg =
                    if i % 500 == 0 { format!("Common and rare {i}") } else { format!("a COMMON one {i}") };
                m
            })
            .collect();
        store.write_room(write).await.unwrap();
    }
    let find = |text: &str, ascending: bool, offset: u64, count: u64| {
        let search = MessageSearch { text: Some(text.into()), ascending, ..Default::default() };
        let store = &store;
        async move {
            let page = store
                .find_messages(
                    "r1",
                    &MessageFilter::Search(Box::new(search)),
                    PageRequest { offset, count: Some(count) },
                )
                .await
                .unwrap();
            page.items.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    // 2,200 matches in all: the room is read.
    assert_eq!(find("common", false, 0, 3).await, ["r1-2099", "r1-2098", "r1-2097"]);
    assert_eq!(find("coMMon", false, 2, 2).await, ["r1-2097", "r1-2096"]);
    assert_eq!(find("common", true, 0, 2).await, ["r1-0", "r1-1"]);
    // Five matches: the index drives.
    assert_eq!(find("RARE", false, 0, 10).await, ["r1-2000", "r1-1500", "r1-1000", "r1-500", "r1-0"]);
    assert_eq!(find("rare", true, 1, 2).await, ["r1-500", "r1-1000"]);
    assert_eq!(find("nowhere", false, 0, 10).await, Vec::<String>::new());
}

/// A rename reads the user's messages in batches: every one of more than a batch is rewritten.
#[tokio::test]
async fn a_rename_rewrites_more_messages_than_a_batch() {
    use crate::testsuite::{message, room};
    use crate::{MessageStore, RoomStore, RoomWrite, UserRename};
    let store = SqliteStore::open_temp().unwrap();
    let mut write = RoomWrite::new("r1");
    write.create = Some(room("r1", "r1"));
    write.messages = (0..1_234).map(|i| message(&format!("m{i}"), "r1", "u1", i)).collect();
    store.write_room(write).await.unwrap();
    let rename = UserRename {
        user_id: "u1".into(),
        old_username: "u1".into(),
        username: Some("renamed".into()),
        name: None,
        at: apogee_types::Millis(5_000),
    };
    store.rename_user(&rename).await.unwrap();
    for i in [0, 499, 500, 1_000, 1_233] {
        let m = store.message_by_id(&format!("m{i}")).await.unwrap().unwrap();
        assert_eq!(m.u.username, "renamed", "m{i}");
    }
}
