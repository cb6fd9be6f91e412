//! Room roles: owners, moderators and leaders, kept on members' subscriptions.

use apogee_api::UserSelector;
use apogee_api::events::{AllEvent, all_subject};
use apogee_store::RoomWrite;
use apogee_types::{
    Millis, PageRequest, Principal, Room, ServiceError, ServiceResult, Subscription, UserRef,
};
use serde_json::Value;

use crate::rooms::system_message;
use crate::service::{Messaging, store_error};

/// A Rocket.Chat error: code and reason.
type Refusal = (&'static str, &'static str);

/// The permission, and the errors for "already has it" and "does not have it", per role.
fn role_rules(role: &str) -> Option<(&'static str, Refusal, Refusal)> {
    match role {
        "owner" => Some((
            "set-owner",
            ("error-user-already-owner", "User is already an owner"),
            ("error-user-not-owner", "User is not an owner"),
        )),
        "moderator" => Some((
            "set-moderator",
            ("error-user-already-moderator", "User is already a moderator"),
            ("error-user-not-moderator", "User is not a moderator"),
        )),
        "leader" => Some((
            "set-leader",
            ("error-user-already-leader", "User is already a leader"),
            ("error-user-not-leader", "User is not a leader"),
        )),
        _ => None,
    }
}

impl Messaging {
    pub(crate) async fn set_room_role_impl(
        &self,
        who: &Principal,
        rid: &str,
        selector: UserSelector,
        role: &str,
        add: bool,
    ) -> ServiceResult<()> {
        let (permission, already, lacking) =
            role_rules(role).ok_or_else(|| ServiceError::invalid("error-invalid-role", "Invalid role"))?;
        let room = self.room_by_id(rid).await?;
        let my_sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if !self.has_in_room(who, my_sub.as_ref(), permission).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let target = self
            .auth
            .find_user(selector)
            .await?
            .ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))?;
        let Some(sub) = self.store.subscription(rid, &target.id).await.map_err(store_error)? else {
            return Err(ServiceError::invalid("error-user-not-in-room", "User is not in this room"));
        };
        let has = sub.roles.iter().any(|r| r == role);
        match (add, has) {
            (true, true) => return Err(ServiceError::invalid(already.0, already.1)),
            (false, false) => return Err(ServiceError::invalid(lacking.0, lacking.1)),
            _ => {}
        }
        if !add && role == "owner" && self.owners(&room).await? <= 1 {
            return Err(ServiceError::invalid(
                "error-remove-last-owner",
                "This is the last owner. Please set a new owner before removing this one.",
            ));
        }
        let mut message = system_message(
            rid,
            if add { "subscription-role-added" } else { "subscription-role-removed" },
            &target.username,
            &who.user_ref(),
            Millis::now(),
        );
        message.extra.insert("role".into(), Value::from(role));
        let role_id = role.to_owned();
        let role = role.to_owned();
        let mut write = RoomWrite::new(rid);
        write.messages = vec![message];
        write.update_subscriptions = vec![(
            target.id.clone(),
            Box::new(move |s: &mut Subscription, _: &Room| {
                if add {
                    s.roles.push(role);
                } else {
                    s.roles.retain(|r| *r != role);
                }
            }),
        )];
        self.commit(write).await?;
        // `roles-change` for every logged-in socket, as Rocket.Chat's `user.roleUpdate`.
        if self.auth.setting_bool("UI_DisplayRoles", true).await {
            let event = AllEvent::RoleChange {
                change: if add { "added" } else { "removed" }.into(),
                role: role_id,
                user: UserRef {
                    id: target.id.clone(),
                    username: target.username.clone(),
                    name: target.name.clone(),
                },
                scope: Some(rid.to_owned()),
            };
            self.publish(&all_subject("roles-change"), &event).await;
        }
        Ok(())
    }

    async fn owners(&self, room: &Room) -> ServiceResult<usize> {
        let all = PageRequest { offset: 0, count: None };
        let members = self.store.subscriptions_of_room(&room.id, all).await.map_err(store_error)?;
        Ok(members.items.iter().filter(|s| s.roles.iter().any(|r| r == "owner")).count())
    }
}
