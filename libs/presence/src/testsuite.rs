//! The contract every presence backend keeps. Each test gets a store built with [`options`]: a
//! fresh random key prefix (so the suite runs in parallel against one shared Redis) and a short
//! gateway TTL ([`TTL`]) so expiry is seen within a couple of seconds. A backend's tests
//! instantiate them all with [`presence_contract_tests!`](crate::presence_contract_tests).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::{PresenceHandle, PresenceOptions, UserStatus};

/// The gateway TTL of stores under test.
pub const TTL: Duration = Duration::from_millis(1000);

/// Comfortably past [`TTL`], for "has expired".
const PAST_TTL: Duration = Duration::from_millis(1300);

/// Options for one test: a prefix no other test uses, and the short [`TTL`].
pub fn options() -> PresenceOptions {
    PresenceOptions { prefix: format!("apogee-test:{:016x}:", rand::random::<u64>()), gateway_ttl: TTL }
}

/// Instantiates every contract test for a backend as a `#[tokio::test]`. `$opts => $make`: an
/// expression (it may `.await`) that builds a [`PresenceHandle`](crate::PresenceHandle) from the
/// [`PresenceOptions`](crate::PresenceOptions) bound to `$opts`.
///
/// ```text
/// apogee_presence::presence_contract_tests!(opts => apogee_presence::PresenceHandle::memory_with(opts));
/// ```
#[macro_export]
macro_rules! presence_contract_tests {
    ($opts:ident => $make:expr) => {
        $crate::presence_contract_tests!(@suite $opts => $make;
            first_and_last_connection, two_gateways_share_a_user, heartbeat_keeps_registrations,
            expired_gateway_users_are_swept_once, user_on_several_dead_gateways_is_swept_once,
            lost_registrations_are_reported_by_heartbeat, counters_count_per_window,
            token_cache_put_get_evict, token_cache_expires, status_set_and_get,
            invalid_ids_are_refused);
    };
    (@suite $opts:ident => $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let $opts = $crate::testsuite::options();
                let store: $crate::PresenceHandle = $make;
                $crate::testsuite::$name(&store).await;
            }
        )*
    };
}

/// Keeps `gateway` alive through `total` by heartbeating well within the TTL.
async fn keep_alive(store: &PresenceHandle, gateway: &str, total: Duration) {
    let step = TTL / 4;
    let mut waited = Duration::ZERO;
    while waited < total {
        tokio::time::sleep(step).await;
        waited += step;
        assert!(store.heartbeat(gateway).await.unwrap(), "{gateway} expired while heartbeating");
    }
}

pub async fn first_and_last_connection(store: &PresenceHandle) {
    assert!(!store.heartbeat("g1").await.unwrap(), "a new gateway has nothing registered");
    assert!(store.heartbeat("g1").await.unwrap());
    assert_eq!(store.connections("u1").await.unwrap(), 0);
    assert!(store.connect("g1", "u1", "c1").await.unwrap(), "first connection");
    assert!(!store.connect("g1", "u1", "c2").await.unwrap(), "second connection");
    assert!(!store.connect("g1", "u1", "c2").await.unwrap(), "registering twice is no change");
    assert_eq!(store.connections("u1").await.unwrap(), 2);
    assert!(store.connect("g1", "u2", "c3").await.unwrap(), "users are independent");
    assert!(!store.disconnect("g1", "u1", "c1").await.unwrap(), "one connection is left");
    assert!(!store.disconnect("g1", "u1", "c1").await.unwrap(), "removing twice is no change");
    assert!(!store.disconnect("g1", "u1", "nope").await.unwrap(), "unknown connection");
    assert!(store.disconnect("g1", "u1", "c2").await.unwrap(), "last connection");
    assert_eq!(store.connections("u1").await.unwrap(), 0);
    assert_eq!(store.connections("u2").await.unwrap(), 1);
    assert!(store.connect("g1", "u1", "c4").await.unwrap(), "online again");
    assert_eq!(store.sweep().await.unwrap(), Vec::<String>::new(), "nothing expired");
}

pub async fn two_gateways_share_a_user(store: &PresenceHandle) {
    store.heartbeat("g1").await.unwrap();
    store.heartbeat("g2").await.unwrap();
    assert!(store.connect("g1", "u1", "1").await.unwrap());
    // The same connection id on another gateway is another connection.
    assert!(!store.connect("g2", "u1", "1").await.unwrap());
    assert_eq!(store.connections("u1").await.unwrap(), 2);
    assert!(!store.disconnect("g1", "u1", "1").await.unwrap(), "still on g2");
    assert!(!store.disconnect("g1", "u1", "1").await.unwrap());
    assert!(store.disconnect("g2", "u1", "1").await.unwrap(), "gone everywhere");
    assert_eq!(store.connections("u1").await.unwrap(), 0);
}

pub async fn heartbeat_keeps_registrations(store: &PresenceHandle) {
    store.heartbeat("g1").await.unwrap();
    store.connect("g1", "u1", "c1").await.unwrap();
    keep_alive(store, "g1", TTL * 2).await;
    assert_eq!(store.connections("u1").await.unwrap(), 1);
    assert_eq!(store.sweep().await.unwrap(), Vec::<String>::new());
    assert!(!store.connect("g1", "u1", "c2").await.unwrap(), "u1 never went offline");
}

pub async fn expired_gateway_users_are_swept_once(store: &PresenceHandle) {
    store.heartbeat("dead").await.unwrap();
    store.heartbeat("live").await.unwrap();
    store.connect("dead", "only-dead", "1").await.unwrap();
    store.connect("dead", "both", "2").await.unwrap();
    store.connect("live", "both", "3").await.unwrap();
    store.connect("live", "only-live", "4").await.unwrap();
    keep_alive(store, "live", PAST_TTL).await;
    // Expired registrations stop counting at once, before any sweep.
    assert_eq!(store.connections("only-dead").await.unwrap(), 0);
    assert_eq!(store.connections("both").await.unwrap(), 1);
    assert_eq!(store.sweep().await.unwrap(), vec!["only-dead".to_owned()]);
    assert_eq!(store.sweep().await.unwrap(), Vec::<String>::new(), "returned once only");
    assert_eq!(store.connections("both").await.unwrap(), 1);
    assert_eq!(store.connections("only-live").await.unwrap(), 1);
    assert!(!store.disconnect("dead", "only-dead", "1").await.unwrap(), "already removed");
    assert!(store.disconnect("live", "both", "3").await.unwrap(), "the dead registration is gone");
}

pub async fn user_on_several_dead_gateways_is_swept_once(store: &PresenceHandle) {
    store.heartbeat("d1").await.unwrap();
    store.heartbeat("d2").await.unwrap();
    store.connect("d1", "u1", "1").await.unwrap();
    store.connect("d2", "u1", "1").await.unwrap();
    store.connect("d2", "u2", "2").await.unwrap();
    // A gateway that registered but never beat is swept too.
    store.connect("never", "u3", "3").await.unwrap();
    tokio::time::sleep(PAST_TTL).await;
    let (a, b) = tokio::join!(store.sweep(), store.sweep());
    let mut all = [a.unwrap(), b.unwrap()].concat();
    all.sort();
    assert_eq!(all, ["u1", "u2", "u3"], "racing sweepers return each user once");
    assert_eq!(store.sweep().await.unwrap(), Vec::<String>::new());
}

pub async fn lost_registrations_are_reported_by_heartbeat(store: &PresenceHandle) {
    store.heartbeat("g1").await.unwrap();
    store.connect("g1", "u1", "c1").await.unwrap();
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(store.sweep().await.unwrap(), ["u1"]);
    // The gateway was only slow: it learns its registrations are gone and registers again.
    assert!(!store.heartbeat("g1").await.unwrap());
    assert!(store.connect("g1", "u1", "c1").await.unwrap(), "online again");
    assert!(store.heartbeat("g1").await.unwrap());
    assert_eq!(store.connections("u1").await.unwrap(), 1);
}

pub async fn counters_count_per_window(store: &PresenceHandle) {
    let window = Duration::from_millis(800);
    for n in 1..=3 {
        let hit = store.hit("login:1.2.3.4", window).await.unwrap();
        assert_eq!(hit.count, n);
        assert!(hit.resets_in <= window && hit.resets_in > Duration::ZERO, "{hit:?}");
    }
    assert_eq!(store.hit("login:5.6.7.8", window).await.unwrap().count, 1, "keys are independent");
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(store.hit("login:1.2.3.4", window).await.unwrap().count, 1, "a new window");
}

pub async fn token_cache_put_get_evict(store: &PresenceHandle) {
    let ttl = Duration::from_secs(60);
    assert_eq!(store.token("h1").await.unwrap(), None);
    store.put_token("h1", "u1", b"principal-1\x00\xff", ttl).await.unwrap();
    store.put_token("h2", "u1", b"principal-2", ttl).await.unwrap();
    store.put_token("h3", "u2", b"principal-3", ttl).await.unwrap();
    assert_eq!(store.token("h1").await.unwrap().as_deref(), Some(&b"principal-1\x00\xff"[..]));
    store.evict_token("h1").await.unwrap();
    assert_eq!(store.token("h1").await.unwrap(), None);
    assert!(store.token("h2").await.unwrap().is_some());
    store.evict_token("h1").await.unwrap();
    store.evict_user_tokens("u1").await.unwrap();
    assert_eq!(store.token("h2").await.unwrap(), None);
    assert_eq!(
        store.token("h3").await.unwrap().as_deref(),
        Some(&b"principal-3"[..]),
        "other users keep theirs"
    );
    store.evict_user_tokens("nobody").await.unwrap();
    store.put_token("h2", "u1", b"again", ttl).await.unwrap();
    assert_eq!(store.token("h2").await.unwrap().as_deref(), Some(&b"again"[..]));
}

pub async fn token_cache_expires(store: &PresenceHandle) {
    store.put_token("short", "u1", b"p", Duration::from_millis(300)).await.unwrap();
    store.put_token("long", "u1", b"p", Duration::from_secs(60)).await.unwrap();
    assert!(store.token("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.token("short").await.unwrap(), None);
    assert!(store.token("long").await.unwrap().is_some());
    store.evict_user_tokens("u1").await.unwrap();
    assert_eq!(store.token("long").await.unwrap(), None);
}

pub async fn status_set_and_get(store: &PresenceHandle) {
    assert_eq!(store.status("u1").await.unwrap(), None);
    let busy = UserStatus { status: "busy".into(), text: "in a meeting ☕".into() };
    store.set_status("u1", &busy).await.unwrap();
    assert_eq!(store.status("u1").await.unwrap(), Some(busy));
    let online = UserStatus { status: "online".into(), text: String::new() };
    store.set_status("u1", &online).await.unwrap();
    assert_eq!(store.status("u1").await.unwrap(), Some(online));
    assert_eq!(store.status("u2").await.unwrap(), None);
}

pub async fn invalid_ids_are_refused(store: &PresenceHandle) {
    store.heartbeat("g1").await.unwrap();
    assert!(store.connect("g1", "u\u{1f}1", "c").await.is_err());
    assert!(store.connect("g1", "", "c").await.is_err());
    assert!(store.heartbeat("").await.is_err());
    assert_eq!(store.connections("u\u{1f}1").await.unwrap(), 0, "nothing was registered");
    assert!(store.connect("g1", "u1", "c").await.unwrap());
}
