//! The presence / shared-state seam: what every gateway must agree on without a database.
//!
//! - **Connection registry.** Each gateway registers the logged-in connections it holds and
//!   refreshes a heartbeat; a gateway that stops heartbeating (killed with -9) loses its
//!   registrations by itself: they stop counting at once, and [`PresenceStore::sweep`] removes
//!   them and names the users left without any live connection, exactly once.
//! - **User status** (status and status text), for fast reads by every gateway.
//! - **Shared rate-limit counters**, so a limit holds across gateways.
//! - **Token-validation cache**, with eviction of one token or all of a user's tokens.
//!
//! [`MemoryPresence`] is the embedded implementation; [`RedisPresence`] the distributed one. Both
//! pass the same contract suite (`testsuite`, behind the feature of that name).
//!
//! Rules every implementation keeps:
//! - a connection counts as live only while its gateway's heartbeat is fresh;
//! - `connect` answers "first live connection of this user anywhere" and `disconnect` "was the
//!   last", atomically with the change, so two gateways racing cannot both (or neither) see it;
//! - nothing here is durable: losing the store loses presence, never data.

mod error;
mod memory;
mod redis_store;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use error::PresenceError;
pub use memory::MemoryPresence;
pub use redis_store::RedisPresence;

/// How long a gateway's registrations live without a heartbeat, unless configured.
pub const DEFAULT_GATEWAY_TTL: Duration = Duration::from_secs(30);

/// Options shared by every backend.
#[derive(Debug, Clone)]
pub struct PresenceOptions {
    /// Prepended to every key, so tests and several deployments can share one Redis.
    pub prefix: String,
    /// A gateway's registrations expire this long after its last heartbeat.
    pub gateway_ttl: Duration,
}

impl Default for PresenceOptions {
    fn default() -> Self {
        Self { prefix: "apogee:".to_owned(), gateway_ttl: DEFAULT_GATEWAY_TTL }
    }
}

impl PresenceOptions {
    /// How often a gateway should heartbeat: a third of the TTL, so two lost beats are survived.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.gateway_ttl / 3).max(Duration::from_millis(10))
    }
}

/// A user's live status as cached for every gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    /// `online`, `away`, `busy` or `offline`.
    pub status: String,
    pub text: String,
}

/// One call counted by [`PresenceStore::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Calls in the current window, this one included.
    pub count: u64,
    /// Until the window ends and the count starts again from zero.
    pub resets_in: Duration,
}

/// The shared state of gateways. Identifiers (gateway, user, connection) must not contain the
/// unit separator `\u{1f}`, which the registry uses to join them.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// The TTL of a gateway's registrations; heartbeat well within it.
    fn gateway_ttl(&self) -> Duration;

    /// Refreshes `gateway`'s heartbeat. Returns `false` when its registrations had expired (or it
    /// is new): the gateway must then register its connections again, since a sweep may have
    /// removed them.
    async fn heartbeat(&self, gateway: &str) -> Result<bool, PresenceError>;

    /// Registers connection `conn` of `uid` on `gateway`. Returns `true` when this is the user's
    /// first live connection anywhere (the user goes online). Registering a connection twice
    /// changes nothing and returns `false`.
    async fn connect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError>;

    /// Removes a registration. Returns `true` when the user has no live connection left (the user
    /// goes offline); `false` also when the registration was unknown (e.g. already swept).
    async fn disconnect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError>;

    /// The user's live connections, on gateways whose heartbeat is fresh.
    async fn connections(&self, uid: &str) -> Result<u64, PresenceError>;

    /// Removes the registrations of every gateway whose heartbeat expired and returns the users
    /// who have no live connection left. Each such user is returned by one sweep only, even
    /// with several sweepers racing.
    async fn sweep(&self) -> Result<Vec<String>, PresenceError>;

    /// Caches the user's status.
    async fn set_status(&self, uid: &str, status: &UserStatus) -> Result<(), PresenceError>;

    /// The user's cached status, if any.
    async fn status(&self, uid: &str) -> Result<Option<UserStatus>, PresenceError>;

    /// Counts a call on `key` in fixed windows of `window`.
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, PresenceError>;

    /// Caches what a token (by hash) authenticates as, for `ttl`.
    async fn put_token(
        &self,
        token_hash: &str,
        uid: &str,
        principal: &[u8],
        ttl: Duration,
    ) -> Result<(), PresenceError>;

    /// The cached principal of a token, if cached and not expired.
    async fn token(&self, token_hash: &str) -> Result<Option<Vec<u8>>, PresenceError>;

    /// Forgets one token (logout).
    async fn evict_token(&self, token_hash: &str) -> Result<(), PresenceError>;

    /// Forgets every token of a user (logout everywhere, deactivation, password change).
    async fn evict_user_tokens(&self, uid: &str) -> Result<(), PresenceError>;
}

/// The handle everybody holds: cheap to clone, the same type whatever the backend. Dereferences
/// to the [`PresenceStore`].
#[derive(Clone)]
pub struct PresenceHandle(Arc<dyn PresenceStore>);

impl PresenceHandle {
    /// Wraps any implementation.
    pub fn new(store: impl PresenceStore) -> Self {
        Self(Arc::new(store))
    }

    /// Wraps an already shared implementation.
    pub fn from_arc(store: Arc<dyn PresenceStore>) -> Self {
        Self(store)
    }

    /// The embedded store with default options.
    pub fn memory() -> Self {
        Self::new(MemoryPresence::new(PresenceOptions::default()))
    }

    /// The embedded store.
    pub fn memory_with(options: PresenceOptions) -> Self {
        Self::new(MemoryPresence::new(options))
    }

    /// Connects to Redis at `url` (`redis://host:port/db`), reconnecting by itself later.
    pub async fn redis(url: &str, options: PresenceOptions) -> Result<Self, PresenceError> {
        Ok(Self::new(RedisPresence::connect(url, options).await?))
    }
}

impl Deref for PresenceHandle {
    type Target = dyn PresenceStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for PresenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceHandle").field("gateway_ttl", &self.0.gateway_ttl()).finish()
    }
}

/// Sweeps every `interval`, forever, and calls `on_offline` for each user a sweep returns (the
/// caller stores the user's status as offline and publishes it). Spawn it and abort the task to
/// stop. Errors are logged and the next sweep tries again; a user whose `on_offline` fails is not
/// returned again, so `on_offline` should retry what it must.
pub async fn run_sweeper<F, Fut>(store: PresenceHandle, interval: Duration, on_offline: F)
where
    F: Fn(String) -> Fut + Send + Sync,
    Fut: Future<Output = ()> + Send,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.sweep().await {
            Ok(users) => {
                for uid in users {
                    on_offline(uid).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
        }
    }
}

/// Rejects identifiers the registry could not split again.
fn check_ids(ids: &[&str]) -> Result<(), PresenceError> {
    match ids.iter().find(|id| id.is_empty() || id.contains(SEPARATOR)) {
        Some(id) => Err(PresenceError::InvalidId((*id).to_owned())),
        None => Ok(()),
    }
}

/// Joins a user id and a connection id in a gateway's registration set.
const SEPARATOR: char = '\u{1f}';

#[cfg(test)]
mod tests;
