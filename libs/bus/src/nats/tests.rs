#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{JetStreamJobs, JetStreamOptions, NatsBus, NatsOptions};
use crate::testsuite::jobs::{ACK_WAIT, JOB_CAPACITY, next_job};
use crate::testsuite::{Namespace, QUEUE_CAPACITY, assert_next, receive};
use crate::{Bus, BusError, ConsumerName, EventBus, JobQueue, QueueName, SubjectPattern};

/// The shared NATS server of this machine; `APOGEE_TEST_NATS_URL` points the tests elsewhere.
fn nats_url() -> String {
    std::env::var("APOGEE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn connect(url: &str) -> NatsBus {
    let options = NatsOptions::new("apogee-bus-test")
        .capacity(QUEUE_CAPACITY)
        .max_reconnect_delay(Duration::from_millis(200));
    NatsBus::connect(url, options).await.unwrap()
}

/// Fresh queues in their own stream, so that tests share the server but nothing else.
async fn fresh_jobs(bus: &NatsBus) -> JetStreamJobs {
    let ns = Namespace::random();
    let token = ns.subject("jobs").tokens().nth(1).unwrap().to_owned();
    let options = JetStreamOptions::new()
        .stream(format!("TEST_{token}"), format!("test.{token}.jobs"))
        .ack_wait(ACK_WAIT)
        .max_jobs(u32::try_from(JOB_CAPACITY).unwrap());
    JetStreamJobs::new(bus, options).await.unwrap()
}

mod contract {
    use super::*;

    crate::bus_contract_tests!(Bus::new(connect(&nats_url()).await));
}

mod jobs_contract {
    use super::*;

    crate::job_contract_tests!(
        fresh_jobs(&connect(&nats_url()).await).await,
        |jobs: JetStreamJobs| async move {
            jobs.delete().await.unwrap();
        }
    );
}

#[tokio::test]
async fn a_subscription_sees_other_connections_at_once() {
    // Subscriber and publisher on different connections: `subscribe` returning means the server
    // has the interest, so the very first event arrives.
    let (subscriber, publisher) = (connect(&nats_url()).await, connect(&nats_url()).await);
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    for i in 0..20 {
        let mut subscription = subscriber.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
        publisher.publish(&room, Bytes::from(format!("{i}"))).await.unwrap();
        assert_next(&mut subscription, &room, &i.to_string()).await;
    }
}

#[tokio::test]
async fn dropping_the_bus_ends_subscriptions_after_queued_events() {
    let bus = Bus::nats(&nats_url(), NatsOptions::new("apogee-bus-test")).await.unwrap();
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut subscription = bus.subscribe(&ns.pattern("room.*.message")).await.unwrap();
    bus.publish(&room, Bytes::from_static(b"last")).await.unwrap();
    assert_next(&mut subscription, &room, "last").await;
    drop(bus);
    assert!(tokio::time::timeout(Duration::from_secs(10), subscription.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn oversized_payloads_are_refused() {
    let bus = connect(&nats_url()).await;
    let ns = Namespace::random();
    let max = bus.client().max_payload();
    let result = bus.publish(&ns.subject("big"), Bytes::from(vec![0u8; max + 1])).await;
    assert!(matches!(result, Err(BusError::PayloadTooLarge { size, .. }) if size == max + 1), "{result:?}");

    let jobs = fresh_jobs(&bus).await;
    let result = jobs.enqueue(&QueueName::new("mail").unwrap(), Bytes::from(vec![0u8; max + 1])).await;
    let refused = matches!(result, Err(BusError::PayloadTooLarge { size, .. }) if size == max + 1);
    jobs.delete().await.unwrap();
    assert!(refused, "{result:?}");
}

#[test]
fn reconnect_delays_grow_to_the_cap_with_jitter() {
    let max = Duration::from_secs(5);
    assert_eq!(super::reconnect_delay(1, max), Duration::ZERO);
    let second = super::reconnect_delay(2, max);
    assert!(second > Duration::from_millis(74) && second <= Duration::from_millis(100), "{second:?}");
    for attempts in [8, 20, 64, usize::MAX] {
        let delay = super::reconnect_delay(attempts, max);
        assert!(delay >= max * 3 / 4 && delay <= max, "{attempts}: {delay:?}");
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_clearly() {
    let port = free_port();
    let options = NatsOptions::new("apogee-bus-test").connect_timeout(Duration::from_secs(2));
    let result = NatsBus::connect(&format!("nats://127.0.0.1:{port}"), options).await;
    assert!(matches!(result, Err(BusError::Unavailable(_))), "{result:?}");
}

/// A `nats-server` of the test's own, killed when dropped.
struct OwnServer {
    child: Child,
    port: u16,
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

impl OwnServer {
    async fn start(port: u16, store_dir: Option<&Path>) -> Self {
        let mut command = Command::new(NATS_SERVER);
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(dir) = store_dir {
            command.arg("-js").arg("-sd").arg(dir);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server the hard way, as a crash would.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscriptions_survive_a_server_restart_and_outages_fail_clearly() {
    let port = free_port();
    let server = OwnServer::start(port, None).await;
    let (subscriber, publisher) = (connect(&server.url()).await, connect(&server.url()).await);
    let ns = Namespace::random();
    let room = ns.subject("room.R1.message");
    let mut subscription = subscriber.subscribe(&ns.pattern("room.>")).await.unwrap();
    publisher.publish(&room, Bytes::from_static(b"before")).await.unwrap();
    assert_next(&mut subscription, &room, "before").await;

    server.kill();
    wait_until("both clients notice", || !subscriber.is_connected() && !publisher.is_connected()).await;
    // While the server is down, publishing and subscribing fail at once instead of buffering.
    let refused = publisher.publish(&room, Bytes::from_static(b"during")).await;
    assert!(matches!(refused, Err(BusError::Unavailable(_))), "{refused:?}");
    let refused = subscriber.subscribe(&ns.pattern("other.>")).await;
    assert!(matches!(refused, Err(BusError::Unavailable(_))), "{refused:?}");

    let _server = OwnServer::start(port, None).await;
    wait_until("both clients reconnect", || subscriber.is_connected() && publisher.is_connected()).await;
    // The subscriber re-subscribes on its own; the publisher's connection may get there first,
    // so it publishes until the old subscription receives something.
    let mut sent = 0;
    let first = loop {
        publisher.publish(&room, Bytes::from(format!("after {sent}"))).await.unwrap();
        sent += 1;
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(100), subscription.next()).await {
            break event.unwrap();
        }
        assert!(sent < 150, "the subscription never received again");
    };
    assert!(first.payload.starts_with(b"after "), "{first:?}");
    // Nothing from the outage arrives, and delivery is in order again.
    publisher.publish(&room, Bytes::from_static(b"sentinel")).await.unwrap();
    loop {
        let event = receive(&mut subscription).await;
        assert_ne!(&event.payload[..], b"during");
        if &event.payload[..] == b"sentinel" {
            break;
        }
        assert!(event.payload.starts_with(b"after "), "{event:?}");
    }
    assert_eq!(subscription.lagged(), 0);
    // A subscription made after the reconnect works too.
    let mut fresh = subscriber.subscribe(&SubjectPattern::exact(&room)).await.unwrap();
    publisher.publish(&room, Bytes::from_static(b"fresh")).await.unwrap();
    assert_next(&mut fresh, &room, "fresh").await;
}

#[tokio::test]
async fn jobs_survive_a_server_restart_and_outages_fail_clearly() {
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = OwnServer::start(port, Some(store.path())).await;
    let bus = connect(&server.url()).await;
    let options = JetStreamOptions::new().ack_wait(ACK_WAIT);
    let jobs = JetStreamJobs::new(&bus, options.clone()).await.unwrap();
    let queue = QueueName::new("mail").unwrap();
    let senders = ConsumerName::new("senders").unwrap();
    jobs.enqueue(&queue, Bytes::from_static(b"stored")).await.unwrap();
    let mut consumer = jobs.consume(&queue, &senders).await.unwrap();
    // Delivered but not acked when the server dies.
    let unacked = next_job(&mut consumer).await;
    assert_eq!(&unacked.payload()[..], b"stored");
    jobs.enqueue(&queue, Bytes::from_static(b"queued")).await.unwrap();

    server.kill();
    wait_until("the client notices", || !bus.is_connected()).await;
    let refused = jobs.enqueue(&queue, Bytes::from_static(b"during")).await;
    assert!(matches!(refused, Err(BusError::Unavailable(_))), "{refused:?}");
    drop(unacked);

    let _server = OwnServer::start(port, Some(store.path())).await;
    wait_until("the client reconnects", || bus.is_connected()).await;
    // Both jobs acknowledged before the crash are still there, the unacked one redelivered;
    // the refused one was never stored.
    // (The server may not have written the first delivery to disk before it was killed, so
    // `stored` can come back as attempt 1 or 2.)
    let mut received = Vec::new();
    while received.len() < 2 {
        let job = next_job(&mut consumer).await;
        received.push(String::from_utf8(job.payload().to_vec()).unwrap());
        job.ack().await.unwrap();
    }
    received.sort();
    assert_eq!(received, ["queued", "stored"]);
    jobs.enqueue(&queue, Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(&next_job(&mut consumer).await.payload()[..], b"after");
}
