use std::sync::Arc;

use apogee_types::{Page, PageRequest, Permission, Principal, Role, ServiceResult, Setting, User};
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
    /// `users.getPersonalAccessTokens`: the caller's personal tokens, oldest first.
    async fn personal_tokens(&self, who: &Principal) -> ServiceResult<Vec<PersonalToken>>;
    /// `users.deactivateIdle` (`edit-other-user-active-status`): deactivates the active users
    /// holding `role` who have not logged in for `days_idle` days (or, never logged in, were
    /// created that long ago); returns how many.
    async fn deactivate_idle(&self, who: &Principal, days_idle: i64, role: &str) -> ServiceResult<u64>;
}

/// The handle to the auth service.
#[derive(Clone)]
pub struct AuthClient(Arc<dyn AuthService>);

impl AuthClient {
    pub fn local(service: Arc<dyn AuthService>) -> Self {
        Self(service)
    }

    /// Calls the auth role over gRPC.
    pub fn grpc(client: crate::grpc::RpcClient) -> Self {
        Self(Arc::new(crate::grpc::auth::GrpcAuthClient(client)))
    }

    /// The tonic service that serves this handle's service to other roles.
    pub fn grpc_server(
        &self,
        options: crate::grpc::ServerOptions,
    ) -> apogee_proto::auth::v1::auth_server::AuthServer<crate::grpc::auth::GrpcAuthServer> {
        crate::grpc::auth::server(self.0.clone(), options)
    }
}

impl std::ops::Deref for AuthClient {
    type Target = dyn AuthService;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
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
