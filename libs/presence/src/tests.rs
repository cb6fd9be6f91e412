#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{PresenceHandle, PresenceOptions, run_sweeper};

crate::presence_contract_tests!(opts => PresenceHandle::memory_with(opts));

/// Every `pub async fn` of the suite is listed in `presence_contract_tests!`, so no backend
/// skips one.
#[test]
fn contract_suite_is_complete() {
    let source = include_str!("testsuite.rs");
    let marker = "(@suite $opts => $make;";
    let list_start = source.find(marker).unwrap() + marker.len();
    let list_len = source[list_start..].find(')').unwrap();
    let listed: BTreeSet<&str> = source[list_start..list_start + list_len]
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    let defined: BTreeSet<&str> = source
        .split("pub async fn ")
        .skip(1)
        .filter_map(|rest| rest.split_once("(store: &PresenceHandle)").map(|(name, _)| name))
        .collect();
    assert!(defined.len() >= 11, "{defined:?}");
    assert_eq!(listed, defined);
}

#[test]
fn heartbeat_interval_is_a_third_of_the_ttl() {
    let options = PresenceOptions::default();
    assert_eq!(options.gateway_ttl, Duration::from_secs(30));
    assert_eq!(options.heartbeat_interval(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_reports_each_offline_user_once() {
    let store = PresenceHandle::memory_with(PresenceOptions {
        gateway_ttl: Duration::from_secs(30),
        ..Default::default()
    });
    store.heartbeat("dead").await.unwrap();
    store.heartbeat("live").await.unwrap();
    store.connect("dead", "u1", "1").await.unwrap();
    store.connect("dead", "u2", "2").await.unwrap();
    store.connect("live", "u2", "3").await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let (store, seen, calls) = (store.clone(), seen.clone(), calls.clone());
        run_sweeper(store, Duration::from_secs(5), move |uid| {
            let (seen, calls) = (seen.clone(), calls.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push(uid);
            }
        })
    });
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        store.heartbeat("live").await.unwrap();
    }
    task.abort();
    assert_eq!(*seen.lock().unwrap(), ["u1"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.connections("u2").await.unwrap(), 1);
}
