use apogee_types::{
    Message, Millis, Page, PageRequest, Permission, Role, Room, RoomType, Setting, Subscription, UserRef,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{RenameOutcome, StoreResult, UserRename};

/// A change to a room, applied inside the store's transaction to the current stored room.
pub type RoomMutation = Box<dyn FnOnce(&mut Room) -> StoreResult<()> + Send>;
/// A change to one subscription; it sees the room as it is after this write's messages.
pub type SubscriptionMutation = Box<dyn FnOnce(&mut Subscription, &Room) + Send>;
/// A change to a stored message.
pub type MessageMutation = Box<dyn FnOnce(&mut Message) -> StoreResult<()> + Send>;

/// Everything one room event changes, written atomically by [`RoomStore::write_room`].
///
/// Order of application: create or mutate the room, append `messages` (each gets the next
/// sequence number, and the room's `msgs`, `lm` and `lastMessage` follow), add subscriptions,
/// apply subscription mutations, remove subscriptions, recount `usersCount`, or delete the room
/// with everything in it.
#[derive(Default)]
pub struct RoomWrite {
    pub rid: String,
    /// Insert this room (`Conflict` when the id or name is taken).
    pub create: Option<Room>,
    pub mutate: Option<RoomMutation>,
    pub messages: Vec<Message>,
    /// Changes to messages already in the room (a thread's root when a reply arrives), by id;
    /// `NotFound` when one is missing or belongs to another room.
    pub update_messages: Vec<(String, MessageMutation)>,
    /// `Conflict` when the user already has a subscription to the room.
    pub add_subscriptions: Vec<Subscription>,
    /// By user id; a user without a subscription is skipped.
    pub update_subscriptions: Vec<(String, SubscriptionMutation)>,
    /// By user id; recorded as removed so `subscriptions.get?updatedSince` reports them.
    pub remove_subscriptions: Vec<String>,
    /// Delete the room, its subscriptions and its messages.
    pub delete: bool,
    /// Append `messages` without making them the room's `lastMessage` / `lm` (the system
    /// messages Rocket.Chat saves with `saveSystemMessage`, which only counts them).
    pub keep_last_message: bool,
}

impl RoomWrite {
    pub fn new(rid: impl Into<String>) -> Self {
        Self { rid: rid.into(), ..Self::default() }
    }
}

/// What a [`RoomWrite`] left behind.
#[derive(Debug, Clone, Default)]
pub struct RoomWriteOutcome {
    /// The room after the write; `None` when it was deleted.
    pub room: Option<Room>,
    /// The appended messages, with their sequence numbers.
    pub messages: Vec<Message>,
    /// The messages `update_messages` changed, as stored.
    pub updated_messages: Vec<Message>,
    /// Added and updated subscriptions, as stored.
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    pub types: Vec<RoomType>,
    /// Case-insensitive substring of the name.
    pub text: Option<String>,
    pub default_only: bool,
}

/// A removed document, as `subscriptions.get` and `rooms.get` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub id: String,
    pub deleted_at: Millis,
}

/// Rooms and subscriptions. Subscriptions come back with `unread` derived from the room's
/// messages after their `last_read_seq`.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    async fn write_room(&self, write: RoomWrite) -> StoreResult<RoomWriteOutcome>;
    async fn room_by_id(&self, id: &str) -> StoreResult<Option<Room>>;
    /// Case-insensitive; direct messages have no name.
    async fn room_by_name(&self, name: &str) -> StoreResult<Option<Room>>;
    /// Sorted by name.
    async fn list_rooms(&self, filter: &RoomFilter, page: PageRequest) -> StoreResult<Page<Room>>;
    /// Rooms the user has a subscription to, of the given types (all when empty), by name.
    async fn rooms_of_user(
        &self,
        uid: &str,
        types: &[RoomType],
        page: PageRequest,
    ) -> StoreResult<Page<Room>>;
    /// Rooms of the user changed after `since` (all when `None`).
    async fn rooms_of_user_updated_since(&self, uid: &str, since: Option<Millis>) -> StoreResult<Vec<Room>>;
    async fn removed_rooms_since(&self, since: Millis) -> StoreResult<Vec<Removed>>;

    async fn subscription(&self, rid: &str, uid: &str) -> StoreResult<Option<Subscription>>;
    /// The user's subscriptions whose own `_updatedAt` or whose room's last message is after
    /// `since` (all when `None`).
    async fn subscriptions_of_user(&self, uid: &str, since: Option<Millis>)
    -> StoreResult<Vec<Subscription>>;
    async fn removed_subscriptions_since(&self, uid: &str, since: Millis) -> StoreResult<Vec<Removed>>;
    /// Members of a room by username.
    async fn subscriptions_of_room(&self, rid: &str, page: PageRequest) -> StoreResult<Page<Subscription>>;
    /// Discussions of a room (rooms whose `prid` it is), by `fname`.
    async fn discussions_of_room(&self, prid: &str, page: PageRequest) -> StoreResult<Page<Room>>;
    /// Writes a user's new username or name into the rooms, subscriptions and messages that copy
    /// it (see [`UserRename`]), each document on its own as Rocket.Chat's bulk updates do;
    /// returns the rooms and subscriptions it changed.
    async fn rename_user(&self, rename: &UserRename) -> StoreResult<RenameOutcome>;
}

/// Which messages of a room [`MessageStore::find_messages`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageFilter {
    /// `pinned: true`, removed placeholders (`t: rm`) left out.
    Pinned,
    /// Starred by this user id (`starred: [{_id}]`).
    StarredBy(String),
    /// Mentioning this username.
    Mentioning(String),
    /// Case-insensitive substring of `msg`; removed placeholders (`t: rm`) are left out.
    Text(String),
    /// `discussion-created` messages (those with a `drid`) whose text contains this
    /// (case-insensitive; everything when empty).
    Discussions(String),
    /// Rocket.Chat's message search with its operators parsed; removed placeholders are left
    /// out. Newest first unless `ascending`.
    Search(Box<MessageSearch>),
}

/// The conditions of a message search (`chat.search`, `messageSearch`); every one that is set
/// must hold. Text conditions are case-insensitive and taken literally.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageSearch {
    /// A substring of `msg`.
    pub text: Option<String>,
    /// A regular expression on `msg` (Rocket.Chat's `/re/flags` queries), with its flags
    /// (`i`, `m`, `x`, `s`).
    pub regex: Option<(String, String)>,
    /// The sender's username contains one of these.
    pub from: Vec<String>,
    /// A mentioned username contains one of these.
    pub mentions: Vec<String>,
    /// Starred by this user id.
    pub starred_by: Option<String>,
    pub pinned: bool,
    /// Has at least one entry in `urls`.
    pub has_url: bool,
    /// Has a `location`.
    pub has_location: bool,
    /// A label of the first attachment contains this.
    pub label: Option<String>,
    /// The description of an attachment contains this.
    pub file_description: Option<String>,
    /// The title of an attachment contains this.
    pub file_title: Option<String>,
    /// `ts >= since`.
    pub since: Option<Millis>,
    /// `ts <= until`.
    pub until: Option<Millis>,
    /// `ts < before`.
    pub before: Option<Millis>,
    pub ascending: bool,
}

/// A message someone reported to the moderators (`chat.reportMessage`), with the message as it
/// was when reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReport {
    #[serde(rename = "_id")]
    pub id: String,
    pub message: Message,
    pub description: String,
    #[serde(rename = "reportedBy")]
    pub reported_by: UserRef,
    pub ts: Millis,
}

/// Which threads of a room [`MessageStore::threads`] lists (all of them when nothing is set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadFilter {
    /// Only threads this user follows (`replies` holds the id).
    pub follower: Option<String>,
    /// Only these thread ids (a subscription's `tunread`).
    pub ids: Option<Vec<String>>,
    /// Case-insensitive substring of the root message's text.
    pub text: Option<String>,
}

/// A window of history, newest first (Rocket.Chat's `channels.history`).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub latest: Option<Millis>,
    pub oldest: Option<Millis>,
    pub inclusive: bool,
    pub offset: u64,
    pub count: Option<u64>,
    /// Include thread replies not shown in the channel.
    pub show_thread_messages: bool,
    /// Oldest first (the messages right after `oldest`), instead of newest first.
    pub oldest_first: bool,
}

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    async fn message_by_id(&self, id: &str) -> StoreResult<Option<Message>>;
    async fn history(&self, rid: &str, query: &HistoryQuery) -> StoreResult<Vec<Message>>;
    /// All messages of a room (thread replies and system messages too), newest first unless `ascending`.
    async fn list_messages(
        &self,
        rid: &str,
        page: PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<Message>>;
    /// Messages counted as unread for `uid`: after `after_seq`, by others, not system messages.
    async fn count_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<u64>;
    /// The oldest message that `count_unread` counts, if any.
    async fn first_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<Option<Message>>;
    async fn update_message(&self, id: &str, mutation: MessageMutation) -> StoreResult<Message>;
    /// Messages of the room changed (or created) after `since`, by `_updatedAt` (ascending, or
    /// descending and before `since` when `before`), at most `count`.
    async fn messages_changed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Message>>;
    /// Messages of the room removed after `since` (ascending, or descending and before `since`
    /// when `before`), at most `count`.
    async fn messages_removed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Removed>>;
    /// Removes a message (recorded as removed) and returns it; when it was the room's last
    /// message, the room's `lastMessage` becomes the newest one left.
    async fn delete_message(&self, id: &str) -> StoreResult<Message>;
    /// Messages of the room matching `filter`, newest first (pinned ones oldest first, the
    /// insertion order Rocket.Chat lists them in); `total` counts every match, except for a
    /// `Search`, whose callers show no total: there a store may report only the offset plus
    /// what it returned (SQLite does, so a common word is not counted over the whole room).
    async fn find_messages(
        &self,
        rid: &str,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>>;
    /// Thread roots of the room (messages with replies), most recent reply first.
    async fn threads(
        &self,
        rid: &str,
        filter: &ThreadFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>>;
    /// The replies of a thread, oldest first.
    async fn thread_messages(&self, tmid: &str, page: PageRequest) -> StoreResult<Page<Message>>;
    /// Thread roots of the room changed after `since`, and thread roots removed after it.
    async fn threads_changed(&self, rid: &str, since: Millis) -> StoreResult<(Vec<Message>, Vec<Removed>)>;
    /// Replies of a thread changed after `since`, and replies removed after it.
    async fn thread_messages_changed(
        &self,
        tmid: &str,
        since: Millis,
    ) -> StoreResult<(Vec<Message>, Vec<Removed>)>;
    /// Keeps a hidden copy of a message (Rocket.Chat's history records, `_hidden: true` in
    /// `extra`): an earlier version of message `extra.parent` after an edit, or a message removed
    /// while `Message_KeepHistory` is on (no parent). No read of the room returns them;
    /// `Conflict` when the id is taken.
    async fn insert_hidden_message(&self, message: &Message) -> StoreResult<()>;
    /// The hidden copies of message `id`: itself when it was hidden, and its earlier versions,
    /// by `editedAt`.
    async fn hidden_messages(&self, id: &str) -> StoreResult<Vec<Message>>;
    async fn insert_report(&self, report: &MessageReport) -> StoreResult<()>;
    /// Reports about a message, oldest first.
    async fn reports_of_message(&self, mid: &str) -> StoreResult<Vec<MessageReport>>;
    /// Messages of the room removed after `since`, oldest first; `total` counts them all.
    async fn removed_messages_page(
        &self,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> StoreResult<Page<Removed>>;
}

/// Settings, permissions and roles: small tables read whole at start.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    async fn settings(&self) -> StoreResult<Vec<Setting>>;
    /// Inserts or replaces the settings, all in one write.
    async fn upsert_settings(&self, settings: Vec<Setting>) -> StoreResult<()>;
    async fn permissions(&self) -> StoreResult<Vec<Permission>>;
    /// Inserts or replaces the permissions, all in one write.
    async fn upsert_permissions(&self, permissions: Vec<Permission>) -> StoreResult<()>;
    async fn roles(&self) -> StoreResult<Vec<Role>>;
    async fn upsert_roles(&self, roles: Vec<Role>) -> StoreResult<()>;
}
