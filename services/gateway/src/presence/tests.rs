//! Two gateways' presence over one shared Redis store (what distributed mode runs). Users and
//! their statuses live in [`UserTable`], which keeps what presence relies on of the auth service
//! (the gateway may not depend on it, even for tests); the end-to-end tests cover the real one.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_api::events::BusEvent;
use apogee_bus::{Bus, SubjectPattern, Subscription};
use apogee_presence::{Hit, PresenceError, PresenceHandle, PresenceOptions, PresenceStore, UserStatus};
use apogee_types::{Principal, ServiceError, ServiceResult, User};
use serde_json::json;

use super::{Presence, PresenceEvent, Users};

/// The registrations' TTL in these tests; the sweep runs every third of it.
const TTL: Duration = Duration::from_millis(900);

/// Users by id, with the auth service's status rules: the status must be one of four, and
/// `status_default` / `status_text` change only when given.
#[derive(Default)]
struct UserTable(Mutex<HashMap<String, User>>);

#[async_trait::async_trait]
impl Users for UserTable {
    async fn user(&self, uid: &str) -> ServiceResult<Option<User>> {
        Ok(self.0.lock().unwrap().get(uid).cloned())
    }

    async fn set_status(
        &self,
        uid: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<User> {
        if !["online", "away", "busy", "offline"].contains(&status) {
            return Err(ServiceError::invalid("error-invalid-status", "invalid status"));
        }
        let mut users = self.0.lock().unwrap();
        let user =
            users.get_mut(uid).ok_or_else(|| ServiceError::invalid("error-invalid-user", "no such user"))?;
        user.status = status.to_owned();
        if let Some(default) = status_default {
            user.status_default = default;
        }
        if let Some(text) = status_text {
            user.status_text = text;
        }
        Ok(user.clone())
    }
}

struct World {
    users: Arc<UserTable>,
    bus: Bus,
    store: PresenceHandle,
}

async fn world() -> World {
    let url = std::env::var("APOGEE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let options =
        PresenceOptions { prefix: format!("apogee-test:{}:", apogee_types::random_id()), gateway_ttl: TTL };
    let store = PresenceHandle::redis(&url, options).await.unwrap();
    World { users: Arc::default(), bus: Bus::local(), store }
}

impl World {
    fn gateway(&self) -> Arc<Presence> {
        Presence::with_users(self.users.clone(), self.bus.clone(), self.store.clone())
    }

    async fn user(&self, username: &str) -> Principal {
        let user: User = serde_json::from_value(json!({
            "_id": apogee_types::random_id(), "username": username, "type": "user", "active": true,
            "status": "offline", "statusDefault": "online", "createdAt": 0, "_updatedAt": 0,
        }))
        .unwrap();
        self.users.0.lock().unwrap().insert(user.id.clone(), user.clone());
        user.principal()
    }

    async fn status(&self, who: &Principal) -> String {
        self.users.user(&who.user_id).await.unwrap().unwrap().status
    }

    async fn follow(&self) -> Subscription {
        self.bus.subscribe(&SubjectPattern::new("apogee.presence.>").unwrap()).await.unwrap()
    }
}

/// Waits (at most a few TTLs) until `done` holds.
async fn eventually<F: Future<Output = bool>>(mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + TTL * 5;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_change(events: &mut Subscription) -> PresenceEvent {
    let event = tokio::time::timeout(TTL * 5, events.next()).await.unwrap().unwrap();
    PresenceEvent::decode(&event.payload).unwrap()
}

#[tokio::test]
async fn a_user_is_online_while_connected_on_any_gateway() {
    let w = world().await;
    let alice = w.user("alice").await;
    let (a, b) = (w.gateway(), w.gateway());
    a.keep_alive().await;
    b.keep_alive().await;
    let mut events = w.follow().await;
    a.connected(&alice, 1).await;
    assert_eq!(w.status(&alice).await, "online");
    assert_eq!(next_change(&mut events).await.status, "online");
    // The same socket number on another gateway is another socket.
    b.connected(&alice, 1).await;
    a.disconnected(&alice.user_id, 1).await;
    assert_eq!(w.status(&alice).await, "online", "still connected on b");
    b.disconnected(&alice.user_id, 1).await;
    assert_eq!(w.status(&alice).await, "offline");
    let change = next_change(&mut events).await;
    assert_eq!((change.uid.as_str(), change.status.as_str()), (alice.user_id.as_str(), "offline"));
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 0);
}

#[tokio::test]
async fn the_users_of_a_dead_gateway_go_offline_by_themselves() {
    let w = world().await;
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    // `dead` beats once and never again, as if killed with -9; `live` keeps beating and sweeping.
    let (dead, live) = (w.gateway(), w.gateway());
    dead.beat().await;
    live.keep_alive().await;
    dead.connected(&alice, 1).await;
    dead.connected(&bob, 2).await;
    live.connected(&bob, 3).await;
    assert_eq!((w.status(&alice).await, w.status(&bob).await), ("online".into(), "online".into()));
    let mut events = w.follow().await;
    let change = next_change(&mut events).await;
    assert_eq!((change.uid.as_str(), change.status.as_str()), (alice.user_id.as_str(), "offline"));
    assert_eq!(w.status(&alice).await, "offline");
    assert_eq!(w.status(&bob).await, "online", "bob is still connected to the live gateway");
    assert_eq!(w.store.connections(&bob.user_id).await.unwrap(), 1);
    // Nothing else is announced: the next change is the one made now.
    live.disconnected(&bob.user_id, 3).await;
    let change = next_change(&mut events).await;
    assert_eq!((change.uid.as_str(), change.status.as_str()), (bob.user_id.as_str(), "offline"));
    drop(dead);
}

#[tokio::test]
async fn a_gateway_that_was_only_slow_registers_its_sockets_again() {
    let w = world().await;
    let alice = w.user("alice").await;
    let (slow, sweeper) = (w.gateway(), w.gateway());
    slow.beat().await;
    sweeper.keep_alive().await;
    slow.connected(&alice, 1).await;
    eventually(|| async { w.status(&alice).await == "offline" }).await;
    // Its next heartbeat finds its registrations gone, so it registers alice's socket again.
    slow.beat().await;
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 1);
    assert_eq!(w.status(&alice).await, "online");
    slow.disconnected(&alice.user_id, 1).await;
    assert_eq!(w.status(&alice).await, "offline");
}

/// A presence store that fails registrations and removals while `down` is set, as Redis does
/// while unreachable; everything else goes to the real in-memory store.
struct Flaky {
    inner: apogee_presence::MemoryPresence,
    down: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn fail<T>(&self, call: Result<T, PresenceError>) -> Result<T, PresenceError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PresenceError::Backend("connection refused".into()));
        }
        call
    }
}

#[async_trait::async_trait]
impl PresenceStore for Flaky {
    fn gateway_ttl(&self) -> Duration {
        self.inner.gateway_ttl()
    }
    async fn heartbeat(&self, gateway: &str) -> Result<bool, PresenceError> {
        self.inner.heartbeat(gateway).await
    }
    async fn connect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        self.fail(Ok(()))?;
        self.inner.connect(gateway, uid, conn).await
    }
    async fn disconnect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        self.fail(Ok(()))?;
        self.inner.disconnect(gateway, uid, conn).await
    }
    async fn connections(&self, uid: &str) -> Result<u64, PresenceError> {
        self.inner.connections(uid).await
    }
    async fn sweep(&self) -> Result<Vec<String>, PresenceError> {
        self.inner.sweep().await
    }
    async fn set_status(&self, uid: &str, status: &UserStatus) -> Result<(), PresenceError> {
        self.inner.set_status(uid, status).await
    }
    async fn status(&self, uid: &str) -> Result<Option<UserStatus>, PresenceError> {
        self.inner.status(uid).await
    }
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, PresenceError> {
        self.inner.hit(key, window).await
    }
    async fn put_token(
        &self,
        hash: &str,
        uid: &str,
        principal: &[u8],
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        self.inner.put_token(hash, uid, principal, ttl).await
    }
    async fn token(&self, hash: &str) -> Result<Option<Vec<u8>>, PresenceError> {
        self.inner.token(hash).await
    }
    async fn evict_token(&self, hash: &str) -> Result<(), PresenceError> {
        self.inner.evict_token(hash).await
    }
    async fn evict_user_tokens(&self, uid: &str) -> Result<(), PresenceError> {
        self.inner.evict_user_tokens(uid).await
    }
}

#[tokio::test]
async fn registrations_that_failed_are_made_at_the_next_beat() {
    let mut w = world().await;
    let flaky = Arc::new(Flaky {
        inner: apogee_presence::MemoryPresence::new(PresenceOptions {
            gateway_ttl: TTL,
            ..Default::default()
        }),
        down: false.into(),
    });
    w.store = PresenceHandle::from_arc(flaky.clone());
    let set_down = |down: bool| flaky.down.store(down, std::sync::atomic::Ordering::SeqCst);
    let alice = w.user("alice").await;
    let g = w.gateway();
    g.beat().await;

    set_down(true);
    g.connected(&alice, 1).await;
    assert_eq!(w.status(&alice).await, "online", "the gateway's own view while the store is down");
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 0);
    set_down(false);
    g.beat().await;
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 1, "registered at the next beat");

    set_down(true);
    g.disconnected(&alice.user_id, 1).await;
    assert_eq!(w.status(&alice).await, "offline");
    set_down(false);
    g.beat().await;
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 0, "removed at the next beat");

    // A removal still pending when the same socket logs in again is dropped, and the user is back.
    g.connected(&alice, 2).await;
    set_down(true);
    g.disconnected(&alice.user_id, 2).await;
    assert_eq!(w.status(&alice).await, "offline");
    set_down(false);
    g.connected(&alice, 2).await;
    assert_eq!(w.status(&alice).await, "online");
    g.beat().await;
    assert_eq!(w.store.connections(&alice.user_id).await.unwrap(), 1);
    assert_eq!(w.status(&alice).await, "online");
}
