//! Fan-out: which local sockets want which events, and the bus subscriptions that feed them.
//!
//! The hub holds one bus subscription per room and per user that at least one local socket cares
//! about (reference-counted by the sockets that need it). A room event is turned into frames
//! once — the same `Utf8Bytes` go to every socket that watches the room — and per user only for
//! what differs per user (the sidebar's `subscriptions-changed` with its unread count).
//! Sockets are fed through bounded queues; one that cannot keep up is closed, never buffered
//! without limit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apogee_api::events::{Action, AllEvent, BusEvent, RoomEvent, UserEvent, subject_token};
use apogee_api::{MessagingClient, RoomSelector};
use apogee_bus::{Bus, SubjectPattern};
use apogee_rc::Dates;
use apogee_types::{Message, Principal, Room, Subscription};
use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use std::collections::VecDeque;

use apogee_telemetry::metrics::metrics;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ddp::frame::stream_event;

pub(crate) type ConnId = u64;

/// Frames a socket may hold before it counts as unable to keep up.
pub(crate) const OUTBOUND_QUEUE: usize = 256;

/// What a connection watches, by stream.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    /// `stream-room-messages` by room id.
    pub room_messages: HashSet<String>,
    /// `stream-room-messages` `__my_messages__`.
    pub my_messages: bool,
    /// `stream-notify-room` `<rid>/<event>`.
    pub notify_room: HashSet<String>,
    /// `stream-notify-user` `<own uid>/<event>`: the event part.
    pub notify_user: HashSet<String>,
    /// `stream-notify-logged` event names.
    pub notify_logged: HashSet<String>,
    /// `stream-notify-all` event names.
    pub notify_all: HashSet<String>,
    /// `stream-user-presence`: watched user ids.
    pub presence: HashSet<String>,
}

/// A socket's bounded queue of frames to write. A deque that allocates only when frames wait,
/// plus a `Notify`: idle sockets cost no queue memory (a bounded `mpsc` allocates its first block
/// up front).
#[derive(Default)]
pub(crate) struct Outbox {
    /// Held only to push or pop.
    queue: Mutex<VecDeque<Utf8Bytes>>,
    ready: Notify,
}

impl Outbox {
    /// Queues a frame; `false` when the queue is full.
    fn push(&self, frame: Utf8Bytes) -> bool {
        let Ok(mut queue) = self.queue.lock() else { return false };
        if queue.len() >= OUTBOUND_QUEUE {
            return false;
        }
        queue.push_back(frame);
        drop(queue);
        metrics().fanout_queue_depth.inc();
        // Stores a permit when the writer is not waiting, so no frame is left unannounced.
        self.ready.notify_one();
        true
    }

    /// The next frame to write. Cancel-safe: a frame leaves the queue only when returned.
    pub(crate) async fn pop(&self) -> Utf8Bytes {
        loop {
            if let Some(frame) = self.queue.lock().ok().and_then(|mut q| q.pop_front()) {
                metrics().fanout_queue_depth.dec();
                return frame;
            }
            self.ready.notified().await;
        }
    }
}

impl Drop for Outbox {
    /// Frames a closed socket never wrote leave the queue-depth gauge with it.
    fn drop(&mut self) {
        let left = self.queue.get_mut().map(|q| q.len()).unwrap_or(0);
        metrics().fanout_queue_depth.add(-(left as i64));
    }
}

/// The hub's handle on one socket.
pub(crate) struct Conn {
    pub id: ConnId,
    pub(crate) outbox: Outbox,
    /// Cancelled when the socket must close: it fell behind, or the server is stopping.
    pub kill: CancellationToken,
    /// Set before `kill` when the server is stopping (close 1012, "reconnect elsewhere").
    pub restarting: std::sync::atomic::AtomicBool,
    /// Held briefly to read or change a watch; never across an await.
    pub watches: Mutex<Watches>,
    /// Set once the socket logs in.
    pub user: Mutex<Option<Principal>>,
    /// Rooms whose `watchers` list this socket, so leaving costs only its own rooms.
    watched_rooms: Mutex<HashSet<String>>,
}

impl Conn {
    /// Queues a frame; a full queue closes the socket (the client reconnects and catches up).
    pub(crate) fn send(&self, frame: Utf8Bytes) {
        if !self.outbox.push(frame) {
            // Counted once per socket: frames racing the close find it already cancelled.
            if !self.kill.is_cancelled() {
                metrics().slow_consumer_disconnects.inc();
            }
            tracing::info!(conn = self.id, "socket cannot keep up; closing it");
            self.kill.cancel();
        }
    }

    fn user_id(&self) -> Option<String> {
        self.user.lock().ok()?.as_ref().map(|p| p.user_id.clone())
    }
}

/// One logged-in user with sockets here: their rooms, and their subscriptions for the sidebar.
struct UserEntry {
    conns: HashSet<ConnId>,
    /// Subscriptions by room id, kept current from events: unread counts are derived here.
    subs: HashMap<String, Subscription>,
    _feed: AbortOnDrop,
}

struct RoomEntry {
    /// Local users who are members.
    members: HashSet<String>,
    /// Sockets watching the room without being (or besides being) counted as members.
    watchers: HashSet<ConnId>,
    _feed: AbortOnDrop,
}

/// Aborts the feeding task when the last interest goes.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, Arc<Conn>>,
    users: HashMap<String, UserEntry>,
    rooms: HashMap<String, RoomEntry>,
}

/// The gateway's fan-out.
pub(crate) struct Hub {
    bus: Bus,
    /// Tells this gateway's sockets apart from another gateway's with the same number, in
    /// events that name their origin.
    instance: String,
    next_id: AtomicU64,
    /// A std mutex: every critical section is a few map operations, never an await.
    inner: Mutex<Inner>,
}

impl Hub {
    pub(crate) fn new(bus: Bus) -> Arc<Self> {
        Arc::new(Self {
            bus,
            instance: apogee_types::random_id(),
            next_id: AtomicU64::new(1),
            inner: Mutex::default(),
        })
    }

    /// A socket's name across every gateway, for events that must skip their sender.
    pub(crate) fn origin(&self, conn: ConnId) -> String {
        format!("{}/{conn}", self.instance)
    }

    /// Registers a socket; returns its handle and the queue its writer drains.
    pub(crate) fn connect(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            outbox: Outbox::default(),
            kill: CancellationToken::new(),
            restarting: std::sync::atomic::AtomicBool::new(false),
            watches: Mutex::default(),
            user: Mutex::new(None),
            watched_rooms: Mutex::default(),
        });
        if let Ok(mut inner) = self.inner.lock() {
            inner.conns.insert(conn.id, conn.clone());
        }
        conn
    }

    /// Forgets a socket and every interest only it held.
    pub(crate) fn disconnect(&self, conn: &Conn) {
        let user_id = conn.user_id();
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.conns.remove(&conn.id);
        // The rooms this socket watches are on the socket: no scan of every room.
        let watched: Vec<String> =
            conn.watched_rooms.lock().map(|mut w| w.drain().collect()).unwrap_or_default();
        for rid in watched {
            if let Some(room) = inner.rooms.get_mut(&rid) {
                room.watchers.remove(&conn.id);
            }
            drop_room_if_unused(&mut inner, &rid);
        }
        if let Some(uid) = user_id {
            detach_user_locked(&mut inner, &uid, conn.id);
        }
    }

    /// Binds a socket to its user after login: loads the user's rooms (once per user) and
    /// follows their events.
    pub(crate) async fn attach(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        who: &Principal,
        messaging: &MessagingClient,
    ) {
        let known = self.inner.lock().is_ok_and(|inner| inner.users.contains_key(&who.user_id));
        if !known {
            // Follow the user's events before reading their rooms, so nothing falls between.
            let feed = self.spawn_user_feed(&who.user_id).await;
            let subs = match messaging.subscriptions(who, None).await {
                Ok(changes) => changes.update,
                Err(e) => {
                    tracing::warn!(user = %who.user_id, error = %e, "could not load subscriptions for a socket");
                    Vec::new()
                }
            };
            let mut rooms_to_follow = Vec::new();
            if let Ok(mut inner) = self.inner.lock()
                && !inner.users.contains_key(&who.user_id)
            {
                let subs: HashMap<String, Subscription> =
                    subs.into_iter().map(|s| (s.rid.clone(), s)).collect();
                rooms_to_follow = subs.keys().cloned().collect();
                inner
                    .users
                    .insert(who.user_id.clone(), UserEntry { conns: HashSet::new(), subs, _feed: feed });
            }
            for rid in rooms_to_follow {
                self.add_member_interest(&rid, &who.user_id).await;
            }
        }
        if let Ok(mut inner) = self.inner.lock()
            && let Some(user) = inner.users.get_mut(&who.user_id)
        {
            user.conns.insert(conn.id);
        }
        if let Ok(mut user) = conn.user.lock() {
            *user = Some(who.clone());
        }
    }

    /// Unbinds a socket from its user (logout).
    pub(crate) fn detach(&self, conn: &Conn) {
        let Some(uid) = conn.user_id() else { return };
        if let Ok(mut user) = conn.user.lock() {
            *user = None;
        }
        if let Ok(mut inner) = self.inner.lock() {
            detach_user_locked(&mut inner, &uid, conn.id);
        }
    }

    /// Makes a socket receive a room's events even if its user is not a member (public channels).
    pub(crate) async fn watch_room(self: &Arc<Self>, conn: &Conn, rid: &str) {
        let exists = self.inner.lock().is_ok_and(|inner| inner.rooms.contains_key(rid));
        let feed = if exists { None } else { Some(self.spawn_room_feed(rid).await) };
        if let Ok(mut inner) = self.inner.lock() {
            let entry = match (inner.rooms.contains_key(rid), feed) {
                (true, _) | (false, None) => inner.rooms.get_mut(rid),
                (false, Some(feed)) => {
                    inner.rooms.insert(
                        rid.to_owned(),
                        RoomEntry { members: HashSet::new(), watchers: HashSet::new(), _feed: feed },
                    );
                    inner.rooms.get_mut(rid)
                }
            };
            if let Some(entry) = entry {
                entry.watchers.insert(conn.id);
                if let Ok(mut watched) = conn.watched_rooms.lock() {
                    watched.insert(rid.to_owned());
                }
            }
        }
    }

    async fn add_member_interest(self: &Arc<Self>, rid: &str, uid: &str) {
        let exists = self.inner.lock().is_ok_and(|inner| inner.rooms.contains_key(rid));
        let feed = if exists { None } else { Some(self.spawn_room_feed(rid).await) };
        if let Ok(mut inner) = self.inner.lock() {
            if let (false, Some(feed)) = (inner.rooms.contains_key(rid), feed) {
                inner.rooms.insert(
                    rid.to_owned(),
                    RoomEntry { members: HashSet::new(), watchers: HashSet::new(), _feed: feed },
                );
            }
            if let Some(entry) = inner.rooms.get_mut(rid) {
                entry.members.insert(uid.to_owned());
            }
        }
    }

    async fn spawn_room_feed(self: &Arc<Self>, rid: &str) -> AbortOnDrop {
        let pattern = format!("apogee.room.{}.>", subject_token(rid));
        let hub = self.clone();
        let rid = rid.to_owned();
        self.spawn_feed(pattern, move |payload| match RoomEvent::decode(payload) {
            Ok(event) => hub.dispatch_room(&rid, event),
            Err(e) => tracing::warn!(%rid, error = %e, "undecodable room event"),
        })
        .await
    }

    async fn spawn_user_feed(self: &Arc<Self>, uid: &str) -> AbortOnDrop {
        let pattern = format!("apogee.user.{}.>", subject_token(uid));
        let hub = self.clone();
        let uid = uid.to_owned();
        self.spawn_feed(pattern, move |payload| {
            match UserEvent::decode(payload) {
                Ok(event) => {
                    let hub = hub.clone();
                    let uid = uid.clone();
                    // Membership changes may subscribe to a new room: off the feed's hot loop.
                    let dispatch = async move { hub.dispatch_user(&uid, event).await };
                    if apogee_telemetry::trace::enabled() {
                        use tracing::Instrument;
                        tokio::spawn(dispatch.instrument(tracing::Span::current()));
                    } else {
                        tokio::spawn(dispatch);
                    }
                }
                Err(e) => tracing::warn!(%uid, error = %e, "undecodable user event"),
            }
        })
        .await
    }

    async fn spawn_feed(
        &self,
        pattern: String,
        mut handle: impl FnMut(&[u8]) + Send + 'static,
    ) -> AbortOnDrop {
        let subscription = match SubjectPattern::new(&pattern) {
            Ok(p) => self.bus.subscribe(&p).await,
            Err(e) => Err(e),
        };
        let task = match subscription {
            Ok(mut sub) => tokio::spawn(async move {
                let mut lost = 0;
                while let Some(event) = sub.next().await {
                    if sub.lagged() > lost {
                        lost = sub.lagged();
                        tracing::warn!(%pattern, lost, "hub fell behind the bus; clients catch up on reconnect");
                    }
                    // Fan-out continues the publisher's trace (a no-op span when not exported).
                    let span = apogee_telemetry::trace::consumer_span(
                        "hub fan-out",
                        event.subject.as_str(),
                        event.traceparent.as_deref(),
                    );
                    let _entered = span.enter();
                    handle(&event.payload);
                }
            }),
            Err(e) => {
                tracing::error!(%pattern, error = %e, "cannot follow events");
                tokio::spawn(async {})
            }
        };
        AbortOnDrop(task.abort_handle())
    }

    /// Delivers a room event to every interested local socket.
    fn dispatch_room(&self, rid: &str, event: RoomEvent) {
        match event {
            RoomEvent::Message { message, room, touched, left, inserted } => {
                self.dispatch_message(rid, &message, &room, &touched, &left, inserted)
            }
            RoomEvent::Changed { room } => self.dispatch_room_changed(&room),
            RoomEvent::MessageDeleted { message_id } => {
                let name = format!("{rid}/deleteMessage");
                let frame = stream_event("stream-notify-room", &name, json!([{ "_id": message_id }]));
                for conn in self.room_sockets(rid) {
                    if conn.watches.lock().is_ok_and(|w| w.notify_room.contains(&name)) {
                        conn.send(frame.clone());
                    }
                }
            }
            RoomEvent::Activity { username, activity, extra, origin } => {
                let mut args = vec![Value::from(username.clone()), json!(activity)];
                if !extra.is_null() {
                    args.push(extra);
                }
                let activity_name = format!("{rid}/user-activity");
                let frame = stream_event("stream-notify-room", &activity_name, Value::Array(args));
                // Older clients listen to `<rid>/typing` with `[username, bool]`.
                let typing_name = format!("{rid}/typing");
                let typing = stream_event(
                    "stream-notify-room",
                    &typing_name,
                    json!([username, activity.iter().any(|a| a == "user-typing")]),
                );
                for conn in self.room_sockets(rid) {
                    if self.origin(conn.id) == origin {
                        continue;
                    }
                    let (wants_activity, wants_typing) = conn
                        .watches
                        .lock()
                        .map(|w| {
                            (w.notify_room.contains(&activity_name), w.notify_room.contains(&typing_name))
                        })
                        .unwrap_or_default();
                    if wants_activity {
                        conn.send(frame.clone());
                    }
                    if wants_typing {
                        conn.send(typing.clone());
                    }
                }
            }
        }
    }

    fn dispatch_message(
        &self,
        rid: &str,
        message: &Message,
        room: &Room,
        touched: &[String],
        left: &[String],
        inserted: bool,
    ) {
        let shown = apogee_rc::message(message, Dates::Ejson);
        let room_frame = stream_event("stream-room-messages", rid, json!([shown.clone()]));
        let meta = json!({
            "roomParticipant": true,
            "roomType": room.t.as_str(),
            "roomName": room.name.clone().unwrap_or_default(),
        });
        let my_frame = stream_event("stream-room-messages", "__my_messages__", json!([shown, meta]));
        // Encoded at most once, and only if a socket wants the sidebar's `rooms-changed`.
        let mut room_json: Option<Value> = None;

        // Decide under the lock (map work, plus the per-user frames that someone watches), send
        // after it.
        let mut sends: Vec<(Arc<Conn>, Utf8Bytes)> = Vec::new();
        {
            let Ok(mut guard) = self.inner.lock() else { return };
            let Inner { conns, users, rooms } = &mut *guard;
            let Some(entry) = rooms.get(rid) else { return };
            let mut seen: HashSet<ConnId> = HashSet::new();
            for uid in entry.members.iter().filter(|uid| !left.contains(uid)) {
                let Some(user) = users.get_mut(uid) else { continue };
                // What this user's sockets watch, read once.
                let (mut wants_rooms, mut wants_subs) = (false, false);
                for conn_id in &user.conns {
                    let Some(conn) = conns.get(conn_id) else { continue };
                    seen.insert(*conn_id);
                    let Ok(w) = conn.watches.lock() else { continue };
                    if w.room_messages.contains(rid) {
                        sends.push((conn.clone(), room_frame.clone()));
                    }
                    if w.my_messages {
                        sends.push((conn.clone(), my_frame.clone()));
                    }
                    wants_rooms |= w.notify_user.contains("rooms-changed");
                    wants_subs |= w.notify_user.contains("subscriptions-changed");
                }
                // The sidebar: derive the unread count for members whose subscription the write
                // did not touch (those get their own subscription event); always keep it
                // current, encode it only for a watcher.
                let sub_frame = match user.subs.get_mut(rid) {
                    Some(sub) if inserted && !touched.contains(uid) => {
                        if message.counts_as_unread() && message.u.id != *uid {
                            sub.unread += 1;
                            sub.alert = true;
                        }
                        if message.group_mention_for(uid) {
                            sub.group_mentions += 1;
                        }
                        sub.updated_at = sub.updated_at.max(message.ts);
                        wants_subs.then(|| {
                            stream_event(
                                "stream-notify-user",
                                &format!("{uid}/subscriptions-changed"),
                                json!(["updated", apogee_rc::subscription(sub, Dates::Ejson)]),
                            )
                        })
                    }
                    _ => None,
                };
                let rooms_frame = (inserted && wants_rooms).then(|| {
                    let room_json = room_json.get_or_insert_with(|| apogee_rc::room(room, Dates::Ejson));
                    stream_event(
                        "stream-notify-user",
                        &format!("{uid}/rooms-changed"),
                        json!(["updated", room_json]),
                    )
                });
                if sub_frame.is_none() && rooms_frame.is_none() {
                    continue;
                }
                for conn_id in &user.conns {
                    let Some(conn) = conns.get(conn_id) else { continue };
                    let Ok(w) = conn.watches.lock() else { continue };
                    if let (Some(frame), true) = (&rooms_frame, w.notify_user.contains("rooms-changed")) {
                        sends.push((conn.clone(), frame.clone()));
                    }
                    if let (Some(frame), true) = (&sub_frame, w.notify_user.contains("subscriptions-changed"))
                    {
                        sends.push((conn.clone(), frame.clone()));
                    }
                }
            }
            for conn_id in &entry.watchers {
                if seen.contains(conn_id) {
                    continue;
                }
                let Some(conn) = conns.get(conn_id) else { continue };
                if conn.watches.lock().is_ok_and(|w| w.room_messages.contains(rid)) {
                    sends.push((conn.clone(), room_frame.clone()));
                }
            }
        }
        for (conn, frame) in sends {
            conn.send(frame);
        }
    }

    fn dispatch_room_changed(&self, room: &Room) {
        let room_json = apogee_rc::room(room, Dates::Ejson);
        let mut sends = Vec::new();
        if let Ok(inner) = self.inner.lock() {
            let Some(entry) = inner.rooms.get(&room.id) else { return };
            for uid in &entry.members {
                let Some(user) = inner.users.get(uid) else { continue };
                let frame = stream_event(
                    "stream-notify-user",
                    &format!("{uid}/rooms-changed"),
                    json!(["updated", room_json.clone()]),
                );
                for conn_id in &user.conns {
                    if let Some(conn) = inner.conns.get(conn_id)
                        && conn.watches.lock().is_ok_and(|w| w.notify_user.contains("rooms-changed"))
                    {
                        sends.push((conn.clone(), frame.clone()));
                    }
                }
            }
        }
        for (conn, frame) in sends {
            conn.send(frame);
        }
    }

    async fn dispatch_user(self: &Arc<Self>, uid: &str, event: UserEvent) {
        let (name, args) = match &event {
            UserEvent::Subscription { action, subscription, unread } => {
                let mut subscription = subscription.clone();
                subscription.unread = *unread;
                let rid = subscription.rid.clone();
                match action {
                    Action::Inserted | Action::Updated => {
                        let joined = self.inner.lock().is_ok_and(|mut inner| {
                            inner.users.get_mut(uid).is_some_and(|u| {
                                u.subs.insert(rid.clone(), (*subscription).clone()).is_none()
                            })
                        });
                        if joined {
                            self.add_member_interest(&rid, uid).await;
                        }
                    }
                    Action::Removed => self.forget_membership(uid, &rid),
                }
                let shown = if *action == Action::Removed {
                    json!({ "_id": subscription.id, "rid": subscription.rid, "u": subscription.u })
                } else {
                    apogee_rc::subscription(&subscription, Dates::Ejson)
                };
                ("subscriptions-changed", json!([action.as_str(), shown]))
            }
            UserEvent::Notification { notification } => ("notification", json!([notification])),
            UserEvent::Ephemeral { id, rid, msg, ts } => {
                let ts = Dates::Ejson.value(*ts);
                let message = json!({
                    "_id": id, "rid": rid, "ts": ts, "msg": msg, "_updatedAt": ts,
                    "u": { "_id": "rocket.cat", "username": "rocket.cat" }, "private": true, "groupable": false,
                });
                ("message", json!([message]))
            }
            UserEvent::Room { action, room } => {
                let shown = if *action == Action::Removed {
                    json!({ "_id": room.id })
                } else {
                    apogee_rc::room(room, Dates::Ejson)
                };
                ("rooms-changed", json!([action.as_str(), shown]))
            }
        };
        let frame = stream_event("stream-notify-user", &format!("{uid}/{name}"), args);
        for conn in self.user_sockets(uid) {
            if conn.watches.lock().is_ok_and(|w| w.notify_user.contains(name)) {
                conn.send(frame.clone());
            }
        }
    }

    /// A user left a room: stop their room feed if nobody else here needs it, and drop their
    /// sockets' watches of it (Rocket.Chat ends those subscriptions silently).
    fn forget_membership(&self, uid: &str, rid: &str) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let conns: Vec<ConnId> = match inner.users.get_mut(uid) {
            Some(user) => {
                user.subs.remove(rid);
                user.conns.iter().copied().collect()
            }
            None => return,
        };
        for conn_id in &conns {
            if let Some(conn) = inner.conns.get(conn_id)
                && let Ok(mut w) = conn.watches.lock()
            {
                w.room_messages.remove(rid);
                w.notify_room.retain(|name| !name.starts_with(&format!("{rid}/")));
            }
        }
        if let Some(room) = inner.rooms.get_mut(rid) {
            room.members.remove(uid);
            for conn_id in &conns {
                room.watchers.remove(conn_id);
            }
        }
        for conn_id in &conns {
            if let Some(Ok(mut watched)) = inner.conns.get(conn_id).map(|c| c.watched_rooms.lock()) {
                watched.remove(rid);
            }
        }
        drop_room_if_unused(&mut inner, rid);
    }

    fn room_sockets(&self, rid: &str) -> Vec<Arc<Conn>> {
        let Ok(inner) = self.inner.lock() else { return Vec::new() };
        let Some(entry) = inner.rooms.get(rid) else { return Vec::new() };
        let mut ids: HashSet<ConnId> = entry.watchers.clone();
        for uid in &entry.members {
            if let Some(user) = inner.users.get(uid) {
                ids.extend(user.conns.iter().copied());
            }
        }
        ids.iter().filter_map(|id| inner.conns.get(id).cloned()).collect()
    }

    pub(crate) fn user_sockets(&self, uid: &str) -> Vec<Arc<Conn>> {
        let Ok(inner) = self.inner.lock() else { return Vec::new() };
        let Some(user) = inner.users.get(uid) else { return Vec::new() };
        user.conns.iter().filter_map(|id| inner.conns.get(id).cloned()).collect()
    }

    /// Follows `apogee.all.>`: setting and permission changes for every watching socket.
    pub(crate) async fn run_all_feed(self: &Arc<Self>) {
        let hub = self.clone();
        let feed = self
            .spawn_feed("apogee.all.>".to_owned(), move |payload| {
                let Ok(event) = AllEvent::decode(payload) else { return };
                let (stream, name, args, logged_only) = match event {
                    AllEvent::PublicSetting { id, value } => (
                        "stream-notify-all",
                        "public-settings-changed",
                        json!(["updated", { "_id": id, "value": value }]),
                        false,
                    ),
                    AllEvent::Permission { id, roles, updated_at } => (
                        "stream-notify-logged",
                        "permissions-changed",
                        json!(["updated", { "_id": id, "roles": roles, "_updatedAt": Dates::Ejson.value(updated_at) }]),
                        true,
                    ),
                    AllEvent::NameChanged { id, name, username } => {
                        let mut change = json!({ "_id": id, "username": username });
                        if let (Some(name), Some(map)) = (name, change.as_object_mut()) {
                            map.insert("name".into(), json!(name));
                        }
                        ("stream-notify-logged", "Users:NameChanged", json!([change]), true)
                    }
                    AllEvent::Avatar { username, rid, etag } => {
                        let mut change = serde_json::Map::new();
                        if let Some(username) = username {
                            change.insert("username".into(), json!(username));
                        }
                        if let Some(rid) = rid {
                            change.insert("rid".into(), json!(rid));
                        }
                        if let Some(etag) = etag {
                            change.insert("etag".into(), json!(etag));
                        }
                        ("stream-notify-logged", "updateAvatar", json!([change]), true)
                    }
                    AllEvent::RoleChange { change, role, user, scope } => {
                        let mut update = json!({ "type": change, "_id": role, "u": user });
                        if let (Some(scope), Some(map)) = (scope, update.as_object_mut()) {
                            map.insert("scope".into(), json!(scope));
                        }
                        ("stream-notify-logged", "roles-change", json!([update]), true)
                    }
                };
                let frame = stream_event(stream, name, args);
                for conn in hub.all_sockets() {
                    let wants = conn
                        .watches
                        .lock()
                        .is_ok_and(|w| if logged_only { w.notify_logged.contains(name) } else { w.notify_all.contains(name) });
                    if wants {
                        conn.send(frame.clone());
                    }
                }
            })
            .await;
        // The feed lives as long as the hub: keep the task running.
        std::mem::forget(feed);
    }

    /// Asks every socket to close because the server is stopping.
    pub(crate) fn close_all(&self) {
        for conn in self.all_sockets() {
            conn.restarting.store(true, Ordering::Relaxed);
            conn.kill.cancel();
        }
    }

    /// Every socket (for `stream-notify-logged` and presence).
    pub(crate) fn all_sockets(&self) -> Vec<Arc<Conn>> {
        self.inner.lock().map(|inner| inner.conns.values().cloned().collect()).unwrap_or_default()
    }

    /// Checks read access to a room for a socket's user (stream subscriptions).
    pub(crate) async fn can_read(messaging: &MessagingClient, who: &Principal, rid: &str) -> bool {
        messaging.room_info(who, RoomSelector::id(rid)).await.is_ok()
    }
}

fn detach_user_locked(inner: &mut Inner, uid: &str, conn_id: ConnId) {
    let Some(user) = inner.users.get_mut(uid) else { return };
    user.conns.remove(&conn_id);
    if !user.conns.is_empty() {
        return;
    }
    let rooms: Vec<String> = user.subs.keys().cloned().collect();
    inner.users.remove(uid);
    for rid in rooms {
        if let Some(room) = inner.rooms.get_mut(&rid) {
            room.members.remove(uid);
        }
        drop_room_if_unused(inner, &rid);
    }
}

fn drop_room_if_unused(inner: &mut Inner, rid: &str) {
    if inner.rooms.get(rid).is_some_and(|r| r.members.is_empty() && r.watchers.is_empty()) {
        inner.rooms.remove(rid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_that_falls_behind_is_closed_not_buffered() {
        let hub = Hub::new(Bus::local());
        let conn = hub.connect();
        let frame = Utf8Bytes::from_static("{}");
        for _ in 0..OUTBOUND_QUEUE {
            conn.send(frame.clone());
        }
        assert!(!conn.kill.is_cancelled(), "a full queue is still fine");
        conn.send(frame.clone());
        assert!(conn.kill.is_cancelled(), "one more frame than the queue holds closes the socket");
        assert_eq!(conn.outbox.pop().await.as_str(), "{}", "what was queued is still there to flush");
        hub.disconnect(&conn);
        assert!(hub.all_sockets().is_empty());
    }

    #[tokio::test]
    async fn a_watched_room_is_released_when_its_last_watcher_goes() {
        let hub = Hub::new(Bus::local());
        let (a, b) = (hub.connect(), hub.connect());
        hub.watch_room(&a, "r1").await;
        hub.watch_room(&b, "r1").await;
        hub.disconnect(&a);
        assert!(hub.inner.lock().is_ok_and(|i| i.rooms.contains_key("r1")), "b still watches");
        hub.disconnect(&b);
        assert!(hub.inner.lock().is_ok_and(|i| i.rooms.is_empty()), "the room feed is dropped");
    }
}
