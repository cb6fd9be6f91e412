//! The gRPC adapters of [`MessagingService`](crate::MessagingService): one entry per RPC of
//! `proto/apogee/messaging/v1/messaging.proto`. A method added to the trait needs its RPC here and there.

use crate::*;
use apogee_types::{
    Message, Millis, Page, PageRequest, Principal, Room, ServiceResult, Subscription, Team, User,
};

use apogee_proto::messaging::v1::messaging_server::{Messaging, MessagingServer};
use apogee_proto::messaging::v1::{SendMessageReply, SendMessageRequest};
use apogee_types::ServiceError;

use crate::events::wire;

use super::grpc_adapters;

grpc_adapters! {
    trait: MessagingService,
    name: "messaging",
    path: "/apogee.messaging.v1.Messaging/",
    client: GrpcMessagingClient,
    server: GrpcMessagingServer,
    server_trait: Messaging,
    who: {
        (Write, CreateRoom, create_room, [req: CreateRoom => CreateRoom], Room),
        (Write, CreateDirect, create_direct, [usernames: Vec<String> => Vec<String>, exclude_self: bool => bool], Room),
        (Read, RoomInfo, room_info, [selector: RoomSelector => RoomSelector], Room),
        (Read, ListRooms, list_rooms, [scope: RoomListScope => RoomListScope, text: Option<String> => Option<String>, page: PageRequest => PageRequest], Page<Room>),
        (Write, JoinRoom, join_room, [rid: &str => String, join_code: Option<String> => Option<String>], Room),
        (Write, LeaveRoom, leave_room, [rid: &str => String], Room),
        (Write, AddMember, add_member, [rid: &str => String, user: UserSelector => UserSelector], Room),
        (Write, AddAllUsers, add_all_users, [rid: &str => String, active_only: bool => bool], Room),
        (Write, RemoveMember, remove_member, [rid: &str => String, user: UserSelector => UserSelector], Room),
        (Write, UpdateRoom, update_room, [rid: &str => String, change: RoomChange => RoomChange], Room),
        (Write, SetOpen, set_open, [rid: &str => String, open: bool => bool], ()),
        (Write, DeleteRoom, delete_room, [rid: &str => String], ()),
        (Write, CreateTeam, create_team, [req: CreateTeam => CreateTeam], Team),
        (Write, ConvertRoomToTeam, convert_room_to_team, [rid: &str => String], Team),
        (Read, TeamInfo, team_info, [team: TeamSelector => TeamSelector], Team),
        (Read, ListTeams, list_teams, [all: bool => bool, page: PageRequest => PageRequest], Page<TeamListItem>),
        (Write, DissolveTeam, dissolve_team, [team: TeamSelector => TeamSelector, rooms_to_remove: Vec<String> => Vec<String>, how: TeamDissolve => TeamDissolve], ()),
        (Write, UpdateTeam, update_team, [team: TeamSelector => TeamSelector, name: Option<String> => Option<String>, private: Option<bool> => Option<bool>], ()),
        (Read, TeamMembers, team_members, [team: TeamSelector => TeamSelector, filter: TeamMemberFilter => TeamMemberFilter, page: PageRequest => PageRequest], Page<TeamMemberInfo>),
        (Write, AddTeamMembers, add_team_members, [team: TeamSelector => TeamSelector, members: Vec<TeamMemberParams> => Vec<TeamMemberParams>], ()),
        (Write, UpdateTeamMember, update_team_member, [team: TeamSelector => TeamSelector, member: TeamMemberParams => TeamMemberParams], ()),
        (Write, RemoveTeamMember, remove_team_member, [team: TeamSelector => TeamSelector, user_id: &str => String, rooms: Vec<String> => Vec<String>, leaving: bool => bool], ()),
        (Write, AddTeamRooms, add_team_rooms, [team: TeamSelector => TeamSelector, rids: Vec<String> => Vec<String>], Vec<Room>),
        (Write, RemoveTeamRoom, remove_team_room, [team: TeamSelector => TeamSelector, rid: &str => String], Room),
        (Write, UpdateTeamRoom, update_team_room, [rid: &str => String, is_default: bool => bool], Room),
        (Read, TeamRooms, team_rooms, [team: TeamSelector => TeamSelector, filter: TeamRoomFilter => TeamRoomFilter, page: PageRequest => PageRequest], Page<Room>),
        (Read, UserTeams, user_teams, [user_id: &str => String], Vec<UserTeam>),
        (Read, History, history, [rid: &str => String, req: HistoryRequest => HistoryRequest], History),
        (Read, RoomMessages, room_messages, [rid: &str => String, page: PageRequest => PageRequest], Page<Message>),
        (Read, OthersMessages, others_messages, [rid: &str => String, page: PageRequest => PageRequest], Page<Message>),
        (Read, MentionsInRoom, mentions_in_room, [rid: &str => String, oldest_first: bool => bool, page: PageRequest => PageRequest], Page<Message>),
        (Read, Members, members, [rid: &str => String, filter: MemberFilter => MemberFilter, page: PageRequest => PageRequest], Page<User>),
        (Read, Counters, counters, [rid: &str => String, user_id: Option<String> => Option<String>], Counters),
        (Read, GetMessage, get_message, [id: &str => String], Message),
        (Read, ChangedMessages, changed_messages, [rid: &str => String, since: Millis => Millis, before: bool => bool, count: Option<u64> => Option<u64>], Vec<Message>),
        (Read, RemovedMessages, removed_messages, [rid: &str => String, since: Millis => Millis, before: bool => bool, count: Option<u64> => Option<u64>], Vec<(String, Millis)>),
        (Write, UpdateMessage, update_message, [rid: &str => String, id: &str => String, text: String => String, custom_fields: Option<serde_json::Value> => Option<serde_json::Value>], Message),
        (Write, DeleteMessage, delete_message, [rid: Option<&str> => Option<String>, id: &str => String], Message),
        (Write, React, react, [id: &str => String, emoji: &str => String, should_react: Option<bool> => Option<bool>], Message),
        (Write, PinMessage, pin_message, [id: &str => String], Message),
        (Write, UnpinMessage, unpin_message, [id: &str => String], ()),
        (Write, StarMessage, star_message, [id: &str => String, starred: bool => bool], ()),
        (Read, MarkedMessages, marked_messages, [rid: &str => String, which: MarkedMessages => MarkedMessages, page: PageRequest => PageRequest], Page<Message>),
        (Read, SearchMessages, search_messages, [rid: &str => String, text: &str => String, page: PageRequest => PageRequest], Vec<Message>),
        (Read, Subscriptions, subscriptions, [since: Option<Millis> => Option<Millis>], Changes<Subscription>),
        (Read, Subscription, subscription, [rid: &str => String], Option<Subscription>),
        (Write, MarkRead, mark_read, [rid: &str => String], ()),
        (Read, Rooms, rooms, [since: Option<Millis> => Option<Millis>], Changes<Room>),
        (Read, RoomRoles, room_roles, [rid: &str => String], Vec<Subscription>),
        (Write, SetRoomRole, set_room_role, [rid: &str => String, user: UserSelector => UserSelector, role: &str => String, add: bool => bool], ()),
        (Read, UserSubscriptions, user_subscriptions, [user_id: &str => String], Vec<Subscription>),
        (Write, SetFavorite, set_favorite, [room: RoomSelector => RoomSelector, favorite: bool => bool], ()),
        (Write, SaveNotification, save_notification, [rid: &str => String, field: &str => String, value: &str => String], ()),
        (Read, RoomNameExists, room_name_exists, [name: &str => String], bool),
        (Read, IsMember, is_member, [rid: &str => String, user: UserSelector => UserSelector], bool),
        (Write, SaveRoomSettings, save_room_settings, [rid: &str => String, changes: Vec<RoomChange> => Vec<RoomChange>], ()),
        (Write, SetMuted, set_muted, [rid: &str => String, user: UserSelector => UserSelector, muted: bool => bool], ()),
        (Write, CleanHistory, clean_history, [rid: &str => String, req: CleanHistory => CleanHistory], u64),
        (Read, Threads, threads, [rid: &str => String, kind: ThreadListKind => ThreadListKind, text: Option<String> => Option<String>, page: PageRequest => PageRequest], Page<Message>),
        (Read, ThreadMessages, thread_messages, [tmid: &str => String, page: PageRequest => PageRequest], Page<Message>),
        (Read, SyncThreads, sync_threads, [rid: &str => String, since: Millis => Millis], Changes<Message>),
        (Read, SyncThreadMessages, sync_thread_messages, [tmid: &str => String, since: Millis => Millis], Changes<Message>),
        (Write, FollowMessage, follow_message, [mid: &str => String, follow: bool => bool], ()),
        (Write, ReadThreads, read_threads, [rid: &str => String, tmid: Option<String> => Option<String>], ()),
        (Read, DeletedMessages, deleted_messages, [rid: &str => String, since: Millis => Millis, page: PageRequest => PageRequest], Page<(String, Millis)>),
        (Write, IgnoreUser, ignore_user, [rid: &str => String, user_id: &str => String, ignore: bool => bool], ()),
        (Write, ReportMessage, report_message, [mid: &str => String, description: &str => String], ()),
        (Write, CreateDiscussion, create_discussion, [req: CreateDiscussion => CreateDiscussion], Room),
        (Read, RoomDiscussions, room_discussions, [room: RoomSelector => RoomSelector, page: PageRequest => PageRequest], Page<Room>),
        (Read, DiscussionMessages, discussion_messages, [rid: &str => String, text: &str => String, page: PageRequest => PageRequest], Page<Message>),
        (Write, MarkUnread, mark_unread, [rid: Option<String> => Option<String>, first_unread: Option<String> => Option<String>], ()),
    }
    anon: {
        (Write, JoinDefaultRooms, join_default_rooms, [user: &User => User, silent: bool => bool], ()),
        (Write, RemoveUserFromAllRooms, remove_user_from_all_rooms, [user_id: &str => String], ()),
        (Write, RelinquishOwnership, relinquish_ownership, [user_id: &str => String, confirm: bool => bool], ()),
        (Write, UserRenamed, user_renamed, [before: &User => User, after: &User => User], ()),
        (Read, FindRoom, find_room, [rid: &str => String], Option<Room>),
        (Read, FindRoomByName, find_room_by_name, [name: &str => String], Option<Room>),
        (Read, TeamRoomsCount, team_rooms_count, [team_id: &str => String], u64),
        (Read, AnonymousMessages, anonymous_messages, [room: RoomSelector => RoomSelector, page: PageRequest => PageRequest], Page<Message>),
    }
    typed: {
        client: {
            async fn send_message(&self, who: &Principal, msg: NewMessage) -> ServiceResult<Message> {
                let path = "/apogee.messaging.v1.Messaging/SendMessage";
                let request = wire::send_message_request(msg);
                let reply = self.0.typed(path, super::Retry::Write, Some(who), request).await?;
                wire::send_message_reply_of(reply)
                    .map_err(|e| ServiceError::internal(format!("decode {path} result: {e}")))
            }
        }
        server: {
            async fn send_message(
                &self,
                request: tonic::Request<SendMessageRequest>,
            ) -> Result<tonic::Response<SendMessageReply>, tonic::Status> {
                let meta = self.options.accept(request.metadata())?;
                let who = meta.principal.ok_or_else(|| tonic::Status::unauthenticated("no principal"))?;
                let msg = wire::new_message_of(request.into_inner())
                    .map_err(|e| tonic::Status::invalid_argument(format!("bad arguments: {e}")))?;
                let service = self.service.clone();
                let sent = super::serve_call("messaging.send_message", meta.trace, async move {
                    service.send_message(&who, msg).await
                })
                .await;
                match sent {
                    Ok(message) => Ok(tonic::Response::new(wire::send_message_reply(&message))),
                    Err(error) => Err(super::status_from_error(&error)),
                }
            }
        }
    }
}

/// The tonic service serving `service`.
pub fn server(
    service: std::sync::Arc<dyn MessagingService>,
    options: super::ServerOptions,
) -> MessagingServer<GrpcMessagingServer> {
    MessagingServer::new(GrpcMessagingServer::new(service, options))
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
}
