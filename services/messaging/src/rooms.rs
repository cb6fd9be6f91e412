//! Creating rooms, membership, and changes to a room's attributes.

use apogee_api::{CreateRoom, RoomChange, RoomListScope, UserSelector};
use apogee_store::{RoomFilter, RoomWrite};
use apogee_types::{
    Message, Millis, Page, PageRequest, Principal, Room, RoomType, ServiceError, ServiceResult, Subscription,
    User, UserRef, random_id,
};
use serde_json::{Map, Value};

use crate::access::{family_word, room_not_found};
use crate::service::{Messaging, store_error};

/// The default channel every new user joins.
pub const GENERAL: &str = "GENERAL";

/// A subscription of `user` to `room`; `display` is what the sidebar shows (the peer in a DM).
pub(crate) fn new_subscription(
    room: &Room,
    user: &UserRef,
    display: (String, Option<String>),
    now: Millis,
) -> Subscription {
    Subscription {
        id: random_id(),
        rid: room.id.clone(),
        u: UserRef { id: user.id.clone(), username: user.username.clone(), name: user.name.clone() },
        t: room.t,
        name: display.0,
        fname: display.1,
        ts: now,
        updated_at: now,
        open: true,
        alert: false,
        user_mentions: 0,
        group_mentions: 0,
        ls: Some(now),
        lr: None,
        f: false,
        roles: vec![],
        archived: room.archived,
        // Joining does not make earlier history unread.
        last_read_seq: room.msgs,
        notifications: Default::default(),
        tunread: vec![],
        tunread_user: vec![],
        tunread_group: vec![],
        ignored: vec![],
        unread: 0,
    }
}

/// Rocket.Chat's `getDefaultSubscriptionPref`: the user's own notification preferences (other
/// than `default`) and highlights, copied into a new subscription and marked as the user's.
pub(crate) fn with_user_prefs(mut sub: Subscription, user: &User) -> Subscription {
    let pref = |key: &str| user.preferences.get(key).and_then(Value::as_str).filter(|v| *v != "default");
    for (key, field, origin) in [
        ("desktopNotifications", "desktopNotifications", "desktopPrefOrigin"),
        ("pushNotifications", "mobilePushNotifications", "mobilePrefOrigin"),
        ("emailNotificationMode", "emailNotifications", "emailPrefOrigin"),
    ] {
        if let Some(value) = pref(key) {
            sub.notifications.insert(field.into(), Value::String(value.to_owned()));
            sub.notifications.insert(origin.into(), Value::String("user".into()));
        }
    }
    if let Some(highlights) = user.preferences.get("highlights").and_then(Value::as_array)
        && !highlights.is_empty()
    {
        sub.notifications.insert("userHighlights".into(), Value::Array(highlights.clone()));
    }
    sub
}

pub(crate) fn room_display(room: &Room) -> (String, Option<String>) {
    let name = room.name.clone().unwrap_or_default();
    (name.clone(), room.fname.clone().or(Some(name)))
}

/// A system message (`uj`, `au`, `r`, …) written by `actor`.
pub(crate) fn system_message(rid: &str, t: &str, msg: &str, actor: &UserRef, now: Millis) -> Message {
    Message {
        id: random_id(),
        rid: rid.to_owned(),
        msg: msg.to_owned(),
        ts: now,
        u: actor.clone(),
        updated_at: now,
        t: Some(t.to_owned()),
        mentions: vec![],
        channels: vec![],
        tmid: None,
        tshow: false,
        groupable: Some(false),
        seq: 0,
        edited_at: None,
        edited_by: None,
        reactions: Default::default(),
        extra: Map::new(),
    }
}

pub(crate) fn user_ref(user: &User) -> UserRef {
    user.user_ref()
}

impl Messaging {
    /// Creates `#general` on an empty store (`_id` `GENERAL`, default, created by rocket.cat).
    pub async fn init(&self) -> ServiceResult<()> {
        if self.store.room_by_id(GENERAL).await.map_err(store_error)?.is_some() {
            return Ok(());
        }
        let creator = UserRef {
            id: "rocket.cat".into(),
            username: "rocket.cat".into(),
            name: Some("Rocket.Cat".into()),
        };
        let mut room = Room::new(
            GENERAL.into(),
            RoomType::Channel,
            Some("general".into()),
            Some(creator),
            Millis::now(),
        );
        room.default = true;
        let mut write = RoomWrite::new(GENERAL);
        write.create = Some(room);
        self.commit(write).await?;
        tracing::info!("created #general");
        Ok(())
    }

    pub(crate) async fn validate_room_name(&self, name: &str) -> ServiceResult<()> {
        let pattern = self.auth.setting_string("UTF8_Channel_Names_Validation").await;
        let special = self.auth.setting_bool("UI_Allow_room_names_with_special_chars", false).await;
        let valid = if special {
            !name.trim().is_empty()
        } else {
            let anchored = |p: &str| regex_lite::Regex::new(&format!("^(?:{p})$")).ok();
            pattern
                .as_deref()
                .and_then(anchored)
                .or_else(|| anchored("[0-9a-zA-Z-_.]+"))
                .is_some_and(|re| re.is_match(name))
        };
        if !valid {
            return Err(ServiceError::invalid(
                "error-invalid-room-name",
                format!("{name} is not a valid room name"),
            )
            .with_details(serde_json::json!({ "channel_name": name })));
        }
        if self.store.room_by_name(name).await.map_err(store_error)?.is_some() {
            return Err(ServiceError::invalid(
                "error-duplicate-channel-name",
                format!("A channel with name '{name}' exists"),
            )
            .with_details(serde_json::json!({ "channel_name": name })));
        }
        Ok(())
    }

    pub(crate) async fn create_room_impl(&self, who: &Principal, req: CreateRoom) -> ServiceResult<Room> {
        let t = req.t.unwrap_or(RoomType::Channel);
        let permission = if t == RoomType::Group { "create-p" } else { "create-c" };
        if !self.has_global(who, permission).await? {
            return Err(ServiceError::unauthorized());
        }
        let name = req.name.trim().to_owned();
        self.validate_room_name(&name).await?;
        let now = Millis::now();
        let creator = who.user_ref();
        let mut room = Room::new(random_id(), t, Some(name), Some(creator.clone()), now);
        room.ro = req.read_only;
        room.topic = req.topic.filter(|t| !t.is_empty());
        room.broadcast = req.broadcast;
        room.encrypted = req.encrypted;
        room.custom_fields = req.custom_fields;
        // Rocket.Chat's `createRoom`: a `teamId` that names no team is dropped.
        let team = match req.team_id.as_deref() {
            Some(id) => self.store.team_by_id(id).await.map_err(store_error)?,
            None => None,
        };
        // Rocket.Chat takes any team here; we ask that the creator be in the team (or may add
        // rooms to any team), so that nobody outside a private team can put rooms in it.
        if let Some(team) = &team {
            let sub = self.store.subscription(&team.room_id, &who.user_id).await.map_err(store_error)?;
            if sub.is_none() && !self.has_in_room(who, None, "add-team-channel").await? {
                return Err(ServiceError::unauthorized());
            }
        }
        room.team_id = team.as_ref().map(|t| t.id.clone());
        let mut members: Vec<UserRef> = Vec::new();
        for username in &req.members {
            if username == &who.username {
                continue;
            }
            if let Some(user) = self.auth.find_user(UserSelector::Username(username.clone())).await?
                && !members.iter().any(|m| m.id == user.id)
            {
                members.push(user_ref(&user));
            }
        }
        let mut subs = Vec::with_capacity(members.len() + 1);
        if !req.exclude_self {
            let mut own = new_subscription(&room, &creator, room_display(&room), now);
            own.roles = vec!["owner".into()];
            subs.push(own);
        }
        for member in &members {
            subs.push(new_subscription(&room, member, room_display(&room), now));
        }
        let mut write = RoomWrite::new(room.id.clone());
        let announce = (t == RoomType::Channel).then(|| room.name.clone().unwrap_or_default());
        write.create = Some(room);
        write.add_subscriptions = subs;
        let outcome = self.commit(write).await?;
        if let (Some(team), Some(name)) = (team, announce) {
            let mut note = RoomWrite::new(team.room_id.clone());
            note.messages = vec![system_message(
                &team.room_id,
                "user-added-room-to-team",
                &name,
                &creator,
                Millis::now(),
            )];
            self.commit(note).await?;
        }
        outcome.room.ok_or_else(|| ServiceError::internal("created room vanished"))
    }

    pub(crate) async fn create_direct_impl(
        &self,
        who: &Principal,
        usernames: Vec<String>,
        exclude_self: bool,
    ) -> ServiceResult<Room> {
        if !self.has_global(who, "create-d").await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let mut users: Vec<User> = Vec::new();
        for username in usernames.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let found = self.auth.find_user(UserSelector::Username(username.to_owned())).await?;
            let user = found.ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))?;
            if !users.iter().any(|u| u.id == user.id) {
                users.push(user);
            }
        }
        if users.is_empty() {
            return Err(ServiceError::invalid("error-invalid-user", "Invalid user"));
        }
        if !exclude_self && !users.iter().any(|u| u.id == who.user_id) {
            let me = self
                .auth
                .find_user(UserSelector::Id(who.user_id.clone()))
                .await?
                .ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))?;
            users.insert(0, me);
        }
        let mut uids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        uids.sort();
        // Rocket.Chat composes a two-person DM's id from both ids; a DM with oneself repeats it.
        let rid = match uids.as_slice() {
            [only] => format!("{only}{only}"),
            [a, b] => format!("{a}{b}"),
            _ => random_id(),
        };
        if let Some(existing) = self.store.room_by_id(&rid).await.map_err(store_error)? {
            if let Some(sub) = self.store.subscription(&rid, &who.user_id).await.map_err(store_error)?
                && !sub.open
            {
                self.set_open_impl(who, &rid, true).await?;
            }
            return Ok(existing);
        }
        let now = Millis::now();
        let mut room = Room::new(rid.clone(), RoomType::Direct, None, None, now);
        room.uids = uids;
        // Rocket.Chat orders the members by display name, for `usernames` and each view's names.
        let mut by_name: Vec<&User> = users.iter().collect();
        by_name.sort_by_cached_key(|u| crate::users::display_key(u));
        room.usernames = by_name.iter().map(|u| u.username.clone()).collect();
        let subs = users
            .iter()
            .map(|user| {
                let others: Vec<&User> = by_name.iter().copied().filter(|o| o.id != user.id).collect();
                let display = if others.is_empty() {
                    (user.username.clone(), user.name.clone())
                } else {
                    (
                        others.iter().map(|o| o.username.as_str()).collect::<Vec<_>>().join(", "),
                        Some(
                            others
                                .iter()
                                .map(|o| o.name.clone().unwrap_or_else(|| o.username.clone()))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                    )
                };
                with_user_prefs(new_subscription(&room, &user_ref(user), display, now), user)
            })
            .collect();
        let mut write = RoomWrite::new(rid);
        write.create = Some(room);
        write.add_subscriptions = subs;
        let outcome = self.commit(write).await?;
        outcome.room.ok_or_else(|| ServiceError::internal("created room vanished"))
    }

    pub(crate) async fn list_rooms_impl(
        &self,
        who: &Principal,
        scope: RoomListScope,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        match scope {
            RoomListScope::Public => {
                if !self.has_global(who, "view-c-room").await? {
                    return Err(ServiceError::unauthorized());
                }
                let filter = RoomFilter { types: vec![RoomType::Channel], text, default_only: false };
                self.store.list_rooms(&filter, page).await.map_err(store_error)
            }
            RoomListScope::Joined(types) => {
                self.store.rooms_of_user(&who.user_id, &types, page).await.map_err(store_error)
            }
            RoomListScope::All(types) => {
                if !self.has_global(who, "view-room-administration").await? {
                    return Err(ServiceError::unauthorized());
                }
                let filter = RoomFilter { types, text, default_only: false };
                self.store.list_rooms(&filter, page).await.map_err(store_error)
            }
        }
    }

    pub(crate) async fn join_room_impl(
        &self,
        who: &Principal,
        rid: &str,
        join_code: Option<String>,
    ) -> ServiceResult<Room> {
        let room = self.room_by_id(rid).await?;
        if room.t != RoomType::Channel {
            return Err(room_not_found(Some(RoomType::Channel)));
        }
        if self.store.subscription(rid, &who.user_id).await.map_err(store_error)?.is_some() {
            return Ok(room);
        }
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        if room.archived {
            return Err(ServiceError::invalid("error-room-archived", "The room is archived"));
        }
        if let Some(code) = &room.join_code {
            let bypass = self.has_global(who, "join-without-join-code").await?;
            match join_code.as_deref().filter(|c| !c.is_empty()) {
                _ if bypass => {}
                None => return Err(ServiceError::invalid("error-code-required", "Code required")),
                Some(given) if given != code => {
                    return Err(ServiceError::invalid("error-code-invalid", "Invalid code"));
                }
                Some(_) => {}
            }
        }
        let now = Millis::now();
        let me = who.user_ref();
        let mut write = RoomWrite::new(rid);
        write.add_subscriptions = vec![new_subscription(&room, &me, room_display(&room), now)];
        write.messages = vec![system_message(rid, "uj", &who.username, &me, now)];
        let joined = self.write_and_mark_read(write, &who.user_id).await?;
        if let Some(user) = self.auth.find_user(UserSelector::Id(who.user_id.clone())).await? {
            self.joined_team_room(&joined, &user, who).await?;
        }
        Ok(joined)
    }

    /// Writes, marking the room read for `reader` (who just caused the write) in the same commit.
    pub(crate) async fn write_and_mark_read(
        &self,
        mut write: RoomWrite,
        reader: &str,
    ) -> ServiceResult<Room> {
        write.update_subscriptions.push((
            reader.to_owned(),
            Box::new(|sub: &mut Subscription, room: &Room| {
                sub.last_read_seq = room.msgs;
            }),
        ));
        let outcome = self.commit(write).await?;
        outcome.room.ok_or_else(|| ServiceError::internal("room vanished during write"))
    }

    pub(crate) async fn leave_room_impl(&self, who: &Principal, rid: &str) -> ServiceResult<Room> {
        let room = self.room_by_id(rid).await?;
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        // Rocket.Chat's order: the room type, then `leave-c`/`leave-p`, then membership.
        let permission = match room.t {
            RoomType::Channel => "leave-c",
            RoomType::Group => "leave-p",
            RoomType::Direct => return Err(ServiceError::not_allowed("Not allowed")),
        };
        if !self.has_in_room(who, sub.as_ref(), permission).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let Some(sub) = sub else {
            return Err(ServiceError::invalid("error-user-not-in-room", "You are not in this room"));
        };
        if sub.roles.iter().any(|r| r == "owner") && self.owner_count(rid).await? == 1 {
            return Err(ServiceError::invalid(
                "error-you-are-last-owner",
                "You are the last owner. Please set new owner before leaving the room.",
            ));
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        write.remove_subscriptions = vec![who.user_id.clone()];
        write.messages = vec![system_message(rid, "ul", &who.username, &who.user_ref(), now)];
        let outcome = self.commit(write).await?;
        self.left_team_room(&room, &who.user_id).await?;
        outcome.room.ok_or_else(|| ServiceError::internal("room vanished during write"))
    }

    async fn owner_count(&self, rid: &str) -> ServiceResult<usize> {
        let members = self
            .store
            .subscriptions_of_room(rid, PageRequest { offset: 0, count: None })
            .await
            .map_err(store_error)?;
        Ok(members.items.iter().filter(|s| s.roles.iter().any(|r| r == "owner")).count())
    }

    async fn target_user(&self, selector: UserSelector) -> ServiceResult<User> {
        self.auth.find_user(selector).await?.ok_or_else(|| {
            ServiceError::invalid(
                "error-invalid-user",
                "The required \"userId\" or \"username\" param provided does not match any users",
            )
        })
    }

    pub(crate) async fn add_member_impl(
        &self,
        who: &Principal,
        rid: &str,
        selector: UserSelector,
    ) -> ServiceResult<Room> {
        let room = self.room_by_id(rid).await?;
        let target = self.target_user(selector).await?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        let any_room = match room.t {
            RoomType::Channel => "add-user-to-any-c-room",
            RoomType::Group => "add-user-to-any-p-room",
            RoomType::Direct => return Err(ServiceError::not_allowed("Not allowed")),
        };
        let allowed = self.has_in_room(who, my_sub.as_ref(), any_room).await?
            || (my_sub.is_some()
                && self.has_in_room(who, my_sub.as_ref(), "add-user-to-joined-room").await?);
        if !allowed {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        if room.archived {
            return Err(ServiceError::invalid("error-room-archived", "The room is archived"));
        }
        if self.store.subscription(rid, &target.id).await.map_err(store_error)?.is_some() {
            return Ok(room);
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        write.add_subscriptions = vec![with_user_prefs(
            new_subscription(&room, &target.user_ref(), room_display(&room), now),
            &target,
        )];
        write.messages = vec![system_message(rid, "au", &target.username, &who.user_ref(), now)];
        let joined = self.write_and_mark_read(write, &who.user_id).await?;
        self.joined_team_room(&joined, &target, who).await?;
        Ok(joined)
    }

    /// Rocket.Chat's `addAllUserToRoom`: the global `add-all-to-room`, then at most
    /// `API_User_Limit` users, then the room. Each user not yet in the room gets a subscription
    /// (open, alerted, one mention, as Rocket.Chat seeds it) and a `uj` message of their own, all
    /// in one write. Unlike `add_member`, no team membership follows, as in Rocket.Chat.
    pub(crate) async fn add_all_users_impl(
        &self,
        who: &Principal,
        rid: &str,
        active_only: bool,
    ) -> ServiceResult<Room> {
        let method = serde_json::json!({ "method": "addAllToRoom" });
        if !self.has_global(who, "add-all-to-room").await? {
            return Err(ServiceError::invalid("403", "Access to Method Forbidden").with_details(method));
        }
        let limit = u64::try_from(self.auth.setting_i64("API_User_Limit", 500).await).unwrap_or(0);
        let page = PageRequest { offset: 0, count: Some(limit.saturating_add(1)) };
        let users = self.auth.all_users(active_only, page).await?;
        if users.total > limit {
            return Err(ServiceError::invalid("error-user-limit-exceeded", "User Limit Exceeded")
                .with_details(method));
        }
        let room = self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(|| {
            ServiceError::invalid("error-invalid-room", "Invalid room").with_details(method)
        })?;
        let all = PageRequest { offset: 0, count: None };
        let members = self.store.subscriptions_of_room(rid, all).await.map_err(store_error)?;
        let members: std::collections::HashSet<&str> =
            members.items.iter().map(|s| s.u.id.as_str()).collect();
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        for user in users.items.iter().filter(|u| !members.contains(u.id.as_str())) {
            let mut sub =
                with_user_prefs(new_subscription(&room, &user.user_ref(), room_display(&room), now), user);
            sub.alert = true;
            sub.user_mentions = 1;
            sub.ls = None;
            write.add_subscriptions.push(sub);
            write.messages.push(system_message(rid, "uj", &user.username, &user.user_ref(), now));
        }
        if write.add_subscriptions.is_empty() {
            return Ok(room);
        }
        let outcome = self.commit(write).await?;
        outcome.room.ok_or_else(|| ServiceError::internal("room vanished during write"))
    }

    pub(crate) async fn remove_member_impl(
        &self,
        who: &Principal,
        rid: &str,
        selector: UserSelector,
    ) -> ServiceResult<Room> {
        let room = self.room_by_id(rid).await?;
        // The REST routes look the user up before calling the method.
        let target = self.target_user(selector).await?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        // Rocket.Chat's `removeUserFromRoom`: `remove-user` (room-scoped) always; the global
        // `kick-user-from-any-*-room` only waives access to the room and the target's membership.
        if !self.has_in_room(who, my_sub.as_ref(), "remove-user").await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let kick_any = match room.t {
            RoomType::Channel => "kick-user-from-any-c-room",
            RoomType::Group => "kick-user-from-any-p-room",
            RoomType::Direct => return Err(ServiceError::not_allowed("Not allowed")),
        };
        let can_kick_any = self.has_global(who, kick_any).await?;
        if !can_kick_any && !self.can_read(who, &room).await? {
            return Err(ServiceError::invalid(
                "error-room-not-found",
                "The required \"roomId\" or \"roomName\" param provided does not match any group",
            ));
        }
        let target_sub = self.store.subscription(rid, &target.id).await.map_err(store_error)?;
        let Some(target_sub) = target_sub else {
            if can_kick_any {
                // Rocket.Chat's `removeUserFromRoom` acts only on a subscription: nothing to
                // remove, no system message.
                return Ok(room);
            }
            return Err(ServiceError::invalid("error-user-not-in-room", "User is not in this room"));
        };
        if target_sub.roles.iter().any(|r| r == "owner") && self.owner_count(rid).await? == 1 {
            return Err(ServiceError::invalid(
                "error-you-are-last-owner",
                "This is the last owner. Please set a new owner before removing this one.",
            ));
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        write.remove_subscriptions = vec![target.id.clone()];
        write.messages = vec![system_message(rid, "ru", &target.username, &who.user_ref(), now)];
        let left = self.write_and_mark_read(write, &who.user_id).await?;
        self.left_team_room(&room, &target.id).await?;
        Ok(left)
    }

    pub(crate) async fn update_room_impl(
        &self,
        who: &Principal,
        rid: &str,
        change: RoomChange,
    ) -> ServiceResult<Room> {
        let room = self.room_by_id(rid).await?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        let permission = match &change {
            RoomChange::Archived(true) => "archive-room",
            RoomChange::Archived(false) => "unarchive-room",
            RoomChange::ReadOnly(_) => "set-readonly",
            RoomChange::Type(RoomType::Channel) => "create-c",
            RoomChange::Type(_) => "create-p",
            _ => "edit-room",
        };
        if !self.has_in_room(who, my_sub.as_ref(), permission).await? {
            return Err(ServiceError::unauthorized());
        }
        let word = family_word(room.t);
        let display = room.name.clone().unwrap_or_default();
        match &change {
            RoomChange::Archived(true) if room.archived => {
                return Err(ServiceError::invalid(
                    "error-room-archived",
                    format!("The {word}, {display}, is already archived"),
                ));
            }
            RoomChange::Archived(false) if !room.archived => {
                return Err(ServiceError::invalid(
                    "error-room-not-archived",
                    format!("The {word}, {display}, is not archived"),
                ));
            }
            RoomChange::Name(name) => {
                if room.t == RoomType::Direct {
                    return Err(ServiceError::not_allowed("Not allowed"));
                }
                // A discussion's name is only its display name (`fname`): any text goes.
                if room.prid.is_none() && room.name.as_deref() != Some(name.as_str()) {
                    self.validate_room_name(name).await?;
                }
            }
            _ => {}
        }
        if room.archived && !matches!(change, RoomChange::Archived(_)) {
            return Err(ServiceError::invalid(
                "error-room-archived",
                format!("The {word}, {display}, is archived"),
            ));
        }
        let now = Millis::now();
        let me = who.user_ref();
        let discussion = room.prid.is_some();
        let mut write = RoomWrite::new(rid);
        let system = |t: &str, msg: &str| system_message(rid, t, msg, &me, now);
        match change.clone() {
            RoomChange::Topic(topic) => write.messages.push(system("room_changed_topic", &topic)),
            RoomChange::Description(text) | RoomChange::Purpose(text) => {
                write.messages.push(system("room_changed_description", &text));
            }
            RoomChange::Announcement(text) => write.messages.push(system("room_changed_announcement", &text)),
            RoomChange::Name(name) => {
                write.messages.push(system("r", &name));
                let members = self
                    .store
                    .subscriptions_of_room(rid, PageRequest { offset: 0, count: None })
                    .await
                    .map_err(store_error)?;
                for sub in members.items {
                    let name = name.clone();
                    write.update_subscriptions.push((
                        sub.u.id.clone(),
                        Box::new(move |s: &mut Subscription, _: &Room| {
                            if !discussion {
                                s.name = name.clone();
                            }
                            s.fname = Some(name);
                        }),
                    ));
                }
            }
            RoomChange::Archived(archived) => {
                write
                    .messages
                    .push(system(if archived { "room-archived" } else { "room-unarchived" }, &who.username));
                let members = self
                    .store
                    .subscriptions_of_room(rid, PageRequest { offset: 0, count: None })
                    .await
                    .map_err(store_error)?;
                for sub in members.items {
                    write.update_subscriptions.push((
                        sub.u.id.clone(),
                        Box::new(move |s: &mut Subscription, _: &Room| {
                            s.archived = archived;
                            s.open = !archived;
                        }),
                    ));
                }
            }
            RoomChange::ReadOnly(ro) => {
                write.messages.push(system(
                    if ro { "room-set-read-only" } else { "room-removed-read-only" },
                    &who.username,
                ));
            }
            RoomChange::Type(t) => {
                let privacy = if t == RoomType::Group { "private" } else { "public" };
                write.messages.push(system("room_changed_privacy", privacy));
                let members = self
                    .store
                    .subscriptions_of_room(rid, PageRequest { offset: 0, count: None })
                    .await
                    .map_err(store_error)?;
                for sub in members.items {
                    write
                        .update_subscriptions
                        .push((sub.u.id.clone(), Box::new(move |s: &mut Subscription, _: &Room| s.t = t)));
                }
            }
            RoomChange::Avatar(_) => write.messages.push(system("room_changed_avatar", "")),
            RoomChange::Default(_)
            | RoomChange::JoinCode(_)
            | RoomChange::CustomFields(_)
            | RoomChange::Featured(_)
            | RoomChange::Favorite(_)
            | RoomChange::Sidepanel(_)
            | RoomChange::ReactWhenReadOnly(_) => {}
        }
        write.mutate = Some(Box::new(move |room: &mut Room| {
            match change {
                RoomChange::Topic(t) => room.topic = Some(t),
                RoomChange::Description(t) | RoomChange::Purpose(t) => room.description = Some(t),
                RoomChange::Announcement(t) => room.announcement = Some(t),
                RoomChange::Name(n) if discussion => room.fname = Some(n),
                RoomChange::Name(n) => {
                    room.fname = Some(n.clone());
                    room.name = Some(n);
                }
                RoomChange::Archived(a) => room.archived = a,
                RoomChange::ReadOnly(ro) => room.ro = ro,
                RoomChange::Default(d) => room.default = d,
                RoomChange::JoinCode(code) => room.join_code = Some(code).filter(|c| !c.is_empty()),
                RoomChange::CustomFields(fields) => room.custom_fields = fields,
                RoomChange::Type(t) => room.t = t,
                RoomChange::Featured(f) => room.featured = f,
                RoomChange::Favorite(f) => room.favorite = f,
                RoomChange::ReactWhenReadOnly(r) => room.react_when_read_only = r,
                RoomChange::Avatar(etag) => room.avatar_etag = etag,
                RoomChange::Sidepanel(panel) => room.sidepanel = panel,
            }
            Ok(())
        }));
        self.write_and_mark_read(write, &who.user_id).await
    }

    pub(crate) async fn set_open_impl(&self, who: &Principal, rid: &str, open: bool) -> ServiceResult<()> {
        let room = self.room_by_id(rid).await?;
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        let word = family_word(room.t);
        let display = room.name.clone().unwrap_or_else(|| room.id.clone());
        // Rocket.Chat's `im.open`/`im.close` differ from the channel and group routes: access is
        // checked first, opening an open DM is fine, and the texts name no room.
        let direct = room.t == RoomType::Direct;
        if direct && !self.can_read(who, &room).await? {
            return Err(ServiceError::unauthorized());
        }
        let Some(sub) = sub else {
            return Err(ServiceError::failure(if direct {
                "The user is not subscribed to the room".to_owned()
            } else {
                format!("The user/callee is not in the {word} \"{display}\".")
            }));
        };
        if sub.open == open {
            return match (direct, open) {
                (true, true) => Ok(()),
                (true, false) => {
                    Err(ServiceError::failure("The direct message room, is already closed to the sender"))
                }
                (false, _) => {
                    let state = if open { "open" } else { "closed" };
                    Err(ServiceError::failure(format!(
                        "The {word}, {display}, is already {state} to the sender"
                    )))
                }
            };
        }
        let mut write = RoomWrite::new(rid);
        write.update_subscriptions =
            vec![(who.user_id.clone(), Box::new(move |s: &mut Subscription, _: &Room| s.open = open))];
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn delete_room_impl(&self, who: &Principal, rid: &str) -> ServiceResult<()> {
        let room = self.room_by_id(rid).await?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        let permission = match room.t {
            RoomType::Channel => "delete-c",
            RoomType::Group => "delete-p",
            RoomType::Direct => "delete-d",
        };
        let allowed = self.has_in_room(who, my_sub.as_ref(), permission).await?
            || (room.t == RoomType::Direct && self.has_global(who, "view-room-administration").await?);
        if !allowed {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let mut write = RoomWrite::new(rid);
        write.delete = true;
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn join_default_rooms_impl(&self, user: &User, silent: bool) -> ServiceResult<()> {
        let filter = RoomFilter { default_only: true, ..Default::default() };
        let defaults = self
            .store
            .list_rooms(&filter, PageRequest { offset: 0, count: None })
            .await
            .map_err(store_error)?;
        // Rocket.Chat's `getDefaultChannels`: a default team brings its auto-join rooms along.
        let mut rooms = defaults.items;
        let teams: Vec<String> =
            rooms.iter().filter(|r| r.team_main).filter_map(|r| r.team_id.clone()).collect();
        for team_id in teams {
            for room in self.store.rooms_of_team(&team_id).await.map_err(store_error)? {
                if room.team_default && !rooms.iter().any(|r| r.id == room.id) {
                    rooms.push(room);
                }
            }
        }
        let now = Millis::now();
        for room in rooms {
            if self.store.subscription(&room.id, &user.id).await.map_err(store_error)?.is_some() {
                continue;
            }
            let mut write = RoomWrite::new(room.id.clone());
            write.add_subscriptions = vec![with_user_prefs(
                new_subscription(&room, &user.user_ref(), room_display(&room), now),
                user,
            )];
            if !silent {
                write.messages = vec![system_message(&room.id, "uj", &user.username, &user.user_ref(), now)];
            }
            self.commit(write).await?;
        }
        Ok(())
    }
}
