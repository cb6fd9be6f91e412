//! The bus encoding of every event: conversions between the Rust types (`apogee-types`, the
//! events of this module) and the messages of `proto/apogee/events/v1/events.proto`, both ways.
//! Lossless: `decode(encode(e)) == e` for every value (the tests below hold it to that). Also
//! the typed messages of `Messaging.SendMessage`, which reuse the event `Message`.
//!
//! What Rocket.Chat keeps open-ended (`serde_json::Value`, JSON objects) travels as JSON text in a
//! `bytes` field; an empty field is the empty object, or `null` where any value may stand.

use apogee_proto::events::v1 as pb;
use apogee_types::{ChannelMention, Mention, Message, Millis, Room, RoomType, Subscription, UserRef};
use bytes::Bytes;
use prost::Message as _;
use serde_json::{Map, Value};

use crate::NewMessage;

use super::{Action, AllEvent, FilesPruned, PresenceChanged, RoomEvent, SettingChanged, UserEvent};

/// Why a bus payload is not the event its subject promises: not protobuf, a required field or
/// variant absent, an unknown enum value, or a JSON field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad event payload: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// What travels on the bus: an event with its protobuf encoding.
pub trait BusEvent: Sized {
    /// The bus payload: this event's protobuf encoding.
    fn encode(&self) -> Bytes;

    /// Reads a bus payload written by [`encode`](Self::encode).
    fn decode(payload: &[u8]) -> Result<Self>;
}

/// Implements [`BusEvent`] for each event type through its protobuf message.
macro_rules! wire {
    ($($ty:ty => $pb:ty: $to:ident, $from:ident;)*) => {$(
        impl BusEvent for $ty {
            fn encode(&self) -> Bytes {
                Bytes::from($to(self).encode_to_vec())
            }

            fn decode(payload: &[u8]) -> Result<Self> {
                $from(<$pb>::decode(payload).map_err(|e| DecodeError(e.to_string()))?)
            }
        }
    )*};
}

wire! {
    RoomEvent => pb::RoomEvent: room_event, room_event_of;
    UserEvent => pb::UserEvent: user_event, user_event_of;
    AllEvent => pb::AllEvent: all_event, all_event_of;
    SettingChanged => pb::SettingChanged: setting_changed, setting_changed_of;
    FilesPruned => pb::FilesPruned: files_pruned, files_pruned_of;
    PresenceChanged => pb::PresenceChanged: presence_changed, presence_changed_of;
}

fn required<T>(field: Option<T>, name: &str) -> Result<T> {
    field.ok_or_else(|| DecodeError(format!("{name} is missing")))
}

// === JSON fields ===

fn object_bytes(map: &Map<String, Value>) -> Vec<u8> {
    if map.is_empty() {
        return Vec::new();
    }
    // Cannot fail: the keys are strings and the values JSON.
    serde_json::to_vec(map).unwrap_or_default()
}

fn object_of(bytes: &[u8], name: &str) -> Result<Map<String, Value>> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError(format!("{name}: {e}")))
}

fn value_bytes(value: &Value) -> Vec<u8> {
    if value.is_null() { Vec::new() } else { value.to_string().into_bytes() }
}

fn value_of(bytes: &[u8], name: &str) -> Result<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError(format!("{name}: {e}")))
}

/// An optional JSON field where present-but-`null` differs from absent (`Some(Null)` vs `None`).
fn present_value_bytes(value: Option<&Value>) -> Option<Vec<u8>> {
    value.map(|v| v.to_string().into_bytes())
}

fn present_value_of(bytes: Option<&[u8]>, name: &str) -> Result<Option<Value>> {
    bytes.map(|b| serde_json::from_slice(b).map_err(|e| DecodeError(format!("{name}: {e}")))).transpose()
}

// === shapes ===

fn user_ref(u: &UserRef) -> pb::UserRef {
    pb::UserRef { id: u.id.clone(), username: u.username.clone(), name: u.name.clone() }
}

fn user_ref_of(u: pb::UserRef) -> UserRef {
    UserRef { id: u.id, username: u.username, name: u.name }
}

fn room_type(t: RoomType) -> pb::RoomType {
    match t {
        RoomType::Channel => pb::RoomType::Channel,
        RoomType::Group => pb::RoomType::Group,
        RoomType::Direct => pb::RoomType::Direct,
    }
}

fn room_type_of(t: i32) -> Result<RoomType> {
    match pb::RoomType::try_from(t) {
        Ok(pb::RoomType::Channel) => Ok(RoomType::Channel),
        Ok(pb::RoomType::Group) => Ok(RoomType::Group),
        Ok(pb::RoomType::Direct) => Ok(RoomType::Direct),
        Ok(pb::RoomType::Unspecified) | Err(_) => Err(DecodeError(format!("room type {t}"))),
    }
}

fn action(a: Action) -> pb::Action {
    match a {
        Action::Inserted => pb::Action::Inserted,
        Action::Updated => pb::Action::Updated,
        Action::Removed => pb::Action::Removed,
    }
}

fn action_of(a: i32) -> Result<Action> {
    match pb::Action::try_from(a) {
        Ok(pb::Action::Inserted) => Ok(Action::Inserted),
        Ok(pb::Action::Updated) => Ok(Action::Updated),
        Ok(pb::Action::Removed) => Ok(Action::Removed),
        Ok(pb::Action::Unspecified) | Err(_) => Err(DecodeError(format!("action {a}"))),
    }
}

/// A message as `events.proto` carries it (also the `Messaging.SendMessage` reply).
pub(crate) fn message(m: &Message) -> pb::Message {
    pb::Message {
        id: m.id.clone(),
        rid: m.rid.clone(),
        msg: m.msg.clone(),
        ts: m.ts.0,
        u: Some(user_ref(&m.u)),
        updated_at: m.updated_at.0,
        t: m.t.clone(),
        mentions: m
            .mentions
            .iter()
            .map(|x| pb::Mention {
                id: x.id.clone(),
                username: x.username.clone(),
                name: x.name.clone(),
                kind: x.kind.clone(),
            })
            .collect(),
        channels: m
            .channels
            .iter()
            .map(|c| pb::ChannelMention { id: c.id.clone(), name: c.name.clone() })
            .collect(),
        tmid: m.tmid.clone(),
        tshow: m.tshow,
        groupable: m.groupable,
        seq: m.seq,
        edited_at: m.edited_at.map(|t| t.0),
        edited_by: m.edited_by.as_ref().map(user_ref),
        reactions: object_bytes(&m.reactions),
        extra: object_bytes(&m.extra),
    }
}

/// Reads a message written by [`message`].
pub(crate) fn message_of(m: pb::Message) -> Result<Message> {
    Ok(Message {
        u: user_ref_of(required(m.u, "message.u")?),
        reactions: object_of(&m.reactions, "message.reactions")?,
        extra: object_of(&m.extra, "message.extra")?,
        id: m.id,
        rid: m.rid,
        msg: m.msg,
        ts: Millis(m.ts),
        updated_at: Millis(m.updated_at),
        t: m.t,
        mentions: m
            .mentions
            .into_iter()
            .map(|x| Mention { id: x.id, username: x.username, name: x.name, kind: x.kind })
            .collect(),
        channels: m.channels.into_iter().map(|c| ChannelMention { id: c.id, name: c.name }).collect(),
        tmid: m.tmid,
        tshow: m.tshow,
        groupable: m.groupable,
        seq: m.seq,
        edited_at: m.edited_at.map(Millis),
        edited_by: m.edited_by.map(user_ref_of),
    })
}

fn room(r: &Room) -> pb::Room {
    pb::Room {
        id: r.id.clone(),
        t: room_type(r.t).into(),
        name: r.name.clone(),
        fname: r.fname.clone(),
        u: r.u.as_ref().map(user_ref),
        ts: r.ts.0,
        updated_at: r.updated_at.0,
        msgs: r.msgs,
        users_count: r.users_count,
        lm: r.lm.map(|t| t.0),
        last_message: r.last_message.as_deref().map(message),
        topic: r.topic.clone(),
        description: r.description.clone(),
        announcement: r.announcement.clone(),
        purpose: r.purpose.clone(),
        ro: r.ro,
        archived: r.archived,
        default: r.default,
        featured: r.featured,
        broadcast: r.broadcast,
        encrypted: r.encrypted,
        // Present even for `null`: `Some(Null)` and `None` are different rooms.
        sys_mes: present_value_bytes(r.sys_mes.as_ref()),
        uids: r.uids.clone(),
        usernames: r.usernames.clone(),
        join_code: r.join_code.clone(),
        muted: r.muted.clone(),
        unmuted: r.unmuted.clone(),
        favorite: r.favorite,
        react_when_read_only: r.react_when_read_only,
        custom_fields: object_bytes(&r.custom_fields),
        prid: r.prid.clone(),
        dmid: r.dmid.clone(),
        avatar_etag: r.avatar_etag.clone(),
        team_id: r.team_id.clone(),
        team_main: r.team_main,
        team_default: r.team_default,
        sidepanel: present_value_bytes(r.sidepanel.as_ref()),
    }
}

fn room_of(r: pb::Room) -> Result<Room> {
    let sys_mes = present_value_of(r.sys_mes.as_deref(), "room.sys_mes")?;
    let sidepanel = present_value_of(r.sidepanel.as_deref(), "room.sidepanel")?;
    Ok(Room {
        sidepanel,
        t: room_type_of(r.t)?,
        last_message: r.last_message.map(message_of).transpose()?.map(Box::new),
        custom_fields: object_of(&r.custom_fields, "room.custom_fields")?,
        sys_mes,
        id: r.id,
        name: r.name,
        fname: r.fname,
        u: r.u.map(user_ref_of),
        ts: Millis(r.ts),
        updated_at: Millis(r.updated_at),
        msgs: r.msgs,
        users_count: r.users_count,
        lm: r.lm.map(Millis),
        topic: r.topic,
        description: r.description,
        announcement: r.announcement,
        purpose: r.purpose,
        ro: r.ro,
        archived: r.archived,
        default: r.default,
        featured: r.featured,
        broadcast: r.broadcast,
        encrypted: r.encrypted,
        uids: r.uids,
        usernames: r.usernames,
        join_code: r.join_code,
        muted: r.muted,
        unmuted: r.unmuted,
        favorite: r.favorite,
        react_when_read_only: r.react_when_read_only,
        prid: r.prid,
        dmid: r.dmid,
        avatar_etag: r.avatar_etag,
        team_id: r.team_id,
        team_main: r.team_main,
        team_default: r.team_default,
    })
}

fn subscription(s: &Subscription) -> pb::Subscription {
    pb::Subscription {
        id: s.id.clone(),
        rid: s.rid.clone(),
        u: Some(user_ref(&s.u)),
        t: room_type(s.t).into(),
        name: s.name.clone(),
        fname: s.fname.clone(),
        ts: s.ts.0,
        updated_at: s.updated_at.0,
        open: s.open,
        alert: s.alert,
        user_mentions: s.user_mentions,
        group_mentions: s.group_mentions,
        ls: s.ls.map(|t| t.0),
        lr: s.lr.map(|t| t.0),
        f: s.f,
        roles: s.roles.clone(),
        archived: s.archived,
        last_read_seq: s.last_read_seq,
        notifications: object_bytes(&s.notifications),
        tunread: s.tunread.clone(),
        tunread_user: s.tunread_user.clone(),
        tunread_group: s.tunread_group.clone(),
        ignored: s.ignored.clone(),
        unread: s.unread,
    }
}

fn subscription_of(s: pb::Subscription) -> Result<Subscription> {
    Ok(Subscription {
        u: user_ref_of(required(s.u, "subscription.u")?),
        t: room_type_of(s.t)?,
        notifications: object_of(&s.notifications, "subscription.notifications")?,
        id: s.id,
        rid: s.rid,
        name: s.name,
        fname: s.fname,
        ts: Millis(s.ts),
        updated_at: Millis(s.updated_at),
        open: s.open,
        alert: s.alert,
        user_mentions: s.user_mentions,
        group_mentions: s.group_mentions,
        ls: s.ls.map(Millis),
        lr: s.lr.map(Millis),
        f: s.f,
        roles: s.roles,
        archived: s.archived,
        last_read_seq: s.last_read_seq,
        tunread: s.tunread,
        tunread_user: s.tunread_user,
        tunread_group: s.tunread_group,
        ignored: s.ignored,
        unread: s.unread,
    })
}

// === events ===

fn room_event(e: &RoomEvent) -> pb::RoomEvent {
    use pb::room_event::Event;
    let event = match e {
        RoomEvent::Message { message: m, room: r, touched, left, inserted } => {
            Event::Message(pb::room_event::MessageChanged {
                message: Some(message(m)),
                room: Some(room(r)),
                touched: touched.clone(),
                left: left.clone(),
                inserted: *inserted,
            })
        }
        RoomEvent::Changed { room: r } => Event::Changed(pb::room_event::RoomChanged { room: Some(room(r)) }),
        RoomEvent::MessageDeleted { message_id } => {
            Event::MessageDeleted(pb::room_event::MessageDeleted { message_id: message_id.clone() })
        }
        RoomEvent::Activity { username, activity, extra, origin } => {
            Event::Activity(pb::room_event::Activity {
                username: username.clone(),
                activity: activity.clone(),
                extra: value_bytes(extra),
                origin: origin.clone(),
            })
        }
    };
    pb::RoomEvent { event: Some(event) }
}

fn room_event_of(e: pb::RoomEvent) -> Result<RoomEvent> {
    use pb::room_event::Event;
    Ok(match required(e.event, "room event")? {
        Event::Message(m) => RoomEvent::Message {
            message: Box::new(message_of(required(m.message, "message")?)?),
            room: Box::new(room_of(required(m.room, "room")?)?),
            touched: m.touched,
            left: m.left,
            inserted: m.inserted,
        },
        Event::Changed(c) => RoomEvent::Changed { room: Box::new(room_of(required(c.room, "room")?)?) },
        Event::MessageDeleted(d) => RoomEvent::MessageDeleted { message_id: d.message_id },
        Event::Activity(a) => RoomEvent::Activity {
            extra: value_of(&a.extra, "activity.extra")?,
            username: a.username,
            activity: a.activity,
            origin: a.origin,
        },
    })
}

fn user_event(e: &UserEvent) -> pb::UserEvent {
    use pb::user_event::Event;
    let event = match e {
        UserEvent::Subscription { action: a, subscription: s, unread } => {
            Event::Subscription(pb::user_event::SubscriptionChanged {
                action: action(*a).into(),
                subscription: Some(subscription(s)),
                unread: *unread,
            })
        }
        UserEvent::Room { action: a, room: r } => {
            Event::Room(pb::user_event::RoomChanged { action: action(*a).into(), room: Some(room(r)) })
        }
        UserEvent::Notification { notification } => {
            Event::Notification(pb::user_event::Notification { notification: value_bytes(notification) })
        }
        UserEvent::Ephemeral { id, rid, msg, ts } => Event::Ephemeral(pb::user_event::Ephemeral {
            id: id.clone(),
            rid: rid.clone(),
            msg: msg.clone(),
            ts: ts.0,
        }),
    };
    pb::UserEvent { event: Some(event) }
}

fn user_event_of(e: pb::UserEvent) -> Result<UserEvent> {
    use pb::user_event::Event;
    Ok(match required(e.event, "user event")? {
        Event::Subscription(s) => UserEvent::Subscription {
            action: action_of(s.action)?,
            subscription: Box::new(subscription_of(required(s.subscription, "subscription")?)?),
            unread: s.unread,
        },
        Event::Room(r) => UserEvent::Room {
            action: action_of(r.action)?,
            room: Box::new(room_of(required(r.room, "room")?)?),
        },
        Event::Notification(n) => {
            UserEvent::Notification { notification: value_of(&n.notification, "notification")? }
        }
        Event::Ephemeral(m) => UserEvent::Ephemeral { id: m.id, rid: m.rid, msg: m.msg, ts: Millis(m.ts) },
    })
}

fn all_event(e: &AllEvent) -> pb::AllEvent {
    use pb::all_event::Event;
    let event = match e {
        AllEvent::PublicSetting { id, value } => {
            Event::PublicSetting(pb::all_event::PublicSetting { id: id.clone(), value: value_bytes(value) })
        }
        AllEvent::Permission { id, roles, updated_at } => Event::Permission(pb::all_event::Permission {
            id: id.clone(),
            roles: roles.clone(),
            updated_at: updated_at.0,
        }),
        AllEvent::NameChanged { id, name, username } => Event::NameChanged(pb::all_event::NameChanged {
            id: id.clone(),
            name: name.clone(),
            username: username.clone(),
        }),
        AllEvent::Avatar { username, rid, etag } => Event::Avatar(pb::all_event::Avatar {
            username: username.clone(),
            rid: rid.clone(),
            etag: etag.clone(),
        }),
        AllEvent::RoleChange { change, role, user, scope } => Event::RoleChange(pb::all_event::RoleChange {
            change: change.clone(),
            role: role.clone(),
            user: Some(user_ref(user)),
            scope: scope.clone(),
        }),
    };
    pb::AllEvent { event: Some(event) }
}

fn all_event_of(e: pb::AllEvent) -> Result<AllEvent> {
    use pb::all_event::Event;
    Ok(match required(e.event, "all event")? {
        Event::PublicSetting(s) => {
            AllEvent::PublicSetting { value: value_of(&s.value, "setting value")?, id: s.id }
        }
        Event::Permission(p) => {
            AllEvent::Permission { id: p.id, roles: p.roles, updated_at: Millis(p.updated_at) }
        }
        Event::NameChanged(n) => AllEvent::NameChanged { id: n.id, name: n.name, username: n.username },
        Event::Avatar(a) => AllEvent::Avatar { username: a.username, rid: a.rid, etag: a.etag },
        Event::RoleChange(r) => AllEvent::RoleChange {
            user: user_ref_of(required(r.user, "role change user")?),
            change: r.change,
            role: r.role,
            scope: r.scope,
        },
    })
}

fn setting_changed(e: &SettingChanged) -> pb::SettingChanged {
    pb::SettingChanged { id: e.id.clone() }
}

#[allow(clippy::unnecessary_wraps)] // Every decoder has the same shape, for the macro.
fn setting_changed_of(e: pb::SettingChanged) -> Result<SettingChanged> {
    Ok(SettingChanged { id: e.id })
}

fn files_pruned(e: &FilesPruned) -> pb::FilesPruned {
    pb::FilesPruned { message_id: e.message_id.clone() }
}

#[allow(clippy::unnecessary_wraps)] // Every decoder has the same shape, for the macro.
fn files_pruned_of(e: pb::FilesPruned) -> Result<FilesPruned> {
    Ok(FilesPruned { message_id: e.message_id })
}

fn presence_changed(e: &PresenceChanged) -> pb::PresenceChanged {
    pb::PresenceChanged {
        uid: e.uid.clone(),
        username: e.username.clone(),
        status: e.status.clone(),
        status_text: e.status_text.clone(),
        name: e.name.clone(),
        roles: e.roles.clone(),
    }
}

#[allow(clippy::unnecessary_wraps)] // Every decoder has the same shape, for the macro.
fn presence_changed_of(e: pb::PresenceChanged) -> Result<PresenceChanged> {
    Ok(PresenceChanged {
        uid: e.uid,
        username: e.username,
        status: e.status,
        status_text: e.status_text,
        name: e.name,
        roles: e.roles,
    })
}

// === Messaging.SendMessage ===

pub(crate) fn send_message_request(m: NewMessage) -> apogee_proto::messaging::v1::SendMessageRequest {
    apogee_proto::messaging::v1::SendMessageRequest {
        extra: object_bytes(&m.extra),
        id: m.id,
        rid: m.rid,
        msg: m.msg,
        tmid: m.tmid,
        tshow: m.tshow,
        groupable: m.groupable,
    }
}

pub(crate) fn new_message_of(m: apogee_proto::messaging::v1::SendMessageRequest) -> Result<NewMessage> {
    Ok(NewMessage {
        extra: object_of(&m.extra, "extra")?,
        id: m.id,
        rid: m.rid,
        msg: m.msg,
        tmid: m.tmid,
        tshow: m.tshow,
        groupable: m.groupable,
    })
}

pub(crate) fn send_message_reply(m: &Message) -> apogee_proto::messaging::v1::SendMessageReply {
    apogee_proto::messaging::v1::SendMessageReply { message: Some(message(m)) }
}

pub(crate) fn send_message_reply_of(r: apogee_proto::messaging::v1::SendMessageReply) -> Result<Message> {
    message_of(required(r.message, "message")?)
}

#[cfg(test)]
mod tests;
