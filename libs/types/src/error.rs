use serde::{Deserialize, Serialize};

/// What kind of failure a [`ServiceError`] is; decides the HTTP status and, later, the gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Bad input, or a rule of the domain refused the change (Rocket.Chat's `API.v1.failure`).
    InvalidArgument,
    /// No valid credentials.
    Unauthenticated,
    /// Authenticated, but a permission is missing (Rocket.Chat's `API.v1.unauthorized`).
    PermissionDenied,
    /// The thing asked for does not exist; Rocket.Chat reports these as failures too.
    NotFound,
    /// Too many attempts.
    TooManyRequests,
    /// A dependency (the store) is down; the caller may retry.
    Unavailable,
    /// A bug or an unexpected state; details are logged, never sent to clients.
    Internal,
}

impl ErrorKind {
    /// Returns the HTTP status Rocket.Chat answers with for this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            // Rocket.Chat reports unknown rooms, users and messages as ordinary failures.
            ErrorKind::NotFound => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// The error every service returns: a Rocket.Chat `errorType` and a message safe to show a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind:?} {error_type}: {message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    /// Rocket.Chat's error code (`error-room-not-found`); empty when Rocket.Chat sends none.
    pub error_type: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
    /// `error` is the message alone, without the ` [code]` suffix (Rocket.Chat's
    /// `API.v1.failure(text, code)`), while `errorType` still carries the code.
    #[serde(default)]
    pub bare_text: bool,
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn new(kind: ErrorKind, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind, error_type: error_type.into(), message: message.into(), details: None, bare_text: false }
    }

    /// A Meteor-style failure: `"<message> [<code>]"` with `errorType: <code>`.
    pub fn invalid(error_type: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, error_type, message)
    }

    /// A failure with a bare text and no `errorType` (Rocket.Chat's `API.v1.failure("text")`).
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, "", message)
    }

    /// `API.v1.failure(text, code)`: `error` is `text` as is, `errorType` is `code`.
    pub fn failure_typed(error_type: &str, message: impl Into<String>) -> Self {
        Self { bare_text: true, ..Self::new(ErrorKind::InvalidArgument, error_type, message) }
    }

    pub fn not_found(error_type: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, error_type, message)
    }

    /// Rocket.Chat's `API.v1.unauthorized()`: 403 with the text `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::PermissionDenied, "", "unauthorized")
    }

    /// A 403 raised by a route that declares the permissions it requires.
    pub fn permission_required() -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            "",
            "User does not have the permissions required for this action [error-unauthorized]",
        )
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::invalid("error-not-allowed", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "", message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Rocket.Chat's `error` text: Meteor formats thrown errors as `"<reason> [<code>]"`.
    pub fn client_text(&self) -> String {
        if self.error_type.is_empty() || self.bare_text || self.kind == ErrorKind::PermissionDenied {
            self.message.clone()
        } else if self.message.is_empty() {
            format!("[{}]", self.error_type)
        } else {
            format!("{} [{}]", self.message, self.error_type)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_has_meteor_suffix() {
        let e = ServiceError::invalid("error-room-not-found", "No room");
        assert_eq!(e.client_text(), "No room [error-room-not-found]");
        assert_eq!(ServiceError::failure("plain").client_text(), "plain");
        assert_eq!(ServiceError::unauthorized().client_text(), "unauthorized");
        assert_eq!(ServiceError::unauthorized().kind.http_status(), 403);
    }
}
