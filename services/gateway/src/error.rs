//! `ApiError`: a [`ServiceError`] rendered the way Rocket.Chat's REST API renders failures.

use apogee_types::{ErrorKind, ServiceError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::reply::json;

/// Every handler returns `Result<Response, ApiError>`.
#[derive(Debug)]
pub(crate) struct ApiError(pub ServiceError);

pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl ApiError {
    /// Parameter validation failure (`invalid-params`).
    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self(ServiceError::invalid("invalid-params", message))
    }

    /// A bare `API.v1.failure("text")`.
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self(ServiceError::failure(message))
    }

    pub(crate) fn typed(error_type: &str, message: impl Into<String>) -> Self {
        Self(ServiceError::invalid(error_type, message))
    }
}

pub(crate) const NOT_LOGGED_IN: &str = "You must be logged in to do this.";

/// The 401 of an authenticated route: 6.14's `{status, message}` plus 7.x's `success`/`error`.
pub(crate) fn not_logged_in() -> Response {
    let body = serde_json::json!({
        "success": false,
        "status": "error",
        "message": NOT_LOGGED_IN,
        "error": NOT_LOGGED_IN,
    });
    json(StatusCode::UNAUTHORIZED, &body)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        match e.kind {
            ErrorKind::Unauthenticated => return not_logged_in(),
            ErrorKind::Internal => {
                return json(
                    status,
                    &serde_json::json!({"success": false, "error": "Internal error occured"}),
                );
            }
            ErrorKind::Unavailable => {
                // The kind of outage (`error-service-unavailable`, `error-service-timeout`) tells a
                // client to retry; the message, which names the role, stays inside.
                let mut body = serde_json::json!({"success": false, "error": "Service Unavailable"});
                if !e.error_type.is_empty() {
                    body["errorType"] = Value::String(e.error_type);
                }
                return json(status, &body);
            }
            _ => {}
        }
        let mut body = Map::new();
        body.insert("success".into(), Value::Bool(false));
        body.insert("error".into(), Value::String(e.client_text()));
        // Rocket.Chat's `tooManyRequests` answers with the text alone.
        if !e.error_type.is_empty()
            && !matches!(e.kind, ErrorKind::PermissionDenied | ErrorKind::TooManyRequests)
        {
            // A `Meteor.Error(403, …)` carries a number as its code, and so does the reply.
            let code = match e.error_type.parse::<u16>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(e.error_type.clone()),
            };
            body.insert("errorType".into(), code);
        }
        if let Some(details) = e.details {
            body.insert("details".into(), details);
        }
        json(status, &Value::Object(body))
    }
}
