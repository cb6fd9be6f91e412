use std::sync::Arc;

use apogee_types::{
    Message, Millis, Page, PageRequest, Principal, Room, RoomType, ServiceResult, Subscription, Team, User,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::UserSelector;
use crate::teams::*;

/// How a request names a room: by id or by name, and which family the route belongs to
/// (`channels.*` only finds `c` rooms, `groups.*` only `p`, `im.*` only `d`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSelector {
    pub id: Option<String>,
    pub name: Option<String>,
    pub family: Option<RoomType>,
}

impl RoomSelector {
    pub fn id(id: impl Into<String>) -> Self {
        Self { id: Some(id.into()), name: None, family: None }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateRoom {
    pub t: Option<RoomType>,
    pub name: String,
    /// Usernames to add besides the creator.
    pub members: Vec<String>,
    pub read_only: bool,
    pub exclude_self: bool,
    pub topic: Option<String>,
    pub broadcast: bool,
    pub encrypted: bool,
    pub custom_fields: Map<String, Value>,
    /// `extraData.teamId`: the room is created inside this team when it exists.
    #[serde(default)]
    pub team_id: Option<String>,
}

/// A change of one room attribute, each with the system message Rocket.Chat writes for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomChange {
    Topic(String),
    Description(String),
    Purpose(String),
    Announcement(String),
    Name(String),
    Archived(bool),
    ReadOnly(bool),
    Default(bool),
    JoinCode(String),
    CustomFields(Map<String, Value>),
    Type(RoomType),
    /// Settings Rocket.Chat stores without a system message (`rooms.saveRoomSettings`).
    Featured(bool),
    /// `favorite: {favorite, defaultValue}`: marked only when both are true.
    Favorite(bool),
    ReactWhenReadOnly(bool),
    /// The room's uploaded avatar changed (its new ETag) or was removed (`None`); the bytes are
    /// the files service's (`FilesService::set_room_avatar`), which makes this change.
    Avatar(Option<String>),
    /// A team main room's side panel (`{items}`), or none.
    Sidepanel(Option<Value>),
}

/// Which rooms to list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomListScope {
    /// Every public channel (`channels.list`).
    Public,
    /// Rooms of the given types the caller is a member of (`*.list.joined`, `groups.list`, `im.list`).
    Joined(Vec<RoomType>),
    /// Every room of the given types, for admins (`groups.listAll`, `im.list.everyone`).
    All(Vec<RoomType>),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryRequest {
    pub latest: Option<Millis>,
    pub oldest: Option<Millis>,
    pub inclusive: bool,
    pub offset: u64,
    pub count: Option<u64>,
    pub unreads: bool,
    pub show_thread_messages: bool,
    /// Oldest first: the messages right after `oldest` (DDP `loadNextMessages`).
    pub oldest_first: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    pub messages: Vec<Message>,
    /// With `unreads`: unread messages older than the window.
    pub unread_not_loaded: Option<u64>,
    pub first_unread: Option<Message>,
}

/// A message to post.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewMessage {
    /// A client-chosen id (`chat.sendMessage`, DDP `sendMessage`).
    pub id: Option<String>,
    pub rid: String,
    pub msg: String,
    pub tmid: Option<String>,
    pub tshow: bool,
    pub groupable: Option<bool>,
    /// Everything else the client sent that Rocket.Chat keeps: alias, emoji, avatar,
    /// attachments, customFields, bot, …
    pub extra: Map<String, Value>,
}

/// Narrows a member list (`*.members?filter=…&status[]=…`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemberFilter {
    /// Case-insensitive substring of username or name.
    pub text: Option<String>,
    /// Only users with one of these statuses (when non-empty).
    pub status: Vec<String>,
}

/// `*.counters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub joined: bool,
    pub members: u64,
    pub unreads: Option<u64>,
    pub unreads_from: Option<Millis>,
    pub msgs: u64,
    pub latest: Option<Millis>,
    pub user_mentions: u64,
}

/// `subscriptions.get` / `rooms.get`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Changes<T> {
    pub update: Vec<T>,
    pub remove: Vec<(String, Millis)>,
}

/// Which marked messages of a room to list (`chat.getPinnedMessages`, `chat.getStarredMessages`,
/// `chat.getMentionedMessages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkedMessages {
    Pinned,
    /// Starred by the caller.
    Starred,
    /// Mentioning the caller.
    Mentioned,
}

/// Which threads of a room `chat.getThreadsList` lists (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ThreadListKind {
    #[default]
    All,
    /// Threads the caller follows.
    Following,
    /// Threads with replies the caller has not read (the subscription's `tunread`).
    Unread,
}

/// `rooms.createDiscussion`: a room under `prid`, optionally about one of its messages (`pmid`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateDiscussion {
    pub prid: String,
    pub pmid: Option<String>,
    /// `t_name`: the discussion's display name (`fname`).
    pub name: String,
    /// A first message posted in the discussion.
    pub reply: Option<String>,
    /// Usernames to add besides the creator (and the author of `pmid`).
    pub users: Vec<String>,
    /// `None`: as the parent room.
    pub encrypted: Option<bool>,
    /// `None`: the parent room's name.
    pub topic: Option<String>,
}

/// `rooms.cleanHistory`: which messages of a room to prune.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CleanHistory {
    pub latest: Millis,
    pub oldest: Millis,
    /// The bounds themselves are in the window.
    pub inclusive: bool,
    /// At most this many messages (0: all).
    pub limit: u64,
    pub exclude_pinned: bool,
    /// Only strip the files of the messages, which stay.
    pub files_only: bool,
    /// Leave thread roots and replies alone.
    pub ignore_threads: bool,
    /// Leave discussion-created messages (and their discussions) alone.
    pub ignore_discussion: bool,
    /// Only messages sent by these usernames (all senders when empty).
    pub from_users: Vec<String>,
}

/// Rooms, subscriptions and messages.
#[async_trait]
pub trait MessagingService: Send + Sync + 'static {
    async fn create_room(&self, who: &Principal, req: CreateRoom) -> ServiceResult<Room>;
    /// Finds or creates the direct-message room between the caller and `usernames`.
    async fn create_direct(
        &self,
        who: &Principal,
        usernames: Vec<String>,
        exclude_self: bool,
    ) -> ServiceResult<Room>;
    /// A room the caller may see.
    async fn room_info(&self, who: &Principal, selector: RoomSelector) -> ServiceResult<Room>;
    async fn list_rooms(
        &self,
        who: &Principal,
        scope: RoomListScope,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>>;
    async fn join_room(&self, who: &Principal, rid: &str, join_code: Option<String>) -> ServiceResult<Room>;
    async fn leave_room(&self, who: &Principal, rid: &str) -> ServiceResult<Room>;
    /// Adds a user to a room (`invite`); `Room` after the change.
    async fn add_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<Room>;
    /// `channels.addAll` / `groups.addAll` (Rocket.Chat's `addAllUserToRoom`): subscribes every
    /// user (only the active ones when asked); `Room` after the change.
    async fn add_all_users(&self, who: &Principal, rid: &str, active_only: bool) -> ServiceResult<Room>;
    /// Removes a user from a room (`kick`).
    async fn remove_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<Room>;
    async fn update_room(&self, who: &Principal, rid: &str, change: RoomChange) -> ServiceResult<Room>;
    /// Shows or hides the room in the caller's sidebar (`open` / `close`).
    async fn set_open(&self, who: &Principal, rid: &str, open: bool) -> ServiceResult<()>;
    async fn delete_room(&self, who: &Principal, rid: &str) -> ServiceResult<()>;

    // ---- teams (see `teams.rs`) ----
    /// Creates a team and its main room (`teams.create`).
    async fn create_team(&self, who: &Principal, req: CreateTeam) -> ServiceResult<Team>;
    /// Makes a channel or group the main room of a new team (`channels.convertToTeam`, `groups.convertToTeam`).
    async fn convert_room_to_team(&self, who: &Principal, rid: &str) -> ServiceResult<Team>;
    /// A team whose main room the caller may see, or any with `view-all-teams` (`teams.info`).
    async fn team_info(&self, who: &Principal, team: TeamSelector) -> ServiceResult<Team>;
    /// The caller's teams, or every team with `all` (`teams.list`, `teams.listAll`).
    async fn list_teams(
        &self,
        who: &Principal,
        all: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamListItem>>;
    /// Removes a team (`teams.delete`, `teams.convertToChannel`): erases `rooms_to_remove` of its
    /// rooms, gives the others back to the workspace, and erases or keeps the main room.
    async fn dissolve_team(
        &self,
        who: &Principal,
        team: TeamSelector,
        rooms_to_remove: Vec<String>,
        how: TeamDissolve,
    ) -> ServiceResult<()>;
    /// Renames a team or changes its type, with its main room (`teams.update`).
    async fn update_team(
        &self,
        who: &Principal,
        team: TeamSelector,
        name: Option<String>,
        private: Option<bool>,
    ) -> ServiceResult<()>;
    /// Members of a team (`teams.members`); empty for a caller outside it without `view-all-teams`.
    async fn team_members(
        &self,
        who: &Principal,
        team: TeamSelector,
        filter: TeamMemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamMemberInfo>>;
    /// Adds users to a team and its main room (`teams.addMembers`).
    async fn add_team_members(
        &self,
        who: &Principal,
        team: TeamSelector,
        members: Vec<TeamMemberParams>,
    ) -> ServiceResult<()>;
    /// Sets a member's team roles, and their roles in the main room (`teams.updateMember`).
    async fn update_team_member(
        &self,
        who: &Principal,
        team: TeamSelector,
        member: TeamMemberParams,
    ) -> ServiceResult<()>;
    /// Removes a member from a team, its main room and `rooms` of the team (`teams.removeMember`;
    /// `leaving`: the caller themself, `teams.leave`).
    async fn remove_team_member(
        &self,
        who: &Principal,
        team: TeamSelector,
        user_id: &str,
        rooms: Vec<String>,
        leaving: bool,
    ) -> ServiceResult<()>;
    /// Moves rooms the caller owns into a team (`teams.addRooms`).
    async fn add_team_rooms(
        &self,
        who: &Principal,
        team: TeamSelector,
        rids: Vec<String>,
    ) -> ServiceResult<Vec<Room>>;
    /// Gives a room of a team back to the workspace (`teams.removeRoom`).
    async fn remove_team_room(&self, who: &Principal, team: TeamSelector, rid: &str) -> ServiceResult<Room>;
    /// Marks a team room as one members join (`teams.updateRoom`); making it default adds the
    /// team's members to it.
    async fn update_team_room(&self, who: &Principal, rid: &str, is_default: bool) -> ServiceResult<Room>;
    /// Rooms of a team the caller may see (`teams.listRooms`).
    async fn team_rooms(
        &self,
        who: &Principal,
        team: TeamSelector,
        filter: TeamRoomFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>>;
    /// Teams a user is a member of, as far as the caller may see them (`users.listTeams`).
    async fn user_teams(&self, who: &Principal, user_id: &str) -> ServiceResult<Vec<UserTeam>>;

    async fn history(&self, who: &Principal, rid: &str, req: HistoryRequest) -> ServiceResult<History>;
    /// Every message of the room, newest first (`*.messages`).
    async fn room_messages(
        &self,
        who: &Principal,
        rid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// A public channel's messages, newest first, read with no user at all
    /// (`channels.anonymousread`, governed by `Accounts_AllowAnonymousRead`).
    async fn anonymous_messages(&self, room: RoomSelector, page: PageRequest)
    -> ServiceResult<Page<Message>>;
    /// A direct-message room's messages, newest first, read by an administrator who need not
    /// be in it (`im.messages.others`, governed by `API_Enable_Direct_Message_History_EndPoint`).
    async fn others_messages(
        &self,
        who: &Principal,
        rid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// The room's messages mentioning the caller (`channels.getAllUserMentionsByChannel`).
    async fn mentions_in_room(
        &self,
        who: &Principal,
        rid: &str,
        oldest_first: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    async fn members(
        &self,
        who: &Principal,
        rid: &str,
        filter: MemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<User>>;
    async fn counters(&self, who: &Principal, rid: &str, user_id: Option<String>) -> ServiceResult<Counters>;

    async fn send_message(&self, who: &Principal, msg: NewMessage) -> ServiceResult<Message>;
    async fn get_message(&self, who: &Principal, id: &str) -> ServiceResult<Message>;
    /// Messages of a room changed after `since` (or before it, newest first, with `before`):
    /// what a reconnecting client missed (`chat.syncMessages`).
    async fn changed_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> ServiceResult<Vec<Message>>;
    /// Messages of a room removed after `since` (or before it with `before`).
    async fn removed_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> ServiceResult<Vec<(String, Millis)>>;
    /// Edits a message's text and, when given, replaces its `customFields` (`chat.update`, DDP
    /// `updateMessage`); `rid` must be its room.
    async fn update_message(
        &self,
        who: &Principal,
        rid: &str,
        id: &str,
        text: String,
        custom_fields: Option<Value>,
    ) -> ServiceResult<Message>;
    /// Deletes a message (`chat.delete`, DDP `deleteMessage`); `rid`, when given, must be its room.
    async fn delete_message(&self, who: &Principal, rid: Option<&str>, id: &str) -> ServiceResult<Message>;
    /// Adds or removes the caller's reaction; `should_react` forces one way, else it toggles.
    async fn react(
        &self,
        who: &Principal,
        id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> ServiceResult<Message>;
    /// Pins a message (`chat.pinMessage`); returns the `message_pinned` system message.
    async fn pin_message(&self, who: &Principal, id: &str) -> ServiceResult<Message>;
    async fn unpin_message(&self, who: &Principal, id: &str) -> ServiceResult<()>;
    /// Stars or unstars a message for the caller (`chat.starMessage` / `chat.unStarMessage`).
    async fn star_message(&self, who: &Principal, id: &str, starred: bool) -> ServiceResult<()>;
    /// Pinned (oldest first), starred-by-caller or mentioning-caller (newest first) messages of a room.
    async fn marked_messages(
        &self,
        who: &Principal,
        rid: &str,
        which: MarkedMessages,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// Messages of a room whose text contains `text` (case-insensitive), newest first (`chat.search`).
    async fn search_messages(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Vec<Message>>;

    async fn subscriptions(
        &self,
        who: &Principal,
        since: Option<Millis>,
    ) -> ServiceResult<Changes<Subscription>>;
    async fn subscription(&self, who: &Principal, rid: &str) -> ServiceResult<Option<Subscription>>;
    /// Marks everything in the room read for the caller.
    async fn mark_read(&self, who: &Principal, rid: &str) -> ServiceResult<()>;
    async fn rooms(&self, who: &Principal, since: Option<Millis>) -> ServiceResult<Changes<Room>>;
    /// Members holding room roles (owner, moderator, leader), for `getRoomRoles` / `*.roles`.
    async fn room_roles(&self, who: &Principal, rid: &str) -> ServiceResult<Vec<Subscription>>;
    /// Gives (`add`) or takes a room role — `owner`, `moderator` or `leader` — to a member.
    async fn set_room_role(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
        role: &str,
        add: bool,
    ) -> ServiceResult<()>;
    /// Another user's subscriptions (`users.info?includeUserRooms=true`): the caller's own, or
    /// anyone's with `view-other-user-channels`.
    async fn user_subscriptions(&self, who: &Principal, user_id: &str) -> ServiceResult<Vec<Subscription>>;
    /// Adds a user to every default room they are not in yet (new users); `silent` writes no
    /// join message.
    async fn join_default_rooms(&self, user: &User, silent: bool) -> ServiceResult<()>;
    /// For auth (`users.delete`): removes the user's subscriptions from every room they are in.
    async fn remove_user_from_all_rooms(&self, user_id: &str) -> ServiceResult<()>;
    /// For auth (deleting or deactivating a user): in every room where the user is the only
    /// owner and others remain, refuses with `user-last-owner` unless `confirm`, in which case
    /// the longest-standing other member becomes an owner.
    async fn relinquish_ownership(&self, user_id: &str, confirm: bool) -> ServiceResult<()>;
    /// For auth, after a user's username or name changed (`before` → `after`): Rocket.Chat's
    /// `updateUsernameReferences`, the copies in rooms, subscriptions, messages and the names of
    /// direct messages, each change announced.
    async fn user_renamed(&self, before: &User, after: &User) -> ServiceResult<()>;
    /// A room by id, for other services (files draws room avatars); never exposed to clients
    /// as is, since it checks no access.
    async fn find_room(&self, rid: &str) -> ServiceResult<Option<Room>>;
    /// A room by exact name (case-insensitive), for other services (auth checks an
    /// integration's `#room` targets); checks no access either.
    async fn find_room_by_name(&self, name: &str) -> ServiceResult<Option<Room>>;
    /// How many rooms carry the team's id, its main room included (the `roomsCount` of the
    /// directory's teams); checks no access.
    async fn team_rooms_count(&self, team_id: &str) -> ServiceResult<u64>;
    /// Marks or unmarks the room as one of the caller's favorites (`rooms.favorite`).
    async fn set_favorite(&self, who: &Principal, room: RoomSelector, favorite: bool) -> ServiceResult<()>;
    /// Sets one notification preference of the caller's subscription (`rooms.saveNotification`).
    async fn save_notification(
        &self,
        who: &Principal,
        rid: &str,
        field: &str,
        value: &str,
    ) -> ServiceResult<()>;
    /// Whether a room has this name (`rooms.nameExists`).
    async fn room_name_exists(&self, who: &Principal, name: &str) -> ServiceResult<bool>;
    /// Whether a user is a member of a room the caller may see (`rooms.isMember`).
    async fn is_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<bool>;
    /// Applies several room settings at once, as Rocket.Chat's `saveRoomSettings` does: one
    /// `edit-room` check, then each change that differs from the room (`rooms.saveRoomSettings`).
    async fn save_room_settings(
        &self,
        who: &Principal,
        rid: &str,
        changes: Vec<RoomChange>,
    ) -> ServiceResult<()>;
    /// Mutes or unmutes a member of a room (`rooms.muteUser` / `rooms.unmuteUser`).
    async fn set_muted(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
        muted: bool,
    ) -> ServiceResult<()>;

    /// Prunes a room's messages (`rooms.cleanHistory`); needs access to the room and
    /// `clean-channel-history` in it. Answers how many were removed (with `files_only`, how many
    /// lost their files).
    async fn clean_history(&self, who: &Principal, rid: &str, req: CleanHistory) -> ServiceResult<u64>;

    /// Thread roots of a room, most recent reply first; `text` narrows by the root's text
    /// (`chat.getThreadsList`, DDP `getThreadsList`).
    async fn threads(
        &self,
        who: &Principal,
        rid: &str,
        kind: ThreadListKind,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// Replies of a thread, oldest first (`chat.getThreadMessages`, DDP `getThreadMessages`).
    async fn thread_messages(
        &self,
        who: &Principal,
        tmid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// Thread roots of a room changed and removed after `since` (`chat.syncThreadsList`).
    async fn sync_threads(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>>;
    /// Replies of a thread changed and removed after `since` (`chat.syncThreadMessages`).
    async fn sync_thread_messages(
        &self,
        who: &Principal,
        tmid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>>;
    /// Follows or unfollows the thread of a message (`chat.followMessage` / `unfollowMessage`).
    async fn follow_message(&self, who: &Principal, mid: &str, follow: bool) -> ServiceResult<()>;
    /// Marks one thread (`tmid`) or every thread of the room read for the caller: clears it
    /// from `tunread`, `tunreadUser` and `tunreadGroup` (`subscriptions.read` with `readThreads`).
    async fn read_threads(&self, who: &Principal, rid: &str, tmid: Option<String>) -> ServiceResult<()>;
    /// Ids of messages of a room removed after `since`, oldest first (`chat.getDeletedMessages`).
    async fn deleted_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> ServiceResult<Page<(String, Millis)>>;
    /// Hides (or shows again) another member's messages in a room for the caller (`chat.ignoreUser`).
    async fn ignore_user(&self, who: &Principal, rid: &str, user_id: &str, ignore: bool)
    -> ServiceResult<()>;
    /// Stores a report about a message for the moderators (`chat.reportMessage`).
    async fn report_message(&self, who: &Principal, mid: &str, description: &str) -> ServiceResult<()>;
    /// Creates a discussion (`rooms.createDiscussion`, DDP `createDiscussion`): the room, the
    /// `discussion-created` message in the parent, and the first reply if any.
    async fn create_discussion(&self, who: &Principal, req: CreateDiscussion) -> ServiceResult<Room>;
    /// Discussions of a room the caller may read, by name (`rooms.getDiscussions`).
    async fn room_discussions(
        &self,
        who: &Principal,
        room: RoomSelector,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>>;
    /// The `discussion-created` messages of a room whose text contains `text`, newest first
    /// (`chat.getDiscussions`).
    async fn discussion_messages(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>>;
    /// Marks messages unread for the caller (`subscriptions.unread`): from another user's
    /// message `first_unread` on, or (with `rid`) the room's newest message.
    async fn mark_unread(
        &self,
        who: &Principal,
        rid: Option<String>,
        first_unread: Option<String>,
    ) -> ServiceResult<()>;
}

/// The handle to the messaging service.
#[derive(Clone)]
pub struct MessagingClient(Arc<dyn MessagingService>);

impl MessagingClient {
    pub fn local(service: Arc<dyn MessagingService>) -> Self {
        Self(service)
    }

    /// Calls the messaging role over gRPC.
    pub fn grpc(client: crate::grpc::RpcClient) -> Self {
        Self(Arc::new(crate::grpc::messaging::GrpcMessagingClient(client)))
    }

    /// The tonic service that serves this handle's service to other roles.
    pub fn grpc_server(
        &self,
        options: crate::grpc::ServerOptions,
    ) -> apogee_proto::messaging::v1::messaging_server::MessagingServer<
        crate::grpc::messaging::GrpcMessagingServer,
    > {
        crate::grpc::messaging::server(self.0.clone(), options)
    }
}

impl std::ops::Deref for MessagingClient {
    type Target = dyn MessagingService;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
