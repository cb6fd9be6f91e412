//! Per-user room preferences (favorite, notification settings) and membership questions asked
//! by the `rooms.*` routes.

use apogee_api::events::{AllEvent, all_subject};
use apogee_api::{RoomChange, RoomSelector, UserSelector};
use apogee_store::RoomWrite;
use apogee_types::{ErrorKind, Millis, Principal, Room, RoomType, ServiceError, ServiceResult, Subscription};
use serde_json::Value;

use crate::rooms::system_message;
use crate::service::{Messaging, store_error};

/// The notification preferences `saveNotificationSettings` accepts.
const NOTIFICATION_FIELDS: [&str; 9] = [
    "desktopNotifications",
    "mobilePushNotifications",
    "emailNotifications",
    "unreadAlert",
    "disableNotifications",
    "hideUnreadStatus",
    "hideMentionStatus",
    "muteGroupMentions",
    "audioNotificationValue",
];

/// `findRoomByIdOrName` of Rocket.Chat's `rooms.*` routes names every room a channel.
pub(crate) fn rooms_route_not_found() -> ServiceError {
    ServiceError::invalid(
        "error-room-not-found",
        "The required \"roomId\" or \"roomName\" param provided does not match any channel",
    )
}

fn action_not_allowed(message: &str) -> ServiceError {
    ServiceError::invalid("error-action-not-allowed", message)
}

fn invalid_room() -> ServiceError {
    ServiceError::invalid("error-invalid-room", "Invalid room")
}

/// Whether `change` would leave the room as it is (Rocket.Chat's savers skip those).
fn unchanged(room: &Room, change: &RoomChange) -> bool {
    let same_text = |current: &Option<String>, new: &String| current.as_deref().unwrap_or_default() == new;
    match change {
        RoomChange::Name(n) if room.prid.is_some() => room.fname.as_ref() == Some(n),
        RoomChange::Name(n) => room.name.as_ref() == Some(n),
        RoomChange::Topic(t) => same_text(&room.topic, t),
        RoomChange::Description(t) | RoomChange::Purpose(t) => same_text(&room.description, t),
        RoomChange::Announcement(t) => same_text(&room.announcement, t),
        RoomChange::ReadOnly(ro) => room.ro == *ro,
        RoomChange::Type(t) => room.t == *t,
        RoomChange::Archived(a) => room.archived == *a,
        RoomChange::Featured(f) => room.featured == *f,
        RoomChange::Favorite(f) => room.favorite == *f,
        RoomChange::ReactWhenReadOnly(r) => room.react_when_read_only == *r,
        // A new upload always has a new ETag; removing none is no change.
        RoomChange::Avatar(etag) => room.avatar_etag == *etag,
        RoomChange::Sidepanel(panel) => room.sidepanel == *panel,
        RoomChange::Default(_) | RoomChange::JoinCode(_) | RoomChange::CustomFields(_) => false,
    }
}

/// Rocket.Chat's `isValidSidepanel`: none, or one or two distinct items among `channels` and
/// `discussions`.
fn valid_sidepanel(panel: Option<&serde_json::Value>) -> bool {
    let Some(panel) = panel else { return true };
    let Some(items) = panel.get("items").and_then(serde_json::Value::as_array) else { return false };
    let known = |i: &serde_json::Value| matches!(i.as_str(), Some("channels" | "discussions"));
    let distinct = items.iter().enumerate().all(|(n, i)| !items[..n].contains(i));
    !items.is_empty() && items.iter().all(known) && distinct
}

fn invalid_settings(message: &str) -> ServiceError {
    ServiceError::invalid("error-invalid-settings", message)
}

impl Messaging {
    /// A room by id or name, with no access check (Rocket.Chat's `findRoomByIdOrName`).
    pub(crate) async fn any_room(&self, selector: &RoomSelector) -> ServiceResult<Room> {
        let found = match (&selector.id, &selector.name) {
            (Some(id), _) if !id.is_empty() => self.store.room_by_id(id).await,
            (_, Some(name)) if !name.is_empty() => self.store.room_by_name(name).await,
            _ => {
                return Err(ServiceError::invalid(
                    "error-roomid-param-not-provided",
                    "The parameter \"roomId\" or \"roomName\" is required",
                ));
            }
        }
        .map_err(store_error)?;
        found.ok_or_else(rooms_route_not_found)
    }

    pub(crate) async fn set_favorite_impl(
        &self,
        who: &Principal,
        selector: RoomSelector,
        favorite: bool,
    ) -> ServiceResult<()> {
        let room = self.any_room(&selector).await?;
        let sub = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
        let Some(sub) = sub else {
            return Err(ServiceError::invalid(
                "error-invalid-subscription",
                "You must be part of a room to favorite it",
            ));
        };
        if sub.f == favorite {
            return Ok(());
        }
        let mut write = RoomWrite::new(room.id.clone());
        write.update_subscriptions =
            vec![(who.user_id.clone(), Box::new(move |s: &mut Subscription, _: &Room| s.f = favorite))];
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn save_notification_impl(
        &self,
        who: &Principal,
        rid: &str,
        field: &str,
        value: &str,
    ) -> ServiceResult<()> {
        if !NOTIFICATION_FIELDS.contains(&field) {
            return Err(invalid_settings("Invalid settings field"));
        }
        let origin_field = match field {
            "desktopNotifications" => Some("desktopPrefOrigin"),
            "mobilePushNotifications" => Some("mobilePrefOrigin"),
            "emailNotifications" => Some("emailPrefOrigin"),
            _ => None,
        };
        if origin_field.is_some() && !["all", "mentions", "nothing", "default"].contains(&value) {
            return Err(invalid_settings("Invalid settings value"));
        }
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if sub.is_none() {
            return Err(ServiceError::invalid("error-invalid-subscription", "Invalid subscription"));
        }
        let field = field.to_owned();
        let value = value.to_owned();
        let mut write = RoomWrite::new(rid);
        write.update_subscriptions = vec![(
            who.user_id.clone(),
            Box::new(move |s: &mut Subscription, _: &Room| {
                let prefs = &mut s.notifications;
                match (origin_field, value.as_str()) {
                    // No user preferences yet: `default` falls back to the server's, which
                    // Rocket.Chat stores as no value at all.
                    (Some(origin), "default") => {
                        prefs.remove(&field);
                        prefs.remove(origin);
                    }
                    (Some(origin), _) => {
                        prefs.insert(field.clone(), Value::String(value.clone()));
                        prefs.insert(origin.to_owned(), Value::String("subscription".into()));
                    }
                    (None, _) => {
                        let stored = match field.as_str() {
                            "unreadAlert" | "audioNotificationValue" => Value::String(value.clone()),
                            _ => Value::Bool(value == "1"),
                        };
                        prefs.insert(field.clone(), stored);
                    }
                }
            }),
        )];
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn room_name_exists_impl(&self, _who: &Principal, name: &str) -> ServiceResult<bool> {
        Ok(self.store.room_by_name(name).await.map_err(store_error)?.is_some())
    }

    pub(crate) async fn is_member_impl(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
    ) -> ServiceResult<bool> {
        let room = self.any_room(&RoomSelector::id(rid)).await?;
        let Some(user) = self.auth.find_user(user).await? else {
            return Err(ServiceError::failure("error-user-not-found"));
        };
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::unauthorized());
        }
        Ok(self.store.subscription(&room.id, &user.id).await.map_err(store_error)?.is_some())
    }

    pub(crate) async fn save_room_settings_impl(
        &self,
        who: &Principal,
        rid: &str,
        changes: Vec<RoomChange>,
    ) -> ServiceResult<()> {
        let room = self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(invalid_room)?;
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if !self.has_in_room(who, sub.as_ref(), "edit-room").await? {
            return Err(action_not_allowed("Editing room is not allowed"));
        }
        if room.broadcast && changes.iter().any(|c| matches!(c, RoomChange::ReadOnly(true))) {
            return Err(action_not_allowed(
                "Editing readOnly/reactWhenReadOnly are not allowed for broadcast rooms",
            ));
        }
        for change in &changes {
            match change {
                RoomChange::Type(RoomType::Channel)
                    if room.t != RoomType::Channel && !self.has_global(who, "create-c").await? =>
                {
                    return Err(action_not_allowed(
                        "Changing a private group to a public channel is not allowed",
                    ));
                }
                RoomChange::Type(RoomType::Group)
                    if room.t != RoomType::Group && !self.has_global(who, "create-p").await? =>
                {
                    return Err(action_not_allowed(
                        "Changing a public channel to a private room is not allowed",
                    ));
                }
                RoomChange::Type(RoomType::Direct) => {
                    return Err(invalid_settings("Invalid settings provided"));
                }
                RoomChange::Sidepanel(panel) => {
                    if !room.team_main {
                        return Err(action_not_allowed("Invalid room"));
                    }
                    if !self.has_in_room(who, sub.as_ref(), "edit-team").await? {
                        return Err(action_not_allowed(
                            "You do not have permission to change sidepanel items",
                        ));
                    }
                    if !valid_sidepanel(panel.as_ref()) {
                        return Err(ServiceError::invalid("error-invalid-sidepanel", ""));
                    }
                }
                _ => {}
            }
        }
        for change in changes {
            let current = self.room_by_id(rid).await?;
            if unchanged(&current, &change) {
                continue;
            }
            let avatar = match &change {
                RoomChange::Avatar(etag) => Some(etag.clone()),
                _ => None,
            };
            self.update_room_impl(who, rid, change).await.map_err(|e| {
                if e.kind == ErrorKind::PermissionDenied {
                    action_not_allowed("Editing room is not allowed")
                } else {
                    e
                }
            })?;
            if let Some(etag) = avatar {
                // Every logged-in client, not only members: the avatar shows in directories too.
                let event = AllEvent::Avatar { username: None, rid: Some(rid.to_owned()), etag };
                self.publish(&all_subject("update-avatar"), &event).await;
            }
        }
        Ok(())
    }

    pub(crate) async fn set_muted_impl(
        &self,
        who: &Principal,
        rid: &str,
        user: UserSelector,
        muted: bool,
    ) -> ServiceResult<()> {
        let room = self.store.room_by_id(rid).await.map_err(store_error)?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if !self.has_in_room(who, my_sub.as_ref(), "mute-user").await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let room = room.ok_or_else(invalid_room)?;
        if room.t == RoomType::Direct {
            return Err(ServiceError::invalid(
                "error-invalid-room-type",
                format!("{} is not a valid room type", room.t.as_str()),
            ));
        }
        let Some(target) = self.auth.find_user(user).await? else {
            return Err(ServiceError::invalid(
                "error-invalid-user",
                "The required \"userId\" or \"username\" param provided does not match any users",
            ));
        };
        if self.store.subscription(rid, &target.id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::invalid("error-user-not-in-room", "User is not in this room"));
        }
        let username = target.username.clone();
        let now = Millis::now();
        let kind = if muted { "user-muted" } else { "user-unmuted" };
        let mut write = RoomWrite::new(rid);
        write.messages = vec![system_message(rid, kind, &username, &who.user_ref(), now)];
        write.mutate = Some(Box::new(move |room: &mut Room| {
            let name = username;
            if muted {
                room.unmuted.retain(|u| *u != name);
                if !room.ro && !room.muted.contains(&name) {
                    room.muted.push(name);
                }
            } else {
                room.muted.retain(|u| *u != name);
                if room.ro && !room.unmuted.contains(&name) {
                    room.unmuted.push(name);
                }
            }
            Ok(())
        }));
        self.write_and_mark_read(write, &who.user_id).await?;
        Ok(())
    }
}
