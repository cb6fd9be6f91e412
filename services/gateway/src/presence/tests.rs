//! Two gateways' presence over one shared Redis store (what distributed mode runs), with the real
//! auth service over a temporary store, so statuses and published events are the real ones.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apogee_api::{AuthClient, NewUser, UserSelector};
use apogee_auth::{Auth, AuthConfig, Bootstrap};
use apogee_bus::{Bus, SubjectPattern, Subscription};
use apogee_presence::{PresenceHandle, PresenceOptions};
use apogee_store::SqliteStore;
use apogee_types::Principal;

use super::{Presence, PresenceEvent};

/// The registrations' TTL in these tests; the sweep runs every third of it.
const TTL: Duration = Duration::from_millis(900);

struct World {
    auth: AuthClient,
    bus: Bus,
    store: PresenceHandle,
}

async fn world() -> World {
    let store = Arc::new(SqliteStore::open_temp().unwrap());
    let bus = Bus::local();
    let auth = Arc::new(Auth::new(
        store,
        AuthConfig {
            site_url: "http://localhost".into(),
            test_mode: true,
            failed_logins_per_user: 100,
            login_block: Duration::from_secs(1),
        },
        bus.clone(),
    ));
    auth.init(Bootstrap { admin: None, setting_overrides: BTreeMap::new() }).await.unwrap();
    let url = std::env::var("APOGEE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let options =
        PresenceOptions { prefix: format!("apogee-test:{}:", apogee_types::random_id()), gateway_ttl: TTL };
    let store = PresenceHandle::redis(&url, options).await.unwrap();
    World { auth: AuthClient::local(auth), bus, store }
}

impl World {
    fn gateway(&self) -> Arc<Presence> {
        Presence::new(self.auth.clone(), self.bus.clone(), self.store.clone())
    }

    async fn user(&self, username: &str) -> Principal {
        let user = self
            .auth
            .register_user(NewUser {
                username: username.into(),
                email: format!("{username}@example.com"),
                password: "password-1234".into(),
                name: Some(username.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        Principal { user_id: user.id, username: user.username, name: user.name, roles: user.roles }
    }

    async fn status(&self, who: &Principal) -> String {
        self.auth.find_user(UserSelector::Id(who.user_id.clone())).await.unwrap().unwrap().status
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
    serde_json::from_slice(&event.payload).unwrap()
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
