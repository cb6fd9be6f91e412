//! A user's own account: `users.updateOwnBasicInfo`, `users.deleteOwnAccount`, `users.logout`,
//! `users.setPreferences`, `users.autocomplete`.

use apogee_api::{OwnProfileUpdate, UserStatusQuery};
use apogee_store::UserFilter;
use apogee_types::{Email, Millis, Page, PageRequest, Principal, ServiceError, ServiceResult, User};
use serde_json::{Map, Value};

use crate::crypto::{hash_password, password_digest, verify_password};
use crate::service::{Auth, store_error};
use crate::users::{email_is_valid, html_escape, name_chars_are_valid, name_is_valid};

const MAX_BIO_LENGTH: usize = 260;
const MAX_NICKNAME_LENGTH: usize = 120;

fn invalid_user() -> ServiceError {
    ServiceError::invalid("error-invalid-user", "Invalid user")
}

fn could_not_save_identity() -> ServiceError {
    ServiceError::invalid("error-could-not-save-identity", "Could not save user identity")
}

impl Auth {
    pub(crate) async fn password_matches(&self, user: &User, digest: &str) -> ServiceResult<bool> {
        match user.password_bcrypt.as_deref().filter(|h| !h.trim().is_empty()) {
            Some(hash) => verify_password(digest.trim().to_lowercase(), hash).await,
            None => Ok(false),
        }
    }

    pub(crate) async fn update_own_profile_impl(
        &self,
        who: &Principal,
        update: OwnProfileUpdate,
    ) -> ServiceResult<User> {
        if update.name.as_deref().is_some_and(|n| !name_chars_are_valid(n)) {
            return Err(ServiceError::failure("Name contains invalid characters"));
        }
        if !self.setting_bool("Accounts_AllowUserProfileChange") {
            return Err(ServiceError::invalid("error-not-allowed", "Not allowed"));
        }
        let user =
            self.store.user_by_id(&who.user_id).await.map_err(store_error)?.ok_or_else(invalid_user)?;
        let not_allowed = |m: &str| ServiceError::invalid("error-action-not-allowed", m);
        let username_changes = update.username.as_ref().is_some_and(|u| *u != user.username);
        let email_changes = update
            .email
            .as_ref()
            .is_some_and(|e| user.emails.first().is_none_or(|current| current.address != *e));
        if username_changes && !self.setting_bool("Accounts_AllowUsernameChange") {
            return Err(not_allowed("Edit username is not allowed"));
        }
        if update.status_text.as_ref().is_some_and(|t| *t != user.status_text)
            && !self.setting_bool("Accounts_AllowUserStatusMessageChange")
        {
            return Err(not_allowed("Edit user status is not allowed"));
        }
        if update.name.is_some()
            && update.name != user.name
            && !self.setting_bool("Accounts_AllowRealNameChange")
        {
            return Err(not_allowed("Edit user real name is not allowed"));
        }
        if email_changes && !user.emails.is_empty() && !self.setting_bool("Accounts_AllowEmailChange") {
            return Err(not_allowed("Edit user email is not allowed"));
        }
        let new_password = update.new_password.clone().filter(|p| !p.is_empty());
        if new_password.is_some() && !self.setting_bool("Accounts_AllowPasswordChange") {
            return Err(not_allowed("Edit user password is not allowed"));
        }
        // E-mail and password changes are confirmed with the current password (two-factor
        // authentication by password, as Rocket.Chat does for users without TOTP).
        if (email_changes || new_password.is_some())
            && user.password_bcrypt.is_some()
            && self.setting_bool("Accounts_TwoFactorAuthentication_Enabled")
        {
            let Some(current) = update.current_password.as_deref().filter(|c| !c.is_empty()) else {
                return Err(ServiceError::invalid("totp-required", "TOTP Required"));
            };
            if !self.password_matches(&user, current).await? {
                return Err(ServiceError::invalid("totp-invalid", "TOTP Invalid"));
            }
        }
        let name = update.name.as_deref().map(str::trim).map(str::to_owned);
        if name.as_deref() == Some("") && update.name.as_deref().is_some_and(|n| !n.is_empty()) {
            return Err(could_not_save_identity());
        }
        let username = update.username.as_deref().map(str::trim).map(str::to_owned).filter(|u| !u.is_empty());
        if let Some(username) = username.as_deref().filter(|u| *u != user.username) {
            let pattern =
                self.setting("UTF8_User_Names_Validation").and_then(|v| v.as_str().map(str::to_owned));
            let taken = self
                .store
                .user_by_username(username)
                .await
                .map_err(store_error)?
                .is_some_and(|other| other.id != user.id);
            if !name_is_valid(pattern.as_deref(), username) || self.username_is_blocked(username) || taken {
                return Err(could_not_save_identity());
            }
        }
        let bio = update.bio.filter(|b| !b.is_empty());
        if bio.as_ref().is_some_and(|b| b.chars().count() > MAX_BIO_LENGTH) {
            return Err(ServiceError::invalid(
                "error-bio-size-exceeded",
                format!("Bio size exceeds {MAX_BIO_LENGTH} characters"),
            ));
        }
        let nickname = update.nickname.filter(|n| !n.is_empty());
        if nickname.as_ref().is_some_and(|n| n.chars().count() > MAX_NICKNAME_LENGTH) {
            return Err(ServiceError::invalid(
                "error-nickname-size-exceeded",
                format!("Nickname size exceeds {MAX_NICKNAME_LENGTH} characters"),
            ));
        }
        let email = update.email.as_deref().map(str::trim).map(str::to_owned).filter(|e| !e.is_empty());
        if let Some(email) = email.as_deref().filter(|_| email_changes) {
            if !email_is_valid(email) {
                return Err(ServiceError::invalid(
                    "error-invalid-email",
                    format!("Invalid email {}", html_escape(email)),
                ));
            }
            let taken = self.store.user_by_email(email).await.map_err(store_error)?;
            if taken.is_some_and(|other| other.id != user.id) {
                return Err(ServiceError::invalid(
                    "error-field-unavailable",
                    format!("{} is already in use :(", html_escape(email)),
                ));
            }
        }
        let password_hash = match new_password.as_deref().filter(|_| user.password_bcrypt.is_some()) {
            Some(password) => {
                if self.password_matches(&user, &password_digest(password)).await? {
                    return Err(ServiceError::invalid(
                        "error-password-same-as-current",
                        "Entered password same as current password",
                    ));
                }
                self.check_password_policy(password)?;
                Some(hash_password(password, self.cfg.bcrypt_cost).await?)
            }
            None => None,
        };
        let status_text = update.status_text;
        if let Some(fields) = &update.custom_fields {
            self.validate_custom_fields(fields)?;
        }
        let custom_fields = update.custom_fields;
        self.store
            .update_user(
                &who.user_id,
                Box::new(move |u| {
                    if let Some(name) = name {
                        u.name = Some(name).filter(|n| !n.is_empty());
                    }
                    if let Some(username) = username {
                        u.username = username;
                    }
                    if let Some(text) = status_text {
                        u.status_text = text;
                    }
                    if let Some(bio) = bio {
                        u.bio = Some(bio.trim().to_owned());
                    }
                    if let Some(nickname) = nickname {
                        u.nickname = Some(nickname.trim().to_owned());
                    }
                    if let Some(email) = email.filter(|_| email_changes) {
                        u.emails = vec![Email { address: email, verified: false }];
                    }
                    if let Some(hash) = password_hash {
                        u.password_bcrypt = Some(hash);
                        u.require_password_change = false;
                    }
                    if let Some(fields) = custom_fields {
                        u.custom_fields.extend(fields);
                    }
                    u.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)
    }

    pub(crate) async fn delete_own_account_impl(
        &self,
        who: &Principal,
        password: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()> {
        if !self.setting_bool("Accounts_AllowDeleteOwnAccount") {
            return Err(ServiceError::invalid("error-not-allowed", "Not allowed"));
        }
        let user =
            self.store.user_by_id(&who.user_id).await.map_err(store_error)?.ok_or_else(invalid_user)?;
        if user.password_bcrypt.as_deref().is_some_and(|h| !h.trim().is_empty()) {
            if !self.password_matches(&user, password).await? {
                return Err(ServiceError::invalid("error-invalid-password", "Invalid password"));
            }
        } else if password_digest(&user.username) != password.trim() {
            return Err(ServiceError::invalid("error-invalid-username", "Invalid username"));
        }
        self.remove_user(&user, confirm_relinquish).await
    }

    pub(crate) async fn logout_user_impl(&self, who: &Principal, user_id: &str) -> ServiceResult<()> {
        if user_id != who.user_id && !self.has_permission(&who.roles, "logout-other-user") {
            return Err(ServiceError::unauthorized());
        }
        if self.store.user_by_id(user_id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::invalid("error-invalid-user-id", "Invalid user id"));
        }
        self.store.delete_user_login_tokens(user_id).await.map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn set_preferences_impl(
        &self,
        who: &Principal,
        user_id: &str,
        data: Map<String, Value>,
    ) -> ServiceResult<User> {
        if user_id != who.user_id && !self.has_permission(&who.roles, "edit-other-user-info") {
            return Err(ServiceError::invalid("error-action-not-allowed", "Editing user is not allowed"));
        }
        if self.store.user_by_id(user_id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::invalid(
                "error-invalid-user",
                "The optional \"userId\" param provided does not match any users",
            ));
        }
        self.store
            .update_user(
                user_id,
                Box::new(move |u| {
                    for (key, value) in data {
                        if key == "language" {
                            u.language = value.as_str().map(str::to_owned);
                        } else {
                            u.preferences.insert(key, value);
                        }
                    }
                    u.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)
    }

    pub(crate) async fn autocomplete_users_impl(
        &self,
        who: &Principal,
        term: &str,
        exceptions: Vec<String>,
    ) -> ServiceResult<Vec<User>> {
        if !self.has_permission(&who.roles, "view-outside-room") {
            return Ok(Vec::new());
        }
        let filter = UserFilter {
            text: Some(term.to_owned()).filter(|t| !t.is_empty()),
            active: Some(true),
            ..Default::default()
        };
        let all = PageRequest { offset: 0, count: None };
        let page = self.store.list_users(&filter, all).await.map_err(store_error)?;
        Ok(page.items.into_iter().filter(|u| !exceptions.contains(&u.username)).take(10).collect())
    }

    pub(crate) async fn users_by_status_impl(
        &self,
        who: &Principal,
        query: UserStatusQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        if !self.has_permission(&who.roles, "view-d-room") {
            return Err(ServiceError::permission_required());
        }
        if self.setting_bool("API_Apply_permission_view-outside-room_on_users-list")
            && !self.has_permission(&who.roles, "view-outside-room")
        {
            return Err(ServiceError::unauthorized());
        }
        let roles = if query.roles.iter().any(|r| r == "all") { Vec::new() } else { query.roles };
        let filter = UserFilter {
            text: query.search_term.filter(|t| !t.is_empty()),
            roles,
            active: query.active,
            ..Default::default()
        };
        if query.has_logged_in.is_none() && query.kind.is_none() {
            return self.store.list_users(&filter, page).await.map_err(store_error);
        }
        // Filters the store does not index: select in memory, then page.
        let all = PageRequest { offset: 0, count: None };
        let listed = self.store.list_users(&filter, all).await.map_err(store_error)?;
        let selected: Vec<User> = listed
            .items
            .into_iter()
            .filter(|u| query.has_logged_in.is_none_or(|h| u.last_login.is_some() == h))
            .filter(|u| query.kind.as_ref().is_none_or(|k| *k == u.kind))
            .collect();
        let total = selected.len() as u64;
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        let take = page.count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        Ok(Page { items: selected.into_iter().skip(skip).take(take).collect(), offset: page.offset, total })
    }
}
