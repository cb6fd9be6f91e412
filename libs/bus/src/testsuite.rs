//! The contract every bus backend keeps. Each function takes a bus and works only under a fresh,
//! random subject prefix ([`Namespace`]), so the suite can run in parallel against one shared
//! NATS server as well as against a fresh [`LocalBus`](crate::LocalBus). A backend's tests
//! instantiate them all with [`bus_contract_tests!`](crate::bus_contract_tests).
//!
//! "Nothing else arrived" is checked without waiting: after the events that must not arrive, the
//! test publishes a sentinel that must, and since one publisher's events arrive in order, the
//! sentinel being next proves the others were not delivered.
#![allow(clippy::unwrap_used)]

pub mod jobs;

use std::time::Duration;

use bytes::Bytes;

use crate::{Bus, Event, Subject, SubjectPattern, Subscription};

/// The subscription queue capacity the bus under test must be built with (see
/// [`bus_contract_tests!`](crate::bus_contract_tests)): the ordering tests queue this many
/// events unread, and the lag test publishes several times as many.
pub const QUEUE_CAPACITY: usize = 16;

/// How long a test waits for an event that must arrive before it fails. This guards against a
/// hang; it is not a speed assertion.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Instantiates every contract test for a backend as a `#[tokio::test]`. `$make` is an
/// expression (it may `.await`) that yields a [`Bus`](crate::Bus) whose subscription queues
/// hold [`QUEUE_CAPACITY`](crate::testsuite::QUEUE_CAPACITY) events.
///
/// ```text
/// apogee_bus::bus_contract_tests!(apogee_bus::Bus::local_with_capacity(
///     apogee_bus::testsuite::QUEUE_CAPACITY
/// ));
/// ```
#[macro_export]
macro_rules! bus_contract_tests {
    ($make:expr) => {
        $crate::bus_contract_tests!(@suite $make;
            exact_subject_delivery, star_matches_one_token, rest_matches_trailing_tokens,
            no_delivery_to_non_matching, publisher_order_is_preserved,
            dropped_subscription_stops_delivery, slow_subscriber_lags_without_blocking,
            many_subscribers_get_the_same_payload, publish_without_subscribers_succeeds);
    };
    (@suite $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let bus: $crate::Bus = $make;
                $crate::testsuite::$name(&bus).await;
            }
        )*
    };
}

/// A random subject prefix, `test.<random>`, under which one test builds all its subjects.
#[derive(Clone, Debug)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// Returns a namespace no other test uses.
    pub fn random() -> Self {
        Self { prefix: format!("test.{:016x}", rand::random::<u64>()) }
    }

    /// Returns the subject `<prefix>.<rest>`.
    pub fn subject(&self, rest: &str) -> Subject {
        Subject::new(&format!("{}.{rest}", self.prefix)).unwrap()
    }

    /// Returns the pattern `<prefix>.<rest>`.
    pub fn pattern(&self, rest: &str) -> SubjectPattern {
        SubjectPattern::new(&format!("{}.{rest}", self.prefix)).unwrap()
    }
}

/// Waits for the next event, failing the test if none comes or the subscription ends.
pub async fn receive(subscription: &mut Subscription) -> Event {
    match tokio::time::timeout(RECEIVE_TIMEOUT, subscription.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no event within {RECEIVE_TIMEOUT:?}"),
    }
}

/// Asserts that the next event is `payload` on `subject`.
pub async fn assert_next(subscription: &mut Subscription, subject: &Subject, payload: &str) {
    let event = receive(subscription).await;
    assert_eq!((&event.subject, &event.payload[..]), (subject, payload.as_bytes()), "unexpected event");
}

async fn publish(bus: &Bus, subject: &Subject, payload: &str) {
    bus.publish(subject, Bytes::copy_from_slice(payload.as_bytes())).await.unwrap();
}

pub async fn exact_subject_delivery(bus: &Bus) {
    let ns = Namespace::random();
    let subject = ns.subject("room.R1.message");
    let mut subscription = bus.subscribe(&SubjectPattern::exact(&subject)).await.unwrap();
    publish(bus, &subject, "hello").await;
    publish(bus, &subject, "").await;
    assert_next(&mut subscription, &subject, "hello").await;
    assert_next(&mut subscription, &subject, "").await;
    assert_eq!(subscription.lagged(), 0);
}

pub async fn star_matches_one_token(bus: &Bus) {
    let ns = Namespace::random();
    let mut subscription = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    let r1 = ns.subject("room.R1.message");
    let r2 = ns.subject("room.R2.message");
    publish(bus, &r1, "one").await;
    for miss in ["room.R1.typing", "room.message", "room.R1.message.x", "room.R1.R2.message"] {
        publish(bus, &ns.subject(miss), miss).await;
    }
    publish(bus, &r2, "two").await;
    assert_next(&mut subscription, &r1, "one").await;
    assert_next(&mut subscription, &r2, "two").await;
}

pub async fn rest_matches_trailing_tokens(bus: &Bus) {
    let ns = Namespace::random();
    let mut subscription = bus.subscribe(&ns.pattern("all.>")).await.unwrap();
    let one_token = ns.subject("all.roles");
    let two_tokens = ns.subject("all.emoji.changed");
    publish(bus, &one_token, "roles").await;
    for miss in ["all", "allx.roles", "room.all.roles"] {
        publish(bus, &ns.subject(miss), miss).await;
    }
    publish(bus, &two_tokens, "emoji").await;
    assert_next(&mut subscription, &one_token, "roles").await;
    assert_next(&mut subscription, &two_tokens, "emoji").await;

    // `>` alone, under nothing but the namespace prefix, takes everything below it.
    let mut everything = bus.subscribe(&ns.pattern(">")).await.unwrap();
    let deep = ns.subject("a.b.c.d");
    publish(bus, &deep, "deep").await;
    assert_next(&mut everything, &deep, "deep").await;
    let sentinel = ns.subject("all.x");
    publish(bus, &sentinel, "x").await;
    assert_next(&mut subscription, &sentinel, "x").await;
    assert_next(&mut everything, &sentinel, "x").await;
}

pub async fn no_delivery_to_non_matching(bus: &Bus) {
    let ns = Namespace::random();
    let (room1, room2) = (ns.subject("room.R1.message"), ns.subject("room.R2.message"));
    let mut watcher1 = bus.subscribe(&SubjectPattern::exact(&room1)).await.unwrap();
    let mut watcher2 = bus.subscribe(&SubjectPattern::exact(&room2)).await.unwrap();
    publish(bus, &room1, "for 1").await;
    publish(bus, &room2, "for 2").await;
    publish(bus, &room1, "sentinel 1").await;
    publish(bus, &room2, "sentinel 2").await;
    assert_next(&mut watcher1, &room1, "for 1").await;
    assert_next(&mut watcher1, &room1, "sentinel 1").await;
    assert_next(&mut watcher2, &room2, "for 2").await;
    assert_next(&mut watcher2, &room2, "sentinel 2").await;

    // A subject that merely starts with a subscribed one is a different subject.
    let longer = ns.subject("room.R1.message.x");
    publish(bus, &longer, "longer").await;
    publish(bus, &room1, "sentinel 3").await;
    assert_next(&mut watcher1, &room1, "sentinel 3").await;
}

pub async fn publisher_order_is_preserved(bus: &Bus) {
    let ns = Namespace::random();
    let (room1, room2) = (ns.subject("room.R1.message"), ns.subject("room.R2.message"));
    let mut exact = bus.subscribe(&SubjectPattern::exact(&room1)).await.unwrap();
    let mut wildcard = bus.subscribe(&ns.pattern("room.>")).await.unwrap();
    // Alternate two subjects: order holds per publisher, across subjects too.
    let sent: Vec<(Subject, String)> = (0..QUEUE_CAPACITY)
        .map(|i| {
            let subject = if i % 2 == 0 { &room1 } else { &room2 };
            (subject.clone(), format!("event {i}"))
        })
        .collect();
    for (subject, payload) in &sent {
        publish(bus, subject, payload).await;
    }
    for (subject, payload) in &sent {
        assert_next(&mut wildcard, subject, payload).await;
    }
    for (subject, payload) in sent.iter().filter(|(subject, _)| *subject == room1) {
        assert_next(&mut exact, subject, payload).await;
    }
    assert_eq!((exact.lagged(), wildcard.lagged()), (0, 0));
}

pub async fn dropped_subscription_stops_delivery(bus: &Bus) {
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let exact = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    let wildcard = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    let mut survivor = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    drop(exact);
    drop(wildcard);
    // Publishing to a subject whose subscriptions were dropped still succeeds, more times than
    // any queue holds, and the remaining subscription is unaffected.
    for i in 0..QUEUE_CAPACITY {
        publish(bus, &room, &format!("event {i}")).await;
        assert_next(&mut survivor, &room, &format!("event {i}")).await;
    }
    drop(survivor);
    publish(bus, &room, "nobody").await;

    // Subscribing again after everything was dropped works and sees only new events.
    let mut again = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    publish(bus, &room, "again").await;
    assert_next(&mut again, &room, "again").await;
}

pub async fn slow_subscriber_lags_without_blocking(bus: &Bus) {
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut slow = bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    let mut fast = bus.subscribe(&ns.pattern("room.>")).await.unwrap();
    let published = 4 * QUEUE_CAPACITY;
    let run = async {
        // `slow` is not read while this runs; `fast` keeps up, so it must lose nothing.
        for i in 0..published {
            publish(bus, &room, &i.to_string()).await;
            assert_next(&mut fast, &room, &i.to_string()).await;
        }
        assert_eq!(fast.lagged(), 0);

        // Every event published to `slow` was either delivered (in order) or counted as lost.
        let mut received = Vec::new();
        while received.len() as u64 + slow.lagged() < published as u64 {
            let event = receive(&mut slow).await;
            received.push(std::str::from_utf8(&event.payload).unwrap().parse::<usize>().unwrap());
        }
        assert!(slow.lagged() > 0, "a subscriber that never read lost nothing");
        assert!(received.windows(2).all(|w| w[0] < w[1]), "{received:?}");
        assert_eq!(received.len() as u64 + slow.lagged(), published as u64);

        // Once it has caught up, the slow subscriber receives again.
        publish(bus, &room, "after").await;
        assert_next(&mut slow, &room, "after").await;
        assert_next(&mut fast, &room, "after").await;
    };
    // A publisher blocked by `slow` would hang here instead of failing.
    tokio::time::timeout(RECEIVE_TIMEOUT * 2, run)
        .await
        .expect("the publisher or the fast subscriber was blocked");
}

pub async fn many_subscribers_get_the_same_payload(bus: &Bus) {
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut subscriptions = Vec::new();
    for _ in 0..8 {
        subscriptions.push(bus.subscribe(&SubjectPattern::exact(&room)).await.unwrap());
    }
    for pattern in ["room.*.message", "room.>", ">"] {
        subscriptions.push(bus.subscribe(&ns.pattern(pattern)).await.unwrap());
    }
    let payload = Bytes::from(vec![7u8; 4096]);
    bus.publish(&room, payload.clone()).await.unwrap();
    for subscription in &mut subscriptions {
        let event = receive(subscription).await;
        assert_eq!(event.subject, room);
        assert_eq!(event.payload, payload);
    }
}

pub async fn publish_without_subscribers_succeeds(bus: &Bus) {
    let ns = Namespace::random();
    let _elsewhere = bus.subscribe(&ns.pattern("other.>")).await.unwrap();
    for i in 0..(4 * QUEUE_CAPACITY) {
        publish(bus, &ns.subject(&format!("room.R{i}.x.message")), "unheard").await;
    }
    bus.publish(&ns.subject("empty"), Bytes::new()).await.unwrap();
}
