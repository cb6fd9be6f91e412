//! design.md's rule, measured: the rows a message writes do not grow with the room. The same
//! posts (a plain message, a mention, `@all`, `@here`, a thread reply with followers, a direct
//! reply to a thread mention) go into a 10-member and a 5,000-member room, and SQLite's own count
//! of written rows (`SqliteStore::rows_written`) must be the same for both.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use apogee_api::{AuthClient, MessagingClient, MessagingService, NewMessage};
use apogee_auth::{Auth, AuthConfig};
use apogee_bus::Bus;
use apogee_messaging::Messaging;
use apogee_store::testsuite::{subscription, user};
use apogee_store::{RoomStore, RoomWrite, SqliteStore, StoreRef, UserStore};
use apogee_types::Subscription;
use apogee_types::{Millis, Principal, Room, RoomType};

struct Setup {
    sqlite: SqliteStore,
    messaging: Arc<Messaging>,
}

/// Both services as `serve` wires them, with Rocket.Chat's default settings and permissions.
async fn setup() -> Setup {
    let sqlite = SqliteStore::open_temp().unwrap();
    let store: StoreRef = Arc::new(sqlite.clone());
    let bus = Bus::local();
    let config = AuthConfig {
        site_url: "http://localhost".into(),
        test_mode: true,
        failed_logins_per_user: 10,
        login_block: Duration::from_secs(60),
        bcrypt_cost: 4,
    };
    let auth = Arc::new(Auth::new(store.clone(), config, bus.clone()));
    let messaging = Messaging::new(store, AuthClient::local(auth.clone()), bus);
    auth.set_messaging(MessagingClient::local(messaging.clone()));
    auth.init(apogee_auth::Bootstrap::default()).await.unwrap();
    Setup { sqlite, messaging }
}

/// A public room with `members` members `<rid>-u0` … (usernames the same), written in one go.
async fn room_with(setup: &Setup, rid: &str, members: usize) -> Vec<Principal> {
    let mut users = Vec::with_capacity(members);
    for i in 0..members {
        let id = format!("{rid}-u{i}");
        users.push(user(&id, &id, &format!("{id}@example.com")));
    }
    let inserts: Vec<_> = users.iter().cloned().map(|u| setup.sqlite.insert_user(u)).collect();
    for insert in inserts {
        insert.await.unwrap();
    }
    let mut write = RoomWrite::new(rid);
    write.create = Some(Room::new(rid.into(), RoomType::Channel, Some(rid.into()), None, Millis::now()));
    write.add_subscriptions = users.iter().map(|u| subscription(rid, &u.id, &u.username)).collect();
    setup.sqlite.write_room(write).await.unwrap();
    users.iter().map(|u| u.principal()).collect()
}

async fn post(setup: &Setup, who: &Principal, rid: &str, text: &str, tmid: Option<&str>) -> (String, u64) {
    let before = setup.sqlite.rows_written();
    let new =
        NewMessage { rid: rid.into(), msg: text.into(), tmid: tmid.map(str::to_owned), ..Default::default() };
    let saved = setup.messaging.send_message(who, new).await.unwrap();
    (saved.id, setup.sqlite.rows_written() - before)
}

/// Rows written by each kind of post, in order.
async fn costs(setup: &Setup, rid: &str, members: usize) -> Vec<u64> {
    let users = room_with(setup, rid, members).await;
    let (a, b, c, d) = (&users[0], &users[1], &users[2], &users[3]);
    let mut rows = Vec::new();
    // Warm up: the room's first message is no different, but keep the measured ones alike.
    post(setup, a, rid, "hello", None).await;
    rows.push(post(setup, a, rid, "a plain message", None).await.1);
    rows.push(post(setup, a, rid, &format!("hi @{}", b.username), None).await.1);
    rows.push(post(setup, a, rid, "@all the plan changed", None).await.1);
    rows.push(post(setup, a, rid, "anyone @here?", None).await.1);
    // Someone who never posts, so nothing marks the room read for them.
    let named = &users[4].username;
    rows.push(post(setup, a, rid, &format!("@all and @{named} in particular"), None).await.1);
    let (root, cost) = post(setup, a, rid, "a thread root", None).await;
    rows.push(cost);
    // The first reply makes the root's author a follower; later ones notify every follower.
    rows.push(post(setup, b, rid, "first reply", Some(&root)).await.1);
    rows.push(post(setup, c, rid, "second reply", Some(&root)).await.1);
    rows.push(post(setup, d, rid, "third reply, three followers notified", Some(&root)).await.1);
    rows.push(post(setup, a, rid, &format!("@{} in the thread", d.username), Some(&root)).await.1);
    rows.push(post(setup, d, rid, "@all in the thread", Some(&root)).await.1);
    rows
}

async fn sub_of(setup: &Setup, who: &Principal, rid: &str) -> Subscription {
    setup.messaging.subscription(who, rid).await.unwrap().unwrap()
}

#[tokio::test]
async fn rows_written_per_message_do_not_grow_with_the_room() {
    let setup = setup().await;
    let small = costs(&setup, "small", 10).await;
    let large = costs(&setup, "large", 5_000).await;
    println!("rows written per post, 10 members: {small:?}; 5,000 members: {large:?}");
    assert_eq!(small, large);
    // The message, the room and the sender's subscription; plus one subscription per mention;
    // a reply also writes its root and one subscription per follower it notifies (the root's
    // author on the first reply, then everyone who replied; the mentioned user instead of a
    // follower row when both).
    // `@all` and `@here` cost what a plain message costs; with a name, what a mention costs.
    assert_eq!(small, [3, 4, 3, 3, 4, 3, 5, 6, 7, 7, 7]);

    // What members see, derived: the last member of the large room (never written to) has
    // three group mentions and the alert; the named member two, plus the user mention.
    let users: Vec<Principal> = [0, 4, 4_999]
        .iter()
        .map(|i| {
            let id = format!("large-u{i}");
            apogee_store::testsuite::user(&id, &id, &format!("{id}@example.com")).principal()
        })
        .collect();
    let (author, named, last) = (&users[0], &users[1], &users[2]);
    let sub = sub_of(&setup, last, "large").await;
    assert_eq!((sub.unread, sub.group_mentions, sub.user_mentions), (7, 3, 0), "{sub:?}");
    let sub = sub_of(&setup, named, "large").await;
    assert_eq!((sub.unread, sub.group_mentions, sub.user_mentions), (7, 2, 1), "{sub:?}");
    let sub = sub_of(&setup, author, "large").await;
    assert_eq!((sub.unread, sub.group_mentions), (0, 0), "the sender's own group mentions");
    assert_eq!(sub.tunread_group.len(), 1, "the thread's @all marks the root's author's thread");
    setup.messaging.mark_read(last, "large").await.unwrap();
    let sub = sub_of(&setup, last, "large").await;
    assert_eq!((sub.unread, sub.group_mentions, sub.alert), (0, 0, false));
}
