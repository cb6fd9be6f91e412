#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::testsuite::{Namespace, QUEUE_CAPACITY, assert_next, receive};
use crate::{Bus, EventBus, LocalBus, SubjectPattern};

crate::bus_contract_tests!(Bus::local_with_capacity(QUEUE_CAPACITY));

/// Every `pub async fn` of the suite is listed in `bus_contract_tests!`, so no backend skips one.
#[test]
fn contract_suite_is_complete() {
    let source = include_str!("../testsuite.rs");
    let list_start = source.find("(@suite $make;").unwrap() + "(@suite $make;".len();
    let list_len = source[list_start..].find(')').unwrap();
    let listed: BTreeSet<&str> = source[list_start..list_start + list_len]
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    let defined: BTreeSet<&str> = source
        .split("pub async fn ")
        .skip(1)
        .filter_map(|rest| rest.split_once("(bus: &Bus)").map(|(name, _)| name))
        .collect();
    assert!(defined.len() >= 9, "{defined:?}");
    assert_eq!(listed, defined);
}

#[tokio::test]
async fn dropping_a_subscription_frees_its_route() {
    let bus = LocalBus::with_capacity(4);
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let a = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    let b = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    let c = bus.subscribe(&ns.pattern("room.>")).await.unwrap();
    assert_eq!((bus.subscription_count(), bus.exact_subject_count()), (3, 1));
    drop(a);
    assert_eq!((bus.subscription_count(), bus.exact_subject_count()), (2, 1));
    drop(b);
    drop(c);
    assert_eq!((bus.subscription_count(), bus.exact_subject_count()), (0, 0));
    bus.publish(&room, Bytes::from_static(b"x")).await.unwrap();
}

#[tokio::test]
async fn dropping_the_bus_ends_subscriptions_after_queued_events() {
    let bus = Bus::local();
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut subscription = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    bus.publish(&room, Bytes::from_static(b"last")).await.unwrap();
    let clone = bus.clone();
    drop(bus);
    assert_next(&mut subscription, &room, "last").await;
    drop(clone);
    assert!(subscription.next().await.is_none());
    // Dropping a subscription after its bus is gone is fine.
    drop(subscription);
}

#[tokio::test]
async fn subscribers_share_one_payload_allocation() {
    let bus = Bus::local();
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut exact = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    let mut wildcard = bus.subscribe(&ns.pattern(">")).await.unwrap();
    let payload = Bytes::from(vec![1u8; 1024]);
    bus.publish(&room, payload.clone()).await.unwrap();
    let (a, b) = (receive(&mut exact).await, receive(&mut wildcard).await);
    assert_eq!(a.payload.as_ptr(), payload.as_ptr());
    assert_eq!(b.payload.as_ptr(), payload.as_ptr());
}

#[tokio::test]
async fn a_full_queue_keeps_the_oldest_events_and_counts_the_rest() {
    let bus = LocalBus::with_capacity(2);
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut subscription = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    for i in 0..5 {
        bus.publish(&room, Bytes::from(i.to_string())).await.unwrap();
    }
    assert_eq!(subscription.lagged(), 3);
    assert_next(&mut subscription, &room, "0").await;
    assert_next(&mut subscription, &room, "1").await;
    bus.publish(&room, Bytes::from_static(b"5")).await.unwrap();
    assert_next(&mut subscription, &room, "5").await;
    assert_eq!(subscription.lagged(), 3);
}

#[test]
fn zero_capacity_means_one() {
    assert_eq!(LocalBus::with_capacity(0).capacity(), 1);
    assert_eq!(LocalBus::default().capacity(), crate::DEFAULT_QUEUE_CAPACITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_keep_their_own_order() {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 200;
    let bus = Bus::local_with_capacity(PUBLISHERS * EACH);
    let ns = Namespace::random();
    let mut subscription = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|publisher| {
            let (bus, subject) = (bus.clone(), ns.subject(&format!("room.R{publisher}.message")));
            tokio::spawn(async move {
                for i in 0..EACH {
                    let payload = Bytes::from(format!("{publisher}:{i}"));
                    bus.publish(&subject, payload).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut next_expected = [0usize; PUBLISHERS];
    for _ in 0..PUBLISHERS * EACH {
        let event = receive(&mut subscription).await;
        let text = std::str::from_utf8(&event.payload).unwrap();
        let (publisher, i) = text.split_once(':').unwrap();
        let (publisher, i): (usize, usize) = (publisher.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next_expected[publisher], "publisher {publisher} out of order");
        next_expected[publisher] += 1;
    }
    assert_eq!(subscription.lagged(), 0);
}

#[test]
fn the_bus_handle_is_cheap_to_share_across_tasks() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Bus>();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::Subscription>();
    assert_send_sync::<crate::Event>();
}
