#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use crate::testsuite::jobs::{ACK_WAIT, JOB_CAPACITY, next_job};
use crate::{BusError, ConsumerName, JobQueue, Jobs, LocalJobs, QueueName};

crate::job_contract_tests!(LocalJobs::with_limits(JOB_CAPACITY, ACK_WAIT), |_jobs: LocalJobs| async {});

/// Every `pub async fn` of the jobs suite is listed in `job_contract_tests!`.
#[test]
fn job_contract_suite_is_complete() {
    let source = include_str!("../testsuite/jobs.rs");
    let marker = "(@suite $make, $teardown;";
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
        .filter_map(|rest| rest.split_once("(jobs: &dyn JobQueue)").map(|(name, _)| name))
        .collect();
    assert!(defined.len() >= 7, "{defined:?}");
    assert_eq!(listed, defined);
}

#[test]
fn names_are_single_plain_tokens() {
    for good in ["mail", "push-notifications", "A1", &"x".repeat(64)] {
        assert_eq!(QueueName::new(good).unwrap().as_str(), good);
        assert_eq!(ConsumerName::new(good).unwrap().as_str(), good);
    }
    for bad in ["", "a.b", "a_b", "a b", "*", ">", "é", &"x".repeat(65)] {
        assert!(matches!(QueueName::new(bad), Err(BusError::InvalidName { .. })), "{bad:?}");
        assert!(matches!(ConsumerName::new(bad), Err(BusError::InvalidName { .. })), "{bad:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn local_redelivery_follows_the_ack_wait() {
    let jobs = LocalJobs::with_limits(4, Duration::from_secs(60));
    let queue = QueueName::new("mail").unwrap();
    jobs.enqueue(&queue, Bytes::from_static(b"a")).await.unwrap();
    let mut consumer = jobs.consume(&queue, &ConsumerName::new("senders").unwrap()).await.unwrap();
    let job = next_job(&mut consumer).await;
    drop(job);
    // Nothing is ready until the ack wait is over; the waiting consumer wakes by itself then.
    let waited = tokio::time::Instant::now();
    let again = tokio::time::timeout(Duration::from_secs(120), consumer.next()).await.unwrap().unwrap();
    assert_eq!((again.attempt(), waited.elapsed() >= Duration::from_secs(59)), (2, true));
    assert_eq!(jobs.len(), 1);
    again.ack().await.unwrap();
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn a_late_ack_still_settles_the_job() {
    let jobs = LocalJobs::with_limits(4, Duration::from_millis(10));
    let queue = QueueName::new("mail").unwrap();
    jobs.enqueue(&queue, Bytes::from_static(b"a")).await.unwrap();
    let mut consumer = jobs.consume(&queue, &ConsumerName::new("senders").unwrap()).await.unwrap();
    let first = next_job(&mut consumer).await;
    let second = next_job(&mut consumer).await;
    assert_eq!(second.attempt(), 2);
    // The stale nack of the first delivery does not disturb the second; its ack settles the job.
    first.nack().await.unwrap();
    assert_eq!(jobs.len(), 1);
    second.ack().await.unwrap();
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn the_jobs_handle_is_shared() {
    let jobs = Jobs::local();
    let clone = jobs.clone();
    let queue = QueueName::new("mail").unwrap();
    clone.enqueue(&queue, Bytes::from_static(b"a")).await.unwrap();
    let mut consumer = jobs.consume(&queue, &ConsumerName::new("senders").unwrap()).await.unwrap();
    assert_eq!(&next_job(&mut consumer).await.payload()[..], b"a");
}
