//! The contract suite against a real Redis: `127.0.0.1:6379`, or `APOGEE_TEST_REDIS_URL`. These
//! fail, never skip, when Redis is not there.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::testsuite::options;
use crate::{PresenceError, PresenceHandle, PresenceOptions, PresenceStore, RedisPresence};

fn redis_url() -> String {
    std::env::var("APOGEE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

crate::presence_contract_tests!(opts => PresenceHandle::redis(&redis_url(), opts).await.unwrap());

/// Two gateways register the same user at once, over separate connections: exactly one of them
/// sees the first connection, and exactly one disconnect sees the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_gateways_agree_on_first_and_last() {
    let opts = options();
    let a = RedisPresence::connect(&redis_url(), opts.clone()).await.unwrap();
    let b = RedisPresence::connect(&redis_url(), opts).await.unwrap();
    a.heartbeat("ga").await.unwrap();
    b.heartbeat("gb").await.unwrap();
    for round in 0..50 {
        let uid = format!("u{round}");
        let (x, y) = tokio::join!(a.connect("ga", &uid, "1"), b.connect("gb", &uid, "1"));
        assert!(x.unwrap() ^ y.unwrap(), "exactly one first connection");
        let (x, y) = tokio::join!(a.disconnect("ga", &uid, "1"), b.disconnect("gb", &uid, "1"));
        assert!(x.unwrap() ^ y.unwrap(), "exactly one last connection");
    }
}

#[tokio::test]
async fn keys_stay_under_the_prefix_and_expire() {
    let opts = options();
    let store = PresenceHandle::redis(&redis_url(), opts.clone()).await.unwrap();
    store.heartbeat("g1").await.unwrap();
    store.connect("g1", "u1", "c1").await.unwrap();
    store.hit("k", Duration::from_secs(5)).await.unwrap();
    store.put_token("h", "u1", b"p", Duration::from_secs(5)).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", opts.prefix)).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 7, "{keys:?}");
    for key in ["gw:g1", "rl:k", "tk:h", "ut:u1"] {
        let ttl: i64 =
            redis::cmd("PTTL").arg(format!("{}{key}", opts.prefix)).query_async(&mut conn).await.unwrap();
        assert!(ttl > 0, "{key} has no expiry");
    }
    // What a connection leaves behind is removed with it.
    store.disconnect("g1", "u1", "c1").await.unwrap();
    let left: i64 = redis::cmd("EXISTS")
        .arg(format!("{}uc:u1", opts.prefix))
        .arg(format!("{}gwc:g1", opts.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error() {
    let opts = PresenceOptions::default();
    match RedisPresence::connect("redis://127.0.0.1:1/", opts).await {
        Err(PresenceError::Backend(_)) => {}
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
}
