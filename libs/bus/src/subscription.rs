//! What a subscriber holds ([`Subscription`]) and what a backend feeds it through
//! ([`SubscriptionSender`]). Every backend uses this pair, so every backend bounds its queues and
//! counts its losses the same way.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::Subject;

/// One published event as a subscriber receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The subject it was published on (not the pattern it matched).
    pub subject: Subject,
    /// The encoded event, shared with every other subscriber that received it.
    pub payload: Bytes,
    /// The publisher's W3C `traceparent`, when traces are exported: the subscriber's handling
    /// continues the publisher's trace.
    pub traceparent: Option<Arc<str>>,
}

/// A live interest in a subject pattern. Events arrive in publish order per publisher;
/// dropping the subscription unsubscribes it.
///
/// Delivery is best effort. The queue between the bus and the subscriber is bounded; when it is
/// full the bus drops the event for this subscriber rather than wait or buffer, and counts it in
/// [`lagged`](Self::lagged). An owner that sees the count grow has missed events and catches up
/// from the store.
pub struct Subscription {
    /// Bounded so that a slow subscriber costs at most `capacity` events of memory; the sender
    /// only ever `try_send`s, so it never waits for the subscriber.
    receiver: mpsc::Receiver<Event>,
    /// Shared with the sender, which bumps it for each event it had to drop. An atomic rather
    /// than a message in the queue: a full queue has no room to say that it is full.
    lagged: Arc<AtomicU64>,
    /// Unregisters the subscription from its backend, run once when the subscription drops.
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// The backend's end of a [`Subscription`]: delivers without ever waiting.
#[derive(Clone)]
pub struct SubscriptionSender {
    sender: mpsc::Sender<Event>,
    lagged: Arc<AtomicU64>,
}

/// What [`SubscriptionSender::try_deliver`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The event is queued for the subscriber.
    Queued,
    /// The subscriber's queue was full; the event was dropped and counted as lagged.
    Lost,
    /// The subscription is gone; the backend should forget this sender.
    Closed,
}

// === impl Subscription ===

impl Subscription {
    /// Creates a subscription whose queue holds up to `capacity` events (at least one), and the
    /// sender a backend delivers to it through.
    pub fn channel(capacity: usize) -> (SubscriptionSender, Subscription) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicU64::new(0));
        let subscription = Subscription { receiver, lagged: lagged.clone(), on_drop: None };
        (SubscriptionSender { sender, lagged }, subscription)
    }

    /// Sets what runs when the subscription is dropped: typically, the backend unregistering it.
    /// The hook runs on the dropping thread, so it must be quick and must not block on I/O.
    pub fn on_drop(mut self, hook: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Box::new(hook));
        self
    }

    /// Waits for the next event. Returns `None` once the bus is gone and the queued events have
    /// been read. Cancel-safe: if the future is dropped before it completes (say, in a
    /// `tokio::select!`), no event is lost.
    pub async fn next(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// Returns how many events this subscription has lost since it was created, because its
    /// queue was full. The events were dropped when they were published, so they come after
    /// every event still in the queue.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hook) = self.on_drop.take() {
            hook();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.receiver.len())
            .field("lagged", &self.lagged())
            .finish_non_exhaustive()
    }
}

// === impl SubscriptionSender ===

impl SubscriptionSender {
    /// Queues `event` for the subscriber if there is room, and otherwise drops it and counts it
    /// as lagged. Never waits.
    pub fn try_deliver(&self, event: Event) -> Delivery {
        match self.sender.try_send(event) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.fetch_add(1, Ordering::Relaxed);
                Delivery::Lost
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    /// Returns true once the subscription has been dropped.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl fmt::Debug for SubscriptionSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionSender")
            .field("closed", &self.is_closed())
            .field("lagged", &self.lagged.load(Ordering::Relaxed))
            .finish()
    }
}
