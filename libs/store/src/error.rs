/// What callers of a store must tell apart, nothing more.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("{entity} `{id}` not found")]
    NotFound { entity: &'static str, id: String },
    /// A unique key (id, username, e-mail, room name) is taken.
    #[error("{entity} `{key}` already exists")]
    Conflict { entity: &'static str, key: String },
    /// The backend failed; the write did not happen. Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("corrupt record in {entity}: {detail}")]
    Corrupt { entity: &'static str, detail: String },
    /// A mutation refused to apply (its own rule failed); nothing was written.
    #[error("{0}")]
    Rejected(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
