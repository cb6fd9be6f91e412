use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_types::{
    Integration, Page, PageRequest, Permission, Principal, Role, ServiceResult, Setting, User,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A password as clients send it: plain (REST, SDK 0.2.x) or as a SHA-256 hex digest (DDP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Password {
    Plain(String),
    Digest { digest: String, algorithm: String },
}

/// Who is logging in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoginUser {
    Username(String),
    Email(String),
    /// A bare `user` string: an e-mail if it contains `@`, else a username.
    UsernameOrEmail(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Credentials {
    Password { user: LoginUser, password: Password },
    Resume { token: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub credentials: Credentials,
    /// The client's address, for the failed-login lockout.
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub user: User,
    /// The plain token; only its hash is stored.
    pub token: String,
    /// When the token stops working (milliseconds since the epoch).
    pub token_expires: apogee_types::Millis,
}

/// A user to create (`users.create` by an admin, `users.register` by anyone).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    /// `None`: the `Accounts_Registration_Users_Default_Roles` setting.
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
    pub verified: bool,
    pub join_default_channels: bool,
    pub require_password_change: bool,
    pub kind: Option<String>,
    pub custom_fields: serde_json::Map<String, Value>,
}

/// `users.update`: the fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub active: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub verified: Option<bool>,
    pub require_password_change: Option<bool>,
    pub status_text: Option<String>,
    /// `Some("")` removes it.
    pub bio: Option<String>,
    /// `Some("")` removes it.
    pub nickname: Option<String>,
    pub custom_fields: Option<serde_json::Map<String, Value>>,
    /// On deactivation: hand the rooms the user solely owns to other members.
    pub confirm_relinquish: bool,
}

/// `users.updateOwnBasicInfo`: the caller's own profile changes; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OwnProfileUpdate {
    pub email: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub nickname: Option<String>,
    pub bio: Option<String>,
    pub status_text: Option<String>,
    pub new_password: Option<String>,
    /// The SHA-256 hex digest of the current password (needed for e-mail and password changes).
    pub current_password: Option<String>,
    pub custom_fields: Option<serde_json::Map<String, Value>>,
}

/// `users.listByStatus`: which users to list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserStatusQuery {
    /// `Some(true)`: `status=active`; `Some(false)`: `status=deactivated`.
    pub active: Option<bool>,
    pub has_logged_in: Option<bool>,
    /// The user type (`user`, `bot`, …).
    pub kind: Option<String>,
    /// Users holding any of these roles (all when empty).
    pub roles: Vec<String>,
    pub search_term: Option<String>,
}

/// A personal access token as its owner sees it (`users.getPersonalAccessTokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalToken {
    pub name: String,
    pub created_at: apogee_types::Millis,
    /// The last six characters of the plain token.
    pub last_token_part: String,
    pub bypass_two_factor: bool,
}

/// What a request brings for an action that asks for a second factor (Rocket.Chat's
/// `twoFactorRequired`): the `X-2fa-Code` / `X-2fa-Method` headers or a DDP method's last
/// argument, and the login token the request was made with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TwoFactorProof {
    /// The plain login token of the request (a personal token may bypass the check).
    pub token: Option<String>,
    pub code: Option<String>,
    pub method: Option<String>,
}

/// `integrations.create` / `integrations.update` of an incoming webhook: what the client sets.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IntegrationInput {
    pub name: String,
    pub enabled: bool,
    /// The user the webhook posts as (creation only: an update keeps the stored one).
    pub username: String,
    /// Comma-separated targets, each `#room` or `@user`.
    pub channel: String,
    pub alias: Option<String>,
    pub avatar: Option<String>,
    pub emoji: Option<String>,
    pub script_enabled: bool,
    pub script_engine: Option<String>,
    /// Refused when not blank: scripts are never run.
    pub script: Option<String>,
    pub override_destination_channel_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserSelector {
    Id(String),
    Username(String),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserListQuery {
    pub text: Option<String>,
    pub page: Option<PageRequest>,
}

/// Users, credentials, tokens, roles, permissions and settings.
#[async_trait]
pub trait AuthService: Send + Sync + 'static {
    async fn login(&self, req: LoginRequest) -> ServiceResult<LoginResponse>;
    /// Resolves `X-User-Id` + `X-Auth-Token` to a principal.
    async fn authenticate(&self, user_id: &str, token: &str) -> ServiceResult<Principal>;
    /// Revokes the given token of the caller.
    async fn logout(&self, who: &Principal, token: &str) -> ServiceResult<()>;

    async fn me(&self, who: &Principal) -> ServiceResult<User>;
    /// `users.create`: needs `create-user`.
    async fn create_user(&self, who: &Principal, user: NewUser) -> ServiceResult<User>;
    /// `users.register`: anonymous, governed by `Accounts_RegistrationForm`.
    async fn register_user(&self, user: NewUser) -> ServiceResult<User>;
    async fn user_info(&self, who: &Principal, selector: UserSelector) -> ServiceResult<User>;
    async fn list_users(
        &self,
        who: &Principal,
        query: UserListQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>>;
    /// For other services: users by id, without a permission check.
    async fn users_by_ids(&self, ids: &[String]) -> ServiceResult<Vec<User>>;
    /// For other services: one user by username or id, without a permission check.
    async fn find_user(&self, selector: UserSelector) -> ServiceResult<Option<User>>;
    /// For other services: every user (only the active ones when asked), by username, with the
    /// total count, without a permission check.
    async fn all_users(&self, active_only: bool, page: PageRequest) -> ServiceResult<Page<User>>;
    /// For other services: users changed at or after `since` (`_updatedAt`), by username.
    async fn users_changed_since(
        &self,
        since: apogee_types::Millis,
        page: PageRequest,
    ) -> ServiceResult<Page<User>>;
    /// For presence: stores a user's live status, and optionally their chosen default status and
    /// status text; returns the user after the change.
    async fn set_user_status(
        &self,
        user_id: &str,
        status: &str,
        status_default: Option<String>,
        status_text: Option<String>,
    ) -> ServiceResult<User>;
    /// For presence: the active users whose status is not offline.
    async fn online_users(&self) -> ServiceResult<Vec<User>>;
    /// The server defaults for user preferences overlaid by the user's own.
    async fn user_preferences(&self, user: &User) -> ServiceResult<serde_json::Map<String, Value>>;

    /// Public settings, optionally only the given ids, by id.
    async fn public_settings(
        &self,
        ids: Option<Vec<String>>,
        page: PageRequest,
    ) -> ServiceResult<Page<Setting>>;
    /// One setting, for admins (`view-privileged-setting`).
    async fn get_setting(&self, who: &Principal, id: &str) -> ServiceResult<Setting>;
    /// Writes a setting (`edit-privileged-setting`); the value must have the setting's type.
    async fn set_setting(&self, who: &Principal, id: &str, value: Value) -> ServiceResult<()>;
    /// For other services: a setting's current value.
    async fn setting_value(&self, id: &str) -> ServiceResult<Option<Value>>;

    async fn permissions(&self, who: &Principal) -> ServiceResult<Vec<Permission>>;
    /// `permissions.update` (`access-permissions`).
    async fn update_permissions(
        &self,
        who: &Principal,
        changes: Vec<(String, Vec<String>)>,
    ) -> ServiceResult<Vec<Permission>>;
    async fn roles(&self, who: &Principal) -> ServiceResult<Vec<Role>>;
    /// Whether any of `roles` holds `permission`.
    async fn roles_have_permission(&self, roles: &[String], permission: &str) -> ServiceResult<bool>;

    /// `users.update`: Rocket.Chat's `saveUser` rules; returns the user after the change.
    async fn update_user(&self, who: &Principal, user_id: &str, update: UserUpdate) -> ServiceResult<User>;
    /// `users.setActiveStatus` (`edit-other-user-active-status`).
    /// `confirm_relinquish`: see [`MessagingService::relinquish_ownership`](crate::MessagingService).
    async fn set_active_status(
        &self,
        who: &Principal,
        user_id: &str,
        active: bool,
        confirm_relinquish: bool,
    ) -> ServiceResult<User>;
    /// `users.delete` (`delete-user`): the user, their subscriptions and login tokens.
    async fn delete_user(
        &self,
        who: &Principal,
        user_id: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()>;
    /// `users.checkUsernameAvailability`.
    async fn username_available(&self, who: &Principal, username: &str) -> ServiceResult<bool>;
    /// `users.updateOwnBasicInfo`.
    async fn update_own_profile(&self, who: &Principal, update: OwnProfileUpdate) -> ServiceResult<User>;
    /// `users.deleteOwnAccount`: `password_digest` is the SHA-256 hex of the password.
    async fn delete_own_account(
        &self,
        who: &Principal,
        password_digest: &str,
        confirm_relinquish: bool,
    ) -> ServiceResult<()>;
    /// `users.logout`: removes every login token of the user (`logout-other-user` for others).
    async fn logout_user(&self, who: &Principal, user_id: &str) -> ServiceResult<()>;
    /// `users.setPreferences`: merges `data` into the user's stored preferences.
    async fn set_preferences(
        &self,
        who: &Principal,
        user_id: &str,
        data: serde_json::Map<String, Value>,
    ) -> ServiceResult<User>;
    /// `users.listByStatus` (`view-d-room`), sorted by username.
    async fn users_by_status(
        &self,
        who: &Principal,
        query: UserStatusQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>>;
    /// `users.autocomplete`: up to 10 active users whose username or name contains `term`.
    async fn autocomplete_users(
        &self,
        who: &Principal,
        term: &str,
        exceptions: Vec<String>,
    ) -> ServiceResult<Vec<User>>;

    /// `users.generatePersonalAccessToken` (`create-personal-access-tokens`, second factor):
    /// a named token that never expires; returns the plain token, of which only the hash is kept.
    async fn generate_personal_token(
        &self,
        who: &Principal,
        name: &str,
        bypass_two_factor: bool,
        proof: TwoFactorProof,
    ) -> ServiceResult<String>;
    /// `users.regeneratePersonalAccessToken`: replaces the named token with a new one.
    async fn regenerate_personal_token(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<String>;
    /// `users.removePersonalAccessToken`.
    async fn remove_personal_token(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<()>;
    /// The caller's own login tokens, resume and personal (`users.info` on oneself shows them
    /// under `services.resume`, as hashes).
    async fn own_login_tokens(&self, who: &Principal) -> ServiceResult<Vec<apogee_types::LoginToken>>;
    /// `users.getPersonalAccessTokens`: the caller's personal tokens, oldest first.
    async fn personal_tokens(&self, who: &Principal) -> ServiceResult<Vec<PersonalToken>>;
    /// Records the user's new avatar (`None`: back to the generated one) and tells every logged-in
    /// client (`updateAvatar`). Called by the files service once the image is stored.
    async fn set_avatar_etag(&self, user_id: &str, etag: Option<String>) -> ServiceResult<()>;
    /// `users.deactivateIdle` (`edit-other-user-active-status`): deactivates the active users
    /// holding `role` who have not logged in for `days_idle` days (or, never logged in, were
    /// created that long ago); returns how many.
    async fn deactivate_idle(&self, who: &Principal, days_idle: i64, role: &str) -> ServiceResult<u64>;
    /// Deletes the caller's login tokens but `token` (`users.logoutOtherClients` keeps personal
    /// access tokens, `users.removeOtherTokens` does not); returns when `token` expires
    /// (`None` if it does not).
    async fn remove_other_tokens(
        &self,
        who: &Principal,
        token: &str,
        keep_personal: bool,
    ) -> ServiceResult<Option<apogee_types::Millis>>;

    /// `integrations.create` of an incoming webhook (`manage-incoming-integrations` or
    /// `manage-own-incoming-integrations`); gives the posting user the `bot` role.
    async fn create_integration(
        &self,
        who: &Principal,
        input: IntegrationInput,
    ) -> ServiceResult<Integration>;
    /// `integrations.update` of an incoming webhook; returns it after the change.
    async fn update_integration(
        &self,
        who: &Principal,
        id: &str,
        input: IntegrationInput,
    ) -> ServiceResult<Integration>;
    /// `integrations.remove`: returns the record as it was.
    async fn remove_integration(&self, who: &Principal, id: &str) -> ServiceResult<Integration>;
    /// `integrations.get`: `created_by` narrows the lookup to that creator.
    async fn get_integration(
        &self,
        who: &Principal,
        id: &str,
        created_by: Option<String>,
    ) -> ServiceResult<Integration>;
    /// `integrations.list` (newest first) and `*.getIntegrations` (`channels`: targets to match,
    /// oldest first): the integrations the caller's permissions show.
    async fn list_integrations(
        &self,
        who: &Principal,
        channels: Option<Vec<String>>,
        page: PageRequest,
    ) -> ServiceResult<Page<Integration>>;
    /// For `/hooks/:id/:token`: the integration with this id and token (`None`: no such pair),
    /// and the principal of the user it posts as (`None`: that user is gone or inactive).
    async fn webhook(&self, id: &str, token: &str)
    -> ServiceResult<Option<(Integration, Option<Principal>)>>;

    /// `roles.addUserToRole` (`access-permissions`): `role` by id or name; `rid` for a room role.
    async fn add_user_to_role(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role>;
    /// `roles.removeUserFromRole` (`access-permissions`).
    async fn remove_user_from_role(
        &self,
        who: &Principal,
        role: &str,
        username: &str,
        rid: Option<String>,
    ) -> ServiceResult<Role>;
    /// `roles.getUsersInRole` (`access-permissions`; with `rid`, also `view-other-user-channels`),
    /// by username.
    async fn users_in_role(
        &self,
        who: &Principal,
        role: &str,
        rid: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<User>>;
}

/// The handle to the auth service.
#[derive(Clone)]
pub struct AuthClient {
    service: Arc<dyn AuthService>,
    /// Present when the service is remote: settings and permission answers are kept here, so a
    /// message does not cost a round trip to auth per setting it consults.
    cache: Option<Arc<ReadCache>>,
}

impl AuthClient {
    pub fn local(service: Arc<dyn AuthService>) -> Self {
        Self { service, cache: None }
    }

    /// Calls the auth role over gRPC, with setting and permission reads cached: feed the
    /// returned [`ReadCache`] the change events (`apogee.all.permissions-changed`,
    /// [`SETTINGS_CHANGED_SUBJECT`](crate::events::SETTINGS_CHANGED_SUBJECT)) so changes show at once.
    pub fn grpc(client: crate::grpc::RpcClient) -> (Self, Arc<ReadCache>) {
        let cache = Arc::new(ReadCache::new(READ_CACHE_TTL));
        let service = Arc::new(crate::grpc::auth::GrpcAuthClient(client));
        (Self { service, cache: Some(cache.clone()) }, cache)
    }

    /// The tonic service that serves this handle's service to other roles.
    pub fn grpc_server(
        &self,
        options: crate::grpc::ServerOptions,
    ) -> apogee_proto::auth::v1::auth_server::AuthServer<crate::grpc::auth::GrpcAuthServer> {
        crate::grpc::auth::server(self.service.clone(), options)
    }

    /// A setting's value, from the cache when the service is remote. Shadows the trait method
    /// of the same name (inherent methods win over `Deref`), so every caller goes through it.
    pub async fn setting_value(&self, id: &str) -> ServiceResult<Option<Value>> {
        let Some(cache) = &self.cache else { return self.service.setting_value(id).await };
        if let Some(value) = cache.setting(id) {
            return Ok(value);
        }
        let generation = cache.generation();
        let value = self.service.setting_value(id).await?;
        cache.put_setting(generation, id, value.clone());
        Ok(value)
    }

    /// Whether any of `roles` holds `permission`, from the cache when the service is remote
    /// (shadows the trait method, as [`setting_value`](Self::setting_value)).
    pub async fn roles_have_permission(&self, roles: &[String], permission: &str) -> ServiceResult<bool> {
        let Some(cache) = &self.cache else {
            return self.service.roles_have_permission(roles, permission).await;
        };
        let key = permission_key(roles, permission);
        if let Some(granted) = cache.permission(&key) {
            return Ok(granted);
        }
        let generation = cache.generation();
        let granted = self.service.roles_have_permission(roles, permission).await?;
        cache.put_permission(generation, key, granted);
        Ok(granted)
    }
}

impl std::ops::Deref for AuthClient {
    type Target = dyn AuthService;

    fn deref(&self) -> &Self::Target {
        &*self.service
    }
}

/// How long a cached answer stands without a change event: the bound on staleness should an
/// event be lost (NATS core delivery is at most once).
pub const READ_CACHE_TTL: Duration = Duration::from_secs(10);

/// Setting values and permission answers of a remote auth service.
///
/// Every change event bumps a generation and clears a map; an answer fetched before the bump is
/// not stored after it, so a read racing a change cannot put the old value back.
pub struct ReadCache {
    ttl: Duration,
    generation: AtomicU64,
    settings: Mutex<HashMap<String, (Option<Value>, Instant)>>,
    permissions: Mutex<HashMap<String, (bool, Instant)>>,
}

impl ReadCache {
    fn new(ttl: Duration) -> Self {
        Self { ttl, generation: AtomicU64::new(0), settings: Mutex::default(), permissions: Mutex::default() }
    }

    /// A setting changed (any setting: the event names one, but clearing all is as cheap).
    pub fn settings_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut settings) = self.settings.lock() {
            settings.clear();
        }
    }

    /// A permission's roles changed.
    pub fn permissions_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut permissions) = self.permissions.lock() {
            permissions.clear();
        }
    }

    /// The change feed was interrupted (events may be lost): forget everything.
    pub fn clear(&self) {
        self.settings_changed();
        self.permissions_changed();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn setting(&self, id: &str) -> Option<Option<Value>> {
        let settings = self.settings.lock().ok()?;
        settings.get(id).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    fn permission(&self, key: &str) -> Option<bool> {
        let permissions = self.permissions.lock().ok()?;
        permissions.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| *v)
    }

    fn put_setting(&self, generation: u64, id: &str, value: Option<Value>) {
        if let Ok(mut settings) = self.settings.lock()
            && self.generation() == generation
        {
            settings.insert(id.to_owned(), (value, Instant::now()));
        }
    }

    fn put_permission(&self, generation: u64, key: String, granted: bool) {
        if let Ok(mut permissions) = self.permissions.lock()
            && self.generation() == generation
        {
            permissions.insert(key, (granted, Instant::now()));
        }
    }
}

/// The permission and the sorted roles: the answer depends on the set, not its order.
fn permission_key(roles: &[String], permission: &str) -> String {
    let mut sorted: Vec<&str> = roles.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut key = String::from(permission);
    for role in sorted {
        key.push('\u{1f}');
        key.push_str(role);
    }
    key
}

/// Settings with a typed read, for services that consult them on every call.
impl AuthClient {
    pub async fn setting_bool(&self, id: &str, default: bool) -> bool {
        match self.setting_value(id).await {
            Ok(Some(Value::Bool(b))) => b,
            _ => default,
        }
    }

    pub async fn setting_i64(&self, id: &str, default: i64) -> i64 {
        match self.setting_value(id).await {
            Ok(Some(v)) => v.as_i64().unwrap_or(default),
            _ => default,
        }
    }

    pub async fn setting_string(&self, id: &str) -> Option<String> {
        match self.setting_value(id).await {
            Ok(Some(Value::String(s))) => Some(s),
            _ => None,
        }
    }
}
