//! `roles.addUserToRole`, `roles.removeUserFromRole`, `roles.getUsersInRole`.

use apogee_rc::Dates;
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page};
use crate::reply::ok;
use crate::v1::misc::role_json;

/// The body's keys are `allowed`, `username` is there and every value a string (or null for the
/// optional ones): Rocket.Chat's schema for both role changes. `Err` holds ajv's messages.
fn check_body(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    let mut errors = Vec::new();
    if !body.contains_key("username") {
        errors.push("must have required property 'username'".to_owned());
    }
    for (key, value) in body {
        if !allowed.contains(&key.as_str()) {
            errors.push("must NOT have additional properties".to_owned());
        } else if !(value.is_string() || (value.is_null() && key != "username")) {
            errors.push("must be string".to_owned());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

fn role_key(body: &Map<String, Value>) -> String {
    ["roleId", "roleName"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_owned()
}

fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `POST roles.addUserToRole {username, roleId | roleName, roomId?}` → `{role}`.
pub(crate) async fn add_user_to_role(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    check_body(&body, &["username", "roleId", "roleName", "roomId"])
        .map_err(|m| ApiError::typed("error-invalid-role-properties", m))?;
    let username = text(&body, "username").ok_or_else(|| {
        ApiError::typed(
            "error-user-param-not-provided",
            "The required \"userId\" or \"username\" param was not provided",
        )
    })?;
    let role = state
        .auth
        .add_user_to_role(&caller.principal, &role_key(&body), &username, text(&body, "roomId"))
        .await?;
    Ok(ok!("role" => role_json(&role)))
}

/// `POST roles.removeUserFromRole {username, roleId | roleName, scope?}` → `{role}`.
pub(crate) async fn remove_user_from_role(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    check_body(&body, &["username", "roleId", "roleName", "roomId", "scope"])
        .map_err(|_| ApiError::typed("error-invalid-role-properties", "The role properties are invalid."))?;
    let username = text(&body, "username").unwrap_or_default();
    let role = state
        .auth
        .remove_user_from_role(&caller.principal, &role_key(&body), &username, text(&body, "scope"))
        .await?;
    Ok(ok!("role" => role_json(&role)))
}

/// `GET roles.getUsersInRole?role=&roomId=` → `{users, total}`, by username.
pub(crate) async fn get_users_in_role(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(role) = query.get("role").filter(|r| !r.is_empty()) else {
        return Err(ApiError::typed("error-param-not-provided", "Query param \"role\" is required"));
    };
    let page = page(&state, &query).await?;
    let rid = query.get("roomId").filter(|r| !r.is_empty()).cloned();
    let found = state.auth.users_in_role(&caller.principal, role, rid, page).await?;
    // Rocket.Chat's projection: name, username, emails, avatarETag, createdAt, _updatedAt.
    let keep = ["_id", "name", "username", "emails", "avatarETag", "createdAt", "_updatedAt"];
    let users: Vec<Value> = found
        .items
        .iter()
        .map(|u| match apogee_rc::user_public(u, Dates::Iso, true) {
            Value::Object(m) => {
                Value::Object(m.into_iter().filter(|(k, _)| keep.contains(&k.as_str())).collect())
            }
            other => other,
        })
        .collect();
    Ok(ok!("users" => users, "total" => found.total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_bodies_are_checked_like_rocket_chat() {
        let allowed = ["username", "roleId", "roleName", "roomId"];
        let body = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(
            check_body(&body(json!({"username": "a", "roleId": "admin", "roomId": null})), &allowed).is_ok()
        );
        assert_eq!(
            check_body(&body(json!({"roleId": "admin"})), &allowed).err().as_deref(),
            Some("must have required property 'username'")
        );
        assert!(check_body(&body(json!({"username": "a", "extra": 1})), &allowed).is_err());
        assert!(check_body(&body(json!({"username": 3})), &allowed).is_err());
        assert_eq!(role_key(&body(json!({"roleId": "", "roleName": "bot"}))), "bot");
    }
}
