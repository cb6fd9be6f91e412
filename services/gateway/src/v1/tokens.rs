//! Personal access tokens (`users.generatePersonalAccessToken`, `users.regeneratePersonalAccessToken`,
//! `users.removePersonalAccessToken`, `users.getPersonalAccessTokens`) and `users.deactivateIdle`.

use apogee_api::TwoFactorProof;
use apogee_rc::iso;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, body_str};
use crate::reply::ok;

/// The second factor a REST request brings: `X-2fa-Code` and `X-2fa-Method`, and its own token.
pub(crate) fn two_factor_proof(headers: &HeaderMap, caller: &Caller) -> TwoFactorProof {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    TwoFactorProof {
        token: Some(caller.token.clone()),
        code: header("x-2fa-code"),
        method: header("x-2fa-method"),
    }
}

/// `tokenName`; an absent or empty one is refused by the service after the second factor.
fn token_name(body: &serde_json::Map<String, Value>) -> String {
    body_str(body, "tokenName").unwrap_or_default().to_owned()
}

pub(crate) async fn generate(
    State(state): State<GatewayState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let bypass = matches!(body.get("bypassTwoFactor"), Some(Value::Bool(true)));
    let proof = two_factor_proof(&headers, &caller);
    let token =
        state.auth.generate_personal_token(&caller.principal, &token_name(&body), bypass, proof).await?;
    Ok(ok!("token" => token))
}

pub(crate) async fn regenerate(
    State(state): State<GatewayState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let proof = two_factor_proof(&headers, &caller);
    let token = state.auth.regenerate_personal_token(&caller.principal, &token_name(&body), proof).await?;
    Ok(ok!("token" => token))
}

pub(crate) async fn remove(
    State(state): State<GatewayState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let proof = two_factor_proof(&headers, &caller);
    state.auth.remove_personal_token(&caller.principal, &token_name(&body), proof).await?;
    Ok(ok!())
}

pub(crate) async fn list(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let tokens = state.auth.personal_tokens(&caller.principal).await?;
    let tokens: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "createdAt": iso(t.created_at),
                "lastTokenPart": t.last_token_part,
                "bypassTwoFactor": t.bypass_two_factor,
            })
        })
        .collect();
    Ok(ok!("tokens" => tokens))
}

/// `daysIdle` as the route's schema reads it (a number, or a string coerced to one); the
/// service counts whole days, as `Date.setDate` does.
fn days_idle(value: Option<&Value>) -> Result<i64, ApiError> {
    let number = match value {
        None => return Err(ApiError::invalid_params("must have required property 'daysIdle'")),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => Some(0.0),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
        Some(Value::Null) => Some(0.0),
        Some(_) => None,
    };
    match number {
        #[allow(clippy::cast_possible_truncation)]
        Some(n) if n.is_finite() => Ok(n.trunc() as i64),
        _ => Err(ApiError::invalid_params("must be number")),
    }
}

pub(crate) async fn deactivate_idle(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    if body.keys().any(|k| k != "daysIdle" && k != "role") {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    let days = days_idle(body.get("daysIdle"))?;
    let role = match body.get("role") {
        None => "user".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(ApiError::invalid_params("must be string")),
    };
    let count = state.auth.deactivate_idle(&caller.principal, days, &role).await?;
    Ok(ok!("count" => count))
}

/// `users.logoutOtherClients`: every other session ends; personal access tokens stay.
pub(crate) async fn logout_other_clients(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let expires = state.auth.remove_other_tokens(&caller.principal, &caller.token, true).await?;
    Ok(ok!("token" => caller.token, "tokenExpires" => expires.map(iso).unwrap_or_default()))
}

/// `users.removeOtherTokens` (Meteor's method): every other token goes, personal ones too.
pub(crate) async fn remove_other_tokens(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    state.auth.remove_other_tokens(&caller.principal, &caller.token, false).await?;
    Ok(ok!())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn days_idle_is_coerced_like_the_schema() {
        assert_eq!(days_idle(Some(&json!(3))).unwrap(), 3);
        assert_eq!(days_idle(Some(&json!(2.9))).unwrap(), 2, "whole days");
        assert_eq!(days_idle(Some(&json!("7"))).unwrap(), 7);
        assert_eq!(days_idle(Some(&json!(true))).unwrap(), 1);
        assert!(days_idle(Some(&json!("seven"))).is_err());
        assert!(days_idle(Some(&json!([1]))).is_err());
        assert!(days_idle(None).is_err());
    }
}
