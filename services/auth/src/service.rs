use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use apogee_api::{
    AuthService, IntegrationInput, LoginRequest, LoginResponse, MessagingClient, NewUser, OwnProfileUpdate,
    PersonalToken, TwoFactorProof, UserListQuery, UserSelector, UserStatusQuery, UserUpdate,
};
use apogee_bus::Bus;
use apogee_presence::PresenceHandle;
use apogee_store::{StoreError, StoreRef};
use apogee_types::{
    Integration, Page, PageRequest, Permission, Principal, Role, ServiceError, ServiceResult, Setting, User,
};
use async_trait::async_trait;
use serde_json::Value;

use crate::login::Failures;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `ROOT_URL`: the `Site_Url` setting.
    pub site_url: String,
    pub test_mode: bool,
    /// Failed logins per user before logins are blocked (per address: five times as many).
    pub failed_logins_per_user: u32,
    pub login_block: Duration,
    /// bcrypt cost of new password hashes.
    pub bcrypt_cost: u32,
}

/// The auth service.
pub struct Auth {
    pub(crate) store: StoreRef,
    pub(crate) cfg: AuthConfig,
    /// Where setting and permission changes are announced (`apogee.all.*`).
    pub(crate) bus: Bus,
    /// Read on nearly every request; std locks, never held across an await.
    pub(crate) settings: RwLock<HashMap<String, Setting>>,
    pub(crate) permissions: RwLock<HashMap<String, Permission>>,
    pub(crate) roles: RwLock<Vec<Role>>,
    /// Set once at wiring time: new users join the default rooms through messaging, which in
    /// turn needs auth, so the link is made after both exist.
    pub(crate) messaging: OnceLock<MessagingClient>,
    /// Failed login counts by user and by address (the lockout of `Block_Multiple_Failed_Logins_*`).
    pub(crate) failures: Mutex<Failures>,
    /// The shared token-validation cache the gateways read; auth evicts from it whenever a token
    /// stops being valid or a user's principal changes, before acknowledging the change.
    token_cache: OnceLock<PresenceHandle>,
}

impl Auth {
    pub fn new(store: StoreRef, cfg: AuthConfig, bus: Bus) -> Self {
        Self {
            store,
            cfg,
            bus,
            settings: RwLock::default(),
            permissions: RwLock::default(),
            roles: RwLock::default(),
            messaging: OnceLock::new(),
            failures: Mutex::default(),
            token_cache: OnceLock::new(),
        }
    }

    /// Links the token cache the gateways read (the same store they were given). Call once,
    /// before serving.
    pub fn set_token_cache(&self, cache: PresenceHandle) {
        let _ = self.token_cache.set(cache);
    }

    /// After a logout: the token must stop working on every gateway at once.
    async fn forget_token(&self, token: &str) {
        self.forget_hashed_token(&crate::crypto::hash_token(token)).await;
    }

    /// After a token (by its stored hash) was deleted.
    pub(crate) async fn forget_hashed_token(&self, hashed: &str) {
        if let Some(cache) = self.token_cache.get()
            && let Err(e) = cache.evict_token(hashed).await
        {
            tracing::warn!(error = %e, "token cache: logout not evicted; the token lapses with its cache entry");
        }
    }

    /// After any change to a user's tokens, roles, name or active state.
    pub(crate) async fn forget_user_tokens(&self, uid: &str) {
        if let Some(cache) = self.token_cache.get()
            && let Err(e) = cache.evict_user_tokens(uid).await
        {
            tracing::warn!(error = %e, "token cache: user not evicted; their entries lapse by themselves");
        }
    }

    /// Passes `result` through, evicting the user's cached tokens when it is a success.
    async fn then_forget<T>(&self, uid: &str, result: ServiceResult<T>) -> ServiceResult<T> {
        if result.is_ok() {
            self.forget_user_tokens(uid).await;
        }
        result
    }

    /// Links the messaging service (for default rooms). Call once, before serving.
    pub fn set_messaging(&self, messaging: MessagingClient) {
        let _ = self.messaging.set(messaging);
    }

    pub(crate) fn setting(&self, id: &str) -> Option<Value> {
        self.settings.read().ok()?.get(id).map(|s| s.value.clone())
    }

    pub(crate) fn setting_bool(&self, id: &str) -> bool {
        matches!(self.setting(id), Some(Value::Bool(true)))
    }

    pub(crate) fn setting_i64(&self, id: &str, default: i64) -> i64 {
        self.setting(id).and_then(|v| v.as_i64()).unwrap_or(default)
    }

    pub(crate) fn has_permission(&self, roles: &[String], permission: &str) -> bool {
        let Ok(permissions) = self.permissions.read() else {
            return false;
        };
        permissions.get(permission).is_some_and(|p| p.roles.iter().any(|r| roles.contains(r)))
    }

    pub(crate) fn require(&self, who: &Principal, permission: &str) -> ServiceResult<()> {
        if self.has_permission(&who.roles, permission) {
            Ok(())
        } else {
            Err(ServiceError::permission_required())
        }
    }
}

/// The one place store errors become service errors.
pub(crate) fn store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound { entity, .. } => {
            ServiceError::not_found("error-not-found", format!("{entity} not found"))
        }
        StoreError::Conflict { key, .. } => {
            ServiceError::invalid("error-field-unavailable", format!("{key} is already in use :("))
        }
        StoreError::Rejected(message) => ServiceError::not_allowed(message),
        StoreError::Unavailable(detail) | StoreError::Corrupt { detail, .. } => {
            tracing::error!(%detail, "auth store failed");
            ServiceError::new(apogee_types::ErrorKind::Unavailable, "", "Service Unavailable")
        }
    }
}

#[async_trait]
impl AuthService for Auth {
    async fn login(&self, req: LoginRequest) -> ServiceResult<LoginResponse> {
        self.login_impl(req).await
    }

    async fn authenticate(&self, user_id: &str, token: &str) -> ServiceResult<Principal> {
        self.authenticate_impl(user_id, token).await
    }

    async fn logout(&self, who: &Principal, token: &str) -> ServiceResult<()> {
        self.logout_impl(who, token).await?;
        self.forget_token(token).await;
        Ok(())
    }

    async fn me(&self, who: &Principal) -> ServiceResult<User> {
        self.store.user_by_id(&who.user_id).await.map_err(store_error)?.ok_or_else(|| {
            ServiceError::new(
                apogee_types::ErrorKind::Unauthenticated,
                "",
                "You must be logged in to do this.",
            )
        })
    }

    async fn create_user(&self, who: &Principal, user: NewUser) -> ServiceResult<User> {
        self.require(who, "create-user")?;
        self.insert_new_user(user, true).await
    }

    async fn register_user(&self, user: NewUser) -> ServiceResult<User> {
        self.register_impl(user).await
    }

    async fn user_info(&self, who: &Principal, selector: UserSelector) -> ServiceResult<User> {
        self.user_info_impl(who, selector).await
    }

    async fn list_users(
        &self,
        who: &Principal,
        query: UserListQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        self.list_users_impl(who, query, page).await
    }

    async fn users_by_ids(&self, ids: &[String]) -> ServiceResult<Vec<User>> {
        self.store.users_by_ids(ids).await.map_err(store_error)
    }

    async fn find_user(&self, selector: UserSelector) -> ServiceResult<Option<User>> {
        match selector {
            UserSelector::Id(id) => self.store.user_by_id(&id).await,
            UserSelector::Username(name) => self.store.user_by_username(&name).await,
        }
        .map_err(store_error)
    }

    async fn users_changed_since(
        &self,
        since: apogee_types::Millis,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        let filter = apogee_store::UserFilter { updated_since: Some(since), ..Default::default() };
        self.store.list_users(&filter, page).await.map_err(store_error)
    }

    async fn all_users(&self, active_only: bool, page: PageRequest) -> ServiceResult<Page<User>> {
        let filter = apogee_store::UserFilter { active: active_only.then_some(true), ..Default::default() };
        self.store.list_users(&filter, page).await.map_err(store_error)
    }

    async fn set_user_status(
        &self,
        user_id: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<User> {
        const STATUSES: [&str; 4] = ["online", "away", "busy", "offline"];
        if !STATUSES.contains(&status) || status_default.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
            return Err(ServiceError::invalid(
                "error-invalid-status",
                "Valid status types include online, away, offline, and busy.",
            ));
        }
        let status = status.to_owned();
        self.store
            .update_user(
                user_id,
                Box::new(move |u| {
                    u.status = status;
                    if let Some(default) = status_default {
                        u.status_default = default;
                    }
                    if let Some(text) = status_text {
                        u.status_text = text;
                    }
                    u.updated_at = apogee_types::Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)
    }

    async fn set_avatar_etag(&self, user_id: &str, etag: Option<String>) -> ServiceResult<()> {
        let stored = etag.clone();
        let user = self
            .store
            .update_user(
                user_id,
                Box::new(move |u| {
                    u.avatar_etag = stored;
                    u.updated_at = apogee_types::Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        let event = apogee_api::events::AllEvent::Avatar { username: Some(user.username), rid: None, etag };
        self.announce("update-avatar", &event).await;
        Ok(())
    }

    async fn online_users(&self) -> ServiceResult<Vec<User>> {
        let filter = apogee_store::UserFilter { active: Some(true), ..Default::default() };
        let all = apogee_types::PageRequest { offset: 0, count: None };
        let page = self.store.list_users(&filter, all).await.map_err(store_error)?;
        Ok(page.items.into_iter().filter(|u| u.status != "offline").collect())
    }

    async fn user_preferences(&self, user: &User) -> ServiceResult<serde_json::Map<String, Value>> {
        Ok(self.preferences_of(user))
    }

    async fn public_settings(
        &self,
        ids: Option<Vec<String>>,
        page: PageRequest,
    ) -> ServiceResult<Page<Setting>> {
        Ok(self.public_settings_impl(ids, page))
    }

    async fn get_setting(&self, who: &Principal, id: &str) -> ServiceResult<Setting> {
        self.get_setting_impl(who, id)
    }

    async fn set_setting(&self, who: &Principal, id: &str, value: Value) -> ServiceResult<()> {
        self.set_setting_impl(who, id, value).await
    }

    async fn setting_value(&self, id: &str) -> ServiceResult<Option<Value>> {
        Ok(self.setting(id))
    }

    async fn permissions(&self, _who: &Principal) -> ServiceResult<Vec<Permission>> {
        let map = self.permissions.read().map_err(|_| ServiceError::internal("permissions lock poisoned"))?;
        let mut all: Vec<Permission> = map.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn update_permissions(
        &self,
        who: &Principal,
        changes: Vec<(String, Vec<String>)>,
    ) -> ServiceResult<Vec<Permission>> {
        self.update_permissions_impl(who, changes).await
    }

    async fn roles(&self, _who: &Principal) -> ServiceResult<Vec<Role>> {
        Ok(self.roles.read().map_err(|_| ServiceError::internal("roles lock poisoned"))?.clone())
    }

    async fn roles_have_permission(&self, roles: &[String], permission: &str) -> ServiceResult<bool> {
        Ok(self.has_permission(roles, permission))
    }

    async fn update_user(&self, who: &Principal, user_id: &str, update: UserUpdate) -> ServiceResult<User> {
        let before = self.store.user_by_id(user_id).await.ok().flatten();
        let result = self.update_user_impl(who, user_id, update).await;
        let user = self.then_forget(user_id, result).await?;
        self.announce_name_change(before.as_ref(), &user).await;
        self.rename_references(before.as_ref(), &user).await;
        Ok(user)
    }

    async fn set_active_status(
        &self,
        who: &Principal,
        user_id: &str,
        active: bool,
        confirm_relinquish: bool,
    ) -> ServiceResult<User> {
        let result = self.set_active_status_impl(who, user_id, active, confirm_relinquish).await;
        self.then_forget(user_id, result).await
    }

    async fn delete_user(
        &self,
        who: &Principal,
        user_id: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()> {
        let result = self.delete_user_impl(who, user_id, confirm_relinquish).await;
        self.then_forget(user_id, result).await
    }

    async fn username_available(&self, who: &Principal, username: &str) -> ServiceResult<bool> {
        self.username_available_impl(who, username).await
    }

    async fn update_own_profile(&self, who: &Principal, update: OwnProfileUpdate) -> ServiceResult<User> {
        let before = self.store.user_by_id(&who.user_id).await.ok().flatten();
        let result = self.update_own_profile_impl(who, update).await;
        let user = self.then_forget(&who.user_id, result).await?;
        self.announce_name_change(before.as_ref(), &user).await;
        self.rename_references(before.as_ref(), &user).await;
        Ok(user)
    }

    async fn delete_own_account(
        &self,
        who: &Principal,
        password_digest: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()> {
        let result = self.delete_own_account_impl(who, password_digest, confirm_relinquish).await;
        self.then_forget(&who.user_id, result).await
    }

    async fn logout_user(&self, who: &Principal, user_id: &str) -> ServiceResult<()> {
        let result = self.logout_user_impl(who, user_id).await;
        self.then_forget(user_id, result).await
    }

    async fn set_preferences(
        &self,
        who: &Principal,
        user_id: &str,
        data: serde_json::Map<String, Value>,
    ) -> ServiceResult<User> {
        self.set_preferences_impl(who, user_id, data).await
    }

    async fn autocomplete_users(
        &self,
        who: &Principal,
        term: &str,
        exceptions: Vec<String>,
    ) -> ServiceResult<Vec<User>> {
        self.autocomplete_users_impl(who, term, exceptions).await
    }

    async fn users_by_status(
        &self,
        who: &Principal,
        query: UserStatusQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        self.users_by_status_impl(who, query, page).await
    }

    async fn generate_personal_token(
        &self,
        who: &Principal,
        name: &str,
        bypass_two_factor: bool,
        proof: TwoFactorProof,
    ) -> ServiceResult<String> {
        self.generate_personal_token_impl(who, name, bypass_two_factor, proof).await
    }

    async fn regenerate_personal_token(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<String> {
        self.regenerate_personal_token_impl(who, name, proof).await
    }

    async fn remove_personal_token(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<()> {
        self.remove_personal_token_impl(who, name, proof).await
    }

    async fn own_login_tokens(&self, who: &Principal) -> ServiceResult<Vec<apogee_types::LoginToken>> {
        self.store.login_tokens_of_user(&who.user_id).await.map_err(store_error)
    }

    async fn personal_tokens(&self, who: &Principal) -> ServiceResult<Vec<PersonalToken>> {
        self.personal_tokens_impl(who).await
    }

    async fn deactivate_idle(&self, who: &Principal, days_idle: i64, role: &str) -> ServiceResult<u64> {
        self.deactivate_idle_impl(who, days_idle, role).await
    }

    async fn remove_other_tokens(
        &self,
        who: &Principal,
        token: &str,
        keep_personal: bool,
    ) -> ServiceResult<Option<apogee_types::Millis>> {
        self.remove_other_tokens_impl(who, token, keep_personal).await
    }

    async fn create_integration(
        &self,
        who: &Principal,
        input: IntegrationInput,
    ) -> ServiceResult<Integration> {
        self.create_integration_impl(who, input).await
    }

    async fn update_integration(
        &self,
        who: &Principal,
        id: &str,
        input: IntegrationInput,
    ) -> ServiceResult<Integration> {
        self.update_integration_impl(who, id, input).await
    }

    async fn remove_integration(&self, who: &Principal, id: &str) -> ServiceResult<Integration> {
        self.remove_integration_impl(who, id).await
    }

    async fn get_integration(
        &self,
        who: &Principal,
        id: &str,
        created_by: Option<String>,
    ) -> ServiceResult<Integration> {
        self.get_integration_impl(who, id, created_by).await
    }

    async fn list_integrations(
        &self,
        who: &Principal,
        channels: Option<Vec<String>>,
        page: PageRequest,
    ) -> ServiceResult<Page<Integration>> {
        self.list_integrations_impl(who, channels, page).await
    }

    async fn webhook(
        &self,
        id: &str,
        token: &str,
    ) -> ServiceResult<Option<(Integration, Option<Principal>)>> {
        self.webhook_impl(id, token).await
    }

    async fn add_user_to_role(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role> {
        self.add_user_to_role_impl(who, role, username, rid).await
    }

    async fn remove_user_from_role(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role> {
        self.remove_user_from_role_impl(who, role, username, rid).await
    }

    async fn users_in_role(
        &self,
        who: &Principal,
        role: &str,
        rid: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        self.users_in_role_impl(who, role, rid, page).await
    }
}
