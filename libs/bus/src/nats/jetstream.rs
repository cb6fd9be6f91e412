//! Durable job queues on JetStream.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::Config as PullConfig;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer};
use async_nats::jetstream::stream::{
    Config as StreamConfig, ConsumerErrorKind, DiscardPolicy, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, AckKind, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tracing::Instrument;

use super::NatsBus;
use crate::{BusError, ConsumerName, Job, JobAcker, JobConsumer, JobQueue, JobSource, QueueName};

/// How long one pull for the next job waits at the server before it is renewed. Short enough
/// that a pull lost in an outage is replaced soon after the reconnect.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// Where [`JetStreamJobs`] keeps its jobs; build with [`JetStreamOptions::new`] and the setters.
#[derive(Clone, Debug)]
pub struct JetStreamOptions {
    stream: String,
    subject_prefix: String,
    ack_wait: Duration,
    max_jobs: i64,
    replicas: usize,
}

/// The JetStream [`JobQueue`]: one file-backed stream with work-queue retention holds every
/// queue, queue `q` being subject `<prefix>.q`; a job is deleted from the stream when it is
/// acked. Each queue's consumer group is a durable pull consumer named `<queue>_<consumer>` with
/// explicit acks, so jobs survive restarts of the consumers and of the NATS server.
///
/// A consumer pulls one job at a time, when it asks for one, so several members of a group share
/// the work instead of one of them buffering it all. Jobs are redelivered without limit; a
/// consumer that keeps failing on one can give up by looking at [`Job::attempt`].
///
/// During a NATS outage `enqueue` fails at once with [`BusError::Unavailable`] (nothing is
/// buffered in the client), and waiting consumers resume by themselves within about ten seconds
/// of the reconnect, when their pending pull is renewed.
pub struct JetStreamJobs {
    context: jetstream::Context,
    stream: jetstream::stream::Stream,
    options: JetStreamOptions,
}

struct JetStreamSource {
    consumer: PullConsumer,
    queue: QueueName,
}

struct JetStreamAcker(jetstream::Message);

// === impl JetStreamOptions ===

impl JetStreamOptions {
    /// The defaults: stream `APOGEE_JOBS` on subjects `apogee.jobs.>`, an ack wait of 30 s, at
    /// most a million jobs held, one replica.
    pub fn new() -> Self {
        Self {
            stream: "APOGEE_JOBS".to_owned(),
            subject_prefix: "apogee.jobs".to_owned(),
            ack_wait: Duration::from_secs(30),
            max_jobs: 1_000_000,
            replicas: 1,
        }
    }

    /// Sets the stream's name and the subject prefix of its queues (the prefix must be valid
    /// subject tokens, the name must not contain `.`, `*`, `>` or whitespace).
    pub fn stream(mut self, name: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        self.stream = name.into();
        self.subject_prefix = subject_prefix.into();
        self
    }

    /// Sets how long a delivered job may stay unacked before it is delivered again. It applies
    /// to consumer groups created from now on; an existing group keeps the wait it was created
    /// with.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Sets how many jobs the stream holds, across all queues, before refusing more.
    pub fn max_jobs(mut self, max_jobs: u32) -> Self {
        self.max_jobs = i64::from(max_jobs.max(1));
        self
    }

    /// Sets how many servers of a JetStream cluster keep each job.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self::new()
    }
}

// === impl JetStreamJobs ===

impl JetStreamJobs {
    /// Uses `bus`'s connection, creating the stream if it does not exist yet. An existing stream
    /// is used as it is: limits changed in `options` do not alter it.
    pub async fn new(bus: &NatsBus, options: JetStreamOptions) -> Result<Self, BusError> {
        let context = jetstream::new(bus.client().clone());
        let config = StreamConfig {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.subject_prefix)],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            max_messages: options.max_jobs,
            // Refuse new jobs when full, rather than drop old ones.
            discard: DiscardPolicy::New,
            num_replicas: options.replicas,
            ..StreamConfig::default()
        };
        let stream = context.get_or_create_stream(config).await.map_err(BusError::unavailable)?;
        Ok(Self { context, stream, options })
    }

    /// Deletes the stream with every job and consumer group in it.
    pub async fn delete(self) -> Result<(), BusError> {
        self.context.delete_stream(&self.options.stream).await.map_err(BusError::unavailable)?;
        Ok(())
    }

    fn subject(&self, queue: &QueueName) -> String {
        format!("{}.{queue}", self.options.subject_prefix)
    }
}

impl fmt::Debug for JetStreamJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamJobs").field("options", &self.options).finish_non_exhaustive()
    }
}

#[async_trait]
impl JobQueue for JetStreamJobs {
    async fn enqueue(&self, queue: &QueueName, payload: Bytes) -> Result<(), BusError> {
        if self.context.client().connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::unavailable("not connected to NATS (reconnecting)"));
        }
        let max = self.context.client().max_payload();
        if payload.len() > max {
            return Err(BusError::PayloadTooLarge { size: payload.len(), max });
        }
        // The job carries the enqueuer's trace context (when traces are exported), so its
        // consumer, in whatever process, continues that trace.
        let span = apogee_telemetry::trace::producer_span(queue.as_str());
        let publish = async {
            match apogee_telemetry::trace::traceparent_of(&span) {
                Some(traceparent) => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(super::TRACEPARENT, traceparent.as_str());
                    self.context.publish_with_headers(self.subject(queue), headers, payload).await
                }
                None => self.context.publish(self.subject(queue), payload).await,
            }
        };
        let ack = publish.instrument(span.clone()).await.map_err(BusError::unavailable)?;
        // The server acknowledges only once the job is stored in the stream.
        ack.await.map_err(|error| {
            if is_stream_full(&error) {
                BusError::QueueFull { queue: queue.to_string() }
            } else {
                BusError::unavailable(error)
            }
        })?;
        Ok(())
    }

    async fn consume(&self, queue: &QueueName, consumer: &ConsumerName) -> Result<JobConsumer, BusError> {
        let durable = format!("{queue}_{consumer}");
        let config = PullConfig {
            durable_name: Some(durable.clone()),
            filter_subject: self.subject(queue),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.options.ack_wait,
            ..PullConfig::default()
        };
        let pull = self.stream.get_or_create_consumer(&durable, config).await.map_err(|error| {
            if let ConsumerErrorKind::JetStream(js) = error.kind()
                && js.error_code() == ErrorCode::CONSUMER_WQ_CONSUMER_NOT_UNIQUE
            {
                return BusError::ConsumerTaken { queue: queue.to_string(), consumer: consumer.to_string() };
            }
            BusError::unavailable(error)
        })?;
        Ok(JobConsumer::new(JetStreamSource { consumer: pull, queue: queue.clone() }))
    }
}

/// Whether a refused publish was refused because the stream holds `max_jobs` already. The server
/// reports it as a store failure whose description names the limit.
fn is_stream_full(error: &async_nats::jetstream::context::PublishError) -> bool {
    let Some(source) = std::error::Error::source(error) else {
        return false;
    };
    source.downcast_ref::<jetstream::Error>().is_some_and(|js| {
        js.error_code() == ErrorCode::STREAM_STORE_FAILED && js.to_string().contains("maximum messages")
    })
}

// === impl JetStreamSource ===

#[async_trait]
impl JobSource for JetStreamSource {
    async fn next(&mut self) -> Result<Job, BusError> {
        loop {
            let mut batch = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(PULL_EXPIRES)
                .messages()
                .await
                .map_err(BusError::unavailable)?;
            match batch.next().await {
                Some(Ok(message)) => {
                    let attempt =
                        message.info().map(|info| info.delivered.max(1).unsigned_abs()).unwrap_or(1);
                    let payload = message.payload.clone();
                    let traceparent = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(super::TRACEPARENT))
                        .map(|v| std::sync::Arc::from(v.as_str()));
                    return Ok(Job::new(self.queue.clone(), payload, attempt, JetStreamAcker(message))
                        .with_traceparent(traceparent));
                }
                Some(Err(error)) => return Err(BusError::Unavailable(error)),
                // The pull expired with no job: ask again.
                None => {}
            }
        }
    }
}

// === impl JetStreamAcker ===

#[async_trait]
impl JobAcker for JetStreamAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        // Waits for the server to confirm, so `Ok` means the job will not come back.
        self.0.double_ack().await.map_err(BusError::Unavailable)
    }

    async fn nack(self: Box<Self>) -> Result<(), BusError> {
        self.0.double_ack_with(AckKind::Nak(None)).await.map_err(BusError::Unavailable)
    }
}
