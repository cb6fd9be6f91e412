//! In-memory job queues for the embedded mode (`apogee serve`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{BusError, ConsumerName, Job, JobAcker, JobConsumer, JobQueue, JobSource, QueueName};

/// How many jobs [`LocalJobs::new`] holds, across all queues, before refusing more.
pub const DEFAULT_JOB_CAPACITY: usize = 100_000;

/// How long [`LocalJobs::new`] waits for an ack before delivering a job again.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// The in-process [`JobQueue`]. Bounded and in memory: jobs survive a crashed consumer (they are
/// redelivered after the ack wait) but **not a restart of the process**, so it suits the embedded
/// mode, where the jobs' producer and consumer die together anyway. Distributed deployments use
/// the JetStream implementation, which stores jobs on disk.
pub struct LocalJobs {
    shared: Arc<Shared>,
}

struct Shared {
    /// A std mutex: every critical section is short and synchronous, never held across an
    /// `.await`.
    state: Mutex<State>,
    /// Wakes waiting consumers when a job becomes ready. `notify_waiters` plus a `Notified`
    /// created before looking at the queue means no wake-up is missed.
    ready: Notify,
    capacity: usize,
    ack_wait: Duration,
}

#[derive(Default)]
struct State {
    /// Jobs held, ready or in flight, across all queues.
    held: usize,
    queues: HashMap<QueueName, Queue>,
}

#[derive(Default)]
struct Queue {
    /// The consumer group, fixed by the first `consume`.
    group: Option<ConsumerName>,
    next_seq: u64,
    /// Jobs waiting for a consumer, by enqueue sequence: a redelivered job goes back to its
    /// place, ahead of newer jobs.
    ready: BTreeMap<u64, Held>,
    /// Jobs handed out and not yet settled.
    in_flight: HashMap<u64, InFlight>,
}

struct Held {
    payload: Bytes,
    /// Deliveries so far.
    deliveries: u64,
}

struct InFlight {
    job: Held,
    deadline: Instant,
}

struct LocalSource {
    shared: Arc<Shared>,
    queue: QueueName,
}

struct LocalAcker {
    shared: Arc<Shared>,
    queue: QueueName,
    seq: u64,
    /// Which delivery this is, so that a late nack of an expired delivery does not disturb a
    /// newer one.
    delivery: u64,
}

// === impl LocalJobs ===

impl LocalJobs {
    /// Creates queues holding up to [`DEFAULT_JOB_CAPACITY`] jobs, with an ack wait of
    /// [`DEFAULT_ACK_WAIT`].
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_JOB_CAPACITY, DEFAULT_ACK_WAIT)
    }

    /// Creates queues holding up to `capacity` jobs in all (at least one), which redeliver a job
    /// not acked within `ack_wait`.
    pub fn with_limits(capacity: usize, ack_wait: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                ready: Notify::new(),
                capacity: capacity.max(1),
                ack_wait,
            }),
        }
    }

    /// Returns how many jobs are held (ready or in flight) across all queues.
    pub fn len(&self) -> usize {
        self.shared.lock().held
    }

    /// Returns true if no job is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for LocalJobs {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalJobs")
            .field("capacity", &self.shared.capacity)
            .field("ack_wait", &self.shared.ack_wait)
            .field("held", &self.len())
            .finish()
    }
}

#[async_trait]
impl JobQueue for LocalJobs {
    async fn enqueue(&self, queue: &QueueName, payload: Bytes) -> Result<(), BusError> {
        {
            let mut state = self.shared.lock();
            if state.held >= self.shared.capacity {
                return Err(BusError::QueueFull { queue: queue.to_string() });
            }
            state.held += 1;
            let queue = state.queues.entry(queue.clone()).or_default();
            let seq = queue.next_seq;
            queue.next_seq += 1;
            queue.ready.insert(seq, Held { payload, deliveries: 0 });
        }
        self.shared.ready.notify_waiters();
        Ok(())
    }

    async fn consume(&self, queue: &QueueName, consumer: &ConsumerName) -> Result<JobConsumer, BusError> {
        let mut state = self.shared.lock();
        let entry = state.queues.entry(queue.clone()).or_default();
        match &entry.group {
            Some(group) if group != consumer => {
                return Err(BusError::ConsumerTaken {
                    queue: queue.to_string(),
                    consumer: consumer.to_string(),
                });
            }
            Some(_) => {}
            None => entry.group = Some(consumer.clone()),
        }
        Ok(JobConsumer::new(LocalSource { shared: self.shared.clone(), queue: queue.clone() }))
    }
}

// === impl Shared ===

impl Shared {
    /// A poisoned lock is recovered: every critical section leaves the state consistent (the
    /// counters and maps are updated together, with no call that can panic in between).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands out the oldest ready job of `name`, after returning expired deliveries to the ready
    /// set. Otherwise returns when the next delivery expires, if any does.
    fn take(&self, name: &QueueName) -> Result<(u64, u64, Bytes), Option<Instant>> {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(queue) = state.queues.get_mut(name) else {
            return Err(None);
        };
        let expired: Vec<u64> =
            queue.in_flight.iter().filter(|(_, job)| job.deadline <= now).map(|(seq, _)| *seq).collect();
        for seq in expired {
            if let Some(in_flight) = queue.in_flight.remove(&seq) {
                queue.ready.insert(seq, in_flight.job);
            }
        }
        match queue.ready.pop_first() {
            Some((seq, mut job)) => {
                job.deliveries += 1;
                let taken = (seq, job.deliveries, job.payload.clone());
                queue.in_flight.insert(seq, InFlight { job, deadline: now + self.ack_wait });
                Ok(taken)
            }
            None => Err(queue.in_flight.values().map(|job| job.deadline).min()),
        }
    }
}

// === impl LocalSource ===

#[async_trait]
impl JobSource for LocalSource {
    async fn next(&mut self) -> Result<Job, BusError> {
        loop {
            // Registered before looking, so an enqueue between the look and the wait still wakes
            // this consumer.
            let notified = self.shared.ready.notified();
            match self.shared.take(&self.queue) {
                Ok((seq, delivery, payload)) => {
                    let acker =
                        LocalAcker { shared: self.shared.clone(), queue: self.queue.clone(), seq, delivery };
                    return Ok(Job::new(self.queue.clone(), payload, delivery, acker));
                }
                Err(Some(expiry)) => {
                    let _ = tokio::time::timeout_at(expiry, notified).await;
                }
                Err(None) => notified.await,
            }
        }
    }
}

// === impl LocalAcker ===

#[async_trait]
impl JobAcker for LocalAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        let mut state = self.shared.lock();
        let Some(queue) = state.queues.get_mut(&self.queue) else {
            return Ok(());
        };
        // Acked by sequence, like JetStream: an ack that arrives after the ack wait still
        // settles the job, whether it is back in the ready set or out again.
        let removed = queue.in_flight.remove(&self.seq).is_some() || queue.ready.remove(&self.seq).is_some();
        if removed {
            state.held -= 1;
        }
        Ok(())
    }

    async fn nack(self: Box<Self>) -> Result<(), BusError> {
        {
            let mut state = self.shared.lock();
            let Some(queue) = state.queues.get_mut(&self.queue) else {
                return Ok(());
            };
            let current =
                queue.in_flight.get(&self.seq).is_some_and(|job| job.job.deliveries == self.delivery);
            if !current {
                return Ok(());
            }
            if let Some(in_flight) = queue.in_flight.remove(&self.seq) {
                queue.ready.insert(self.seq, in_flight.job);
            }
        }
        self.shared.ready.notify_waiters();
        Ok(())
    }
}
