//! The contract every store backend keeps. Each function takes a fresh, empty store; a backend's
//! tests instantiate them all with [`store_contract_tests!`](crate::store_contract_tests).
#![allow(clippy::unwrap_used)]

use apogee_types::{
    Email, LoginToken, Mention, Message, Millis, Page, PageRequest, Room, RoomType, Subscription, User,
    UserRef,
};

use crate::{
    HistoryQuery, MessageFilter, MessageReport, MessageSearch, RoomFilter, RoomWrite, Store, StoreError,
    ThreadFilter, Upload, UserFilter, UserRename,
};

mod integrations;
mod teams;
pub use integrations::*;
pub use teams::*;

/// Instantiates every contract test for a backend. `$make` is an async expression that yields
/// a fresh, empty store.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@tests $make;
            users_roundtrip, usernames_and_emails_are_unique, users_list_filters_and_pages,
            update_user_applies_mutation, login_tokens_resolve_and_revoke, prune_keeps_newest_tokens,
            room_create_with_subscriptions, room_names_are_unique, messages_get_sequence_numbers,
            teams_roundtrip_and_unique_names, team_members_add_roles_remove, rooms_of_team_follow_team_id,
            duplicate_message_id_writes_nothing, unread_is_derived_from_last_read, history_windows,
            group_mentions_are_derived_from_last_read,
            subscriptions_since_and_removed, delete_room_removes_everything, list_rooms_filters,
            mutation_rejection_writes_nothing, config_upserts, concurrent_posts_keep_count,
                        delete_message_moves_last_message, changes_since_for_sync, find_messages_filters,
            kept_last_message_counts_the_message_only,
            delete_user_login_tokens_removes_all, personal_tokens_listed_and_unique_by_name,
            thread_roots_replies_and_reports,
            uploads_roundtrip, room_uploads_list_complete_newest_first, room_images_are_images_up_to_a_time,
            message_search_conditions, hidden_messages_stay_out_of_reads, integrations_roundtrip_update_delete,
            integrations_list_by_kind_owner_and_channel, rename_user_rewrites_every_copy);
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make;
                $crate::testsuite::$name(&store).await;
            }
        )*
    };
}

pub fn user(id: &str, username: &str, email: &str) -> User {
    User {
        id: id.into(),
        username: username.into(),
        name: Some(format!("{username} name")),
        emails: vec![Email { address: email.into(), verified: false }],
        roles: vec!["user".into()],
        kind: "user".into(),
        active: true,
        status: "offline".into(),
        status_default: "online".into(),
        status_text: String::new(),
        utc_offset: 0.0,
        created_at: Millis(1),
        updated_at: Millis(1),
        last_login: None,
        password_bcrypt: None,
        require_password_change: false,
        language: None,
        nickname: None,
        bio: None,
        custom_fields: Default::default(),
        preferences: Default::default(),
        avatar_etag: None,
    }
}

pub fn room(id: &str, name: &str) -> Room {
    let creator = UserRef { id: "u1".into(), username: "alice".into(), name: None };
    Room::new(id.into(), RoomType::Channel, Some(name.into()), Some(creator), Millis(1))
}

pub fn subscription(rid: &str, uid: &str, username: &str) -> Subscription {
    Subscription {
        id: format!("{rid}-{uid}"),
        rid: rid.into(),
        u: UserRef { id: uid.into(), username: username.into(), name: None },
        t: RoomType::Channel,
        name: rid.into(),
        fname: None,
        ts: Millis(1),
        updated_at: Millis(1),
        open: true,
        alert: false,
        user_mentions: 0,
        group_mentions: 0,
        ls: None,
        lr: None,
        f: false,
        roles: vec![],
        archived: false,
        last_read_seq: 0,
        notifications: Default::default(),
        tunread: vec![],
        tunread_user: vec![],
        tunread_group: vec![],
        ignored: vec![],
        unread: 0,
    }
}

pub fn message(id: &str, rid: &str, uid: &str, ts: i64) -> Message {
    Message {
        id: id.into(),
        rid: rid.into(),
        msg: format!("text of {id}"),
        ts: Millis(ts),
        u: UserRef { id: uid.into(), username: uid.into(), name: None },
        updated_at: Millis(ts),
        t: None,
        mentions: vec![],
        channels: vec![],
        tmid: None,
        tshow: false,
        groupable: None,
        seq: 0,
        edited_at: None,
        edited_by: None,
        reactions: Default::default(),
        extra: Default::default(),
    }
}

async fn room_with_members(store: &dyn Store, rid: &str, members: &[(&str, &str)]) {
    let mut write = RoomWrite::new(rid);
    write.create = Some(room(rid, rid));
    write.add_subscriptions = members.iter().map(|(uid, name)| subscription(rid, uid, name)).collect();
    store.write_room(write).await.unwrap();
}

const ALL: PageRequest = PageRequest { offset: 0, count: None };

pub async fn users_roundtrip(store: &dyn Store) {
    store.insert_user(user("u1", "Alice", "alice@example.com")).await.unwrap();
    let got = store.user_by_id("u1").await.unwrap().unwrap();
    assert_eq!(got, user("u1", "Alice", "alice@example.com"));
    assert_eq!(store.user_by_username("alice").await.unwrap().unwrap().id, "u1");
    assert_eq!(store.user_by_email("ALICE@example.com").await.unwrap().unwrap().id, "u1");
    assert!(store.user_by_id("nope").await.unwrap().is_none());
    store.delete_user("u1").await.unwrap();
    assert!(store.user_by_id("u1").await.unwrap().is_none());
    assert!(matches!(store.delete_user("u1").await, Err(StoreError::NotFound { .. })));
}

pub async fn usernames_and_emails_are_unique(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    let dup_name = store.insert_user(user("u2", "ALICE", "other@x.io")).await;
    assert!(matches!(dup_name, Err(StoreError::Conflict { .. })), "{dup_name:?}");
    let dup_mail = store.insert_user(user("u3", "bob", "A@X.io")).await;
    assert!(matches!(dup_mail, Err(StoreError::Conflict { .. })), "{dup_mail:?}");
    assert!(store.user_by_id("u2").await.unwrap().is_none());
}

pub async fn users_list_filters_and_pages(store: &dyn Store) {
    for (i, name) in ["carol", "alice", "bob", "alina"].iter().enumerate() {
        store.insert_user(user(&format!("u{i}"), name, &format!("{name}@x.io"))).await.unwrap();
    }
    let page =
        store.list_users(&UserFilter::default(), PageRequest { offset: 1, count: Some(2) }).await.unwrap();
    assert_eq!(page.total, 4);
    let names: Vec<_> = page.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alina", "bob"]);
    let filter = UserFilter { text: Some("ali".into()), ..Default::default() };
    let page = store.list_users(&filter, ALL).await.unwrap();
    assert_eq!(page.total, 2);
    let filter = UserFilter { text: Some("%".into()), ..Default::default() };
    assert_eq!(store.list_users(&filter, ALL).await.unwrap().total, 0, "LIKE wildcards are escaped");
    let filter = UserFilter { roles: vec!["admin".into()], ..Default::default() };
    assert_eq!(store.list_users(&filter, ALL).await.unwrap().total, 0);
    let newest = store.list_users(&UserFilter::default(), ALL).await.unwrap().items;
    let latest = newest.iter().map(|u| u.updated_at).max().unwrap();
    let filter = UserFilter { updated_since: Some(latest), ..Default::default() };
    let changed = store.list_users(&filter, ALL).await.unwrap().items;
    assert!(!changed.is_empty() && changed.iter().all(|u| u.updated_at >= latest), "{changed:?}");
    let filter = UserFilter { updated_since: Some(apogee_types::Millis(latest.0 + 1)), ..Default::default() };
    assert_eq!(store.list_users(&filter, ALL).await.unwrap().total, 0);
    let ids = store.users_by_ids(&["u1".into(), "u3".into(), "zz".into()]).await.unwrap();
    assert_eq!(ids.len(), 2);
}

pub async fn update_user_applies_mutation(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    let updated = store
        .update_user(
            "u1",
            Box::new(|u| {
                u.username = "alicia".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated.username, "alicia");
    assert!(store.user_by_username("alice").await.unwrap().is_none());
    assert!(store.user_by_username("alicia").await.unwrap().is_some());
    let missing = store.update_user("zz", Box::new(|_| Ok(()))).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

pub async fn login_tokens_resolve_and_revoke(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    let token = LoginToken::resume("h1".into(), "u1".into(), Millis(5));
    store.insert_login_token(token.clone()).await.unwrap();
    let (u, t) = store.user_by_token("h1").await.unwrap().unwrap();
    assert_eq!((u.id.as_str(), t), ("u1", token));
    store.delete_login_token("h1").await.unwrap();
    assert!(store.user_by_token("h1").await.unwrap().is_none());
    store.insert_login_token(LoginToken::resume("h2".into(), "u1".into(), Millis(6))).await.unwrap();
    store.delete_user("u1").await.unwrap();
    assert!(store.user_by_token("h2").await.unwrap().is_none(), "tokens go with their user");
}

pub async fn prune_keeps_newest_tokens(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    for i in 0..5 {
        store.insert_login_token(LoginToken::resume(format!("h{i}"), "u1".into(), Millis(i))).await.unwrap();
    }
    let pat =
        LoginToken { name: Some("ci".into()), ..LoginToken::resume("pat".into(), "u1".into(), Millis(0)) };
    store.insert_login_token(pat).await.unwrap();
    store.prune_login_tokens("u1", 2, Millis(100)).await.unwrap();
    for (hash, kept) in [("h0", false), ("h2", false), ("h3", true), ("h4", true), ("pat", true)] {
        assert_eq!(store.user_by_token(hash).await.unwrap().is_some(), kept, "{hash}");
    }
}

pub async fn room_create_with_subscriptions(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    let got = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!(got.users_count, 2);
    assert_eq!(store.room_by_name("R1").await.unwrap().unwrap().id, "r1");
    let sub = store.subscription("r1", "u2").await.unwrap().unwrap();
    assert_eq!(sub.u.username, "bob");
    let members = store.subscriptions_of_room("r1", ALL).await.unwrap();
    assert_eq!(members.total, 2);
    assert_eq!(members.items[0].u.username, "alice");
    let mine = store.rooms_of_user("u1", &[RoomType::Channel], ALL).await.unwrap();
    assert_eq!(mine.total, 1);
    assert_eq!(store.rooms_of_user("u1", &[RoomType::Group], ALL).await.unwrap().total, 0);
    let mut again = RoomWrite::new("r1");
    again.add_subscriptions = vec![subscription("r1", "u1", "alice")];
    assert!(matches!(store.write_room(again).await, Err(StoreError::Conflict { .. })));
}

pub async fn room_names_are_unique(store: &dyn Store) {
    room_with_members(store, "r1", &[]).await;
    let mut write = RoomWrite::new("r2");
    write.create = Some(room("r2", "R1"));
    assert!(matches!(store.write_room(write).await, Err(StoreError::Conflict { .. })));
    assert!(store.room_by_id("r2").await.unwrap().is_none());
}

pub async fn messages_get_sequence_numbers(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10), message("m2", "r1", "u1", 11)];
    let out = store.write_room(write).await.unwrap();
    assert_eq!(out.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    let room = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!(room.msgs, 2);
    assert_eq!(room.lm, Some(Millis(11)));
    assert_eq!(room.last_message.unwrap().id, "m2");
    assert_eq!(store.message_by_id("m1").await.unwrap().unwrap().seq, 1);
}

pub async fn duplicate_message_id_writes_nothing(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10)];
    store.write_room(write).await.unwrap();
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 12)];
    assert!(matches!(store.write_room(write).await, Err(StoreError::Conflict { .. })));
    let room = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!(room.msgs, 1, "the room's count is unchanged");
    assert_eq!(store.message_by_id("m1").await.unwrap().unwrap().ts, Millis(10));
}

pub async fn unread_is_derived_from_last_read(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    let mut write = RoomWrite::new("r1");
    let mut sys = message("s1", "r1", "u2", 9);
    sys.t = Some("uj".into());
    let mut reply = message("m3", "r1", "u1", 12);
    reply.tmid = Some("m1".into());
    write.messages = vec![sys, message("m1", "r1", "u1", 10), message("m2", "r1", "u1", 11), reply];
    write.update_subscriptions = vec![(
        "u1".into(),
        Box::new(|s: &mut Subscription, r: &apogee_types::Room| s.last_read_seq = r.msgs),
    )];
    store.write_room(write).await.unwrap();
    let bob = store.subscription("r1", "u2").await.unwrap().unwrap();
    assert_eq!(bob.unread, 2, "system messages, own messages and hidden thread replies do not count");
    assert_eq!(store.subscription("r1", "u1").await.unwrap().unwrap().unread, 0);
    assert_eq!(store.first_unread("r1", "u2", 0).await.unwrap().unwrap().id, "m1");
    let mut read = RoomWrite::new("r1");
    read.update_subscriptions = vec![(
        "u2".into(),
        Box::new(|s: &mut Subscription, r: &apogee_types::Room| s.last_read_seq = r.msgs),
    )];
    store.write_room(read).await.unwrap();
    assert_eq!(store.subscription("r1", "u2").await.unwrap().unwrap().unread, 0);
}

fn mentioning(mut m: Message, ids: &[&str]) -> Message {
    m.mentions = ids
        .iter()
        .map(|id| Mention { id: (*id).into(), username: (*id).into(), name: None, kind: None })
        .collect();
    m
}

pub async fn group_mentions_are_derived_from_last_read(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob"), ("u3", "carol")]).await;
    let mut write = RoomWrite::new("r1");
    let mut thread_only = mentioning(message("m5", "r1", "u1", 15), &["here"]);
    thread_only.tmid = Some("m1".into());
    let mut shown = mentioning(message("m6", "r1", "u1", 16), &["all"]);
    shown.tmid = Some("m1".into());
    shown.tshow = true;
    write.messages = vec![
        mentioning(message("m1", "r1", "u1", 10), &["all"]),
        message("m2", "r1", "u1", 11),
        mentioning(message("m3", "r1", "u1", 12), &["here", "u3"]),
        mentioning(message("m4", "r1", "u2", 13), &["all"]),
        thread_only,
        shown,
    ];
    let outcome = store.write_room(write).await.unwrap();
    assert!(outcome.messages[0].is_group_mention() && !outcome.messages[4].is_group_mention());
    let count = |uid: &'static str| async move {
        let sub = store.subscription("r1", uid).await.unwrap().unwrap();
        (sub.unread, sub.group_mentions)
    };
    // m1, m3, m6 for bob (m4 is his own, m5 stays in its thread); carol is named in m3.
    assert_eq!(count("u2").await, (4, 3));
    assert_eq!(count("u3").await, (5, 3), "a named user's mention is a user mention");
    assert_eq!(count("u1").await, (1, 1), "own messages never count");
    let listed = store.subscriptions_of_user("u2", None).await.unwrap();
    assert_eq!((listed[0].unread, listed[0].group_mentions), (4, 3));

    // Reading up to m3 leaves m6 (and m4, by someone else, for alice's view).
    let mut read = RoomWrite::new("r1");
    read.update_subscriptions =
        vec![("u2".into(), Box::new(|s: &mut Subscription, _: &apogee_types::Room| s.last_read_seq = 3))];
    let outcome = store.write_room(read).await.unwrap();
    assert_eq!((outcome.subscriptions[0].unread, outcome.subscriptions[0].group_mentions), (1, 1));
    let mut read = RoomWrite::new("r1");
    read.update_subscriptions = vec![(
        "u2".into(),
        Box::new(|s: &mut Subscription, r: &apogee_types::Room| s.last_read_seq = r.msgs),
    )];
    store.write_room(read).await.unwrap();
    assert_eq!(count("u2").await, (0, 0));
    // Marking unread again from m1 brings them back.
    let mut unread = RoomWrite::new("r1");
    unread.update_subscriptions =
        vec![("u2".into(), Box::new(|s: &mut Subscription, _: &apogee_types::Room| s.last_read_seq = 0))];
    store.write_room(unread).await.unwrap();
    assert_eq!(count("u2").await, (4, 3));
}

pub async fn history_windows(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = (1..=5).map(|i| message(&format!("m{i}"), "r1", "u1", i * 10)).collect();
    let mut reply = message("t1", "r1", "u1", 60);
    reply.tmid = Some("m1".into());
    write.messages.push(reply);
    store.write_room(write).await.unwrap();
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let all = store.history("r1", &HistoryQuery::default()).await.unwrap();
    assert_eq!(ids(all), ["m5", "m4", "m3", "m2", "m1"]);
    let q = HistoryQuery { show_thread_messages: true, count: Some(2), ..Default::default() };
    assert_eq!(ids(store.history("r1", &q).await.unwrap()), ["t1", "m5"]);
    let q = HistoryQuery { latest: Some(Millis(40)), oldest: Some(Millis(20)), ..Default::default() };
    assert_eq!(ids(store.history("r1", &q).await.unwrap()), ["m3"]);
    let q = HistoryQuery {
        latest: Some(Millis(40)),
        oldest: Some(Millis(20)),
        inclusive: true,
        ..Default::default()
    };
    assert_eq!(ids(store.history("r1", &q).await.unwrap()), ["m4", "m3", "m2"]);
    let q =
        HistoryQuery { oldest: Some(Millis(20)), oldest_first: true, count: Some(2), ..Default::default() };
    assert_eq!(
        ids(store.history("r1", &q).await.unwrap()),
        ["m3", "m4"],
        "the messages right after `oldest`"
    );
    let q = HistoryQuery { offset: 4, ..Default::default() };
    assert_eq!(ids(store.history("r1", &q).await.unwrap()), ["m1"]);
    let page = store.list_messages("r1", PageRequest { offset: 0, count: Some(2) }, true).await.unwrap();
    assert_eq!((page.total, ids(page.items)), (6, vec!["m1".to_owned(), "m2".to_owned()]));
}

pub async fn subscriptions_since_and_removed(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    room_with_members(store, "r2", &[("u1", "alice")]).await;
    assert_eq!(store.subscriptions_of_user("u1", None).await.unwrap().len(), 2);
    let before = Millis::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u2", Millis::now().0)];
    write.remove_subscriptions = vec![];
    store.write_room(write).await.unwrap();
    let mut leave = RoomWrite::new("r2");
    leave.remove_subscriptions = vec!["u1".into()];
    store.write_room(leave).await.unwrap();
    let changed = store.subscriptions_of_user("u1", Some(before)).await.unwrap();
    assert_eq!(changed.iter().map(|s| s.rid.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert_eq!(changed[0].unread, 1);
    let removed = store.removed_subscriptions_since("u1", before).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, "r2-u1");
    assert!(store.subscription("r2", "u1").await.unwrap().is_none());
    assert_eq!(store.room_by_id("r2").await.unwrap().unwrap().users_count, 0);
    let rooms = store.rooms_of_user_updated_since("u1", Some(before)).await.unwrap();
    assert_eq!(rooms.len(), 1);
}

pub async fn delete_room_removes_everything(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10)];
    store.write_room(write).await.unwrap();
    let before = Millis(0);
    let mut delete = RoomWrite::new("r1");
    delete.delete = true;
    store.write_room(delete).await.unwrap();
    assert!(store.room_by_id("r1").await.unwrap().is_none());
    assert!(store.message_by_id("m1").await.unwrap().is_none());
    assert!(store.subscription("r1", "u1").await.unwrap().is_none());
    assert_eq!(store.removed_rooms_since(before).await.unwrap().len(), 1);
    assert_eq!(store.removed_subscriptions_since("u1", before).await.unwrap().len(), 1);
    let mut missing = RoomWrite::new("r1");
    missing.messages = vec![message("m2", "r1", "u1", 10)];
    assert!(matches!(store.write_room(missing).await, Err(StoreError::NotFound { .. })));
}

pub async fn list_rooms_filters(store: &dyn Store) {
    room_with_members(store, "r1", &[]).await;
    let mut write = RoomWrite::new("r2");
    let mut group = room("r2", "secret");
    group.t = RoomType::Group;
    write.create = Some(group);
    store.write_room(write).await.unwrap();
    let mut write = RoomWrite::new("r3");
    let mut general = room("r3", "general");
    general.default = true;
    write.create = Some(general);
    store.write_room(write).await.unwrap();
    let channels = RoomFilter { types: vec![RoomType::Channel], ..Default::default() };
    let page = store.list_rooms(&channels, ALL).await.unwrap();
    assert_eq!(page.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r3", "r1"]);
    let text = RoomFilter { text: Some("CRE".into()), ..Default::default() };
    assert_eq!(store.list_rooms(&text, ALL).await.unwrap().items[0].id, "r2");
    let defaults = RoomFilter { default_only: true, ..Default::default() };
    assert_eq!(store.list_rooms(&defaults, ALL).await.unwrap().total, 1);
}

pub async fn mutation_rejection_writes_nothing(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10)];
    write.mutate = Some(Box::new(|_room| Err(StoreError::Rejected("room is archived".into()))));
    assert_eq!(store.write_room(write).await.unwrap_err(), StoreError::Rejected("room is archived".into()));
    assert!(store.message_by_id("m1").await.unwrap().is_none());
    assert_eq!(store.room_by_id("r1").await.unwrap().unwrap().msgs, 0);
}

pub async fn config_upserts(store: &dyn Store) {
    let setting = apogee_types::Setting {
        id: "Site_Name".into(),
        value: "Apogee".into(),
        package_value: "Rocket.Chat".into(),
        kind: "string".into(),
        public: true,
        group: "General".into(),
        updated_at: Millis(1),
    };
    store.upsert_settings(vec![setting.clone()]).await.unwrap();
    let mut changed = setting.clone();
    changed.value = "Other".into();
    store.upsert_settings(vec![changed.clone()]).await.unwrap();
    assert_eq!(store.settings().await.unwrap(), vec![changed]);
    let perm = apogee_types::Permission {
        id: "create-c".into(),
        roles: vec!["admin".into()],
        updated_at: Millis(1),
    };
    store.upsert_permissions(vec![perm.clone()]).await.unwrap();
    assert_eq!(store.permissions().await.unwrap(), vec![perm]);
    let role = apogee_types::Role {
        id: "admin".into(),
        name: "admin".into(),
        description: "Admin".into(),
        scope: "Users".into(),
        protected: true,
        mandatory_2fa: false,
        updated_at: Millis(1),
    };
    store.upsert_roles(vec![role.clone()]).await.unwrap();
    assert_eq!(store.roles().await.unwrap(), vec![role]);
}

pub async fn concurrent_posts_keep_count(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        tasks.push(async move {
            let mut write = RoomWrite::new("r1");
            write.messages = vec![message(&format!("m{i}"), "r1", "u1", i)];
            store.write_room(write).await.unwrap()
        });
    }
    let outcomes = futures_join_all(tasks).await;
    let mut seqs: Vec<u64> = outcomes.iter().map(|o| o.messages[0].seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>(), "every message got its own sequence number");
    assert_eq!(store.room_by_id("r1").await.unwrap().unwrap().msgs, 64);
}

/// Polls all futures concurrently on the current task (no extra dependency for one test).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::with_capacity(futures.len());
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

pub async fn kept_last_message_counts_the_message_only(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10)];
    store.write_room(write).await.unwrap();
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m2", "r1", "u1", 11)];
    write.keep_last_message = true;
    let outcome = store.write_room(write).await.unwrap();
    assert_eq!(outcome.messages[0].seq, 2);
    let room = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!((room.msgs, room.last_message.unwrap().id, room.lm), (2, "m1".to_owned(), Some(Millis(10))));
    assert!(store.message_by_id("m2").await.unwrap().is_some());
}

pub async fn delete_message_moves_last_message(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10), message("m2", "r1", "u1", 11)];
    store.write_room(write).await.unwrap();
    let deleted = store.delete_message("m2").await.unwrap();
    assert_eq!(deleted.id, "m2");
    assert!(store.message_by_id("m2").await.unwrap().is_none());
    let room = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!((room.last_message.unwrap().id, room.lm), ("m1".to_owned(), Some(Millis(10))));
    store.delete_message("m1").await.unwrap();
    assert!(store.room_by_id("r1").await.unwrap().unwrap().last_message.is_none());
    assert!(matches!(store.delete_message("m1").await, Err(StoreError::NotFound { .. })));
}

pub async fn changes_since_for_sync(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = (1..=4).map(|i| message(&format!("m{i}"), "r1", "u1", i * 10)).collect();
    store.write_room(write).await.unwrap();
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.messages_changed("r1", Millis(15), false, None).await.unwrap()), ["m2", "m3", "m4"]);
    assert_eq!(ids(store.messages_changed("r1", Millis(15), false, Some(1)).await.unwrap()), ["m2"]);
    assert_eq!(ids(store.messages_changed("r1", Millis(35), true, None).await.unwrap()), ["m3", "m2", "m1"]);
    store
        .update_message(
            "m1",
            Box::new(|m| {
                m.updated_at = Millis(100);
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store.messages_changed("r1", Millis(45), false, None).await.unwrap()),
        ["m1"],
        "edits count"
    );
    store.delete_message("m2").await.unwrap();
    let removed = store.messages_removed("r1", Millis(0), false, None).await.unwrap();
    assert_eq!(removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["m2"]);
    assert!(store.messages_removed("r2", Millis(0), false, None).await.unwrap().is_empty());
}

pub async fn find_messages_filters(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    room_with_members(store, "r2", &[("u1", "alice")]).await;
    let mut texts = vec![
        message("m1", "r1", "u1", 10),
        message("m2", "r1", "u1", 20),
        message("m3", "r1", "u2", 30),
        message("m4", "r1", "u2", 40),
    ];
    texts[0].msg = "Hello World".into();
    texts[1].msg = "100% sure_thing".into();
    texts[2].msg = "日本語のテキスト".into();
    texts[3].msg = "hello again".into();
    texts[3].mentions =
        vec![apogee_types::Mention { id: "u1".into(), username: "alice".into(), name: None, kind: None }];
    texts[0].extra.insert("pinned".into(), true.into());
    texts[1].extra.insert("starred".into(), serde_json::json!([{ "_id": "u2" }]));
    texts[1].extra.insert("pinned".into(), true.into());
    let mut write = RoomWrite::new("r1");
    write.messages = texts;
    store.write_room(write).await.unwrap();
    let mut other = RoomWrite::new("r2");
    other.messages = vec![message("x1", "r2", "u1", 50)];
    other.messages[0].msg = "hello elsewhere".into();
    store.write_room(other).await.unwrap();

    let ids = |p: apogee_types::Page<Message>| p.items.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let find = |f: MessageFilter| async move { store.find_messages("r1", &f, ALL).await };
    let text = |t: &str| MessageFilter::Text(t.into());
    assert_eq!(ids(find(text("HELLO")).await.unwrap()), ["m4", "m1"], "case-insensitive, newest first");
    assert_eq!(ids(find(text("llo wo")).await.unwrap()), ["m1"]);
    assert_eq!(ids(find(text("テキ")).await.unwrap()), ["m3"], "short CJK");
    assert_eq!(ids(find(text("本語のテ")).await.unwrap()), ["m3"], "CJK");
    assert_eq!(ids(find(text("%")).await.unwrap()), ["m2"], "LIKE wildcards are literal");
    assert_eq!(ids(find(text("e_t")).await.unwrap()), ["m2"]);
    assert!(find(text("\"quoted\"")).await.unwrap().items.is_empty());
    let page =
        store.find_messages("r1", &text("hello"), PageRequest { offset: 1, count: Some(1) }).await.unwrap();
    assert_eq!((page.total, ids(page)), (2, vec!["m1".to_owned()]));

    store
        .update_message(
            "m1",
            Box::new(|m| {
                m.msg = "goodbye".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(ids(find(text("hello")).await.unwrap()), ["m4"], "edits are searched");
    assert_eq!(ids(find(text("goodbye")).await.unwrap()), ["m1"]);
    store.delete_message("m4").await.unwrap();
    assert!(find(text("hello")).await.unwrap().items.is_empty(), "deletions leave the index");

    assert_eq!(ids(find(MessageFilter::Pinned).await.unwrap()), ["m1", "m2"], "pinned: oldest first");
    assert_eq!(ids(find(MessageFilter::StarredBy("u2".into())).await.unwrap()), ["m2"]);
    assert!(find(MessageFilter::StarredBy("u1".into())).await.unwrap().items.is_empty());
    let mut again = RoomWrite::new("r1");
    again.messages = vec![message("m5", "r1", "u2", 60)];
    again.messages[0].mentions =
        vec![apogee_types::Mention { id: "u1".into(), username: "alice".into(), name: None, kind: None }];
    store.write_room(again).await.unwrap();
    assert_eq!(ids(find(MessageFilter::Mentioning("alice".into())).await.unwrap()), ["m5"]);
    assert!(find(MessageFilter::Mentioning("bob".into())).await.unwrap().items.is_empty());
}

pub async fn delete_user_login_tokens_removes_all(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    store.insert_user(user("u2", "bob", "b@x.io")).await.unwrap();
    for (hash, uid, name) in [("a1", "u1", None), ("a2", "u1", Some("pat")), ("b1", "u2", None)] {
        let t = LoginToken {
            name: name.map(str::to_owned),
            ..LoginToken::resume(hash.into(), uid.into(), Millis(1))
        };
        store.insert_login_token(t).await.unwrap();
    }
    assert_eq!(store.delete_user_login_tokens("u1").await.unwrap(), 2);
    assert!(store.user_by_token("a1").await.unwrap().is_none());
    assert!(store.user_by_token("a2").await.unwrap().is_none());
    assert!(store.user_by_token("b1").await.unwrap().is_some(), "other users keep theirs");
    assert_eq!(store.delete_user_login_tokens("u1").await.unwrap(), 0);
}

/// Personal access tokens keep what their list shows; a name is unique per user, not globally.
pub async fn personal_tokens_listed_and_unique_by_name(store: &dyn Store) {
    store.insert_user(user("u1", "alice", "a@x.io")).await.unwrap();
    store.insert_user(user("u2", "bob", "b@x.io")).await.unwrap();
    let resume = LoginToken::resume("r1".into(), "u1".into(), Millis(1));
    let pat = LoginToken {
        name: Some("ci".into()),
        last_token_part: Some("XyZ123".into()),
        bypass_two_factor: true,
        ..LoginToken::resume("p1".into(), "u1".into(), Millis(2))
    };
    store.insert_login_token(resume.clone()).await.unwrap();
    store.insert_login_token(pat.clone()).await.unwrap();
    assert_eq!(store.login_tokens_of_user("u1").await.unwrap(), vec![resume, pat.clone()]);
    assert_eq!(store.user_by_token("p1").await.unwrap().unwrap().1, pat);
    let same_name = LoginToken { hashed_token: "p2".into(), created_at: Millis(3), ..pat.clone() };
    let clash = store.insert_login_token(same_name).await;
    assert!(matches!(clash, Err(StoreError::Conflict { .. })), "{clash:?}");
    assert!(store.user_by_token("p2").await.unwrap().is_none());
    let other_user = LoginToken { hashed_token: "p3".into(), user_id: "u2".into(), ..pat.clone() };
    store.insert_login_token(other_user).await.unwrap();
    assert_eq!(store.login_tokens_of_user("u2").await.unwrap().len(), 1);
    assert!(store.login_tokens_of_user("nobody").await.unwrap().is_empty());
}

/// A reply and its root's change land in one write (a missing root fails the whole write);
/// thread listings, syncs and removals; reports.
pub async fn thread_roots_replies_and_reports(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("root", "r1", "u1", 10), message("other", "r1", "u1", 11)];
    store.write_room(write).await.unwrap();

    let reply = |id: &str, ts: i64| Message { tmid: Some("root".into()), ..message(id, "r1", "u2", ts) };
    let bump = |tlm: i64| -> crate::MessageMutation {
        Box::new(move |m: &mut Message| {
            let n = m.extra.get("tcount").and_then(serde_json::Value::as_u64).unwrap_or(0);
            m.extra.insert("tcount".into(), (n + 1).into());
            m.extra.insert("tlm".into(), serde_json::json!({ "$date": tlm }));
            m.extra.insert("replies".into(), serde_json::json!(["u1", "u2"]));
            m.updated_at = Millis(tlm);
            Ok(())
        })
    };
    let mut write = RoomWrite::new("r1");
    write.messages = vec![reply("a", 20)];
    write.update_messages = vec![("root".into(), bump(20))];
    let outcome = store.write_room(write).await.unwrap();
    assert_eq!(outcome.updated_messages[0].extra["tcount"], 1);

    let mut write = RoomWrite::new("r1");
    write.messages = vec![reply("b", 21)];
    write.update_messages = vec![("missing".into(), bump(21))];
    assert!(matches!(store.write_room(write).await, Err(StoreError::NotFound { .. })));
    assert!(store.message_by_id("b").await.unwrap().is_none(), "the reply went with the failed write");

    let all = store.threads("r1", &ThreadFilter::default(), ALL).await.unwrap();
    assert_eq!((all.items.len(), all.total, all.items[0].id.as_str()), (1, 1, "root"));
    let following = ThreadFilter { follower: Some("u2".into()), ..Default::default() };
    assert_eq!(store.threads("r1", &following, ALL).await.unwrap().total, 1);
    let none = ThreadFilter { follower: Some("u3".into()), ..Default::default() };
    assert_eq!(store.threads("r1", &none, ALL).await.unwrap().total, 0);
    let by_id = ThreadFilter { ids: Some(vec!["other".into()]), ..Default::default() };
    assert_eq!(store.threads("r1", &by_id, ALL).await.unwrap().total, 0);
    let text = ThreadFilter { text: Some("TEXT OF R".into()), ..Default::default() };
    assert_eq!(store.threads("r1", &text, ALL).await.unwrap().total, 1);
    let replies = store.thread_messages("root", ALL).await.unwrap();
    assert_eq!(replies.items.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a"]);

    let (changed, removed) = store.threads_changed("r1", Millis(15)).await.unwrap();
    assert_eq!((changed.len(), removed.len()), (1, 0));
    store.delete_message("a").await.unwrap();
    let root = store.message_by_id("root").await.unwrap().unwrap();
    assert_eq!(root.extra["tcount"], 0, "deleting a reply lowers the count");
    let (_, removed) = store.thread_messages_changed("root", Millis(0)).await.unwrap();
    assert_eq!(removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a"]);
    store.delete_message("root").await.unwrap();
    let (_, removed) = store.threads_changed("r1", Millis(0)).await.unwrap();
    assert_eq!(removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["root"]);
    let deleted = store
        .removed_messages_page("r1", Millis(0), PageRequest { offset: 1, count: Some(5) })
        .await
        .unwrap();
    assert_eq!((deleted.total, deleted.items.len()), (2, 1));

    let report = MessageReport {
        id: "rep1".into(),
        message: message("other", "r1", "u1", 11),
        description: "spam".into(),
        reported_by: UserRef { id: "u2".into(), username: "bob".into(), name: None },
        ts: Millis(30),
    };
    store.insert_report(&report).await.unwrap();
    assert_eq!(store.reports_of_message("other").await.unwrap(), [report]);
    assert!(store.reports_of_message("root").await.unwrap().is_empty());
}

fn upload(id: &str, rid: &str, name: &str, at: i64, complete: bool) -> Upload {
    Upload {
        id: id.into(),
        name: name.into(),
        size: 3,
        content_type: "text/plain".into(),
        rid: Some(rid.into()),
        user_id: "u1".into(),
        complete,
        uploaded_at: Millis(at),
        updated_at: Millis(at),
        message_id: None,
        extra: serde_json::Map::from_iter([("store".to_owned(), serde_json::json!("FileSystem"))]),
    }
}

pub async fn uploads_roundtrip(store: &dyn Store) {
    let up = upload("f1", "r1", "a.txt", 10, false);
    store.insert_upload(up.clone()).await.unwrap();
    assert!(matches!(store.insert_upload(up.clone()).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.upload_by_id("f1").await.unwrap(), Some(up.clone()));
    assert_eq!(store.upload_by_id("nope").await.unwrap(), None);
    assert_eq!(store.stale_uploads(Millis(11), 10).await.unwrap(), vec![up.clone()]);
    assert!(store.stale_uploads(Millis(10), 10).await.unwrap().is_empty());
    let done = store
        .update_upload(
            "f1",
            Box::new(|u| {
                u.complete = true;
                u.message_id = Some("m1".into());
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!(store.message_uploads("m1").await.unwrap(), vec![done.clone()]);
    assert!(store.message_uploads("m2").await.unwrap().is_empty());
    assert!(store.stale_uploads(Millis(11), 10).await.unwrap().is_empty());
    let refused = store.update_upload("f1", Box::new(|_| Err(StoreError::Rejected("no".into())))).await;
    assert!(matches!(refused, Err(StoreError::Rejected(_))));
    assert!(store.upload_by_id("f1").await.unwrap().unwrap().complete);
    store.delete_upload("f1").await.unwrap();
    assert_eq!(store.upload_by_id("f1").await.unwrap(), None);
    assert!(matches!(store.delete_upload("f1").await, Err(StoreError::NotFound { .. })));
}

pub async fn room_uploads_list_complete_newest_first(store: &dyn Store) {
    store.insert_upload(upload("a", "r1", "Cat.png", 1, true)).await.unwrap();
    store.insert_upload(upload("b", "r1", "dog_1.png", 3, true)).await.unwrap();
    store.insert_upload(upload("c", "r1", "cat2.png", 2, true)).await.unwrap();
    store.insert_upload(upload("d", "r1", "temp.png", 4, false)).await.unwrap();
    store.insert_upload(upload("e", "r2", "cat.png", 5, true)).await.unwrap();
    let all = store.room_uploads("r1", None, PageRequest { offset: 0, count: None }).await.unwrap();
    assert_eq!(all.items.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["b", "c", "a"]);
    assert_eq!(all.total, 3);
    let cats = store
        .room_uploads("r1", Some("CAT".into()), PageRequest { offset: 1, count: Some(5) })
        .await
        .unwrap();
    assert_eq!((cats.total, cats.items.len(), cats.items[0].id.as_str()), (2, 1, "a"));
    // `_` is literal, not a wildcard.
    let literal =
        store.room_uploads("r1", Some("g_".into()), PageRequest { offset: 0, count: None }).await.unwrap();
    assert_eq!(literal.total, 1);
}

pub async fn room_images_are_images_up_to_a_time(store: &dyn Store) {
    let typed = |id: &str, rid: &str, at: i64, group: &str, complete: bool| {
        let mut u = upload(id, rid, &format!("{id}.png"), at, complete);
        u.extra.insert("typeGroup".into(), serde_json::json!(group));
        u
    };
    store.insert_upload(typed("a", "r1", 1, "image", true)).await.unwrap();
    store.insert_upload(typed("b", "r1", 2, "thumb", true)).await.unwrap();
    store.insert_upload(typed("c", "r1", 3, "image", true)).await.unwrap();
    store.insert_upload(typed("d", "r1", 4, "text", true)).await.unwrap();
    store.insert_upload(typed("e", "r1", 5, "image", false)).await.unwrap();
    store.insert_upload(typed("f", "r2", 6, "image", true)).await.unwrap();
    store.insert_upload(typed("g", "r1", 7, "image", true)).await.unwrap();
    let all = PageRequest { offset: 0, count: None };
    let ids = |p: &Page<Upload>| p.items.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    let images = store.room_images("r1", None, all).await.unwrap();
    assert_eq!((ids(&images), images.total), (vec!["g".to_owned(), "c".into(), "a".into()], 3));
    let older = store.room_images("r1", Some(Millis(3)), all).await.unwrap();
    assert_eq!((ids(&older), older.total), (vec!["c".to_owned(), "a".into()], 2));
    let paged = store.room_images("r1", None, PageRequest { offset: 1, count: Some(1) }).await.unwrap();
    assert_eq!((ids(&paged), paged.total), (vec!["c".to_owned()], 3));
}

pub async fn message_search_conditions(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice"), ("u2", "bob")]).await;
    let mut all = vec![
        message("m1", "r1", "u1", 86_400_000),
        message("m2", "r1", "u2", 2 * 86_400_000),
        message("m3", "r1", "u1", 3 * 86_400_000),
        message("m4", "r1", "u2", 4 * 86_400_000),
    ];
    all[0].msg = "Alpha one".into();
    all[1].msg = "alpha two".into();
    all[1].mentions =
        vec![apogee_types::Mention { id: "u1".into(), username: "alice".into(), name: None, kind: None }];
    all[1].extra.insert("urls".into(), serde_json::json!([{ "url": "https://a.io", "meta": {} }]));
    all[2].msg = "beta".into();
    all[2].extra.insert("pinned".into(), true.into());
    all[2].extra.insert("starred".into(), serde_json::json!([{ "_id": "u2" }]));
    all[2].extra.insert("location".into(), serde_json::json!({ "type": "Point", "coordinates": [1, 2] }));
    all[2].extra.insert(
        "attachments".into(),
        serde_json::json!([{ "title": "Q3 report", "description": "numbers", "labels": ["Chart"] }]),
    );
    all[3].msg = "alpha removed".into();
    all[3].t = Some("rm".into());
    let mut write = RoomWrite::new("r1");
    write.messages = all;
    store.write_room(write).await.unwrap();

    let find = |search: MessageSearch| async move {
        let page = store.find_messages("r1", &MessageFilter::Search(Box::new(search)), ALL).await.unwrap();
        page.items.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    let q = |f: fn(&mut MessageSearch)| {
        let mut search = MessageSearch::default();
        f(&mut search);
        search
    };
    assert_eq!(find(q(|s| s.text = Some("ALPHA".into()))).await, ["m2", "m1"], "removed ones left out");
    assert_eq!(find(q(|s| s.text = Some("al".into()))).await, ["m2", "m1"], "short texts too");
    assert_eq!(
        find(q(|s| {
            s.text = Some("alpha".into());
            s.ascending = true;
        }))
        .await,
        ["m1", "m2"]
    );
    assert_eq!(find(q(|s| s.regex = Some(("^alpha t".into(), String::new())))).await, ["m2"]);
    assert_eq!(find(q(|s| s.regex = Some(("^ALPHA".into(), "i".into())))).await, ["m2", "m1"]);
    assert_eq!(find(q(|s| s.from = vec!["U2".into(), "nobody".into()])).await, ["m2"]);
    assert_eq!(find(q(|s| s.mentions = vec!["ali".into()])).await, ["m2"]);
    assert_eq!(find(q(|s| s.starred_by = Some("u2".into()))).await, ["m3"]);
    assert_eq!(find(q(|s| s.pinned = true)).await, ["m3"]);
    assert_eq!(find(q(|s| s.has_url = true)).await, ["m2"]);
    assert_eq!(find(q(|s| s.has_location = true)).await, ["m3"]);
    assert_eq!(find(q(|s| s.label = Some("chart".into()))).await, ["m3"]);
    assert_eq!(find(q(|s| s.file_description = Some("NUMB".into()))).await, ["m3"]);
    assert_eq!(find(q(|s| s.file_title = Some("q3".into()))).await, ["m3"]);
    assert_eq!(find(q(|s| s.since = Some(Millis(2 * 86_400_000)))).await, ["m3", "m2"]);
    assert_eq!(find(q(|s| s.until = Some(Millis(2 * 86_400_000)))).await, ["m2", "m1"]);
    assert_eq!(find(q(|s| s.before = Some(Millis(2 * 86_400_000)))).await, ["m1"]);
    assert_eq!(
        find(q(|s| {
            s.text = Some("alpha".into());
            s.from = vec!["u1".into()];
        }))
        .await,
        ["m1"],
        "every condition must hold"
    );
}

pub async fn hidden_messages_stay_out_of_reads(store: &dyn Store) {
    room_with_members(store, "r1", &[("u1", "alice")]).await;
    let mut write = RoomWrite::new("r1");
    write.messages = vec![message("m1", "r1", "u1", 10)];
    write.messages[0].msg = "current text".into();
    store.write_room(write).await.unwrap();
    let mut copy = store.message_by_id("m1").await.unwrap().unwrap();
    copy.id = "h1".into();
    copy.msg = "earlier text".into();
    copy.edited_at = Some(Millis(20));
    copy.updated_at = Millis(20);
    copy.extra.insert("_hidden".into(), true.into());
    copy.extra.insert("parent".into(), "m1".into());
    store.insert_hidden_message(&copy).await.unwrap();
    assert!(matches!(store.insert_hidden_message(&copy).await, Err(crate::StoreError::Conflict { .. })));

    let history = store.history("r1", &HistoryQuery::default()).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1"]);
    let listed = store.list_messages("r1", ALL, false).await.unwrap();
    assert_eq!(listed.total, 1);
    let search = MessageSearch { text: Some("text".into()), ..Default::default() };
    let found = store.find_messages("r1", &MessageFilter::Search(Box::new(search)), ALL).await.unwrap();
    assert_eq!(found.items.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1"]);
    let changed = store.messages_changed("r1", Millis(0), false, None).await.unwrap();
    assert_eq!(changed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1"]);
    assert_eq!(store.count_unread("r1", "u2", 0).await.unwrap(), 1);

    // A message hidden on deletion keeps its id; both come back, by `editedAt`.
    let removed = store.delete_message("m1").await.unwrap();
    let mut hidden = removed.clone();
    hidden.edited_at = Some(Millis(30));
    hidden.extra.insert("_hidden".into(), true.into());
    store.insert_hidden_message(&hidden).await.unwrap();
    let kept = store.hidden_messages("m1").await.unwrap();
    let kept: Vec<(&str, &str)> = kept.iter().map(|m| (m.id.as_str(), m.msg.as_str())).collect();
    assert_eq!(kept, [("h1", "earlier text"), ("m1", "current text")]);
    assert!(store.history("r1", &HistoryQuery::default()).await.unwrap().is_empty());
    assert!(store.hidden_messages("m9").await.unwrap().is_empty());
}

pub async fn rename_user_rewrites_every_copy(store: &dyn Store) {
    // A channel alice created and is muted in, and a DM between alice and bob.
    let mut write = RoomWrite::new("r1");
    let mut channel = room("r1", "r1");
    channel.muted = vec!["alice".into(), "carol".into()];
    write.create = Some(channel);
    write.add_subscriptions = vec![subscription("r1", "u1", "alice"), subscription("r1", "u2", "bob")];
    let mut by_alice = message("m1", "r1", "u1", 10);
    by_alice.u.username = "alice".into();
    let mut mentioning = message("m2", "r1", "u2", 11);
    mentioning.msg = "hi @Alice and @alice".into();
    mentioning.mentions =
        vec![apogee_types::Mention { id: "u1".into(), username: "alice".into(), name: None, kind: None }];
    let mut edited = message("m3", "r1", "u2", 12);
    edited.edited_by = Some(UserRef { id: "u1".into(), username: "alice".into(), name: None });
    let mut quoting = message("m4", "r1", "u2", 13);
    quoting.msg = "\"alice\" alone".into();
    write.messages = vec![by_alice, mentioning, edited, quoting];
    store.write_room(write).await.unwrap();
    let mut write = RoomWrite::new("d1");
    let mut dm = Room::new("d1".into(), RoomType::Direct, None, None, Millis(1));
    dm.usernames = vec!["alice".into(), "bob".into()];
    dm.uids = vec!["u1".into(), "u2".into()];
    write.create = Some(dm);
    let direct = |uid: &str, username: &str, other: &str| {
        let mut sub = subscription("d1", uid, username);
        sub.t = RoomType::Direct;
        sub.name = other.into();
        sub.fname = Some(format!("{other} name"));
        sub
    };
    write.add_subscriptions = vec![direct("u1", "alice", "bob"), direct("u2", "bob", "alice")];
    store.write_room(write).await.unwrap();

    let rename = UserRename {
        user_id: "u1".into(),
        old_username: "alice".into(),
        username: Some("alicia".into()),
        name: Some("Alicia A".into()),
        at: Millis(500),
    };
    let outcome = store.rename_user(&rename).await.unwrap();
    let mut rooms: Vec<String> = outcome.rooms.iter().map(|r| r.id.clone()).collect();
    rooms.sort();
    assert_eq!(rooms, ["d1", "r1"]);
    let mut subs: Vec<(String, String)> =
        outcome.subscriptions.iter().map(|s| (s.rid.clone(), s.u.id.clone())).collect();
    subs.sort();
    assert_eq!(subs, [("d1".into(), "u1".into()), ("d1".into(), "u2".into()), ("r1".into(), "u1".into())]);

    let m = |id: &'static str| async move { store.message_by_id(id).await.unwrap().unwrap() };
    let m1 = m("m1").await;
    assert_eq!((m1.u.username.as_str(), m1.updated_at), ("alicia", Millis(500)));
    let m2 = m("m2").await;
    assert_eq!((m2.msg.as_str(), m2.mentions[0].username.as_str()), ("hi @alicia and @alicia", "alicia"));
    assert_eq!(m("m3").await.edited_by.unwrap().username, "alicia");
    let m4 = m("m4").await;
    assert_eq!((m4.msg.as_str(), m4.updated_at), ("\"alice\" alone", Millis(13)));
    let r1 = store.room_by_id("r1").await.unwrap().unwrap();
    assert_eq!(
        (r1.muted.clone(), r1.u.unwrap().username),
        (vec!["alicia".to_owned(), "carol".into()], "alicia".into())
    );
    assert_eq!(store.room_by_id("d1").await.unwrap().unwrap().usernames, ["alicia", "bob"]);
    for rid in ["r1", "d1"] {
        assert_eq!(store.subscription(rid, "u1").await.unwrap().unwrap().u.username, "alicia");
    }
    let bobs = store.subscription("d1", "u2").await.unwrap().unwrap();
    assert_eq!(
        (bobs.name.as_str(), bobs.fname.as_deref(), bobs.updated_at),
        ("alicia", Some("Alicia A"), Millis(500))
    );
    let alices = store.subscription("d1", "u1").await.unwrap().unwrap();
    assert_eq!((alices.name.as_str(), alices.fname.as_deref()), ("bob", Some("bob name")));
    assert_eq!(store.subscription("r1", "u2").await.unwrap().unwrap().updated_at, Millis(1));

    // A new name alone: only the other party's view of the DM.
    let rename = UserRename {
        user_id: "u1".into(),
        old_username: "alicia".into(),
        username: None,
        name: Some("Ally".into()),
        at: Millis(600),
    };
    let outcome = store.rename_user(&rename).await.unwrap();
    assert!(outcome.rooms.is_empty());
    let subs: Vec<(String, String)> =
        outcome.subscriptions.iter().map(|s| (s.rid.clone(), s.u.id.clone())).collect();
    assert_eq!(subs, [("d1".to_owned(), "u2".to_owned())]);
    assert_eq!(store.subscription("d1", "u2").await.unwrap().unwrap().fname.as_deref(), Some("Ally"));
    assert_eq!(m("m1").await.updated_at, Millis(500));
}
