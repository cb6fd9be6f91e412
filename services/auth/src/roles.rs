//! Giving and taking roles (`roles.addUserToRole`, `roles.removeUserFromRole`) and listing a
//! role's users (`roles.getUsersInRole`), in Rocket.Chat's order of checks.
//!
//! A role of scope `Users` lives on the user (their principal changes, so their cached tokens
//! are evicted); one of scope `Subscriptions` (owner, moderator, leader) lives on the member's
//! subscription and goes through messaging's room-role path.

use apogee_api::UserSelector;
use apogee_api::events::AllEvent;
use apogee_store::UserFilter;
use apogee_types::{Page, PageRequest, Principal, Role, ServiceError, ServiceResult, User, UserRef};

use crate::service::{Auth, store_error};

fn room_role_without_room() -> ServiceError {
    ServiceError::invalid("error-invalid-arguments", "Invalid arguments")
}

impl Auth {
    /// A role by id, else by name.
    fn role_named(&self, key: &str) -> ServiceResult<Option<Role>> {
        let roles = self.roles.read().map_err(|_| ServiceError::internal("roles lock poisoned"))?;
        Ok(roles.iter().find(|r| r.id == key).or_else(|| roles.iter().find(|r| r.name == key)).cloned())
    }

    /// Whether `user` holds `role` (in room `rid` for a room role).
    async fn holds(
        &self,
        who: &Principal,
        user: &User,
        role: &Role,
        rid: Option<&str>,
    ) -> ServiceResult<bool> {
        if role.scope != "Subscriptions" {
            return Ok(user.roles.contains(&role.id));
        }
        let Some(rid) = rid else { return Ok(false) };
        let messaging = self.messaging.get().ok_or_else(|| ServiceError::internal("messaging not linked"))?;
        let holders = messaging.room_roles(who, rid).await?;
        Ok(holders.iter().any(|s| s.u.id == user.id && s.roles.contains(&role.id)))
    }

    /// `roles-change` for every logged-in socket, when the server shows roles (`UI_DisplayRoles`).
    async fn announce_role_change(&self, change: &str, role: &Role, user: &User, scope: Option<String>) {
        if !self.setting_bool("UI_DisplayRoles") {
            return;
        }
        let event = AllEvent::RoleChange {
            change: change.into(),
            role: role.id.clone(),
            user: UserRef { id: user.id.clone(), username: user.username.clone(), name: None },
            scope,
        };
        self.announce("roles-change", &event).await;
    }

    /// Adds or removes `role` on a user (scope `Users`); evicts their cached principal.
    async fn set_user_role(&self, uid: &str, role: &str, add: bool) -> ServiceResult<()> {
        let role = role.to_owned();
        self.store
            .update_user(
                uid,
                Box::new(move |u| {
                    u.roles.retain(|r| *r != role);
                    if add {
                        u.roles.push(role);
                    }
                    u.updated_at = apogee_types::Millis::now().max(u.updated_at);
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.forget_user_tokens(uid).await;
        Ok(())
    }

    pub(crate) async fn add_user_to_role_impl(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role> {
        let user = self.store.user_by_username(username).await.map_err(store_error)?.ok_or_else(|| {
            ServiceError::invalid(
                "error-invalid-user",
                "The required \"userId\" or \"username\" param provided does not match any users",
            )
        })?;
        if role.is_empty() {
            return Err(ServiceError::failure("error-invalid-role-properties"));
        }
        let role = self
            .role_named(role)?
            .ok_or_else(|| ServiceError::failure_typed("Role not found", "error-role-not-found"))?;
        if self.holds(who, &user, &role, rid.as_deref()).await? {
            return Err(ServiceError::invalid("error-user-already-in-role", "User already in role"));
        }
        if !self.has_permission(&who.roles, "access-permissions") {
            return Err(ServiceError::invalid(
                "error-action-not-allowed",
                "Accessing permissions is not allowed",
            ));
        }
        if role.id == "admin" && !self.has_permission(&who.roles, "assign-admin-role") {
            return Err(ServiceError::invalid("error-action-not-allowed", "Assigning admin is not allowed"));
        }
        if role.scope == "Subscriptions" {
            let rid = rid.ok_or_else(room_role_without_room)?;
            let messaging =
                self.messaging.get().ok_or_else(|| ServiceError::internal("messaging not linked"))?;
            if messaging.find_room(&rid).await?.is_none()
                || !messaging.is_member(who, &rid, UserSelector::Id(user.id.clone())).await.unwrap_or(false)
            {
                return Err(ServiceError::invalid("error-invalid-user", "User is not part of given room"));
            }
            // Messaging announces the room role's change itself (as for `channels.addOwner`).
            messaging.set_room_role(who, &rid, UserSelector::Id(user.id.clone()), &role.id, true).await?;
        } else {
            self.set_user_role(&user.id, &role.id, true).await?;
            self.announce_role_change("added", &role, &user, rid).await;
        }
        Ok(role)
    }

    pub(crate) async fn remove_user_from_role_impl(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role> {
        if !self.has_permission(&who.roles, "access-permissions") {
            return Err(ServiceError::not_allowed("Accessing permissions is not allowed"));
        }
        if role.is_empty() {
            return Err(ServiceError::failure("error-invalid-role-properties"));
        }
        let user = self.store.user_by_username(username).await.map_err(store_error)?.ok_or_else(|| {
            ServiceError::invalid("error-invalid-user", "There is no user with this username")
        })?;
        let role = self
            .role_named(role)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-roleId", "This role does not exist"))?;
        if !self.holds(who, &user, &role, rid.as_deref()).await? {
            return Err(ServiceError::invalid("error-user-not-in-role", "User is not in this role"));
        }
        if role.id == "admin" {
            let filter = UserFilter { roles: vec!["admin".into()], ..Default::default() };
            let admins = self.store.list_users(&filter, PageRequest { offset: 0, count: Some(0) }).await;
            if admins.map_err(store_error)?.total == 1 {
                return Err(ServiceError::invalid(
                    "error-admin-required",
                    "You need to have at least one admin",
                ));
            }
        }
        if role.scope == "Subscriptions" {
            let rid = rid.ok_or_else(room_role_without_room)?;
            let messaging =
                self.messaging.get().ok_or_else(|| ServiceError::internal("messaging not linked"))?;
            messaging.set_room_role(who, &rid, UserSelector::Id(user.id.clone()), &role.id, false).await?;
        } else {
            self.set_user_role(&user.id, &role.id, false).await?;
            self.announce_role_change("removed", &role, &user, rid).await;
        }
        Ok(role)
    }

    pub(crate) async fn users_in_role_impl(
        &self,
        who: &Principal,
        role: &str,
        rid: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        let not_allowed = || ServiceError::not_allowed("Not allowed");
        if !self.has_permission(&who.roles, "access-permissions") {
            return Err(not_allowed());
        }
        if rid.is_some() && !self.has_permission(&who.roles, "view-other-user-channels") {
            return Err(not_allowed());
        }
        let role = self.role_named(role)?.ok_or_else(|| ServiceError::invalid("error-invalid-roleId", ""))?;
        if role.scope != "Subscriptions" {
            let filter = UserFilter { roles: vec![role.id], ..Default::default() };
            return self.store.list_users(&filter, page).await.map_err(store_error);
        }
        let rid = rid.ok_or_else(room_role_without_room)?;
        let messaging = self.messaging.get().ok_or_else(|| ServiceError::internal("messaging not linked"))?;
        let ids: Vec<String> = messaging
            .room_roles(who, &rid)
            .await?
            .into_iter()
            .filter(|s| s.roles.contains(&role.id))
            .map(|s| s.u.id)
            .collect();
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), offset: page.offset, total: 0 });
        }
        let filter = UserFilter { ids, ..Default::default() };
        self.store.list_users(&filter, page).await.map_err(store_error)
    }
}
