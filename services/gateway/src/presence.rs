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
use std::sync::{Arc, Mutex, Weak};

use apogee_api::AuthClient;
use apogee_api::events::subject_token;
use apogee_bus::{Bus, Bytes, Subject, SubjectPattern};
use apogee_presence::PresenceHandle;
use apogee_types::{Principal, ServiceResult, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ddp::frame::{encode, stream_event};
use crate::hub::{ConnId, Hub};

/// A status change, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PresenceEvent {
    pub uid: String,
    pub username: String,
    pub status: String,
    pub status_text: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// Rocket.Chat's status numbers.
fn status_number(status: &str) -> u8 {
    match status {
        "online" => 1,
        "away" => 2,
        "busy" => 3,
        _ => 0,
    }
}

impl PresenceEvent {
    fn of(user: &User) -> Self {
        Self {
            uid: user.id.clone(),
            username: user.username.clone(),
            status: user.status.clone(),
            status_text: user.status_text.clone(),
            name: user.name.clone(),
            roles: user.roles.clone(),
        }
    }

    /// `stream-user-presence`: the user id is the document id, and `args` is doubly wrapped.
    fn presence_frame(&self) -> Value {
        json!({
            "msg": "changed", "collection": "stream-user-presence", "id": self.uid,
            "fields": { "uid": self.uid, "args": [[self.username, status_number(&self.status), self.status_text]], "eventName": self.uid },
        })
    }
}

pub(crate) struct Presence {
    auth: AuthClient,
    bus: Bus,
    store: PresenceHandle,
    /// This process's id in the connection registry.
    gateway: String,
    /// Live sockets here per user (to register again if the store lost them), and the last known
    /// status of users seen here. Std mutexes: map updates only.
    local: Mutex<HashMap<String, HashSet<ConnId>>>,
    known: Mutex<HashMap<String, PresenceEvent>>,
}

impl Presence {
    pub(crate) fn new(auth: AuthClient, bus: Bus, store: PresenceHandle) -> Arc<Self> {
        let gateway = apogee_types::random_id();
        Arc::new(Self { auth, bus, store, gateway, local: Mutex::default(), known: Mutex::default() })
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
    /// the TTL, or the store restarted), registers every local socket again.
    async fn beat(&self) {
        match self.store.heartbeat(&self.gateway).await {
            Ok(true) => {}
            Ok(false) => {
                let local: Vec<(String, Vec<ConnId>)> = self
                    .local
                    .lock()
                    .map(|l| {
                        l.iter().map(|(uid, conns)| (uid.clone(), conns.iter().copied().collect())).collect()
                    })
                    .unwrap_or_default();
                for (uid, conns) in local {
                    for conn in conns {
                        match self.store.connect(&self.gateway, &uid, &conn.to_string()).await {
                            Ok(true) => self.online(&uid).await,
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(user = %uid, error = %e, "could not register connection again")
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(gateway = %self.gateway, error = %e, "presence heartbeat failed"),
        }
    }

    /// Marks offline the users a sweep found without any live connection.
    async fn sweep(&self) {
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
                let Ok(change) = serde_json::from_slice::<PresenceEvent>(&event.payload) else { continue };
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
                let presence = encode(&change.presence_frame());
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
        self.known.lock().ok()?.get(uid).filter(|p| p.status != "offline").map(PresenceEvent::presence_frame)
    }

    /// A socket of `who` logged in.
    pub(crate) async fn connected(&self, who: &Principal, conn: ConnId) {
        let first_here = self.local.lock().is_ok_and(|mut local| {
            let set = local.entry(who.user_id.clone()).or_default();
            set.insert(conn);
            set.len() == 1
        });
        let first = match self.store.connect(&self.gateway, &who.user_id, &conn.to_string()).await {
            Ok(first) => first,
            Err(e) => {
                // Without the store, this gateway's own view is the best guess; the next
                // heartbeat registers the socket once the store is back.
                tracing::warn!(user = %who.user_id, error = %e, "could not register connection");
                first_here
            }
        };
        if first {
            self.online(&who.user_id).await;
        }
    }

    async fn online(&self, uid: &str) {
        if let Err(e) = self.go_online(uid).await {
            tracing::warn!(user = %uid, error = %e, "could not mark user online");
        }
    }

    async fn go_online(&self, uid: &str) -> ServiceResult<()> {
        let Some(user) = self.auth.find_user(apogee_api::UserSelector::Id(uid.to_owned())).await? else {
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
        let last = match self.store.disconnect(&self.gateway, uid, &conn.to_string()).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(user = %uid, error = %e, "could not unregister connection");
                last_here
            }
        };
        if last && let Err(e) = self.set(uid, "offline", None, None).await {
            tracing::warn!(user = %uid, error = %e, "could not mark user offline");
        }
    }

    /// Stores a status and announces it if it changed.
    pub(crate) async fn set(
        &self,
        uid: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<()> {
        let before = self.auth.find_user(apogee_api::UserSelector::Id(uid.to_owned())).await?;
        let user = self.auth.set_user_status(uid, status, status_default, status_text).await?;
        let changed = before.is_none_or(|b| b.status != user.status || b.status_text != user.status_text);
        if changed {
            self.publish(&PresenceEvent::of(&user)).await;
        }
        Ok(())
    }

    async fn publish(&self, event: &PresenceEvent) {
        let subject = format!("apogee.presence.{}", subject_token(&event.uid));
        let (Ok(subject), Ok(payload)) = (Subject::new(&subject), serde_json::to_vec(event)) else { return };
        if let Err(e) = self.bus.publish(&subject, Bytes::from(payload)).await {
            tracing::warn!(error = %e, "presence change not published");
        }
    }
}

#[cfg(test)]
mod tests;
