use std::sync::Arc;

use apogee_api::{
    AuthClient, Changes, CleanHistory, Counters, CreateDiscussion, CreateRoom, History, HistoryRequest,
    MarkedMessages, MemberFilter, MessagingService, NewMessage, RoomChange, RoomListScope, RoomSelector,
    ThreadListKind, UserSelector,
};
use apogee_api::{
    CreateTeam, TeamDissolve, TeamListItem, TeamMemberFilter, TeamMemberInfo, TeamMemberParams,
    TeamRoomFilter, TeamSelector, UserTeam,
};
use apogee_bus::Bus;
use apogee_store::{StoreError, StoreRef};
use apogee_types::{
    ErrorKind, Message, Millis, Page, PageRequest, Principal, Room, ServiceError, ServiceResult,
    Subscription, Team, User,
};
use async_trait::async_trait;

/// The messaging service.
pub struct Messaging {
    pub(crate) store: StoreRef,
    pub(crate) auth: AuthClient,
    /// Where committed changes are announced (`apogee.room.*`, `apogee.user.*`).
    pub(crate) bus: Bus,
}

impl Messaging {
    pub fn new(store: StoreRef, auth: AuthClient, bus: Bus) -> Arc<Self> {
        Arc::new(Self { store, auth, bus })
    }
}

/// The one place store errors become service errors.
pub(crate) fn store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound { entity: "room", .. } => ServiceError::not_found(
            "error-room-not-found",
            "The required \"roomId\" param provided does not match any room",
        ),
        StoreError::NotFound { entity, .. } => {
            ServiceError::not_found("error-not-found", format!("{entity} not found"))
        }
        StoreError::Conflict { entity: "room", key } => ServiceError::invalid(
            "error-duplicate-channel-name",
            format!("A channel with name '{key}' exists"),
        )
        .with_details(serde_json::json!({ "channel_name": key })),
        StoreError::Conflict { entity: "message", key } => ServiceError::invalid(
            "error-duplicate-message",
            format!("A message with id '{key}' already exists"),
        ),
        StoreError::Conflict { entity, key } => {
            ServiceError::invalid("error-duplicate", format!("{entity} {key} already exists"))
        }
        StoreError::Rejected(message) => ServiceError::not_allowed(message),
        StoreError::Unavailable(detail) | StoreError::Corrupt { detail, .. } => {
            tracing::error!(%detail, "messaging store failed");
            ServiceError::new(ErrorKind::Unavailable, "", "Service Unavailable")
        }
    }
}

#[async_trait]
impl MessagingService for Messaging {
    async fn create_room(&self, who: &Principal, req: CreateRoom) -> ServiceResult<Room> {
        self.create_room_impl(who, req).await
    }

    async fn create_direct(
        &self,
        who: &Principal,
        usernames: Vec<String>,
        exclude_self: bool,
    ) -> ServiceResult<Room> {
        self.create_direct_impl(who, usernames, exclude_self).await
    }

    async fn room_info(&self, who: &Principal, selector: RoomSelector) -> ServiceResult<Room> {
        let room = self.find_room(who, &selector).await?;
        self.ensure_can_read(who, &room).await?;
        Ok(room)
    }

    async fn list_rooms(
        &self,
        who: &Principal,
        scope: RoomListScope,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        self.list_rooms_impl(who, scope, text, page).await
    }

    async fn join_room(&self, who: &Principal, rid: &str, join_code: Option<String>) -> ServiceResult<Room> {
        self.join_room_impl(who, rid, join_code).await
    }

    async fn leave_room(&self, who: &Principal, rid: &str) -> ServiceResult<Room> {
        self.leave_room_impl(who, rid).await
    }

    async fn add_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<Room> {
        self.add_member_impl(who, rid, user).await
    }

    async fn add_all_users(&self, who: &Principal, rid: &str, active_only: bool) -> ServiceResult<Room> {
        self.add_all_users_impl(who, rid, active_only).await
    }

    async fn remove_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<Room> {
        self.remove_member_impl(who, rid, user).await
    }

    async fn update_room(&self, who: &Principal, rid: &str, change: RoomChange) -> ServiceResult<Room> {
        self.update_room_impl(who, rid, change).await
    }

    async fn set_open(&self, who: &Principal, rid: &str, open: bool) -> ServiceResult<()> {
        self.set_open_impl(who, rid, open).await
    }

    async fn delete_room(&self, who: &Principal, rid: &str) -> ServiceResult<()> {
        self.delete_room_impl(who, rid).await
    }

    async fn create_team(&self, who: &Principal, req: CreateTeam) -> ServiceResult<Team> {
        self.create_team_impl(who, req).await
    }

    async fn convert_room_to_team(&self, who: &Principal, rid: &str) -> ServiceResult<Team> {
        self.convert_room_to_team_impl(who, rid).await
    }

    async fn team_info(&self, who: &Principal, team: TeamSelector) -> ServiceResult<Team> {
        self.team_info_impl(who, team).await
    }

    async fn list_teams(
        &self,
        who: &Principal,
        all: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamListItem>> {
        self.list_teams_impl(who, all, page).await
    }

    async fn dissolve_team(
        &self,
        who: &Principal,
        team: TeamSelector,
        rooms_to_remove: Vec<String>,
        how: TeamDissolve,
    ) -> ServiceResult<()> {
        self.dissolve_team_impl(who, team, rooms_to_remove, how).await
    }

    async fn update_team(
        &self,
        who: &Principal,
        team: TeamSelector,
        name: Option<String>,
        private: Option<bool>,
    ) -> ServiceResult<()> {
        self.update_team_impl(who, team, name, private).await
    }

    async fn team_members(
        &self,
        who: &Principal,
        team: TeamSelector,
        filter: TeamMemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamMemberInfo>> {
        self.team_members_impl(who, team, filter, page).await
    }

    async fn add_team_members(
        &self,
        who: &Principal,
        team: TeamSelector,
        members: Vec<TeamMemberParams>,
    ) -> ServiceResult<()> {
        self.add_team_members_impl(who, team, members).await
    }

    async fn update_team_member(
        &self,
        who: &Principal,
        team: TeamSelector,
        member: TeamMemberParams,
    ) -> ServiceResult<()> {
        self.update_team_member_impl(who, team, member).await
    }

    async fn remove_team_member(
        &self,
        who: &Principal,
        team: TeamSelector,
        user_id: &str,
        rooms: Vec<String>,
        leaving: bool,
    ) -> ServiceResult<()> {
        self.remove_team_member_impl(who, team, user_id, rooms, leaving).await
    }

    async fn add_team_rooms(
        &self,
        who: &Principal,
        team: TeamSelector,
        rids: Vec<String>,
    ) -> ServiceResult<Vec<Room>> {
        self.add_team_rooms_impl(who, team, rids).await
    }

    async fn remove_team_room(&self, who: &Principal, team: TeamSelector, rid: &str) -> ServiceResult<Room> {
        self.remove_team_room_impl(who, team, rid).await
    }

    async fn update_team_room(&self, who: &Principal, rid: &str, is_default: bool) -> ServiceResult<Room> {
        self.update_team_room_impl(who, rid, is_default).await
    }

    async fn team_rooms(
        &self,
        who: &Principal,
        team: TeamSelector,
        filter: TeamRoomFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        self.team_rooms_impl(who, team, filter, page).await
    }

    async fn user_teams(&self, who: &Principal, user_id: &str) -> ServiceResult<Vec<UserTeam>> {
        self.user_teams_impl(who, user_id).await
    }

    async fn history(&self, who: &Principal, rid: &str, req: HistoryRequest) -> ServiceResult<History> {
        self.history_impl(who, rid, req).await
    }

    async fn room_messages(
        &self,
        who: &Principal,
        rid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        self.store.list_messages(rid, page, false).await.map_err(store_error)
    }

    async fn anonymous_messages(
        &self,
        room: RoomSelector,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.anonymous_messages_impl(room, page).await
    }

    async fn others_messages(
        &self,
        who: &Principal,
        rid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.others_messages_impl(who, rid, page).await
    }

    async fn mentions_in_room(
        &self,
        who: &Principal,
        rid: &str,
        oldest_first: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.mentions_in_room_impl(who, rid, oldest_first, page).await
    }

    async fn members(
        &self,
        who: &Principal,
        rid: &str,
        filter: MemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        self.members_impl(who, rid, filter, page).await
    }

    async fn counters(&self, who: &Principal, rid: &str, user_id: Option<String>) -> ServiceResult<Counters> {
        self.counters_impl(who, rid, user_id).await
    }

    async fn send_message(&self, who: &Principal, msg: NewMessage) -> ServiceResult<Message> {
        self.send_message_impl(who, msg).await
    }

    async fn get_message(&self, who: &Principal, id: &str) -> ServiceResult<Message> {
        self.get_message_impl(who, id).await
    }

    async fn changed_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> ServiceResult<Vec<Message>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        self.store.messages_changed(rid, since, before, count).await.map_err(store_error)
    }

    async fn removed_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> ServiceResult<Vec<(String, Millis)>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        let removed = self.store.messages_removed(rid, since, before, count).await.map_err(store_error)?;
        Ok(removed.into_iter().map(|r| (r.id, r.deleted_at)).collect())
    }

    async fn update_message(
        &self,
        who: &Principal,
        rid: &str,
        id: &str,
        text: String,
        custom_fields: Option<serde_json::Value>,
    ) -> ServiceResult<Message> {
        self.update_message_impl(who, rid, id, text, custom_fields).await
    }

    async fn delete_message(&self, who: &Principal, rid: Option<&str>, id: &str) -> ServiceResult<Message> {
        self.delete_message_impl(who, rid, id).await
    }

    async fn react(
        &self,
        who: &Principal,
        id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> ServiceResult<Message> {
        self.react_impl(who, id, emoji, should_react).await
    }

    async fn pin_message(&self, who: &Principal, id: &str) -> ServiceResult<Message> {
        self.pin_message_impl(who, id).await
    }

    async fn unpin_message(&self, who: &Principal, id: &str) -> ServiceResult<()> {
        self.unpin_message_impl(who, id).await
    }

    async fn star_message(&self, who: &Principal, id: &str, starred: bool) -> ServiceResult<()> {
        self.star_message_impl(who, id, starred).await
    }

    async fn marked_messages(
        &self,
        who: &Principal,
        rid: &str,
        which: MarkedMessages,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.marked_messages_impl(who, rid, which, page).await
    }

    async fn search_messages(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Vec<Message>> {
        self.search_messages_impl(who, rid, text, page).await
    }

    async fn subscriptions(
        &self,
        who: &Principal,
        since: Option<Millis>,
    ) -> ServiceResult<Changes<Subscription>> {
        self.subscriptions_impl(who, since).await
    }

    async fn subscription(&self, who: &Principal, rid: &str) -> ServiceResult<Option<Subscription>> {
        self.store.subscription(rid, &who.user_id).await.map_err(store_error)
    }

    async fn mark_read(&self, who: &Principal, rid: &str) -> ServiceResult<()> {
        self.mark_read_impl(who, rid).await
    }

    async fn rooms(&self, who: &Principal, since: Option<Millis>) -> ServiceResult<Changes<Room>> {
        self.rooms_impl(who, since).await
    }

    async fn room_roles(&self, who: &Principal, rid: &str) -> ServiceResult<Vec<Subscription>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        let all = PageRequest { offset: 0, count: None };
        let members = self.store.subscriptions_of_room(rid, all).await.map_err(store_error)?;
        Ok(members.items.into_iter().filter(|s| !s.roles.is_empty()).collect())
    }

    async fn set_room_role(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
        role: &str,
        add: bool,
    ) -> ServiceResult<()> {
        self.set_room_role_impl(who, rid, user, role, add).await
    }

    async fn user_subscriptions(&self, who: &Principal, user_id: &str) -> ServiceResult<Vec<Subscription>> {
        if who.user_id != user_id && !self.has_global(who, "view-other-user-channels").await? {
            return Err(ServiceError::unauthorized());
        }
        self.store.subscriptions_of_user(user_id, None).await.map_err(store_error)
    }

    async fn join_default_rooms(&self, user: &User, silent: bool) -> ServiceResult<()> {
        self.join_default_rooms_impl(user, silent).await
    }

    async fn remove_user_from_all_rooms(&self, user_id: &str) -> ServiceResult<()> {
        self.remove_user_from_all_rooms_impl(user_id).await
    }

    async fn user_renamed(&self, before: &User, after: &User) -> ServiceResult<()> {
        self.user_renamed_impl(before, after).await
    }

    async fn relinquish_ownership(&self, user_id: &str, confirm: bool) -> ServiceResult<()> {
        self.relinquish_ownership_impl(user_id, confirm).await
    }

    async fn find_room(&self, rid: &str) -> ServiceResult<Option<Room>> {
        self.store.room_by_id(rid).await.map_err(store_error)
    }

    async fn find_room_by_name(&self, name: &str) -> ServiceResult<Option<Room>> {
        self.store.room_by_name(name).await.map_err(store_error)
    }

    async fn team_rooms_count(&self, team_id: &str) -> ServiceResult<u64> {
        Ok(self.store.rooms_of_team(team_id).await.map_err(store_error)?.len() as u64)
    }

    async fn set_favorite(&self, who: &Principal, room: RoomSelector, favorite: bool) -> ServiceResult<()> {
        self.set_favorite_impl(who, room, favorite).await
    }

    async fn save_notification(
        &self,
        who: &Principal,
        rid: &str,
        field: &str,
        value: &str,
    ) -> ServiceResult<()> {
        self.save_notification_impl(who, rid, field, value).await
    }

    async fn room_name_exists(&self, who: &Principal, name: &str) -> ServiceResult<bool> {
        self.room_name_exists_impl(who, name).await
    }

    async fn is_member(&self, who: &Principal, rid: &str, user: UserSelector) -> ServiceResult<bool> {
        self.is_member_impl(who, rid, user).await
    }

    async fn save_room_settings(
        &self,
        who: &Principal,
        rid: &str,
        changes: Vec<RoomChange>,
    ) -> ServiceResult<()> {
        self.save_room_settings_impl(who, rid, changes).await
    }

    async fn set_muted(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
        muted: bool,
    ) -> ServiceResult<()> {
        self.set_muted_impl(who, rid, user, muted).await
    }

    async fn clean_history(&self, who: &Principal, rid: &str, req: CleanHistory) -> ServiceResult<u64> {
        self.clean_history_impl(who, rid, req).await
    }

    async fn threads(
        &self,
        who: &Principal,
        rid: &str,
        kind: ThreadListKind,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.threads_impl(who, rid, kind, text, page).await
    }

    async fn thread_messages(
        &self,
        who: &Principal,
        tmid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.thread_messages_impl(who, tmid, page).await
    }

    async fn sync_threads(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>> {
        self.sync_threads_impl(who, rid, since).await
    }

    async fn sync_thread_messages(
        &self,
        who: &Principal,
        tmid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>> {
        self.sync_thread_messages_impl(who, tmid, since).await
    }

    async fn follow_message(&self, who: &Principal, mid: &str, follow: bool) -> ServiceResult<()> {
        self.follow_message_impl(who, mid, follow).await
    }

    async fn read_threads(&self, who: &Principal, rid: &str, tmid: Option<String>) -> ServiceResult<()> {
        self.read_threads_impl(who, rid, tmid).await
    }

    async fn deleted_messages(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> ServiceResult<Page<(String, Millis)>> {
        self.deleted_messages_impl(who, rid, since, page).await
    }

    async fn ignore_user(
        &self,
        who: &Principal,
        rid: &str,
        user_id: &str,
        ignore: bool,
    ) -> ServiceResult<()> {
        self.ignore_user_impl(who, rid, user_id, ignore).await
    }

    async fn report_message(&self, who: &Principal, mid: &str, description: &str) -> ServiceResult<()> {
        self.report_message_impl(who, mid, description).await
    }

    async fn create_discussion(&self, who: &Principal, req: CreateDiscussion) -> ServiceResult<Room> {
        self.create_discussion_impl(who, req).await
    }

    async fn room_discussions(
        &self,
        who: &Principal,
        room: RoomSelector,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        self.room_discussions_impl(who, room, page).await
    }

    async fn discussion_messages(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.discussion_messages_impl(who, rid, text, page).await
    }

    async fn mark_unread(
        &self,
        who: &Principal,
        rid: Option<String>,
        first_unread: Option<String>,
    ) -> ServiceResult<()> {
        self.mark_unread_impl(who, rid, first_unread).await
    }
}
