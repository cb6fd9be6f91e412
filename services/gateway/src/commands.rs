//! Slash commands (`commands.*`, DDP `slashCommand`): Rocket.Chat's built-in server commands,
//! each a composition of the services' own operations (joining, kicking, archiving… are never
//! reimplemented here). Replies meant for the caller alone are ephemeral messages from
//! rocket.cat on `stream-notify-user` `<uid>/message`, published on the bus so every gateway
//! holding a socket of the user delivers them.

use apogee_api::events::{BusEvent, UserEvent, user_subject};
use apogee_api::{CreateRoom, MemberFilter, NewMessage, RoomChange, RoomSelector, UserSelector};
use apogee_bus::Subject;
use apogee_types::{ErrorKind, Millis, PageRequest, Principal, Room, RoomType, ServiceError, ServiceResult};
use serde_json::{Map, Value, json};

use crate::GatewayState;

/// Who may use a command, as Rocket.Chat lists it (clients use it to offer the command; the
/// operations the command runs check their own permissions).
pub(crate) enum Permission {
    None,
    One(&'static str),
    Any(&'static [&'static str]),
}

/// A command as `commands.list` and `commands.get` show it.
pub(crate) struct Command {
    pub command: &'static str,
    /// The i18n key or text of its parameters, as Rocket.Chat registers it.
    pub params: Option<&'static str>,
    /// An i18n key, translated by clients.
    pub description: &'static str,
    pub permission: Permission,
    pub client_only: bool,
}

const fn cmd(
    command: &'static str,
    params: Option<&'static str>,
    description: &'static str,
    permission: Permission,
) -> Command {
    Command { command, params, description, permission, client_only: false }
}

const fn ascii_art(command: &'static str, description: &'static str) -> Command {
    Command {
        command,
        params: Some("your_message_optional"),
        description,
        permission: Permission::None,
        client_only: true,
    }
}

/// In Rocket.Chat's registration order, which `commands.list` keeps.
pub(crate) const COMMANDS: &[Command] = &[
    cmd("archive", Some("#channel"), "Archive", Permission::One("archive-room")),
    ascii_art("gimme", "Slash_Gimme_Description"),
    ascii_art("lennyface", "Slash_LennyFace_Description"),
    ascii_art("shrug", "Slash_Shrug_Description"),
    ascii_art("tableflip", "Slash_Tableflip_Description"),
    ascii_art("unflip", "Slash_TableUnflip_Description"),
    cmd("create", Some("#channel"), "Create_A_New_Channel", Permission::Any(&["create-c", "create-p"])),
    cmd("help", None, "Show_the_keyboard_shortcut_list", Permission::None),
    cmd("hide", Some("#room"), "Hide_room", Permission::None),
    cmd(
        "invite",
        Some("@username"),
        "Invite_user_to_join_channel",
        Permission::One("add-user-to-joined-room"),
    ),
    cmd(
        "invite-all-to",
        Some("#room"),
        "Invite_user_to_join_channel_all_to",
        Permission::Any(&["add-user-to-joined-room", "add-user-to-any-c-room", "add-user-to-any-p-room"]),
    ),
    cmd(
        "invite-all-from",
        Some("#room"),
        "Invite_user_to_join_channel_all_from",
        Permission::One("add-user-to-joined-room"),
    ),
    cmd("join", Some("#channel"), "Join_the_given_channel", Permission::One("view-c-room")),
    cmd("kick", Some("@username"), "Remove_someone_from_room", Permission::One("remove-user")),
    cmd("leave", None, "Leave_the_current_channel", Permission::Any(&["leave-c", "leave-p"])),
    cmd("part", None, "Leave_the_current_channel", Permission::Any(&["leave-c", "leave-p"])),
    cmd("me", Some("your_message"), "Displays_action_text", Permission::None),
    cmd("msg", Some("@username <message>"), "Direct_message_someone", Permission::One("create-d")),
    cmd("mute", Some("@username"), "Mute_someone_in_room", Permission::One("mute-user")),
    cmd("unmute", Some("@username"), "Unmute_someone_in_room", Permission::One("mute-user")),
    cmd("status", Some("Slash_Status_Params"), "Slash_Status_Description", Permission::None),
    cmd("topic", Some("Slash_Topic_Params"), "Slash_Topic_Description", Permission::One("edit-room")),
    cmd("unarchive", Some("#channel"), "Unarchive", Permission::One("unarchive-room")),
];

pub(crate) fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.command == name)
}

impl Command {
    /// The JSON Rocket.Chat serializes (its callbacks and unset fields drop out).
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("command".into(), self.command.into());
        if let Some(params) = self.params {
            out.insert("params".into(), params.into());
        }
        out.insert("description".into(), self.description.into());
        match self.permission {
            Permission::None => {}
            Permission::One(p) => {
                out.insert("permission".into(), p.into());
            }
            Permission::Any(list) => {
                out.insert("permission".into(), json!(list));
            }
        }
        out.insert("clientOnly".into(), self.client_only.into());
        out.insert("providesPreview".into(), false.into());
        Value::Object(out)
    }
}

/// One run of a command in a room (optionally in a thread).
pub(crate) struct Invocation {
    pub command: String,
    pub params: String,
    pub rid: String,
    pub tmid: Option<String>,
    /// The id of the message that carried the command, reused by commands that post.
    pub message_id: Option<String>,
}

/// Rocket.Chat's English text of an i18n key with one `%s`; unknown keys read as themselves
/// (as i18next answers).
fn text(key: &str, arg: &str) -> String {
    let template = match key {
        "Channel_doesnt_exist" => "The channel `#%s` does not exist.",
        "Duplicate_archived_channel_name" => "An archived Channel with name `#%s` exists",
        "Channel_Archived" => "Channel with name `#%s` has been archived successfully",
        "Channel_already_Unarchived" => "Channel with name `#%s` is already in Unarchived state",
        "Channel_Unarchived" => "Channel with name `#%s` has been Unarchived successfully",
        "Channel_already_exist" => "The channel `#%s` already exists.",
        "Channel_created" => "Channel `#%s` created.",
        "User_doesnt_exist" => "No user exists by the name of `@%s`.",
        "Username_is_already_in_here" => "`@%s` is already in here.",
        "Username_doesnt_exist" => "The username `%s` doesn't exist.",
        "error-logged-user-not-in-room" => "You are not in the room `%s`",
        "Cannot_invite_users_to_direct_rooms" => "Cannot invite users to direct rooms",
        "Room_not_exist_or_not_permission" => "The room does not exist or you may not have access permission",
        "Users_added" => "The users have been added",
        "Username_and_message_must_not_be_empty" => "Username and message must not be empty.",
        "StatusMessage_Changed_Successfully" => "Status message changed successfully.",
        "StatusMessage_Change_Disabled" => {
            "Your Rocket.Chat administrator has disabled the changing of status messages"
        }
        "error-you-are-last-owner" => "You are the last owner. Please set new owner before leaving the room.",
        "error-user-limit-exceeded" => {
            "The number of users you are trying to invite to #channel_name exceeds the limit set by the administrator"
        }
        "error-not-allowed" => "Not allowed",
        "error-user-not-in-room" => "User is not in this room",
        "error-invalid-room" => "Invalid room",
        "error-not-authorized" => "Not authorized",
        "error-invalid-user" => "Invalid user",
        "error-cant-invite-for-direct-room" => "Can't invite user to direct rooms",
        other => other,
    };
    template.replacen("%s", arg, 1)
}

/// The keyboard shortcuts `/help` lists, as Rocket.Chat's English texts.
const HELP: &[(&str, &str)] = &[
    ("`%s` - Open Channel / User search", "Command (or Ctrl) + p OR Command (or Ctrl) + k"),
    ("`%s` - Mark all messages (in all channels) as read", "Shift (or Ctrl) + ESC"),
    ("`%s` - Edit previous message", "Up Arrow"),
    ("`%s` - Move to the beginning of the message", "Command (or Alt) + Left Arrow"),
    ("`%s` - Move to the beginning of the message", "Command (or Alt) + Up Arrow"),
    ("`%s` - Move to the end of the message", "Command (or Alt) + Right Arrow"),
    ("`%s` - Move to the end of the message", "Command (or Alt) + Down Arrow"),
    ("`%s` - New line in message compose input", "Shift + Enter"),
];

/// Sends rocket.cat's private message to every socket of `uid` (any gateway).
pub(crate) async fn ephemeral(state: &GatewayState, uid: &str, rid: &str, msg: String) {
    let event =
        UserEvent::Ephemeral { id: apogee_types::random_id(), rid: rid.to_owned(), msg, ts: Millis::now() };
    let subject = Subject::new(&user_subject(uid, "message"));
    match subject {
        Ok(subject) => {
            if let Err(e) = state.bus.publish(&subject, event.encode()).await {
                tracing::warn!(%uid, error = %e, "ephemeral message not published");
            }
        }
        Err(e) => tracing::warn!(%uid, error = %e, "bad user subject"),
    }
}

struct Run<'a> {
    state: &'a GatewayState,
    who: &'a Principal,
    inv: Invocation,
}

/// How a room named in a command's parameters resolved.
enum Named {
    Found(Box<Room>),
    /// It exists, but the caller may not see it.
    Hidden,
    Missing,
}

impl Run<'_> {
    async fn say(&self, key: &str, arg: &str) {
        ephemeral(self.state, &self.who.user_id, &self.inv.rid, text(key, arg)).await;
    }

    /// Posts `msg` as the caller in the command's room (and thread), under the command's id.
    async fn post(&self, msg: String) -> ServiceResult<()> {
        let new = NewMessage {
            id: self.inv.message_id.clone(),
            rid: self.inv.rid.clone(),
            msg,
            tmid: self.inv.tmid.clone(),
            ..Default::default()
        };
        self.state.messaging.send_message(self.who, new).await.map(drop)
    }

    async fn named_room(&self, name: &str, family: Option<RoomType>) -> ServiceResult<Named> {
        let selector = RoomSelector { id: None, name: Some(name.to_owned()), family };
        match self.state.messaging.room_info(self.who, selector).await {
            Ok(room) => Ok(Named::Found(Box::new(room))),
            Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => Err(e),
            Err(_) if self.state.messaging.room_name_exists(self.who, name).await? => Ok(Named::Hidden),
            Err(_) => Ok(Named::Missing),
        }
    }

    async fn current_room(&self) -> ServiceResult<Room> {
        self.state.messaging.room_info(self.who, RoomSelector::id(self.inv.rid.clone())).await
    }

    /// A permission in a room: the caller's roles and their roles in it.
    async fn may_in_room(&self, rid: &str, permission: &str) -> ServiceResult<bool> {
        let mut roles = self.who.roles.clone();
        if let Some(sub) = self.state.messaging.subscription(self.who, rid).await? {
            roles.extend(sub.roles);
        }
        self.state.auth.roles_have_permission(&roles, permission).await
    }

    async fn user_exists(&self, username: &str) -> ServiceResult<bool> {
        Ok(self.state.auth.find_user(UserSelector::Username(username.to_owned())).await?.is_some())
    }

    /// `@name` → `name`: Rocket.Chat drops the first `@`.
    fn username_param(&self) -> String {
        self.inv.params.trim().replacen('@', "", 1)
    }

    async fn run(&self) -> ServiceResult<()> {
        let params = self.inv.params.clone();
        match self.inv.command.as_str() {
            "gimme" => self.post(format!("༼ つ ◕_◕ ༽つ {params}")).await,
            "lennyface" => self.post(format!("{params} ( ͡° ͜ʖ ͡°)")).await,
            "shrug" => self.post(format!("{params} ¯\\\\_(ツ)_/¯")).await,
            "tableflip" => self.post(format!("{params} (╯°□°）╯︵ ┻━┻")).await,
            "unflip" => self.post(format!("{params} ┬─┬ ノ( ゜-゜ノ)")).await,
            "me" if params.trim().is_empty() => Ok(()),
            "me" => self.post(format!("_{params}_")).await,
            "archive" => self.archive(true).await,
            "unarchive" => self.archive(false).await,
            "create" => self.create().await,
            "help" => self.help().await,
            "hide" => self.hide().await,
            "invite" => self.invite().await,
            "invite-all-to" => self.invite_all(true).await,
            "invite-all-from" => self.invite_all(false).await,
            "join" => self.join().await,
            "kick" => self.kick().await,
            "leave" | "part" => self.leave().await,
            "msg" => self.msg().await,
            "mute" => self.mute(true).await,
            "unmute" => self.mute(false).await,
            "status" => self.status().await,
            "topic" => self.topic().await,
            _ => Ok(()),
        }
    }

    async fn archive(&self, archive: bool) -> ServiceResult<()> {
        let mut channel = self.inv.params.trim().to_owned();
        let room = if channel.is_empty() {
            let room = self.current_room().await.ok();
            if let Some(name) = room.as_ref().and_then(|r| r.name.clone()) {
                channel = name;
            }
            room
        } else {
            channel = channel.replacen('#', "", 1);
            match self.named_room(&channel, None).await? {
                Named::Found(room) => Some(*room),
                Named::Hidden | Named::Missing => None,
            }
        };
        let Some(room) = room else {
            self.say("Channel_doesnt_exist", &channel).await;
            return Ok(());
        };
        let t = room.t.as_str();
        if room.t == RoomType::Direct {
            let (error, verb) = if archive {
                ("error-room-type-not-archivable", "archived")
            } else {
                ("error-room-type-not-unarchivable", "unarchived")
            };
            return Err(ServiceError::invalid(error, format!("Room type: {t} can not be {verb}")));
        }
        let permission = if archive { "archive-room" } else { "unarchive-room" };
        if !self.may_in_room(&room.id, permission).await? {
            return Err(ServiceError::invalid("error-not-authorized", "Not authorized"));
        }
        if room.archived == archive {
            let key = if archive { "Duplicate_archived_channel_name" } else { "Channel_already_Unarchived" };
            self.say(key, &channel).await;
            return Ok(());
        }
        self.state.messaging.update_room(self.who, &room.id, RoomChange::Archived(archive)).await?;
        self.say(if archive { "Channel_Archived" } else { "Channel_Unarchived" }, &channel).await;
        Ok(())
    }

    async fn create(&self) -> ServiceResult<()> {
        let pattern = self.state.auth.setting_string("UTF8_Channel_Names_Validation").await;
        let regex = pattern
            .as_deref()
            .and_then(|p| regex_lite::Regex::new(p).ok())
            .or_else(|| regex_lite::Regex::new("[0-9a-zA-Z-_.]+").ok());
        let params = self.inv.params.trim();
        // The first run of valid characters names the channel, as Rocket.Chat's unanchored match.
        let Some(name) = regex.and_then(|re| re.find(params).map(|m| m.as_str().to_owned())) else {
            return Ok(());
        };
        if name.is_empty() {
            return Ok(());
        }
        if self.state.messaging.room_name_exists(self.who, &name).await? {
            self.say("Channel_already_exist", &name).await;
            return Ok(());
        }
        let private = params
            .split("--")
            .skip(1)
            .any(|flag| flag.split(|c: char| !(c.is_alphanumeric() || c == '_')).next() == Some("private"));
        let t = if private { RoomType::Group } else { RoomType::Channel };
        let req = CreateRoom { t: Some(t), name, ..Default::default() };
        self.state.messaging.create_room(self.who, req).await.map(drop)
    }

    async fn help(&self) -> ServiceResult<()> {
        let msg: String =
            HELP.iter().map(|(line, keys)| format!("\n{}", line.replacen("%s", keys, 1))).collect();
        ephemeral(self.state, &self.who.user_id, &self.inv.rid, msg).await;
        Ok(())
    }

    async fn hide(&self) -> ServiceResult<()> {
        let param = self.inv.params.trim().to_owned();
        let mut rid = self.inv.rid.clone();
        if !param.is_empty() {
            let stripped = param.replacen(['#', '@'], "", 1);
            let stripped = stripped.split(' ').next().unwrap_or_default().to_owned();
            let direct = !param.starts_with('#');
            // The caller's own rooms: a direct conversation goes by the other user's name.
            let subs = self.state.messaging.subscriptions(self.who, None).await?.update;
            let mine = subs
                .into_iter()
                .find(|s| (s.t == RoomType::Direct) == direct && s.name.eq_ignore_ascii_case(&stripped));
            let exists = match (&mine, direct) {
                (Some(_), _) => true,
                (None, false) => self.state.messaging.room_name_exists(self.who, &stripped).await?,
                (None, true) => false,
            };
            if !exists {
                self.say("Channel_doesnt_exist", &param).await;
            }
            let Some(sub) = mine else {
                self.say("error-logged-user-not-in-room", &param).await;
                return Ok(());
            };
            rid = sub.rid;
        }
        if let Err(e) = self.state.messaging.set_open(self.who, &rid, false).await {
            self.say(&e.error_type, "").await;
        }
        Ok(())
    }

    /// Rocket.Chat reports a failed invitation to the caller instead of failing the command.
    async fn report(&self, e: ServiceError) {
        if e.error_type.is_empty() {
            return;
        }
        self.say(&e.error_type, "").await;
    }

    async fn invite(&self) -> ServiceResult<()> {
        let usernames: Vec<String> = self
            .inv
            .params
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|u| u.strip_prefix('@').unwrap_or(u).to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if usernames.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        for name in &usernames {
            if let Some(user) = self.state.auth.find_user(UserSelector::Username(name.clone())).await?
                && user.username == *name
            {
                found.push(user);
            }
        }
        if found.is_empty() {
            self.say("User_doesnt_exist", &usernames.join(" @")).await;
            return Ok(());
        }
        for user in found {
            let selector = UserSelector::Id(user.id.clone());
            if self
                .state
                .messaging
                .is_member(self.who, &self.inv.rid, selector.clone())
                .await
                .unwrap_or(false)
            {
                self.say("Username_is_already_in_here", &user.username).await;
                continue;
            }
            if let Err(e) = self.state.messaging.add_member(self.who, &self.inv.rid, selector).await {
                self.report(e).await;
            }
        }
        Ok(())
    }

    /// `to`: the current room's members into `#room` (created like the current room when
    /// missing); otherwise `#room`'s members into the current room.
    async fn invite_all(&self, to: bool) -> ServiceResult<()> {
        let channel = self.inv.params.trim().replacen('#', "", 1);
        if channel.is_empty() {
            return Ok(());
        }
        let named = self.named_room(&channel, None).await?;
        let (base, target) = if to {
            let current =
                self.current_room().await.ok().map(|r| Named::Found(Box::new(r))).unwrap_or(Named::Missing);
            (current, named)
        } else {
            let current =
                self.current_room().await.ok().map(|r| Named::Found(Box::new(r))).unwrap_or(Named::Missing);
            (named, current)
        };
        let base = match base {
            Named::Found(room) => room,
            Named::Hidden => {
                self.say("Room_not_exist_or_not_permission", "").await;
                return Ok(());
            }
            Named::Missing => {
                self.say("Channel_doesnt_exist", &channel).await;
                return Ok(());
            }
        };
        let limit = self.state.auth.setting_i64("API_User_Limit", 500).await;
        if limit <= 0 {
            return Ok(());
        }
        let page = PageRequest { offset: 0, count: None };
        let members =
            match self.state.messaging.members(self.who, &base.id, MemberFilter::default(), page).await {
                Ok(members) => members,
                Err(e) => {
                    self.report(e).await;
                    return Ok(());
                }
            };
        if i64::try_from(members.total).unwrap_or(i64::MAX) > limit {
            self.say("error-user-limit-exceeded", "").await;
            return Ok(());
        }
        let usernames: Vec<String> = members.items.iter().map(|u| u.username.clone()).collect();
        match target {
            Named::Found(target) => {
                for user in &members.items {
                    let selector = UserSelector::Id(user.id.clone());
                    if let Err(e) = self.state.messaging.add_member(self.who, &target.id, selector).await {
                        self.report(e).await;
                        return Ok(());
                    }
                }
            }
            Named::Hidden | Named::Missing if base.t != RoomType::Direct => {
                let req = CreateRoom {
                    t: Some(base.t),
                    name: channel.clone(),
                    members: usernames,
                    ..Default::default()
                };
                if let Err(e) = self.state.messaging.create_room(self.who, req).await {
                    self.report(e).await;
                    return Ok(());
                }
                self.say("Channel_created", &channel).await;
            }
            Named::Hidden | Named::Missing => {
                self.say("error-invalid-room", "").await;
                return Ok(());
            }
        }
        self.say("Users_added", "").await;
        Ok(())
    }

    async fn join(&self) -> ServiceResult<()> {
        let channel = self.inv.params.trim().replacen('#', "", 1);
        if channel.is_empty() {
            return Ok(());
        }
        let room = match self.named_room(&channel, Some(RoomType::Channel)).await? {
            Named::Found(room) if room.t == RoomType::Channel => room,
            _ => {
                self.say("Channel_doesnt_exist", &channel).await;
                return Ok(());
            }
        };
        if self.state.messaging.subscription(self.who, &room.id).await?.is_some() {
            return Err(ServiceError::invalid(
                "error-user-already-in-room",
                "You are already in the channel",
            ));
        }
        self.state.messaging.join_room(self.who, &room.id, None).await.map(drop)
    }

    async fn kick(&self) -> ServiceResult<()> {
        let username = self.username_param();
        if username.is_empty() {
            return Ok(());
        }
        if !self.user_exists(&username).await? {
            self.say("Username_doesnt_exist", &username).await;
            return Ok(());
        }
        self.state
            .messaging
            .remove_member(self.who, &self.inv.rid, UserSelector::Username(username))
            .await
            .map(drop)
    }

    async fn leave(&self) -> ServiceResult<()> {
        if let Err(e) = self.state.messaging.leave_room(self.who, &self.inv.rid).await {
            self.report(e).await;
        }
        Ok(())
    }

    async fn msg(&self) -> ServiceResult<()> {
        let trimmed = self.inv.params.trim();
        let Some((target, message)) = trimmed.split_once(' ') else {
            self.say("Username_and_message_must_not_be_empty", "").await;
            return Ok(());
        };
        let username = target.replacen('@', "", 1);
        if !self.user_exists(&username).await? {
            self.say("Username_doesnt_exist", target).await;
            return Ok(());
        }
        let room = self.state.messaging.create_direct(self.who, vec![username], false).await?;
        let new = NewMessage { rid: room.id, msg: message.to_owned(), ..Default::default() };
        self.state.messaging.send_message(self.who, new).await.map(drop)
    }

    async fn mute(&self, mute: bool) -> ServiceResult<()> {
        let username = self.username_param();
        if username.is_empty() {
            return Ok(());
        }
        if !self.user_exists(&username).await? {
            self.say("Username_doesnt_exist", &username).await;
            // Rocket.Chat goes on to mute (and fail); unmuting stops here.
            if !mute {
                return Ok(());
            }
        }
        self.state.messaging.set_muted(self.who, &self.inv.rid, UserSelector::Username(username), mute).await
    }

    async fn status(&self) -> ServiceResult<()> {
        if !self.state.auth.setting_bool("Accounts_AllowUserStatusMessageChange", true).await {
            self.say("StatusMessage_Change_Disabled", "").await;
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let me = self.state.auth.me(self.who).await?;
        self.state.presence.set(&me.id, &me.status, None, Some(self.inv.params.clone())).await?;
        self.say("StatusMessage_Changed_Successfully", "").await;
        Ok(())
    }

    async fn topic(&self) -> ServiceResult<()> {
        // Without `edit-room` Rocket.Chat does nothing, silently.
        if !self.may_in_room(&self.inv.rid, "edit-room").await? {
            return Ok(());
        }
        let change = RoomChange::Topic(self.inv.params.clone());
        self.state.messaging.save_room_settings(self.who, &self.inv.rid, vec![change]).await
    }
}

/// Runs a known command for `who`; the caller has checked that the command exists.
pub(crate) async fn run(state: &GatewayState, who: &Principal, inv: Invocation) -> ServiceResult<()> {
    Run { state, who, inv }.run().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn commands_serialize_as_rocket_chat_lists_them() {
        assert_eq!(
            find("leave").unwrap().to_json(),
            json!({"command": "leave", "description": "Leave_the_current_channel",
                   "permission": ["leave-c", "leave-p"], "clientOnly": false, "providesPreview": false})
        );
        assert_eq!(
            find("shrug").unwrap().to_json(),
            json!({"command": "shrug", "params": "your_message_optional", "description": "Slash_Shrug_Description",
                   "clientOnly": true, "providesPreview": false})
        );
        assert!(find("nope").is_none());
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.command).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len(), "one entry per command");
    }

    #[test]
    fn texts_fill_their_argument_and_unknown_keys_read_as_themselves() {
        assert_eq!(text("Channel_doesnt_exist", "x"), "The channel `#x` does not exist.");
        assert_eq!(text("error-something-new", ""), "error-something-new");
    }
}
