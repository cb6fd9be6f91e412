//! What can go wrong talking to the shared state.

/// An error of the presence store.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The backend (Redis) failed or could not be reached.
    #[error("presence backend: {0}")]
    Backend(String),
    /// An empty identifier, or one containing the unit separator.
    #[error("invalid presence identifier {0:?}")]
    InvalidId(String),
}

impl From<redis::RedisError> for PresenceError {
    fn from(e: redis::RedisError) -> Self {
        Self::Backend(e.to_string())
    }
}
