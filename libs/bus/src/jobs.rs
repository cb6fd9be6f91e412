//! The durable-work seam: job queues for work that must not be lost (notification jobs, outgoing
//! webhooks), unlike the best-effort events of the [`EventBus`](crate::EventBus).
//!
//! Rules every implementation keeps:
//! - [`enqueue`](JobQueue::enqueue) returns only once the backend has stored the job; an error
//!   means it may not have been (and, for a broker that was unreachable mid-way, may still have
//!   been: delivery is at least once, so consumers must be idempotent);
//! - a job handed to a consumer stays owned by the queue until it is acked; if it is nacked, or
//!   not acked within the ack wait (say, its consumer crashed), it is delivered again;
//! - a queue has one consumer group, named when consuming; every consumer attached under that
//!   name shares its jobs, each job going to one of them at a time;
//! - jobs of one queue are delivered in enqueue order (a redelivered job comes before newer
//!   ones);
//! - the queues are bounded: enqueueing into full queues fails with [`BusError::QueueFull`].

#[cfg(test)]
mod tests;

pub(crate) mod local;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::BusError;

/// Stores jobs and hands them to consumers until they are acked.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Stores a job on `queue`. Returns once it is stored, so that it survives what the backend
    /// promises to survive.
    async fn enqueue(&self, queue: &QueueName, payload: Bytes) -> Result<(), BusError>;

    /// Attaches a consumer to `queue` as a member of the consumer group `consumer`, creating the
    /// group the first time. Jobs enqueued before the group existed are delivered too.
    async fn consume(&self, queue: &QueueName, consumer: &ConsumerName) -> Result<JobConsumer, BusError>;
}

/// The handle everybody holds: cheap to clone, and the same type whatever the backend.
#[derive(Clone)]
pub struct Jobs(Arc<dyn JobQueue>);

/// A queue's name: 1 to 64 ASCII letters, digits and `-`, so that it is a single subject token
/// and part of a JetStream consumer name on every backend.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueName(Arc<str>);

/// A consumer group's name, with the same rules as a [`QueueName`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsumerName(Arc<str>);

/// A consumer's stream of jobs; see [`JobQueue::consume`].
pub struct JobConsumer(Box<dyn JobSource>);

/// What a backend implements to feed a [`JobConsumer`].
#[async_trait]
pub trait JobSource: Send + 'static {
    /// Waits for the next job; see [`JobConsumer::next`].
    async fn next(&mut self) -> Result<Job, BusError>;
}

/// One delivery of a job. It must be [`ack`](Self::ack)ed once handled; dropping it unacked
/// leaves the job to be redelivered when the ack wait runs out.
pub struct Job {
    queue: QueueName,
    payload: Bytes,
    attempt: u64,
    /// The enqueuer's W3C `traceparent`, when traces are exported and the backend carries it.
    traceparent: Option<Arc<str>>,
    acker: Box<dyn JobAcker>,
}

/// What a backend implements to settle one delivery of a [`Job`].
#[async_trait]
pub trait JobAcker: Send + Sync + 'static {
    /// Settles the job as done; see [`Job::ack`].
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Hands the job back for redelivery; see [`Job::nack`].
    async fn nack(self: Box<Self>) -> Result<(), BusError>;
}

// === impl Jobs ===

impl Jobs {
    /// Wraps any job-queue implementation.
    pub fn new(jobs: impl JobQueue) -> Self {
        Self(Arc::new(jobs))
    }

    /// Returns in-memory job queues (see [`LocalJobs`](crate::LocalJobs): not durable across
    /// restarts).
    pub fn local() -> Self {
        Self::new(crate::LocalJobs::new())
    }
}

impl Deref for Jobs {
    type Target = dyn JobQueue;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jobs")
    }
}

// === impl QueueName, ConsumerName ===

impl QueueName {
    /// Validates a queue name.
    pub fn new(name: &str) -> Result<Self, BusError> {
        check_name(name).map(|()| Self(name.into()))
    }

    /// Returns the name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ConsumerName {
    /// Validates a consumer group's name.
    pub fn new(name: &str) -> Result<Self, BusError> {
        check_name(name).map(|()| Self(name.into()))
    }

    /// Returns the name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest queue or consumer name; with the separator, a JetStream consumer name made of
/// both stays far below what file-backed streams allow.
const MAX_NAME_LEN: usize = 64;

fn check_name(name: &str) -> Result<(), BusError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 64 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        // `_` is left out: it joins queue and consumer names into one JetStream consumer name.
        "only ASCII letters, digits and `-` are allowed"
    } else {
        return Ok(());
    };
    Err(BusError::InvalidName { name: name.to_owned(), reason })
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueName({:?})", &*self.0)
    }
}

impl fmt::Display for ConsumerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConsumerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsumerName({:?})", &*self.0)
    }
}

// === impl JobConsumer ===

impl JobConsumer {
    /// Wraps a backend's job source.
    pub fn new(source: impl JobSource) -> Self {
        Self(Box::new(source))
    }

    /// Waits for the next job of the queue, for as long as it takes. An error says the backend
    /// is unreachable; calling again retries.
    ///
    /// Cancelling the call (say, in a `tokio::select!`) loses no job, but on a broker a job
    /// already on its way is then delivered again only after the ack wait.
    pub async fn next(&mut self) -> Result<Job, BusError> {
        self.0.next().await
    }
}

impl fmt::Debug for JobConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobConsumer")
    }
}

// === impl Job ===

impl Job {
    /// Builds a delivery; for backends.
    pub fn new(queue: QueueName, payload: Bytes, attempt: u64, acker: impl JobAcker) -> Self {
        Self { queue, payload, attempt, traceparent: None, acker: Box::new(acker) }
    }

    /// Attaches the trace context the job was enqueued with; for backends.
    pub fn with_traceparent(mut self, traceparent: Option<Arc<str>>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The enqueuer's `traceparent`, if the job carries one: a consumer handles the job inside
    /// `apogee_telemetry::trace::consumer_span(.., job.traceparent())` to continue its trace.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// Returns the queue the job came from.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// Returns the job as it was enqueued.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Returns which delivery of the job this is: 1 the first time, more once redelivered. A
    /// consumer that keeps failing on a job can use it to give up (ack and record the failure).
    /// A broker that crashes may forget deliveries it had not yet written down, so after such a
    /// crash the count can restart; it never exceeds the real number of deliveries.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// Marks the job as done: it is removed from the queue and never delivered again. Once this
    /// returns `Ok`, the backend has recorded the ack.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Hands the job back: it is delivered again (to this or another member of the group)
    /// before any newer job of the queue.
    pub async fn nack(self) -> Result<(), BusError> {
        self.acker.nack().await
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("queue", &self.queue)
            .field("payload_len", &self.payload.len())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
