//! The gRPC adapters of [`AuthService`](crate::AuthService): one entry per RPC of
//! `proto/apogee/auth/v1/auth.proto`. A method added to the trait needs its RPC here and there.

use crate::{
    AuthService, IntegrationInput, LoginRequest, LoginResponse, NewUser, OwnProfileUpdate, PersonalToken,
    TwoFactorProof, UserListQuery, UserSelector, UserStatusQuery, UserUpdate,
};
use apogee_types::{
    Integration, Page, PageRequest, Permission, Principal, Role, ServiceResult, Setting, User,
};
use serde_json::Value;

use apogee_proto::auth::v1::auth_server::{Auth, AuthServer};

use super::grpc_adapters;

grpc_adapters! {
    trait: AuthService,
    name: "auth",
    path: "/apogee.auth.v1.Auth/",
    client: GrpcAuthClient,
    server: GrpcAuthServer,
    server_trait: Auth,
    who: {
        (Write, Logout, logout, [token: &str => String], ()),
        (Read, Me, me, [], User),
        (Write, CreateUser, create_user, [user: NewUser => NewUser], User),
        (Read, UserInfo, user_info, [selector: UserSelector => UserSelector], User),
        (Read, ListUsers, list_users, [query: UserListQuery => UserListQuery, page: PageRequest => PageRequest], Page<User>),
        (Read, GetSetting, get_setting, [id: &str => String], Setting),
        (Write, SetSetting, set_setting, [id: &str => String, value: Value => Value], ()),
        (Read, Permissions, permissions, [], Vec<Permission>),
        (Write, UpdatePermissions, update_permissions, [changes: Vec<(String, Vec<String>)> => Vec<(String, Vec<String>)>], Vec<Permission>),
        (Read, Roles, roles, [], Vec<Role>),
        (Write, UpdateUser, update_user, [user_id: &str => String, update: UserUpdate => UserUpdate], User),
        (Write, SetActiveStatus, set_active_status, [user_id: &str => String, active: bool => bool, confirm_relinquish: bool => bool], User),
        (Write, DeleteUser, delete_user, [user_id: &str => String, confirm_relinquish: bool => bool], ()),
        (Read, UsernameAvailable, username_available, [username: &str => String], bool),
        (Write, UpdateOwnProfile, update_own_profile, [update: OwnProfileUpdate => OwnProfileUpdate], User),
        (Write, DeleteOwnAccount, delete_own_account, [password_digest: &str => String, confirm_relinquish: bool => bool], ()),
        (Write, LogoutUser, logout_user, [user_id: &str => String], ()),
        (Write, SetPreferences, set_preferences, [user_id: &str => String, data: serde_json::Map<String, Value> => serde_json::Map<String, Value>], User),
        (Read, UsersByStatus, users_by_status, [query: UserStatusQuery => UserStatusQuery, page: PageRequest => PageRequest], Page<User>),
        (Read, AutocompleteUsers, autocomplete_users, [term: &str => String, exceptions: Vec<String> => Vec<String>], Vec<User>),
        (Write, GeneratePersonalToken, generate_personal_token, [name: &str => String, bypass_two_factor: bool => bool, proof: TwoFactorProof => TwoFactorProof], String),
        (Write, RegeneratePersonalToken, regenerate_personal_token, [name: &str => String, proof: TwoFactorProof => TwoFactorProof], String),
        (Write, RemovePersonalToken, remove_personal_token, [name: &str => String, proof: TwoFactorProof => TwoFactorProof], ()),
        (Read, PersonalTokens, personal_tokens, [], Vec<PersonalToken>),
        (Read, OwnLoginTokens, own_login_tokens, [], Vec<apogee_types::LoginToken>),
        (Write, DeactivateIdle, deactivate_idle, [days_idle: i64 => i64, role: &str => String], u64),
        (Write, RemoveOtherTokens, remove_other_tokens, [token: &str => String, keep_personal: bool => bool], Option<apogee_types::Millis>),
        (Write, CreateIntegration, create_integration, [input: IntegrationInput => IntegrationInput], Integration),
        (Write, UpdateIntegration, update_integration, [id: &str => String, input: IntegrationInput => IntegrationInput], Integration),
        (Write, RemoveIntegration, remove_integration, [id: &str => String], Integration),
        (Read, GetIntegration, get_integration, [id: &str => String, created_by: Option<String> => Option<String>], Integration),
        (Read, ListIntegrations, list_integrations, [channels: Option<Vec<String>> => Option<Vec<String>>, page: PageRequest => PageRequest], Page<Integration>),
        (Write, AddUserToRole, add_user_to_role, [role: &str => String, username: &str => String, rid: Option<String> => Option<String>], Role),
        (Write, RemoveUserFromRole, remove_user_from_role, [role: &str => String, username: &str => String, rid: Option<String> => Option<String>], Role),
        (Read, UsersInRole, users_in_role, [role: &str => String, rid: Option<String> => Option<String>, page: PageRequest => PageRequest], Page<User>),
    }
    anon: {
        (Write, Login, login, [req: LoginRequest => LoginRequest], LoginResponse),
        (Read, Authenticate, authenticate, [user_id: &str => String, token: &str => String], Principal),
        (Write, RegisterUser, register_user, [user: NewUser => NewUser], User),
        (Read, UsersByIds, users_by_ids, [ids: &[String] => Vec<String>], Vec<User>),
        (Read, FindUser, find_user, [selector: UserSelector => UserSelector], Option<User>),
        (Read, AllUsers, all_users, [active_only: bool => bool, page: PageRequest => PageRequest], Page<User>),
        (Read, UsersChangedSince, users_changed_since, [since: apogee_types::Millis => apogee_types::Millis, page: PageRequest => PageRequest], Page<User>),
        (Write, SetUserStatus, set_user_status, [user_id: &str => String, status: &str => String, status_default: Option<String> => Option<String>, status_text: Option<String> => Option<String>], User),
        (Read, OnlineUsers, online_users, [], Vec<User>),
        (Read, UserPreferences, user_preferences, [user: &User => User], serde_json::Map<String, Value>),
        (Read, PublicSettings, public_settings, [ids: Option<Vec<String>> => Option<Vec<String>>, page: PageRequest => PageRequest], Page<Setting>),
        (Read, SettingValue, setting_value, [id: &str => String], Option<Value>),
        (Write, SetAvatarEtag, set_avatar_etag, [user_id: &str => String, etag: Option<String> => Option<String>], ()),
        (Read, RolesHavePermission, roles_have_permission, [roles: &[String] => Vec<String>, permission: &str => String], bool),
        (Read, Webhook, webhook, [id: &str => String, token: &str => String], Option<(Integration, Option<Principal>)>),
    }
}

/// The tonic service serving `service`.
pub fn server(
    service: std::sync::Arc<dyn AuthService>,
    options: super::ServerOptions,
) -> AuthServer<GrpcAuthServer> {
    AuthServer::new(GrpcAuthServer::new(service, options))
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
}
