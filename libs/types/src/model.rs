//! Stored shapes. Field names follow Rocket.Chat's documents where they exist, so the MongoDB
//! backend can store them as they are; dates are [`Millis`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Millis;

/// Who is calling, as established by the auth service from a token. Services trust nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

impl Principal {
    pub fn user_ref(&self) -> UserRef {
        UserRef { id: self.user_id.clone(), username: self.username.clone(), name: self.name.clone() }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The `{_id, username, name}` triple Rocket.Chat embeds in rooms and messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRef {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub address: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub emails: Vec<Email>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// `user`, `bot` or `app`.
    #[serde(rename = "type")]
    pub kind: String,
    pub active: bool,
    pub status: String,
    #[serde(rename = "statusDefault")]
    pub status_default: String,
    #[serde(rename = "statusText", default)]
    pub status_text: String,
    #[serde(rename = "utcOffset", default)]
    pub utc_offset: f64,
    #[serde(rename = "createdAt")]
    pub created_at: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
    #[serde(rename = "lastLogin", default)]
    pub last_login: Option<Millis>,
    /// bcrypt of the SHA-256 hex digest of the password, as Rocket.Chat stores it.
    #[serde(default)]
    pub password_bcrypt: Option<String>,
    #[serde(rename = "requirePasswordChange", default)]
    pub require_password_change: bool,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub bio: Option<String>,
    #[serde(rename = "customFields", default)]
    pub custom_fields: Map<String, Value>,
    /// The user's own preferences, overlaid on the `Accounts_Default_User_Preferences_*` settings.
    #[serde(default)]
    pub preferences: Map<String, Value>,
    /// Changes with each uploaded avatar (clients add it to avatar URLs to bypass caches); `None`
    /// while the generated one is shown.
    #[serde(rename = "avatarETag", default, skip_serializing_if = "Option::is_none")]
    pub avatar_etag: Option<String>,
}

impl User {
    pub fn user_ref(&self) -> UserRef {
        UserRef { id: self.id.clone(), username: self.username.clone(), name: self.name.clone() }
    }

    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id.clone(),
            username: self.username.clone(),
            name: self.name.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// One login token; only its hash is stored (`base64(sha256(token))`, as Rocket.Chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginToken {
    pub hashed_token: String,
    pub user_id: String,
    pub created_at: Millis,
    /// `None` for resume tokens, `Some(name)` for personal access tokens.
    pub name: Option<String>,
    /// Personal access tokens: the plain token's last six characters, which lists show so a
    /// user can tell tokens apart (the rest is never stored).
    #[serde(default)]
    pub last_token_part: Option<String>,
    /// Personal access tokens: requests made with it skip two-factor checks.
    #[serde(default)]
    pub bypass_two_factor: bool,
}

impl LoginToken {
    /// A resume token (what a login issues).
    pub fn resume(hashed_token: String, user_id: String, created_at: Millis) -> Self {
        Self {
            hashed_token,
            user_id,
            created_at,
            name: None,
            last_token_part: None,
            bypass_two_factor: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomType {
    #[serde(rename = "c")]
    Channel,
    #[serde(rename = "p")]
    Group,
    #[serde(rename = "d")]
    Direct,
}

impl RoomType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomType::Channel => "c",
            RoomType::Group => "p",
            RoomType::Direct => "d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "c" => Some(RoomType::Channel),
            "p" => Some(RoomType::Group),
            "d" => Some(RoomType::Direct),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    #[serde(rename = "_id")]
    pub id: String,
    pub t: RoomType,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fname: Option<String>,
    /// Creator; absent on direct messages.
    #[serde(default)]
    pub u: Option<UserRef>,
    pub ts: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
    /// Message count, which is also the room's message sequence: the n-th message has `seq` n.
    pub msgs: u64,
    #[serde(rename = "usersCount")]
    pub users_count: u64,
    #[serde(default)]
    pub lm: Option<Millis>,
    #[serde(rename = "lastMessage", default)]
    pub last_message: Option<Box<Message>>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub announcement: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub ro: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub featured: bool,
    #[serde(default)]
    pub broadcast: bool,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(rename = "sysMes", default)]
    pub sys_mes: Option<Value>,
    /// Direct messages: member ids, sorted.
    #[serde(default)]
    pub uids: Vec<String>,
    /// Direct messages: member usernames.
    #[serde(default)]
    pub usernames: Vec<String>,
    #[serde(rename = "joinCode", default)]
    pub join_code: Option<String>,
    #[serde(default)]
    pub muted: Vec<String>,
    /// Read-only rooms: usernames allowed to post anyway (`rooms.unmuteUser`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmuted: Vec<String>,
    /// A default room shown as a favorite to new members (`rooms.saveRoomSettings`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub favorite: bool,
    #[serde(rename = "reactWhenReadOnly", default, skip_serializing_if = "std::ops::Not::not")]
    pub react_when_read_only: bool,
    #[serde(rename = "customFields", default)]
    pub custom_fields: Map<String, Value>,
    /// A discussion's parent room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prid: Option<String>,
    /// A discussion's `discussion-created` message in the parent room, which carries its
    /// message count and last message time (`dcount`, `dlm`). Not a Rocket.Chat field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmid: Option<String>,
    /// Changes whenever the room's uploaded avatar does; absent while it has none
    /// (`rooms.saveRoomSettings {roomAvatar}`).
    #[serde(rename = "avatarETag", default, skip_serializing_if = "Option::is_none")]
    pub avatar_etag: Option<String>,
    /// The team the room belongs to (its main room or one of its rooms).
    #[serde(rename = "teamId", default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// The team's main room.
    #[serde(rename = "teamMain", default, skip_serializing_if = "std::ops::Not::not")]
    pub team_main: bool,
    /// A team room new team members join (`teams.updateRoom` `isDefault`).
    #[serde(rename = "teamDefault", default, skip_serializing_if = "std::ops::Not::not")]
    pub team_default: bool,
    /// A team main room's side panel: `{items: ["channels" | "discussions", …]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidepanel: Option<Value>,
}

impl Room {
    /// A new, empty room: no messages, no members yet, nothing set but what is given.
    pub fn new(id: String, t: RoomType, name: Option<String>, creator: Option<UserRef>, now: Millis) -> Self {
        Self {
            id,
            t,
            fname: name.clone(),
            name,
            u: creator,
            ts: now,
            updated_at: now,
            msgs: 0,
            users_count: 0,
            lm: None,
            last_message: None,
            topic: None,
            description: None,
            announcement: None,
            purpose: None,
            ro: false,
            archived: false,
            default: false,
            featured: false,
            broadcast: false,
            encrypted: false,
            sys_mes: None,
            uids: vec![],
            usernames: vec![],
            join_code: None,
            muted: vec![],
            unmuted: vec![],
            favorite: false,
            react_when_read_only: false,
            custom_fields: Map::new(),
            prid: None,
            dmid: None,
            avatar_etag: None,
            team_id: None,
            team_main: false,
            team_default: false,
            sidepanel: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    #[serde(rename = "_id")]
    pub id: String,
    pub rid: String,
    pub u: UserRef,
    pub t: RoomType,
    pub name: String,
    #[serde(default)]
    pub fname: Option<String>,
    pub ts: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
    pub open: bool,
    /// Set when something happened that the user has not seen (besides unread messages).
    #[serde(default)]
    pub alert: bool,
    #[serde(rename = "userMentions", default)]
    pub user_mentions: u64,
    /// Derived on read like `unread`: the room's messages after `last_read_seq` that
    /// [`Message::group_mention_for`] this user (never a per-member write per `@all`).
    #[serde(rename = "groupMentions", default)]
    pub group_mentions: u64,
    #[serde(default)]
    pub ls: Option<Millis>,
    #[serde(default)]
    pub lr: Option<Millis>,
    #[serde(default)]
    pub f: bool,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub archived: bool,
    /// The room sequence number of the last message this user has read: `unread` is derived from it.
    #[serde(default)]
    pub last_read_seq: u64,
    /// Notification preferences (`rooms.saveNotification`), stored and rendered under
    /// Rocket.Chat's field names: `desktopNotifications`, `desktopPrefOrigin`, `unreadAlert`, …
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub notifications: serde_json::Map<String, serde_json::Value>,
    /// Threads (root message ids) with replies the user has not read (`tunread`), of which
    /// those mentioning the user (`tunreadUser`) or everyone (`tunreadGroup`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunread: Vec<String>,
    #[serde(rename = "tunreadUser", default, skip_serializing_if = "Vec::is_empty")]
    pub tunread_user: Vec<String>,
    #[serde(rename = "tunreadGroup", default, skip_serializing_if = "Vec::is_empty")]
    pub tunread_group: Vec<String>,
    /// Users whose messages this user hides in the room (`chat.ignoreUser`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Derived on read from the room's messages after `last_read_seq` (the store recomputes it
    /// on every read, whatever a stored document says); serialized so it survives an RPC.
    #[serde(default)]
    pub unread: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMention {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: String,
    pub rid: String,
    pub msg: String,
    pub ts: Millis,
    pub u: UserRef,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
    /// System message type (`uj`, `ul`, `r`, …); `None` for what people write.
    #[serde(default)]
    pub t: Option<String>,
    #[serde(default)]
    pub mentions: Vec<Mention>,
    #[serde(default)]
    pub channels: Vec<ChannelMention>,
    #[serde(default)]
    pub tmid: Option<String>,
    #[serde(default)]
    pub tshow: bool,
    #[serde(default)]
    pub groupable: Option<bool>,
    /// Position in the room: 1 for the first message.
    #[serde(default)]
    pub seq: u64,
    #[serde(rename = "editedAt", default)]
    pub edited_at: Option<Millis>,
    #[serde(rename = "editedBy", default)]
    pub edited_by: Option<UserRef>,
    /// `{":emoji:": {"usernames": [...]}}`, as Rocket.Chat stores reactions.
    #[serde(default)]
    pub reactions: Map<String, Value>,
    /// Everything else Rocket.Chat carries on a message (alias, emoji, avatar, attachments,
    /// bot, customFields, role, editedAt, …), stored and returned as sent.
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// Whether the message counts towards members' unread counts.
    pub fn counts_as_unread(&self) -> bool {
        self.t.is_none() && (self.tmid.is_none() || self.tshow)
    }

    /// Whether the message mentions `@all` or `@here` in the room (a thread-only reply's
    /// group mention marks the thread for its followers instead, `tunreadGroup`).
    pub fn is_group_mention(&self) -> bool {
        self.counts_as_unread() && self.mentions.iter().any(|m| m.id == "all" || m.id == "here")
    }

    /// Whether the message adds to `uid`'s `groupMentions`: a group mention by someone else
    /// that does not name `uid` (a mention by name counts as a `userMentions` instead).
    pub fn group_mention_for(&self, uid: &str) -> bool {
        self.is_group_mention() && self.u.id != uid && !self.mentions.iter().any(|m| m.id == uid)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    #[serde(rename = "_id")]
    pub id: String,
    pub value: Value,
    pub package_value: Value,
    /// `boolean`, `string`, `int`, `select`, `code`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub public: bool,
    pub group: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    #[serde(rename = "_id")]
    pub id: String,
    pub roles: Vec<String>,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// `Users` or `Subscriptions`.
    pub scope: String,
    pub protected: bool,
    #[serde(rename = "mandatory2fa")]
    pub mandatory_2fa: bool,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}

/// One page of a listing: `offset`/`count` as asked, `total` as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub offset: u64,
    /// `None` means everything (Rocket.Chat's `count=0`).
    pub count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub offset: u64,
    pub total: u64,
}
