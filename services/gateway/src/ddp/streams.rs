//! `sub` / `unsub`: Rocket.Chat's `stream-*` publications and the few Meteor publications
//! clients subscribe to on connect.

use apogee_types::Principal;
use serde_json::{Value, json};

use crate::ddp::frame::bare_error;
use crate::ddp::session::Session;
use crate::hub::Hub;

/// One active subscription of a socket, by what it watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActiveSub {
    RoomMessages(String),
    MyMessages,
    NotifyRoom(String),
    NotifyUser(String),
    NotifyLogged(String),
    NotifyAll(String),
    UserPresence,
    /// Accepted and answered with `ready`; nothing is ever pushed on it (yet).
    Quiet,
}

/// Stream options are `{"useCollection": bool, "args": [...]}` or a bare boolean.
fn use_collection(options: Option<&Value>) -> bool {
    match options {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(o)) => o.get("useCollection").and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    }
}

fn nosub(session: &mut Session, id: &str, error: Value) {
    session.replies.push(crate::ddp::frame::encode(&json!({ "msg": "nosub", "id": id, "error": error })));
}

fn ready(session: &mut Session, id: &str) {
    session.replies.push(crate::ddp::frame::encode(&json!({ "msg": "ready", "subs": [id] })));
}

pub(crate) async fn subscribe(session: &mut Session, id: String, name: String, params: Vec<Value>) {
    if session.subs.contains_key(&id) {
        return; // Meteor ignores a sub that reuses an active id.
    }
    let event_name = params.first().and_then(Value::as_str).unwrap_or_default().to_owned();
    let sub = match name.as_str() {
        "meteor.loginServiceConfiguration"
        | "meteor_autoupdate_clientVersions"
        | "userData"
        | "activeUsers"
        | "stream-roles" => Ok(Some(ActiveSub::Quiet)),
        // Readable by anyone, even before login.
        "stream-notify-all" => Ok(Some(ActiveSub::NotifyAll(event_name.clone()))),
        "stream-user-presence" => presence_sub(session, &id, &params),
        "stream-room-messages" | "stream-notify-room" | "stream-notify-user" | "stream-notify-logged" => {
            if event_name.is_empty() {
                Err(bare_error("invalid-event-name"))
            } else {
                authorize(session, &name, &event_name).await
            }
        }
        _ => Err(json!({
            "isClientSafe": true, "error": 404, "reason": format!("Subscription '{name}' not found"),
            "message": format!("Subscription '{name}' not found [404]"), "errorType": "Meteor.Error",
        })),
    };
    if let Ok(Some(ActiveSub::NotifyAll(event))) = &sub
        && let Ok(mut w) = session.conn.watches.lock()
    {
        w.notify_all.insert(event.clone());
    }
    match sub {
        Ok(Some(sub)) => {
            if use_collection(params.get(1)) && name.starts_with("stream-") {
                // SDK 0.2.x (Asteroid) drops `changed` for a document it has never seen `added`.
                let added = json!({"msg": "added", "collection": name, "id": "id", "fields": {"eventName": event_name}});
                session.replies.push(crate::ddp::frame::encode(&added));
            }
            session.subs.insert(id.clone(), sub);
            ready(session, &id);
        }
        Ok(None) => {} // answered already (presence updates)
        Err(error) => nosub(session, &id, error),
    }
}

/// Checks a stream's read rule and records the watch; `Err` is the `nosub` error.
async fn authorize(session: &mut Session, name: &str, event_name: &str) -> Result<Option<ActiveSub>, Value> {
    let not_allowed = || bare_error("not-allowed");
    // `__my_messages__` is readable before login (Asteroid re-subscribes on reconnect before
    // its resume login lands): events flow once the socket's user is known.
    let anonymous_ok = name == "stream-room-messages" && event_name == "__my_messages__";
    let who = match session.principal.clone() {
        Some(who) => who,
        None if anonymous_ok => {
            Principal { user_id: String::new(), username: String::new(), name: None, roles: vec![] }
        }
        None => return Err(not_allowed()),
    };
    let state = session.state.clone();
    let sub = match name {
        "stream-room-messages" if event_name == "__my_messages__" => ActiveSub::MyMessages,
        "stream-room-messages" => {
            if !Hub::can_read(&state.messaging, &who, event_name).await {
                return Err(not_allowed());
            }
            state.hub.watch_room(&session.conn, event_name).await;
            ActiveSub::RoomMessages(event_name.to_owned())
        }
        "stream-notify-room" => {
            let rid = event_name.split_once('/').map(|(rid, _)| rid).ok_or_else(not_allowed)?;
            if !Hub::can_read(&state.messaging, &who, rid).await {
                return Err(not_allowed());
            }
            state.hub.watch_room(&session.conn, rid).await;
            ActiveSub::NotifyRoom(event_name.to_owned())
        }
        "stream-notify-user" => {
            let (uid, event) = event_name.split_once('/').ok_or_else(not_allowed)?;
            if uid != who.user_id {
                return Err(not_allowed());
            }
            ActiveSub::NotifyUser(event.to_owned())
        }
        _ => ActiveSub::NotifyLogged(event_name.to_owned()),
    };
    if let Ok(mut w) = session.conn.watches.lock() {
        match &sub {
            ActiveSub::RoomMessages(rid) => {
                w.room_messages.insert(rid.clone());
            }
            ActiveSub::MyMessages => w.my_messages = true,
            ActiveSub::NotifyRoom(n) => {
                w.notify_room.insert(n.clone());
            }
            ActiveSub::NotifyUser(e) => {
                w.notify_user.insert(e.clone());
            }
            ActiveSub::NotifyLogged(e) => {
                w.notify_logged.insert(e.clone());
            }
            ActiveSub::NotifyAll(_) | ActiveSub::UserPresence | ActiveSub::Quiet => {}
        }
    }
    Ok(Some(sub))
}

/// `stream-user-presence` keeps one live subscription per socket; later subs only change the
/// watched set and are stopped at once (Rocket.Chat's `Presence.ts`).
fn presence_sub(session: &mut Session, id: &str, params: &[Value]) -> Result<Option<ActiveSub>, Value> {
    let ids = |key: &str| -> Vec<String> {
        params
            .get(1)
            .and_then(|o| o.get(key))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let (added, removed) = (ids("added"), ids("removed"));
    if let Ok(mut w) = session.conn.watches.lock() {
        w.presence.extend(added.iter().cloned());
        for uid in &removed {
            w.presence.remove(uid);
        }
    }
    let initial: Vec<(String, Value)> = added
        .iter()
        .filter_map(|uid| session.state.presence.frame_for(uid).map(|f| (uid.clone(), f)))
        .collect();
    for (_, frame) in initial {
        session.replies.push(crate::ddp::frame::encode(&frame));
    }
    if session.subs.values().any(|s| *s == ActiveSub::UserPresence) {
        session.replies.push(crate::ddp::frame::encode(&json!({ "msg": "nosub", "id": id })));
        return Ok(None);
    }
    Ok(Some(ActiveSub::UserPresence))
}

/// `unsub`: Meteor answers `nosub` even for an unknown id.
pub(crate) fn unsubscribe(session: &mut Session, id: &str) {
    if let Some(sub) = session.subs.remove(id) {
        let still_needed = session.subs.values().any(|s| *s == sub);
        if !still_needed && let Ok(mut w) = session.conn.watches.lock() {
            match &sub {
                ActiveSub::RoomMessages(rid) => {
                    w.room_messages.remove(rid);
                }
                ActiveSub::MyMessages => w.my_messages = false,
                ActiveSub::NotifyRoom(n) => {
                    w.notify_room.remove(n);
                }
                ActiveSub::NotifyUser(e) => {
                    w.notify_user.remove(e);
                }
                ActiveSub::NotifyLogged(e) => {
                    w.notify_logged.remove(e);
                }
                ActiveSub::NotifyAll(e) => {
                    w.notify_all.remove(e);
                }
                ActiveSub::UserPresence => w.presence.clear(),
                ActiveSub::Quiet => {}
            }
        }
    }
    session.replies.push(crate::ddp::frame::encode(&json!({ "msg": "nosub", "id": id })));
}
