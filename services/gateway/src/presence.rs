//! Presence: which users have live sockets, and their status.
//!
//! A user is online (or away, or busy: their chosen status) while at least one socket of theirs
//! is logged in on any gateway, and offline otherwise. Each gateway registers its logged-in
//! sockets in the presence store (`apogee-presence`: in memory when embedded, Redis when
//! distributed) under a gateway id of its own, and heartbeats; the store answers "first
//! connection anywhere" and "last one", and a sweep finds the users of gateways that died
//! without saying goodbye. Changes are stored on the user (so REST sees them) and published once
//! on `apogee.presence.<uid>`; every gateway pushes them to the sockets that watch
//! (`stream-notify-logged` `user-status`, `stream-user-presence`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use apogee_api::AuthClient;
use apogee_api::events::{BusEvent, PresenceChanged, presence_subject};
use apogee_bus::{Bus, Subject, SubjectPattern};
use apogee_presence::PresenceHandle;
use apogee_types::{Principal, ServiceResult, User};
use serde_json::{Value, json};

use crate::ddp::frame::{encode, stream_event};
use crate::hub::{ConnId, Hub};

/// A status change, as published (protobuf on the bus, like every event).
pub(crate) type PresenceEvent = PresenceChanged;

/// Rocket.Chat's status numbers.
fn status_number(status: &str) -> u8 {
    match status {
        "online" => 1,
        "away" => 2,
        "busy" => 3,
        _ => 0,
    }
}

fn presence_event(user: &User) -> PresenceEvent {
    PresenceEvent {
        uid: user.id.clone(),
        username: user.username.clone(),
        status: user.status.clone(),
        status_text: user.status_text.clone(),
        name: user.name.clone(),
        roles: user.roles.clone(),
    }
}

/// `stream-user-presence`: the user id is the document id, and `args` is doubly wrapped.
fn presence_frame(event: &PresenceEvent) -> Value {
    json!({
        "msg": "changed", "collection": "stream-user-presence", "id": event.uid,
        "fields": { "uid": event.uid, "args": [[event.username, status_number(&event.status), event.status_text]], "eventName": event.uid },
    })
}

/// What presence needs of the auth service, which stores users' statuses. A seam of its own so
/// presence's tests need no auth service (the gateway may not depend on one, even for tests).
#[async_trait::async_trait]
pub(crate) trait Users: Send + Sync + 'static {
    async fn user(&self, uid: &str) -> ServiceResult<Option<User>>;
    async fn set_status(
        &self,
        uid: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<User>;
}

#[async_trait::async_trait]
impl Users for AuthClient {
    async fn user(&self, uid: &str) -> ServiceResult<Option<User>> {
        self.find_user(apogee_api::UserSelector::Id(uid.to_owned())).await
    }

    async fn set_status(
        &self,
        uid: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<User> {
        self.set_user_status(uid, status, status_default, status_text).await
    }
}

pub(crate) struct Presence {
    users: Arc<dyn Users>,
    bus: Bus,
    store: PresenceHandle,
    /// This process's id in the connection registry.
    gateway: String,
    /// Live sockets here per user (to register again if the store lost them), and the last known
    /// status of users seen here. Std mutexes: map updates only.
    local: Mutex<HashMap<String, HashSet<ConnId>>>,
    known: Mutex<HashMap<String, PresenceEvent>>,
    /// A registration failed (store unreachable): register every local socket at the next beat.
    resync: AtomicBool,
    /// Removals that failed, retried at each beat until the store takes them.
    unregister: Mutex<Vec<(String, ConnId)>>,
}

impl Presence {
    pub(crate) fn new(auth: AuthClient, bus: Bus, store: PresenceHandle) -> Arc<Self> {
        Self::with_users(Arc::new(auth), bus, store)
    }

    pub(crate) fn with_users(users: Arc<dyn Users>, bus: Bus, store: PresenceHandle) -> Arc<Self> {
        let gateway = apogee_types::random_id();
        Arc::new(Self {
            users,
            bus,
            store,
            gateway,
            local: Mutex::default(),
            known: Mutex::default(),
            resync: AtomicBool::new(false),
            unregister: Mutex::default(),
        })
    }

    /// Heartbeats once (so registrations count from the first socket on), then keeps
    /// heartbeating and sweeping in the background for as long as this gateway lives. Every
    /// gateway sweeps: a sweep hands each offline user to one sweeper only, so that is harmless,
    /// and the users of a dead gateway go offline even without a separate presence role.
    pub(crate) async fn keep_alive(self: &Arc<Self>) {
        self.beat().await;
        let this: Weak<Self> = Arc::downgrade(self);
        let period = self.store.gateway_ttl() / 3;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = this.upgrade() else { return };
                this.beat().await;
                this.sweep().await;
            }
        });
    }

    /// Refreshes this gateway's heartbeat; if its registrations were lost (a pause longer than
    /// the TTL, or the store restarted) or one failed, registers every local socket again; and
    /// retries removals that failed.
    async fn beat(&self) {
        let lost = match self.store.heartbeat(&self.gateway).await {
            Ok(intact) => !intact,
            Err(e) => {
                tracing::warn!(gateway = %self.gateway, error = %e, "presence heartbeat failed");
                return;
            }
        };
        if lost | self.resync.swap(false, Ordering::Relaxed) {
            let local: Vec<(String, Vec<ConnId>)> = self
                .local
                .lock()
                .map(|l| {
                    l.iter().map(|(uid, conns)| (uid.clone(), conns.iter().copied().collect())).collect()
                })
                .unwrap_or_default();
            for (uid, conns) in local {
                for conn in conns {
                    self.register(&uid, conn, false).await;
                }
            }
        }
        let removals = self.unregister.lock().map(|mut u| std::mem::take(&mut *u)).unwrap_or_default();
        for (uid, conn) in removals {
            self.unregister(&uid, conn, false).await;
        }
    }

    /// Registers a socket in the store; the user goes online if it is their first anywhere.
    /// `first_here`: whether it is the user's first socket on this gateway, the best guess while
    /// the store cannot answer (the next beat registers the socket).
    async fn register(&self, uid: &str, conn: ConnId, first_here: bool) {
        // Logged in again on the same socket before its old removal went through: the stale
        // registration is wanted after all, and the user (marked offline meanwhile) is back.
        let revived = self.unregister.lock().is_ok_and(|mut pending| {
            let before = pending.len();
            pending.retain(|(u, c)| !(u == uid && *c == conn));
            pending.len() < before
        });
        match self.store.connect(&self.gateway, uid, &conn.to_string()).await {
            Ok(first) if first || revived => self.online(uid).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(user = %uid, error = %e, "could not register connection");
                self.resync.store(true, Ordering::Relaxed);
                if first_here {
                    self.online(uid).await;
                }
            }
        }
    }

    /// Removes a socket's registration; the user goes offline if it was their last anywhere.
    /// `last_here`: whether it was the user's last socket on this gateway, the best guess while
    /// the store cannot answer.
    async fn unregister(&self, uid: &str, conn: ConnId, last_here: bool) {
        let last = match self.store.disconnect(&self.gateway, uid, &conn.to_string()).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(user = %uid, error = %e, "could not unregister connection");
                if let Ok(mut pending) = self.unregister.lock() {
                    pending.push((uid.to_owned(), conn));
                }
                last_here
            }
        };
        if last && let Err(e) = self.set(uid, "offline", None, None).await {
            tracing::warn!(user = %uid, error = %e, "could not mark user offline");
        }
    }

    /// Marks offline the users a sweep found without any live connection.
    pub(crate) async fn sweep(&self) {
        match self.store.sweep().await {
            Ok(users) => {
                for uid in users {
                    if let Err(e) = self.set(&uid, "offline", None, None).await {
                        tracing::warn!(user = %uid, error = %e, "could not mark swept user offline");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
        }
    }

    /// Follows every presence change and pushes it to the sockets that watch.
    pub(crate) async fn run(self: &Arc<Self>, hub: Arc<Hub>) {
        let Ok(pattern) = SubjectPattern::new("apogee.presence.>") else { return };
        let mut sub = match self.bus.subscribe(&pattern).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::error!(error = %e, "cannot follow presence");
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(event) = sub.next().await {
                let Ok(change) = PresenceEvent::decode(&event.payload) else { continue };
                if let Ok(mut known) = this.known.lock() {
                    known.insert(change.uid.clone(), change.clone());
                }
                let status = stream_event(
                    "stream-notify-logged",
                    "user-status",
                    json!([[
                        change.uid,
                        change.username,
                        status_number(&change.status),
                        change.status_text,
                        change.name,
                        change.roles
                    ]]),
                );
                let presence = encode(&presence_frame(&change));
                for conn in hub.all_sockets() {
                    let (logged, watches) = conn
                        .watches
                        .lock()
                        .map(|w| (w.notify_logged.contains("user-status"), w.presence.contains(&change.uid)))
                        .unwrap_or_default();
                    if logged {
                        conn.send(status.clone());
                    }
                    if watches {
                        conn.send(presence.clone());
                    }
                }
            }
        });
    }

    /// The current presence frame of a user seen here, for a new `stream-user-presence` watcher.
    pub(crate) fn frame_for(&self, uid: &str) -> Option<Value> {
        self.known.lock().ok()?.get(uid).filter(|p| p.status != "offline").map(presence_frame)
    }

    /// A socket of `who` logged in.
    pub(crate) async fn connected(&self, who: &Principal, conn: ConnId) {
        let first_here = self.local.lock().is_ok_and(|mut local| {
            let set = local.entry(who.user_id.clone()).or_default();
            set.insert(conn);
            set.len() == 1
        });
        self.register(&who.user_id, conn, first_here).await;
    }

    async fn online(&self, uid: &str) {
        if let Err(e) = self.go_online(uid).await {
            tracing::warn!(user = %uid, error = %e, "could not mark user online");
        }
    }

    async fn go_online(&self, uid: &str) -> ServiceResult<()> {
        let Some(user) = self.users.user(uid).await? else {
            return Ok(());
        };
        let status =
            if user.status_default == "offline" { "offline".to_owned() } else { user.status_default.clone() };
        self.set(uid, &status, None, None).await
    }

    /// A socket went away or logged out.
    pub(crate) async fn disconnected(&self, uid: &str, conn: ConnId) {
        // (was registered here, was the last one here)
        let (known, last_here) =
            self.local.lock().map_or((false, false), |mut local| match local.get_mut(uid) {
                Some(set) => {
                    let known = set.remove(&conn);
                    let empty = set.is_empty();
                    if empty {
                        local.remove(uid);
                    }
                    (known, empty)
                }
                None => (false, false),
            });
        if !known {
            return;
        }
        self.unregister(uid, conn, last_here).await;
    }

    /// Stores a status and announces it if it changed.
    pub(crate) async fn set(
        &self,
        uid: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<()> {
        let before = self.users.user(uid).await?;
        let user = self.users.set_status(uid, status, status_default, status_text).await?;
        let changed = before.is_none_or(|b| b.status != user.status || b.status_text != user.status_text);
        if changed {
            self.publish(&presence_event(&user)).await;
        }
        Ok(())
    }

    async fn publish(&self, event: &PresenceEvent) {
        let Ok(subject) = Subject::new(&presence_subject(&event.uid)) else { return };
        if let Err(e) = self.bus.publish(&subject, event.encode()).await {
            tracing::warn!(error = %e, "presence change not published");
        }
    }
}

#[cfg(test)]
mod tests;
