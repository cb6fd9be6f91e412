//! The events services publish after a durable write, and the subjects they travel on.
//!
//! `apogee.room.<rid>.<kind>` carries [`RoomEvent`]s, `apogee.user.<uid>.<kind>` carries
//! [`UserEvent`]s. Gateways subscribe per room and per user that a local socket cares about and
//! derive every Rocket.Chat stream frame from these. On the bus every payload is the protobuf
//! encoding of `proto/apogee/events/v1/events.proto`: each event type is a [`BusEvent`], with
//! `encode` and `decode` (`wire.rs` holds the conversions, the one place that knows both shapes).

pub(crate) mod wire;

use apogee_types::{Message, Room, Subscription};
use serde::{Deserialize, Serialize};

pub use wire::{BusEvent, DecodeError};

/// What happened to a document, as Rocket.Chat's `*-changed` events say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Inserted,
    Updated,
    Removed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Inserted => "inserted",
            Action::Updated => "updated",
            Action::Removed => "removed",
        }
    }
}

/// Something that happened in a room, for every socket that watches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A message was stored or changed; `room` is the room after the write. `touched` lists the
    /// users whose subscriptions this write changed: they also get a [`UserEvent::Subscription`].
    /// `left` lists the users this write removed from the room: they get nothing more of it.
    /// `inserted` is false for edits and reactions, which change no unread count.
    Message {
        message: Box<Message>,
        room: Box<Room>,
        touched: Vec<String>,
        left: Vec<String>,
        inserted: bool,
    },
    /// The room's attributes changed without a message.
    Changed { room: Box<Room> },
    /// A message was removed.
    MessageDeleted { message_id: String },
    /// Someone is typing (or stopped); `origin` is the connection that wrote it, which does not
    /// get it back.
    Activity { username: String, activity: Vec<String>, extra: serde_json::Value, origin: String },
}

/// Something that happened to one user's view of their rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserEvent {
    /// `unread` travels beside the subscription: it is derived, so the stored shape skips it.
    Subscription {
        action: Action,
        subscription: Box<Subscription>,
        unread: u64,
    },
    Room {
        action: Action,
        room: Box<Room>,
    },
    /// A desktop/mobile notification (mentions, direct messages), as `<uid>/notification` sends it.
    Notification {
        notification: serde_json::Value,
    },
    /// A private message from rocket.cat that only this user sees, in room `rid` (slash command
    /// replies, refusals): `<uid>/message`. Never stored.
    Ephemeral {
        id: String,
        rid: String,
        msg: String,
        ts: apogee_types::Millis,
    },
}

/// Something every logged-in socket (or every socket) may watch: `apogee.all.<event>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AllEvent {
    /// A public setting changed (`stream-notify-all` `public-settings-changed`).
    PublicSetting { id: String, value: serde_json::Value },
    /// A permission's roles changed (`stream-notify-logged` `permissions-changed`).
    Permission { id: String, roles: Vec<String>, updated_at: apogee_types::Millis },
    /// A user's name or username changed (`stream-notify-logged` `Users:NameChanged`).
    NameChanged { id: String, name: Option<String>, username: String },
    /// A user's or a room's avatar changed (`stream-notify-logged` `updateAvatar`, naming
    /// `username` or `rid`); `etag` is absent when it went back to the generated one.
    Avatar { username: Option<String>, rid: Option<String>, etag: Option<String> },
    /// A user was given or lost a role (`stream-notify-logged` `roles-change`); `scope` is the
    /// room of a room role. `change` is `added` or `removed`.
    RoleChange { change: String, role: String, user: apogee_types::UserRef, scope: Option<String> },
}

/// Where auth announces that a setting changed, public or not, for the roles that cache
/// settings (`AuthClient` over gRPC); payload: [`SettingChanged`]. Outside `apogee.all.>`,
/// which sockets see.
pub const SETTINGS_CHANGED_SUBJECT: &str = "apogee.internal.settings-changed";

/// Where messaging announces that a message's files were pruned from it while the message
/// stays (`rooms.cleanHistory` with `filesOnly`); the files service then removes them. Payload:
/// [`FilesPruned`]. Outside the room subjects: sockets have nothing to show for it.
pub const FILES_PRUNED_SUBJECT: &str = "apogee.internal.files-pruned";

/// Payload of [`FILES_PRUNED_SUBJECT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesPruned {
    pub message_id: String,
}

/// Payload of [`SETTINGS_CHANGED_SUBJECT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChanged {
    pub id: String,
}

/// Where a gateway announces a user's status change to every gateway: `apogee.presence.<uid>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceChanged {
    pub uid: String,
    pub username: String,
    /// `online`, `away`, `busy` or `offline`.
    pub status: String,
    pub status_text: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// `apogee.presence.<uid>`.
pub fn presence_subject(uid: &str) -> String {
    format!("apogee.presence.{}", subject_token(uid))
}

/// `apogee.all.<kind>`.
pub fn all_subject(kind: &str) -> String {
    format!("apogee.all.{kind}")
}

/// Subject tokens may not contain `.`, `*`, `>` or whitespace; ids such as
/// `rocketchat.internal.admin.test` do. Those characters are escaped as `%XX`.
pub fn subject_token(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            '.' | '*' | '>' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_whitespace() || c.is_control() => out.push_str(&format!("%{:02X}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    if out.is_empty() { "%00".into() } else { out }
}

/// `apogee.room.<rid>.<kind>`.
pub fn room_subject(rid: &str, kind: &str) -> String {
    format!("apogee.room.{}.{kind}", subject_token(rid))
}

/// `apogee.user.<uid>.<kind>`.
pub fn user_subject(uid: &str, kind: &str) -> String {
    format!("apogee.user.{}.{kind}", subject_token(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_single_tokens() {
        assert_eq!(subject_token("GENERAL"), "GENERAL");
        assert_eq!(subject_token("rocketchat.internal.admin.test"), "rocketchat%2Einternal%2Eadmin%2Etest");
        assert_eq!(subject_token("a b*>%"), "a%20b%2A%3E%25");
        assert_eq!(room_subject("r.1", "message"), "apogee.room.r%2E1.message");
        assert_eq!(user_subject("u", "subscription"), "apogee.user.u.subscription");
    }
}
