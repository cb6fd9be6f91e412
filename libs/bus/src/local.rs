//! The embedded bus: subject-matching delivery inside one process (`apogee serve`).

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, Weak};

use apogee_telemetry::metrics::metrics;
use async_trait::async_trait;
use bytes::Bytes;

use crate::{BusError, Delivery, Event, EventBus, Subject, SubjectPattern, Subscription, SubscriptionSender};

/// How many events a subscription's queue holds by default before it starts losing events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// The in-process [`EventBus`].
///
/// Publishing costs one hash lookup for the subscriptions to that exact subject, plus a match
/// against each wildcard subscription, plus one non-blocking enqueue per receiving subscription.
/// It does not grow with the number of exact subscriptions to other subjects (one per room a
/// gateway watches), which is where the numbers are. Wildcard subscriptions are expected to be
/// few (a handful of `apogee.all.>`-style interests per process); if that changes, the list
/// becomes a token trie without changing the API.
pub struct LocalBus {
    registry: Arc<Registry>,
    capacity: usize,
}

/// All live subscriptions. Subscriptions hold a `Weak` to it, so dropping the bus drops every
/// sender and their owners see the end of their stream.
struct Registry {
    /// A std `RwLock`, not tokio's: every critical section is short and synchronous (lookups,
    /// `try_send`, inserts), so it is never held across an `.await`. Publishers share the read
    /// side, so they do not serialize on each other; only subscribe and unsubscribe write.
    routes: RwLock<Routes>,
}

#[derive(Default)]
struct Routes {
    next_id: u64,
    /// Subscriptions with no wildcard, by subject. Keys are removed when their last
    /// subscription goes, so the map does not keep rooms nobody watches any more.
    exact: HashMap<Subject, Vec<Route>>,
    /// Subscriptions with a wildcard, checked one by one.
    wildcard: Vec<(SubjectPattern, Route)>,
}

struct Route {
    id: u64,
    sender: SubscriptionSender,
}

// === impl LocalBus ===

impl LocalBus {
    /// Creates a bus whose subscription queues hold [`DEFAULT_QUEUE_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_QUEUE_CAPACITY)
    }

    /// Creates a bus whose subscription queues hold `capacity` events each (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            registry: Arc::new(Registry { routes: RwLock::new(Routes::default()) }),
            capacity: capacity.max(1),
        }
    }

    /// Returns how many events each subscription's queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns how many subscriptions are live.
    pub fn subscription_count(&self) -> usize {
        let routes = self.registry.read();
        routes.exact.values().map(Vec::len).sum::<usize>() + routes.wildcard.len()
    }

    /// Returns how many distinct exact subjects have at least one subscription.
    pub fn exact_subject_count(&self) -> usize {
        self.registry.read().exact.len()
    }

    fn deliver(&self, subject: &Subject, payload: &Bytes, traceparent: Option<Arc<str>>) {
        let event =
            || Event { subject: subject.clone(), payload: payload.clone(), traceparent: traceparent.clone() };
        let routes = self.registry.read();
        // A `Closed` delivery needs no action: the subscription's drop hook removes its route.
        if let Some(exact) = routes.exact.get(subject) {
            for route in exact {
                count(route.sender.try_deliver(event()));
            }
        }
        for (pattern, route) in &routes.wildcard {
            if pattern.matches(subject) {
                count(route.sender.try_deliver(event()));
            }
        }
    }

    fn register(&self, pattern: &SubjectPattern) -> Subscription {
        let (sender, subscription) = Subscription::channel(self.capacity);
        let exact = pattern.as_exact();
        let id = {
            let mut routes = self.registry.write();
            let id = routes.next_id;
            routes.next_id += 1;
            let route = Route { id, sender };
            match &exact {
                Some(subject) => routes.exact.entry(subject.clone()).or_default().push(route),
                None => routes.wildcard.push((pattern.clone(), route)),
            }
            id
        };
        let registry = Arc::downgrade(&self.registry);
        subscription.on_drop(move || unregister(&registry, id, exact.as_ref()))
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBus")
            .field("capacity", &self.capacity)
            .field("subscriptions", &self.subscription_count())
            .finish()
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError> {
        metrics().bus_published.inc();
        let span = apogee_telemetry::trace::producer_span(subject.as_str());
        let traceparent = apogee_telemetry::trace::traceparent_of(&span).map(Arc::from);
        let _entered = span.enter();
        self.deliver(subject, &payload, traceparent);
        Ok(())
    }

    async fn subscribe(&self, pattern: &SubjectPattern) -> Result<Subscription, BusError> {
        Ok(self.register(pattern))
    }
}

fn count(delivery: Delivery) {
    match delivery {
        Delivery::Queued => metrics().bus_received.inc(),
        Delivery::Lost => metrics().bus_lost.inc(),
        Delivery::Closed => {}
    }
}

/// Removes subscription `id` (registered on `exact`, or among the wildcards if `None`), unless
/// the bus is already gone.
fn unregister(registry: &Weak<Registry>, id: u64, exact: Option<&Subject>) {
    let Some(registry) = registry.upgrade() else {
        return;
    };
    let mut routes = registry.write();
    match exact {
        Some(subject) => {
            if let Some(subject_routes) = routes.exact.get_mut(subject) {
                subject_routes.retain(|route| route.id != id);
                if subject_routes.is_empty() {
                    routes.exact.remove(subject);
                }
            }
        }
        None => routes.wildcard.retain(|(_, route)| route.id != id),
    }
}

// === impl Registry ===

impl Registry {
    // A poisoned lock is recovered rather than propagated: no critical section can leave the
    // routes half-updated (each is a single insert, removal or a read), so they stay consistent.

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }
}
