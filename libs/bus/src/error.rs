/// A boxed error from a backend's client library, kept as the source of [`BusError::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What callers of the bus must tell apart, nothing more.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The text is not a valid subject (see [`Subject`](crate::Subject)).
    #[error("invalid subject `{subject}`: {reason}")]
    InvalidSubject { subject: String, reason: &'static str },
    /// The text is not a valid subject pattern (see [`SubjectPattern`](crate::SubjectPattern)).
    #[error("invalid subject pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: &'static str },
    /// The backend cannot be reached; nothing was published or subscribed. Retryable.
    #[error("bus unavailable")]
    Unavailable(#[source] BoxError),
}
