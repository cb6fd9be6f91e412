use apogee_types::{LoginToken, Millis, Page, PageRequest, User};
use async_trait::async_trait;

use crate::StoreResult;

/// What to list users by.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of username or name.
    pub text: Option<String>,
    /// Only users holding one of these roles.
    pub roles: Vec<String>,
    pub active: Option<bool>,
    /// Only these ids (when non-empty).
    pub ids: Vec<String>,
    /// Only users changed at or after this time (`_updatedAt`).
    pub updated_since: Option<apogee_types::Millis>,
}

/// A change to one user, applied inside the store's transaction.
pub type UserMutation = Box<dyn FnOnce(&mut User) -> StoreResult<()> + Send>;

/// Users and their login tokens.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user; `Conflict` when the id, username or an e-mail is taken.
    async fn insert_user(&self, user: User) -> StoreResult<()>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>>;
    /// Sorted by username.
    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> StoreResult<Page<User>>;
    /// Applies `mutation` to the stored user and returns the result; `NotFound` if absent.
    async fn update_user(&self, id: &str, mutation: UserMutation) -> StoreResult<User>;
    /// Deletes the user and every token of theirs.
    async fn delete_user(&self, id: &str) -> StoreResult<()>;

    /// `Conflict` when the hash exists, or the user already has a personal token of that name.
    async fn insert_login_token(&self, token: LoginToken) -> StoreResult<()>;
    /// Returns the token's owner if the hashed token exists.
    async fn user_by_token(&self, hashed_token: &str) -> StoreResult<Option<(User, LoginToken)>>;
    /// Every token of the user, resume and personal, oldest first.
    async fn login_tokens_of_user(&self, user_id: &str) -> StoreResult<Vec<LoginToken>>;
    async fn delete_login_token(&self, hashed_token: &str) -> StoreResult<()>;
    /// Deletes the user's resume tokens created before `before` beyond the newest `keep`.
    async fn prune_login_tokens(&self, user_id: &str, keep: usize, before: Millis) -> StoreResult<()>;
    /// Deletes every login token of the user; returns how many there were.
    async fn delete_user_login_tokens(&self, user_id: &str) -> StoreResult<u64>;
}
