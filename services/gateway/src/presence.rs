//! Presence in embedded mode: which users have live sockets here, and their status.
//!
//! A user is online (or away, or busy: their chosen status) while at least one socket of theirs
//! is logged in, and offline otherwise. Changes are stored on the user (so REST sees them) and
//! published once on `apogee.presence.<uid>`; every gateway pushes them to the sockets that
//! watch (`stream-notify-logged` `user-status`, `stream-user-presence`). Distributed mode moves
//! the connection registry to Redis with heartbeats (issue #4).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use apogee_api::AuthClient;
use apogee_api::events::subject_token;
use apogee_bus::{Bus, Bytes, Subject, SubjectPattern};
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
    /// Live sockets per user, and the last known status of users seen here. A std mutex: map
    /// updates only.
    local: Mutex<HashMap<String, HashSet<ConnId>>>,
    known: Mutex<HashMap<String, PresenceEvent>>,
}

impl Presence {
    pub(crate) fn new(auth: AuthClient, bus: Bus) -> Arc<Self> {
        Arc::new(Self { auth, bus, local: Mutex::default(), known: Mutex::default() })
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
        let first = self.local.lock().is_ok_and(|mut local| {
            let set = local.entry(who.user_id.clone()).or_default();
            set.insert(conn);
            set.len() == 1
        });
        if first && let Err(e) = self.go_online(&who.user_id).await {
            tracing::warn!(user = %who.user_id, error = %e, "could not mark user online");
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
        let last = self.local.lock().is_ok_and(|mut local| match local.get_mut(uid) {
            Some(set) => {
                set.remove(&conn);
                if set.is_empty() {
                    local.remove(uid);
                    true
                } else {
                    false
                }
            }
            None => false,
        });
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
