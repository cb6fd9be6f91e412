//! Finding rooms and deciding who may do what in them (Rocket.Chat's `canAccessRoom` and
//! room-scoped `hasPermission`).

use apogee_api::RoomSelector;
use apogee_types::{Principal, Room, RoomType, ServiceError, ServiceResult, Subscription};

use crate::service::{Messaging, store_error};

/// How Rocket.Chat's messages name a room family.
pub(crate) fn family_word(t: RoomType) -> &'static str {
    match t {
        RoomType::Channel => "channel",
        RoomType::Group => "private group",
        RoomType::Direct => "direct message",
    }
}

pub(crate) fn room_not_found(family: Option<RoomType>) -> ServiceError {
    let message = match family {
        Some(RoomType::Channel) => {
            "The required \"roomId\" or \"roomName\" param provided does not match any channel".to_owned()
        }
        Some(RoomType::Group) => {
            "The required \"roomId\" or \"roomName\" param provided does not match any group".to_owned()
        }
        Some(RoomType::Direct) => {
            "The required \"roomId\" or \"username\" param provided does not match any direct message"
                .to_owned()
        }
        None => "The required \"roomId\" or \"roomName\" param provided does not match any room".to_owned(),
    };
    ServiceError::not_found("error-room-not-found", message)
}

impl Messaging {
    pub(crate) async fn room_by_id(&self, rid: &str) -> ServiceResult<Room> {
        self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(|| room_not_found(None))
    }

    /// Resolves a selector within its family. Private groups the caller is not a member of are
    /// reported as not found, as Rocket.Chat does; DM routes check access afterwards (403).
    pub(crate) async fn find_room(&self, who: &Principal, selector: &RoomSelector) -> ServiceResult<Room> {
        let found = match (&selector.id, &selector.name) {
            (Some(id), _) if !id.is_empty() => self.store.room_by_id(id).await,
            (_, Some(name)) if !name.is_empty() => {
                self.store.room_by_name(name.strip_prefix('#').unwrap_or(name)).await
            }
            _ => {
                return Err(ServiceError::invalid(
                    "error-room-param-not-provided",
                    "The parameter \"roomId\" or \"roomName\" is required",
                ));
            }
        }
        .map_err(store_error)?;
        let room = found.ok_or_else(|| room_not_found(selector.family))?;
        if selector.family.is_some_and(|f| f != room.t) {
            return Err(room_not_found(selector.family));
        }
        if room.t == RoomType::Group && selector.family.is_some() {
            let member = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
            if member.is_none() && !self.has_global(who, "view-room-administration").await? {
                return Err(room_not_found(selector.family));
            }
        }
        Ok(room)
    }

    pub(crate) async fn has_global(&self, who: &Principal, permission: &str) -> ServiceResult<bool> {
        self.auth.roles_have_permission(&who.roles, permission).await
    }

    /// The caller's roles in a room: their user roles plus their subscription roles.
    pub(crate) fn room_roles(who: &Principal, sub: Option<&Subscription>) -> Vec<String> {
        let mut roles = who.roles.clone();
        if let Some(sub) = sub {
            roles.extend(sub.roles.iter().cloned());
        }
        roles
    }

    pub(crate) async fn has_in_room(
        &self,
        who: &Principal,
        sub: Option<&Subscription>,
        permission: &str,
    ) -> ServiceResult<bool> {
        self.auth.roles_have_permission(&Self::room_roles(who, sub), permission).await
    }

    /// Whether the room exists and the caller may read it.
    pub(crate) async fn can_read_id(&self, who: &Principal, rid: &str) -> ServiceResult<bool> {
        match self.store.room_by_id(rid).await.map_err(store_error)? {
            Some(room) => self.can_read(who, &room).await,
            None => Ok(false),
        }
    }

    /// Whether the caller may read the room: members always; public channels with `view-c-room`.
    pub(crate) async fn can_read(&self, who: &Principal, room: &Room) -> ServiceResult<bool> {
        if room.t == RoomType::Channel && self.has_global(who, "view-c-room").await? {
            return Ok(true);
        }
        if room.t == RoomType::Direct && room.uids.contains(&who.user_id) {
            return Ok(true);
        }
        Ok(self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?.is_some())
    }

    pub(crate) async fn ensure_can_read(&self, who: &Principal, room: &Room) -> ServiceResult<()> {
        if self.can_read(who, room).await? { Ok(()) } else { Err(ServiceError::unauthorized()) }
    }
}
