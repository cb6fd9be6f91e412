//! `login`, `logout` and `me` (Rocket.Chat's `ApiClass` auth routes).

use apogee_api::{Credentials, LoginRequest, LoginUser, Password};
use apogee_rc::Dates;
use apogee_types::{ErrorKind, ServiceError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, ClientIp};
use crate::reply::{json, ok};

fn password_of(body: &Map<String, Value>) -> Option<Password> {
    match body.get("password")? {
        Value::String(s) => Some(Password::Plain(s.clone())),
        Value::Object(o) => Some(Password::Digest {
            digest: o.get("digest")?.as_str()?.to_owned(),
            algorithm: o.get("algorithm").and_then(Value::as_str).unwrap_or("sha-256").to_owned(),
        }),
        _ => None,
    }
}

/// Every body form of protocol.md §2.1.
fn credentials_of(body: &Map<String, Value>) -> Option<Credentials> {
    if let Some(token) = body.get("resume").and_then(Value::as_str) {
        return Some(Credentials::Resume { token: token.to_owned() });
    }
    let password = password_of(body)?;
    let user = match (body.get("user"), body.get("username"), body.get("email")) {
        (Some(Value::String(s)), _, _) => LoginUser::UsernameOrEmail(s.clone()),
        (Some(Value::Object(o)), _, _) => match (o.get("username"), o.get("email")) {
            (Some(Value::String(u)), _) => LoginUser::Username(u.clone()),
            (_, Some(Value::String(e))) => LoginUser::Email(e.clone()),
            _ => return None,
        },
        (None, Some(Value::String(u)), _) => LoginUser::Username(u.clone()),
        (None, _, Some(Value::String(e))) => LoginUser::Email(e.clone()),
        _ => return None,
    };
    Some(Credentials::Password { user, password })
}

/// A failed login: 401 with 6.14's `{status, error, message}` (plus `success: false`).
fn login_failure(e: &ServiceError) -> Response {
    // Meteor's numeric codes (403 for a wrong password) travel as numbers.
    let error =
        e.error_type.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(e.error_type.clone()));
    let mut body = json!({ "status": "error", "error": error, "message": e.message, "success": false });
    if let Some(details) = &e.details {
        body["details"] = details.clone();
    }
    json(StatusCode::UNAUTHORIZED, &body)
}

pub(crate) async fn login(
    State(state): State<GatewayState>,
    ClientIp(ip): ClientIp,
    Body(body): Body,
) -> ApiResult {
    if !state.cfg.test_mode
        && let Err(wait) = state.login_limiter.check(ip.as_deref().unwrap_or("unknown")).await
    {
        return Err(ApiError(ServiceError::new(
            apogee_types::ErrorKind::TooManyRequests,
            "error-too-many-requests",
            format!(
                "Error, too many requests. Please slow down. You must wait {wait} seconds before trying this endpoint again."
            ),
        )));
    }
    let Some(credentials) = credentials_of(&body) else {
        return Ok(login_failure(&ServiceError::new(
            apogee_types::ErrorKind::Unauthenticated,
            "400",
            "Unrecognized options for login request",
        )));
    };
    let response = match state.auth.login(LoginRequest { credentials, client_ip: ip }).await {
        Ok(r) => r,
        // Rocket.Chat answers every refused login with 401.
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::Unauthenticated | ErrorKind::InvalidArgument | ErrorKind::NotFound
            ) =>
        {
            return Ok(login_failure(&e));
        }
        Err(e) => return Err(e.into()),
    };
    let preferences = state.auth.user_preferences(&response.user).await?;
    let me = apogee_rc::user_me(&response.user, preferences, &state.cfg.site_url, Dates::Iso);
    let body = json!({
        "status": "success",
        "data": { "userId": response.user.id, "authToken": response.token, "me": me },
        "success": true,
    });
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn logout(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    state.auth.logout(&caller.principal, &caller.token).await?;
    let body =
        json!({ "status": "success", "data": { "message": "You've been logged out!" }, "success": true });
    Ok(json(StatusCode::OK, &body))
}

pub(crate) async fn me(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let user = state.auth.me(&caller.principal).await?;
    let preferences = state.auth.user_preferences(&user).await?;
    let Value::Object(me) = apogee_rc::user_me(&user, preferences, &state.cfg.site_url, Dates::Iso) else {
        return Ok(ok!());
    };
    Ok(crate::reply::success(me))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_login_form() {
        let plain = Password::Plain("pw".into());
        let cases = [
            (json!({"user": "alice", "password": "pw"}), LoginUser::UsernameOrEmail("alice".into())),
            (json!({"username": "alice", "password": "pw"}), LoginUser::Username("alice".into())),
            (json!({"email": "a@x.io", "password": "pw"}), LoginUser::Email("a@x.io".into())),
            (json!({"user": {"username": "alice"}, "password": "pw"}), LoginUser::Username("alice".into())),
            (json!({"user": {"email": "a@x.io"}, "password": "pw"}), LoginUser::Email("a@x.io".into())),
        ];
        for (input, user) in cases {
            assert_eq!(
                credentials_of(&body(input)),
                Some(Credentials::Password { user, password: plain.clone() })
            );
        }
        let digest =
            credentials_of(&body(json!({"user": "a", "password": {"digest": "ab", "algorithm": "sha-256"}})));
        assert!(matches!(digest, Some(Credentials::Password { password: Password::Digest { .. }, .. })));
        assert_eq!(
            credentials_of(&body(json!({"resume": "t"}))),
            Some(Credentials::Resume { token: "t".into() })
        );
        assert_eq!(credentials_of(&body(json!({"user": "alice"}))), None);
        assert_eq!(credentials_of(&body(json!({"password": "pw"}))), None);
    }
}
