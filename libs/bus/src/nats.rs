//! The NATS bus: live events on core NATS subjects, and durable jobs on JetStream
//! ([`JetStreamJobs`]).
//!
//! One [`NatsBus`] is one connection. Every subscription is one NATS subscription, so the server
//! does the subject matching and a process only receives what it subscribed to. Each
//! subscription's events go through a small task into the same bounded [`Subscription`] queue as
//! [`LocalBus`](crate::LocalBus) uses, so a slow subscriber loses events and counts them in
//! [`Subscription::lagged`] exactly as it does in-process.
//!
//! Outages: the client reconnects forever, with capped exponential backoff, and re-establishes
//! every live subscription on the new connection, so subscribers keep their `Subscription` and
//! only miss what was published while they were cut off. While the connection is down,
//! `publish` and `subscribe` **fail at once with [`BusError::Unavailable`]** rather than buffer:
//! live events are best effort, and a caller told "unavailable" knows the event went nowhere.
//! (An event published in the instant the connection breaks, before the client notices, can
//! still be lost without an error; that is the best-effort contract, which durable work avoids
//! by using [`JetStreamJobs`].)

mod jetstream;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event as NatsEvent, RequestErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::Instrument;

pub use self::jetstream::{JetStreamJobs, JetStreamOptions};
use crate::{
    Bus, BusError, DEFAULT_QUEUE_CAPACITY, Delivery, Event, EventBus, Subject, SubjectPattern, Subscription,
    SubscriptionSender,
};

/// A subject no Apogee process subscribes to. `subscribe` sends a request there after the SUB:
/// the server answers "no responders" only once it has processed everything before it on the
/// connection, so the subscription is live server-wide when `subscribe` returns.
const SYNC_SUBJECT: &str = "_APOGEE.sync";
/// The W3C trace-context header a message carries when traces are exported.
const TRACEPARENT: &str = "traceparent";

/// How [`NatsBus`] connects and behaves; build with [`NatsOptions::new`] and the setters.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    name: String,
    capacity: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_reconnect_delay: Duration,
}

/// The NATS [`EventBus`]; see the module docs.
pub struct NatsBus {
    client: Client,
    capacity: usize,
    /// Bounds a publish waiting for room in the client's outgoing buffer, which only fills when
    /// the connection is stuck.
    publish_timeout: Duration,
    /// Dropped with the bus; every forwarding task watches it, so dropping the bus ends every
    /// subscription after its queued events, as with [`LocalBus`](crate::LocalBus).
    closed: watch::Sender<()>,
}

// === impl NatsOptions ===

impl NatsOptions {
    /// Options for a connection named `name` (shown by the server's monitoring, e.g.
    /// `apogee-gateway-1`), with the defaults: [`DEFAULT_QUEUE_CAPACITY`] events per
    /// subscription, 5 s to connect, 10 s for a request, reconnect delays capped at 5 s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            capacity: DEFAULT_QUEUE_CAPACITY,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_reconnect_delay: Duration::from_secs(5),
        }
    }

    /// Sets how many events each subscription's queue holds (at least one).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sets how long one connection attempt may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long a request to the server (the subscribe round trip, JetStream calls) may take,
    /// and how long a publish may wait for room in the client's outgoing buffer.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the longest pause between two reconnection attempts.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }
}

// === impl NatsBus ===

impl NatsBus {
    /// Connects to the NATS server(s) at `url` (`nats://host:4222`, comma-separated for a
    /// cluster; `tls://` for TLS; credentials as `nats://user:password@host`). Fails with
    /// [`BusError::Unavailable`] if no server answers now; once connected, it reconnects by
    /// itself forever.
    pub async fn connect(url: &str, options: NatsOptions) -> Result<Self, BusError> {
        let max_delay = options.max_reconnect_delay;
        let name = options.name.clone();
        let client = ConnectOptions::new()
            .name(&options.name)
            .connection_timeout(options.connect_timeout)
            .request_timeout(Some(options.request_timeout))
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max_delay))
            .event_callback(move |event| log_event(name.clone(), event))
            .connect(url)
            .await
            .map_err(BusError::unavailable)?;
        let (closed, _) = watch::channel(());
        Ok(Self { client, capacity: options.capacity, publish_timeout: options.request_timeout, closed })
    }

    /// Returns how many events each subscription's queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns true while the connection to a server is up.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Returns the underlying client, for [`JetStreamJobs`] to share the connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn ensure_connected(&self) -> Result<(), BusError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(BusError::unavailable("not connected to NATS (reconnecting)"))
        }
    }

    /// Waits until the server has processed everything this connection sent so far.
    async fn round_trip(&self) -> Result<(), BusError> {
        match self.client.request(SYNC_SUBJECT, Bytes::new()).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == RequestErrorKind::NoResponders => Ok(()),
            Err(error) => Err(BusError::unavailable(error)),
        }
    }
}

impl Bus {
    /// Connects a [`NatsBus`] (see [`NatsBus::connect`]) and wraps it.
    pub async fn nats(url: &str, options: NatsOptions) -> Result<Self, BusError> {
        Ok(Self::new(NatsBus::connect(url, options).await?))
    }
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("capacity", &self.capacity)
            .field("state", &self.client.connection_state())
            .finish()
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError> {
        self.ensure_connected()?;
        let max = self.client.max_payload();
        if payload.len() > max {
            return Err(BusError::PayloadTooLarge { size: payload.len(), max });
        }
        // This only queues the message for the connection's writer; it never waits for a
        // subscriber, and the server never makes a publisher wait for a slow subscriber either.
        // When traces are exported, the message carries its producer span's `traceparent` in a
        // header, so the subscribers' work joins the publisher's trace.
        let span = apogee_telemetry::trace::producer_span(subject.as_str());
        let publish = match apogee_telemetry::trace::traceparent_of(&span) {
            Some(traceparent) => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(TRACEPARENT, traceparent.as_str());
                self.client.publish_with_headers(subject.as_str().to_owned(), headers, payload).boxed()
            }
            None => self.client.publish(subject.as_str().to_owned(), payload).boxed(),
        };
        match tokio::time::timeout(self.publish_timeout, publish).instrument(span).await {
            Ok(result) => {
                result.map_err(BusError::unavailable)?;
                apogee_telemetry::metrics::metrics().bus_published.inc();
                Ok(())
            }
            Err(_) => {
                Err(BusError::unavailable("NATS connection stuck: the client's outgoing buffer stayed full"))
            }
        }
    }

    fn healthy(&self) -> Result<(), BusError> {
        self.ensure_connected()
    }

    async fn subscribe(&self, pattern: &SubjectPattern) -> Result<Subscription, BusError> {
        self.ensure_connected()?;
        let subscriber =
            self.client.subscribe(pattern.as_str().to_owned()).await.map_err(BusError::unavailable)?;
        // If the round trip fails, dropping `subscriber` unsubscribes.
        self.round_trip().await?;
        let (sender, subscription) = Subscription::channel(self.capacity);
        let task = tokio::spawn(forward(subscriber, sender, self.closed.subscribe()));
        let abort = task.abort_handle();
        // Aborting drops the NATS subscriber, which unsubscribes on the server.
        Ok(subscription.on_drop(move || abort.abort()))
    }
}

/// Moves one NATS subscription's messages into its bounded queue, never waiting for the
/// subscriber. The client's own per-subscription buffer only ever holds what arrived since this
/// task last ran; the bound, and the lag count, are the `Subscription`'s.
async fn forward(
    mut subscriber: async_nats::Subscriber,
    sender: SubscriptionSender,
    mut closed: watch::Receiver<()>,
) {
    loop {
        let message = tokio::select! {
            message = subscriber.next() => message,
            // The bus was dropped: end the subscription, as `LocalBus` does.
            _ = closed.changed() => None,
        };
        let Some(message) = message else {
            return;
        };
        // Another NATS client may publish a subject we would reject (say, with an empty token);
        // nothing of ours could have sent it, so it is skipped.
        let Ok(subject) = Subject::new(message.subject.as_str()) else {
            continue;
        };
        let traceparent =
            message.headers.as_ref().and_then(|h| h.get(TRACEPARENT)).map(|v| Arc::from(v.as_str()));
        match sender.try_deliver(Event { subject, payload: message.payload, traceparent }) {
            Delivery::Closed => return,
            Delivery::Queued => apogee_telemetry::metrics::metrics().bus_received.inc(),
            Delivery::Lost => apogee_telemetry::metrics::metrics().bus_lost.inc(),
        }
    }
}

/// The pause before reconnection attempt `attempts`: none for the first (a restarted server is
/// often back at once), then doubling from 100 ms up to `max`, with up to 25% jitter so that many
/// gateways cut off together do not reconnect in lockstep.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exponent = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    let base = Duration::from_millis(100).saturating_mul(1 << exponent).min(max);
    // A fresh `RandomState` is randomly keyed; hashing nothing with it is a cheap random number.
    let jitter_permille = RandomState::new().hash_one(()) % 250;
    base.saturating_sub(base * u32::try_from(jitter_permille).unwrap_or(0) / 1000)
}

async fn log_event(name: String, event: NatsEvent) {
    match event {
        NatsEvent::Connected => tracing::info!(connection = %name, "NATS connected"),
        NatsEvent::Disconnected => tracing::warn!(connection = %name, "NATS disconnected; reconnecting"),
        NatsEvent::SlowConsumer(sid) => {
            tracing::warn!(connection = %name, sid, "NATS client buffer full: events dropped")
        }
        NatsEvent::ServerError(_) | NatsEvent::ClientError(_) => {
            tracing::warn!(connection = %name, event = %event, "NATS error")
        }
        other => tracing::info!(connection = %name, event = %other, "NATS event"),
    }
}
