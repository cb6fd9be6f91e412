//! The event-bus seam. It owns subjects and subject patterns ([`Subject`], [`SubjectPattern`],
//! with NATS semantics), the [`EventBus`] trait, the [`Bus`] handle everybody holds, and the
//! embedded implementation [`LocalBus`]. Behind the `nats` feature, `NatsBus` implements the same
//! trait on core NATS subjects and passes the same contract suite (`testsuite`, behind the
//! feature of that name, run against the real server).
//!
//! It also owns the durable-work seam, for what must not be lost the way a live event may be
//! (notification jobs, outgoing webhooks): the [`JobQueue`] trait and [`Jobs`] handle, the
//! in-memory [`LocalJobs`] (not durable across restarts) and, behind `nats`, `JetStreamJobs`
//! (work-queue stream, durable pull consumers, explicit acks). Both run one contract suite
//! (`job_contract_tests!`).
//!
//! Services publish on it after a durable write (messaging: `apogee.room.<rid>.message`, ...), and
//! gateways subscribe to what their connected users need, then fan the events out to sockets (see
//! `docs/design.md`, "The path of a message" and "Subjects").
//!
//! Rules every implementation keeps:
//! - delivery is best effort: each subscription has a bounded queue, a subscriber that falls
//!   behind loses events and is told how many ([`Subscription::lagged`]); publishing never waits
//!   for a subscriber and nothing grows without bound;
//! - events from one publisher reach each subscriber in publish order;
//! - a subscription receives every matching event published after `subscribe` returns, until it
//!   is dropped or lags;
//! - payloads are [`Bytes`], so one encoded event is shared by every subscriber in the process.
//!
//! This crate must never depend on a service crate (gateway, messaging, auth, ...): services
//! depend on it.

mod error;
mod jobs;
mod local;
#[cfg(feature = "nats")]
mod nats;
mod subject;
mod subscription;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
pub use bytes::Bytes;

pub use error::{BoxError, BusError};
pub use jobs::local::{DEFAULT_ACK_WAIT, DEFAULT_JOB_CAPACITY, LocalJobs};
pub use jobs::{ConsumerName, Job, JobAcker, JobConsumer, JobQueue, JobSource, Jobs, QueueName};
pub use local::{DEFAULT_QUEUE_CAPACITY, LocalBus};
#[cfg(feature = "nats")]
pub use nats::{JetStreamJobs, JetStreamOptions, NatsBus, NatsOptions};
pub use subject::{Subject, SubjectPattern};
pub use subscription::{Delivery, Event, Subscription, SubscriptionSender};

/// Publishes and subscribes to Apogee events. Delivery is best effort: a subscriber that falls
/// behind loses events and must catch up from the store (`docs/design.md`, "The path of a
/// message").
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `payload` on `subject` to every subscription whose pattern matches it. Succeeds
    /// whether or not anybody listens, and never waits for a slow subscriber.
    async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError>;

    /// Subscribes to every subject matching `pattern`. Once this returns, the subscription
    /// receives every matching event published afterwards (best effort); dropping it
    /// unsubscribes.
    async fn subscribe(&self, pattern: &SubjectPattern) -> Result<Subscription, BusError>;

    /// Whether the bus can deliver now (a networked bus is connected to its server). For
    /// readiness checks; an in-process bus always can.
    fn healthy(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// The handle everybody holds: cheap to clone, and the same type whatever the backend.
/// Dereferences to the [`EventBus`], so `bus.publish(..)` and `bus.subscribe(..)` work directly.
#[derive(Clone)]
pub struct Bus(Arc<dyn EventBus>);

impl Bus {
    /// Wraps any bus implementation.
    pub fn new(bus: impl EventBus) -> Self {
        Self(Arc::new(bus))
    }

    /// Wraps an already shared bus implementation.
    pub fn from_arc(bus: Arc<dyn EventBus>) -> Self {
        Self(bus)
    }

    /// Returns an in-process bus with the default queue capacity per subscription
    /// ([`DEFAULT_QUEUE_CAPACITY`]).
    pub fn local() -> Self {
        Self::new(LocalBus::new())
    }

    /// Returns an in-process bus whose subscription queues hold `capacity` events (at least one).
    pub fn local_with_capacity(capacity: usize) -> Self {
        Self::new(LocalBus::with_capacity(capacity))
    }
}

impl Deref for Bus {
    type Target = dyn EventBus;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bus")
    }
}
