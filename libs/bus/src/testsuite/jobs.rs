//! The contract every [`JobQueue`] keeps; instantiated per backend by
//! [`job_contract_tests!`](crate::job_contract_tests). Each test gets a fresh instance (for a
//! broker: its own stream), so fixed queue names do not collide between parallel tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::{BusError, ConsumerName, Job, JobConsumer, JobQueue, QueueName};

/// The ack wait the queues under test must be built with: a job not acked within it is
/// redelivered. Short, since the redelivery tests wait for it in real time (a broker's clock
/// cannot be paused).
pub const ACK_WAIT: Duration = Duration::from_secs(2);

/// How many jobs the queues under test hold in all before refusing more.
pub const JOB_CAPACITY: usize = 8;

/// How long a test waits for a job that must arrive; guards against a hang, it is not a speed
/// assertion.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Instantiates every job-queue contract test for a backend as a `#[tokio::test]`. `$make` is an
/// expression (it may `.await`) yielding a fresh [`JobQueue`] built with
/// [`ACK_WAIT`](crate::testsuite::jobs::ACK_WAIT) and
/// [`JOB_CAPACITY`](crate::testsuite::jobs::JOB_CAPACITY); `$teardown` is a closure taking it by
/// value and returning a future that removes what it stored, run even when the test fails.
#[macro_export]
macro_rules! job_contract_tests {
    ($make:expr, $teardown:expr) => {
        $crate::job_contract_tests!(@suite $make, $teardown;
            enqueue_consume_ack, unacked_job_is_redelivered, nacked_job_is_redelivered,
            consumers_of_one_group_share_the_work, jobs_keep_queue_order, full_queues_refuse_jobs,
            a_queue_has_one_consumer_group);
    };
    (@suite $make:expr, $teardown:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let jobs = $make;
                let outcome = $crate::testsuite::jobs::catch_panic($crate::testsuite::jobs::$name(&jobs)).await;
                ($teardown)(jobs).await;
                if let Err(panic) = outcome {
                    ::std::panic::resume_unwind(panic);
                }
            }
        )*
    };
}

/// Runs a test body, catching its panic so that the teardown still runs.
pub async fn catch_panic(test: impl Future<Output = ()>) -> Result<(), Box<dyn std::any::Any + Send>> {
    futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(test)).await
}

fn queue(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

fn group(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

async fn enqueue(jobs: &dyn JobQueue, queue: &QueueName, payload: &str) {
    jobs.enqueue(queue, Bytes::copy_from_slice(payload.as_bytes())).await.unwrap();
}

/// Waits for the next job, failing the test if none comes.
pub async fn next_job(consumer: &mut JobConsumer) -> Job {
    match tokio::time::timeout(RECEIVE_TIMEOUT, consumer.next()).await {
        Ok(Ok(job)) => job,
        Ok(Err(error)) => panic!("consumer failed: {error}"),
        Err(_) => panic!("no job within {RECEIVE_TIMEOUT:?}"),
    }
}

/// Waits for the next job and checks its payload and delivery count.
async fn expect_job(consumer: &mut JobConsumer, payload: &str, attempt: u64) -> Job {
    let job = next_job(consumer).await;
    assert_eq!((&job.payload()[..], job.attempt()), (payload.as_bytes(), attempt), "unexpected job");
    job
}

pub async fn enqueue_consume_ack(jobs: &dyn JobQueue) {
    let mail = queue("mail");
    // Jobs enqueued before the consumer group exists are delivered to it.
    enqueue(jobs, &mail, "one").await;
    let mut consumer = jobs.consume(&mail, &group("senders")).await.unwrap();
    let job = expect_job(&mut consumer, "one", 1).await;
    assert_eq!(job.queue(), &mail);
    job.ack().await.unwrap();

    // An acked job is never delivered again, even after the ack wait, and to a new consumer of
    // the group either.
    tokio::time::sleep(ACK_WAIT + ACK_WAIT / 2).await;
    drop(consumer);
    let mut consumer = jobs.consume(&mail, &group("senders")).await.unwrap();
    enqueue(jobs, &mail, "two").await;
    enqueue(jobs, &mail, "").await;
    expect_job(&mut consumer, "two", 1).await.ack().await.unwrap();
    expect_job(&mut consumer, "", 1).await.ack().await.unwrap();
}

pub async fn unacked_job_is_redelivered(jobs: &dyn JobQueue) {
    let hooks = queue("hooks");
    enqueue(jobs, &hooks, "a").await;
    enqueue(jobs, &hooks, "b").await;
    let mut consumer = jobs.consume(&hooks, &group("senders")).await.unwrap();
    let job = expect_job(&mut consumer, "a", 1).await;
    // The consumer dies with the job unacked.
    let delivered_at = Instant::now();
    drop(job);
    drop(consumer);

    let mut consumer = jobs.consume(&hooks, &group("senders")).await.unwrap();
    // `b` was never taken, so it comes first; `a` comes back once its ack wait is over.
    expect_job(&mut consumer, "b", 1).await.ack().await.unwrap();
    let again = expect_job(&mut consumer, "a", 2).await;
    assert!(delivered_at.elapsed() >= ACK_WAIT / 2, "redelivered before the ack wait");
    again.ack().await.unwrap();

    enqueue(jobs, &hooks, "sentinel").await;
    expect_job(&mut consumer, "sentinel", 1).await.ack().await.unwrap();
}

pub async fn nacked_job_is_redelivered(jobs: &dyn JobQueue) {
    let push = queue("push");
    enqueue(jobs, &push, "a").await;
    enqueue(jobs, &push, "b").await;
    let mut consumer = jobs.consume(&push, &group("senders")).await.unwrap();
    let nacked_at = Instant::now();
    expect_job(&mut consumer, "a", 1).await.nack().await.unwrap();
    // A nacked job comes back at once, before newer jobs, without waiting for the ack wait.
    expect_job(&mut consumer, "a", 2).await.ack().await.unwrap();
    assert!(nacked_at.elapsed() < ACK_WAIT, "a nacked job waited for the ack wait");
    expect_job(&mut consumer, "b", 1).await.ack().await.unwrap();
}

pub async fn consumers_of_one_group_share_the_work(jobs: &dyn JobQueue) {
    let push = queue("push");
    let all: Vec<String> = (0..6).map(|i| i.to_string()).collect();
    for payload in &all {
        enqueue(jobs, &push, payload).await;
    }
    let mut first = jobs.consume(&push, &group("workers")).await.unwrap();
    let mut second = jobs.consume(&push, &group("workers")).await.unwrap();
    // While the first member holds a job, the second gets the next one, not the same.
    let held = expect_job(&mut first, "0", 1).await;
    let other = expect_job(&mut second, "1", 1).await;
    held.ack().await.unwrap();
    other.ack().await.unwrap();

    let mut seen = vec!["0".to_owned(), "1".to_owned()];
    for round in 0..4 {
        let consumer = if round % 2 == 0 { &mut first } else { &mut second };
        let job = next_job(consumer).await;
        assert_eq!(job.attempt(), 1);
        seen.push(String::from_utf8(job.payload().to_vec()).unwrap());
        job.ack().await.unwrap();
    }
    assert_eq!(seen, all, "each job goes to one member, in order");
}

pub async fn jobs_keep_queue_order(jobs: &dyn JobQueue) {
    let (mail, push) = (queue("mail"), queue("push"));
    for i in 0..(JOB_CAPACITY / 2) {
        enqueue(jobs, &mail, &format!("mail {i}")).await;
        enqueue(jobs, &push, &format!("push {i}")).await;
    }
    // Each queue yields only its own jobs, in enqueue order.
    let mut push_consumer = jobs.consume(&push, &group("senders")).await.unwrap();
    for i in 0..(JOB_CAPACITY / 2) {
        expect_job(&mut push_consumer, &format!("push {i}"), 1).await.ack().await.unwrap();
    }
    let mut mail_consumer = jobs.consume(&mail, &group("senders")).await.unwrap();
    for i in 0..(JOB_CAPACITY / 2) {
        expect_job(&mut mail_consumer, &format!("mail {i}"), 1).await.ack().await.unwrap();
    }
    enqueue(jobs, &push, "sentinel").await;
    expect_job(&mut push_consumer, "sentinel", 1).await.ack().await.unwrap();
}

pub async fn full_queues_refuse_jobs(jobs: &dyn JobQueue) {
    let (mail, push) = (queue("mail"), queue("push"));
    for i in 0..JOB_CAPACITY {
        enqueue(jobs, if i % 2 == 0 { &mail } else { &push }, &i.to_string()).await;
    }
    // The bound is across queues, and a refused job is not stored.
    for refused in [&mail, &push] {
        match jobs.enqueue(refused, Bytes::from_static(b"refused")).await {
            Err(BusError::QueueFull { queue }) => assert_eq!(&queue, refused.as_str()),
            other => panic!("expected QueueFull, got {other:?}"),
        }
    }
    // An acked job makes room; an unacked one still counts.
    let mut consumer = jobs.consume(&mail, &group("senders")).await.unwrap();
    let held = expect_job(&mut consumer, "0", 1).await;
    assert!(matches!(
        jobs.enqueue(&mail, Bytes::from_static(b"refused")).await,
        Err(BusError::QueueFull { .. })
    ));
    held.ack().await.unwrap();
    enqueue(jobs, &mail, "room").await;

    let mut received = BTreeSet::new();
    for _ in 0..(JOB_CAPACITY / 2) {
        let job = next_job(&mut consumer).await;
        received.insert(String::from_utf8(job.payload().to_vec()).unwrap());
        job.ack().await.unwrap();
    }
    let expected: BTreeSet<String> = ["2", "4", "6", "room"].into_iter().map(str::to_owned).collect();
    assert_eq!(received, expected);
}

pub async fn a_queue_has_one_consumer_group(jobs: &dyn JobQueue) {
    let (mail, push) = (queue("mail"), queue("push"));
    let _senders = jobs.consume(&mail, &group("senders")).await.unwrap();
    match jobs.consume(&mail, &group("others")).await {
        Err(BusError::ConsumerTaken { queue, consumer }) => {
            assert_eq!((queue.as_str(), consumer.as_str()), ("mail", "others"));
        }
        other => panic!("expected ConsumerTaken, got {other:?}"),
    }
    // The name is free on another queue, and the group can be joined again.
    let _others = jobs.consume(&push, &group("others")).await.unwrap();
    let mut again = jobs.consume(&mail, &group("senders")).await.unwrap();
    enqueue(jobs, &mail, "x").await;
    expect_job(&mut again, "x", 1).await.ack().await.unwrap();
}
