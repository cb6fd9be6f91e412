/// A boxed error from a backend's client library, kept as the source of [`BusError::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What callers of the bus and the job queues must tell apart, nothing more.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The text is not a valid subject (see [`Subject`](crate::Subject)).
    #[error("invalid subject `{subject}`: {reason}")]
    InvalidSubject { subject: String, reason: &'static str },
    /// The text is not a valid subject pattern (see [`SubjectPattern`](crate::SubjectPattern)).
    #[error("invalid subject pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: &'static str },
    /// The text is not a valid queue or consumer name (see [`QueueName`](crate::QueueName)).
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// The payload is larger than the backend accepts; retrying will not help.
    #[error("payload of {size} bytes is larger than the maximum of {max}")]
    PayloadTooLarge { size: usize, max: usize },
    /// The job queues hold as many jobs as they may; nothing was enqueued. Retryable once
    /// consumers have caught up.
    #[error("job queue `{queue}` is full")]
    QueueFull { queue: String },
    /// The queue is already consumed under a name other than `consumer`: a work queue has one
    /// consumer group, whose members share its jobs.
    #[error("job queue `{queue}` already has a consumer other than `{consumer}`")]
    ConsumerTaken { queue: String, consumer: String },
    /// The backend cannot be reached; nothing was published or subscribed. Retryable.
    #[error("bus unavailable")]
    Unavailable(#[source] BoxError),
}

impl BusError {
    /// Wraps a backend error as [`BusError::Unavailable`].
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}
