//! Administering users: `users.update`, `users.setActiveStatus`, `users.delete` and
//! `users.checkUsernameAvailability`, with Rocket.Chat's `saveUser` rules.

use apogee_api::UserUpdate;
use apogee_store::UserFilter;
use apogee_types::{Email, Millis, PageRequest, Principal, ServiceError, ServiceResult, User};

use crate::crypto::hash_password;
use crate::service::{Auth, store_error};
use crate::users::{email_is_valid, html_escape, name_chars_are_valid, name_is_valid};

const MAX_BIO_LENGTH: usize = 260;
const MAX_NICKNAME_LENGTH: usize = 120;

fn not_allowed(message: &str) -> ServiceError {
    ServiceError::invalid("error-action-not-allowed", message)
}

fn invalid_user() -> ServiceError {
    ServiceError::invalid(
        "error-invalid-user",
        "The required \"userId\" or \"username\" param provided does not match any users",
    )
}

impl Auth {
    async fn existing_user(&self, user_id: &str) -> ServiceResult<User> {
        self.store.user_by_id(user_id).await.map_err(store_error)?.ok_or_else(invalid_user)
    }

    /// Whether removing `user` from the admins would leave the server without an active admin.
    async fn is_last_admin(&self, user: &User) -> ServiceResult<bool> {
        if !user.active || !user.roles.iter().any(|r| r == "admin") {
            return Ok(false);
        }
        let filter = UserFilter { roles: vec!["admin".into()], active: Some(true), ..Default::default() };
        let admins = self
            .store
            .list_users(&filter, PageRequest { offset: 0, count: Some(2) })
            .await
            .map_err(store_error)?;
        Ok(admins.total <= 1)
    }

    pub(crate) async fn update_user_impl(
        &self,
        who: &Principal,
        user_id: &str,
        update: UserUpdate,
    ) -> ServiceResult<User> {
        let myself = who.user_id == user_id;
        let can = |p: &str| self.has_permission(&who.roles, p);
        if update.name.as_deref().is_some_and(|n| !name_chars_are_valid(n)) {
            return Err(ServiceError::failure("Name contains invalid characters"));
        }
        // validateUserData
        if update.verified == Some(true) && myself {
            return Err(not_allowed("Editing email verification is not allowed"));
        }
        if !myself && !can("edit-other-user-info") {
            return Err(not_allowed("Editing user is not allowed"));
        }
        if let Some(roles) = &update.roles {
            let known: Vec<String> = self
                .roles
                .read()
                .map_err(|_| ServiceError::internal("roles lock poisoned"))?
                .iter()
                .map(|r| r.id.clone())
                .collect();
            if roles.iter().any(|r| !known.contains(r)) {
                return Err(not_allowed("The field Roles consist invalid role id"));
            }
            if roles.iter().any(|r| r == "admin") && !can("assign-admin-role") {
                return Err(not_allowed("Assigning admin is not allowed"));
            }
        }
        if self.setting_bool("Accounts_RequireNameForSignUp") && update.name.as_deref() == Some("") {
            return Err(ServiceError::invalid("error-the-field-is-required", "The field Name is required"));
        }
        if update.username.as_deref() == Some("") {
            return Err(ServiceError::invalid(
                "error-the-field-is-required",
                "The field Username is required",
            ));
        }
        if let Some(username) = &update.username {
            let pattern =
                self.setting("UTF8_User_Names_Validation").and_then(|v| v.as_str().map(str::to_owned));
            if !name_is_valid(pattern.as_deref(), username) {
                return Err(ServiceError::invalid(
                    "error-input-is-not-a-valid-field",
                    format!("{} is not a valid username", html_escape(username)),
                ));
            }
        }
        let user = self.existing_user(user_id).await?;
        // saveUserIdentity: a taken or blocked username cannot be saved.
        if let Some(username) = &update.username
            && *username != user.username
        {
            let taken = self
                .store
                .user_by_username(username)
                .await
                .map_err(store_error)?
                .is_some_and(|other| other.id != user.id);
            if taken || self.username_is_blocked(username) {
                return Err(ServiceError::invalid(
                    "error-could-not-save-identity",
                    "Could not save user identity",
                ));
            }
        }
        if let Some(email) = &update.email {
            if !email_is_valid(email.trim()) {
                return Err(ServiceError::invalid(
                    "error-invalid-email",
                    format!("Invalid email {}", html_escape(email)),
                ));
            }
            let taken = self.store.user_by_email(email.trim()).await.map_err(store_error)?;
            if taken.is_some_and(|other| other.id != user.id) {
                return Err(ServiceError::invalid(
                    "error-field-unavailable",
                    format!("{} is already in use :(", html_escape(email)),
                ));
            }
        }
        // validateUserEditing
        let other_info = can("edit-other-user-info");
        let other_password = can("edit-other-user-password");
        if let Some(roles) = &update.roles {
            let (mut old, mut new) = (user.roles.clone(), roles.clone());
            old.sort();
            new.sort();
            if old != new && !can("assign-roles") {
                return Err(not_allowed("Assign roles is not allowed"));
            }
        }
        if !self.setting_bool("Accounts_AllowUserProfileChange") && !other_info && !other_password {
            return Err(not_allowed("Edit user profile is not allowed"));
        }
        let locked = |setting: &str| !self.setting_bool(setting) && (!other_info || myself);
        if update.username.as_ref().is_some_and(|u| *u != user.username)
            && locked("Accounts_AllowUsernameChange")
        {
            return Err(not_allowed("Edit username is not allowed"));
        }
        if update.status_text.as_ref().is_some_and(|t| *t != user.status_text)
            && locked("Accounts_AllowUserStatusMessageChange")
        {
            return Err(not_allowed("Edit user status is not allowed"));
        }
        if update.name.is_some() && update.name != user.name && locked("Accounts_AllowRealNameChange") {
            return Err(not_allowed("Edit user real name is not allowed"));
        }
        if let (Some(email), Some(current)) = (&update.email, user.emails.first())
            && *email != current.address
            && locked("Accounts_AllowEmailChange")
        {
            return Err(not_allowed("Edit user email is not allowed"));
        }
        if update.password.as_deref().is_some_and(|p| !p.is_empty())
            && !self.setting_bool("Accounts_AllowPasswordChange")
            && (!other_password || myself)
        {
            return Err(not_allowed("Edit user password is not allowed"));
        }
        if update.active == Some(false) && !myself && !can("edit-other-user-active-status") {
            return Err(ServiceError::unauthorized());
        }
        if update.active == Some(false) && self.is_last_admin(&user).await? {
            return Err(not_allowed("Leaving the app without admins is not allowed"));
        }
        if update.active == Some(false) && user.active {
            self.relinquish(&user, update.confirm_relinquish).await?;
        }
        let too_long = |v: &Option<String>, max: usize| {
            v.as_deref().is_some_and(|v| !v.trim().is_empty() && v.chars().count() > max)
        };
        if too_long(&update.bio, MAX_BIO_LENGTH) {
            return Err(ServiceError::invalid(
                "error-bio-size-exceeded",
                format!("Bio size exceeds {MAX_BIO_LENGTH} characters"),
            ));
        }
        if too_long(&update.nickname, MAX_NICKNAME_LENGTH) {
            return Err(ServiceError::invalid(
                "error-nickname-size-exceeded",
                format!("Nickname size exceeds {MAX_NICKNAME_LENGTH} characters"),
            ));
        }
        let password_hash = match update.password.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(password) => Some(hash_password(password, self.cfg.bcrypt_cost).await?),
            None => None,
        };
        if let Some(fields) = &update.custom_fields {
            self.validate_custom_fields(fields)?;
        }
        let deactivated = update.active == Some(false) && user.active;
        let changed = self
            .store
            .update_user(
                user_id,
                Box::new(move |u| {
                    if let Some(username) = update.username {
                        u.username = username.trim().to_owned();
                    }
                    if let Some(name) = update.name {
                        u.name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
                    }
                    if let Some(email) = update.email {
                        let email = email.trim().to_owned();
                        let same = u.emails.first().is_some_and(|e| e.address.eq_ignore_ascii_case(&email));
                        if !same {
                            u.emails = vec![Email { address: email, verified: false }];
                        }
                    }
                    if let Some(verified) = update.verified
                        && let Some(first) = u.emails.first_mut()
                    {
                        first.verified = verified;
                    }
                    if let Some(hash) = password_hash {
                        u.password_bcrypt = Some(hash);
                    }
                    if let Some(roles) = update.roles {
                        u.roles = roles;
                    }
                    if let Some(active) = update.active {
                        u.active = active;
                    }
                    if let Some(require) = update.require_password_change {
                        u.require_password_change = require;
                    }
                    if let Some(text) = update.status_text {
                        u.status_text = text;
                    }
                    if let Some(bio) = update.bio {
                        u.bio = Some(bio).filter(|b| !b.trim().is_empty());
                    }
                    if let Some(nickname) = update.nickname {
                        u.nickname = Some(nickname).filter(|n| !n.trim().is_empty());
                    }
                    if let Some(fields) = update.custom_fields {
                        for (k, v) in fields {
                            u.custom_fields.insert(k, v);
                        }
                    }
                    u.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        if deactivated {
            self.after_deactivation(&changed).await?;
        }
        Ok(changed)
    }

    pub(crate) async fn set_active_status_impl(
        &self,
        who: &Principal,
        user_id: &str,
        active: bool,
        confirm_relinquish: bool,
    ) -> ServiceResult<User> {
        if !self.has_permission(&who.roles, "edit-other-user-active-status")
            && !self.has_permission(&who.roles, "manage-moderation-actions")
        {
            return Err(ServiceError::unauthorized());
        }
        let Some(user) = self.store.user_by_id(user_id).await.map_err(store_error)? else {
            return Err(ServiceError::failure("User not found"));
        };
        if !active && self.is_last_admin(&user).await? {
            return Err(not_allowed("Leaving the app without admins is not allowed"));
        }
        if !active && user.active {
            self.relinquish(&user, confirm_relinquish).await?;
        }
        let changed = self
            .store
            .update_user(
                user_id,
                Box::new(move |u| {
                    u.active = active;
                    u.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        if !active && user.active {
            self.after_deactivation(&changed).await?;
        }
        Ok(changed)
    }

    /// Rooms the user solely owns: refused (`user-last-owner`) or handed over when confirmed.
    async fn relinquish(&self, user: &User, confirm: bool) -> ServiceResult<()> {
        match self.messaging.get() {
            Some(messaging) => messaging.relinquish_ownership(&user.id, confirm).await,
            None => Ok(()),
        }
    }

    /// A deactivated user's login tokens go, as Rocket.Chat's `setUserActiveStatus` does.
    async fn after_deactivation(&self, user: &User) -> ServiceResult<()> {
        self.store.delete_user_login_tokens(&user.id).await.map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn delete_user_impl(
        &self,
        who: &Principal,
        user_id: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()> {
        if !self.has_permission(&who.roles, "delete-user") {
            return Err(ServiceError::unauthorized());
        }
        let user = self.existing_user(user_id).await?;
        self.remove_user(&user, confirm_relinquish).await
    }

    /// Deletes a user: their subscriptions first (through messaging), then the user and tokens.
    pub(crate) async fn remove_user(&self, user: &User, confirm_relinquish: bool) -> ServiceResult<()> {
        if self.is_last_admin(user).await? {
            return Err(not_allowed("Leaving the app without admins is not allowed"));
        }
        self.relinquish(user, confirm_relinquish).await?;
        if let Some(messaging) = self.messaging.get() {
            messaging.remove_user_from_all_rooms(&user.id).await?;
        }
        self.store.delete_user(&user.id).await.map_err(store_error)
    }

    pub(crate) async fn username_available_impl(
        &self,
        who: &Principal,
        username: &str,
    ) -> ServiceResult<bool> {
        if username.is_empty() {
            return Err(ServiceError::invalid("error-invalid-username", "Invalid username"));
        }
        let me = self.store.user_by_id(&who.user_id).await.map_err(store_error)?;
        if me.is_some_and(|u| u.username == username) {
            return Ok(true);
        }
        if !self.setting_bool("Accounts_AllowUsernameChange") {
            return Err(ServiceError::invalid("error-not-allowed", "Not allowed"));
        }
        let pattern = self.setting("UTF8_User_Names_Validation").and_then(|v| v.as_str().map(str::to_owned));
        if !name_is_valid(pattern.as_deref(), username) || self.username_is_blocked(username) {
            return Ok(false);
        }
        Ok(self.store.user_by_username(username).await.map_err(store_error)?.is_none())
    }
}
