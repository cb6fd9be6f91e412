//! `users.setStatus`, `users.getStatus`, `users.getPresence`, `users.presence` (Rocket.Chat's
//! `v1/users.ts`). Status changes go through the presence component so watchers hear of them.

use std::collections::HashMap;

use apogee_api::UserSelector;
use apogee_types::{ServiceError, User};
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str};
use crate::reply::{ok, success};

/// `userId` / `username` naming someone else, or `None` for the caller.
fn other_user(params: &HashMap<String, String>, caller: &Caller) -> Option<UserSelector> {
    let me = &caller.principal;
    match (params.get("userId"), params.get("username")) {
        (Some(id), _) if !id.is_empty() && *id != me.user_id => Some(UserSelector::Id(id.clone())),
        (Some(id), _) if !id.is_empty() => None,
        (_, Some(name)) if !name.is_empty() && *name != me.username => {
            Some(UserSelector::Username(name.clone()))
        }
        _ => None,
    }
}

async fn find(state: &GatewayState, selector: UserSelector) -> ApiResult<User> {
    state.auth.find_user(selector).await?.ok_or_else(|| {
        ApiError::typed(
            "error-invalid-user",
            "The required \"userId\" or \"username\" param provided does not match any users",
        )
    })
}

fn connection_status(user: &User) -> &str {
    if user.status == "offline" { "offline" } else { "online" }
}

/// `POST users.setStatus {status?, message?, userId?|username?}`.
pub(crate) async fn set_status(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let status = match body.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::failure(
                "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation",
            ));
        }
    };
    let message = match body.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::failure(
                "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation",
            ));
        }
    };
    if status.is_none() && message.is_none() {
        return Err(ApiError::failure(
            "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation",
        ));
    }
    if !state.auth.setting_bool("Accounts_AllowUserStatusMessageChange", true).await {
        return Err(ApiError::typed("error-not-allowed", "Change status is not allowed"));
    }
    let params: HashMap<String, String> = ["userId", "username"]
        .iter()
        .filter_map(|k| body_str(&body, k).map(|v| ((*k).to_owned(), v.to_owned())))
        .collect();
    let user = match other_user(&params, &caller) {
        None => find(&state, UserSelector::Id(caller.principal.user_id.clone())).await?,
        Some(selector) => {
            if !state.auth.roles_have_permission(&caller.principal.roles, "edit-other-user-info").await? {
                return Err(ServiceError::unauthorized().into());
            }
            find(&state, selector).await?
        }
    };
    if let Some(status) = &status {
        if !["online", "away", "offline", "busy"].contains(&status.as_str()) {
            return Err(ApiError::typed(
                "error-invalid-status",
                "Valid status types include online, away, offline, and busy.",
            ));
        }
        if status == "offline" && !state.auth.setting_bool("Accounts_AllowInvisibleStatusOption", true).await
        {
            return Err(ApiError::typed("error-status-not-allowed", "Invisible status is disabled"));
        }
    }
    match status {
        Some(status) => state.presence.set(&user.id, &status, Some(status.clone()), message).await?,
        None => state.presence.set(&user.id, &user.status, None, message).await?,
    }
    Ok(ok!())
}

/// `GET users.getStatus?userId=|username=`.
pub(crate) async fn get_status(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    match other_user(&q, &caller) {
        None => {
            let user = find(&state, UserSelector::Id(caller.principal.user_id.clone())).await?;
            Ok(
                ok!("_id" => user.id.clone(), "connectionStatus" => connection_status(&user), "status" => user.status.clone()),
            )
        }
        Some(selector) => {
            let user = find(&state, selector).await?;
            Ok(ok!("_id" => user.id.clone(), "status" => user.status.clone()))
        }
    }
}

/// `GET users.getPresence?userId=|username=`.
pub(crate) async fn get_presence(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    match other_user(&q, &caller) {
        None => {
            let user = find(&state, UserSelector::Id(caller.principal.user_id.clone())).await?;
            let mut m = Map::new();
            m.insert("presence".into(), user.status.clone().into());
            m.insert("connectionStatus".into(), connection_status(&user).into());
            if let Some(at) = user.last_login {
                m.insert("lastLogin".into(), apogee_rc::Dates::Iso.value(at));
            }
            Ok(success(m))
        }
        Some(selector) => {
            let user = find(&state, selector).await?;
            Ok(ok!("presence" => user.status.clone()))
        }
    }
}

/// Most users one `users.presence?from=` answer lists (a ten-minute window of changes).
const PRESENCE_DELTA_MAX: u64 = 5_000;
/// How recent `from` must be for `users.presence` to answer with the changes alone.
const PRESENCE_DELTA_MS: i64 = 10 * 60 * 1000;

/// `GET users.presence?ids=a,b` (or `ids[]=`): the users among `ids` who are not offline.
pub(crate) async fn presence(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    if state.auth.setting_bool("Presence_broadcast_disabled", false).await {
        return Ok(ok!("users" => Value::Array(Vec::new()), "full" => true));
    }
    let ids = q.get("ids").or_else(|| q.get("ids[]"));
    // A recent `from` (under ten minutes): the other users changed since, whatever their status.
    let from = q
        .get("from")
        .and_then(|f| apogee_rc::parse_date(&Value::String(f.clone())))
        .filter(|from| apogee_types::Millis::now().0 - from.0 < PRESENCE_DELTA_MS);
    // Without ids, every user who is not offline (`full: true`).
    let (found, full, online_only) = match (ids, from) {
        (Some(ids), _) => {
            let ids: Vec<String> =
                ids.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            (state.auth.users_by_ids(&ids).await?, false, true)
        }
        (None, Some(from)) => {
            // The store filters; a page bounds what one call may load.
            let page = apogee_types::PageRequest { offset: 0, count: Some(PRESENCE_DELTA_MAX) };
            let mut changed = state.auth.users_changed_since(from, page).await?.items;
            changed.retain(|u| u.id != caller.principal.user_id);
            (changed, false, false)
        }
        (None, None) => (state.auth.online_users().await?, true, true),
    };
    let users: Vec<Value> = found
        .iter()
        .filter(|u| !online_only || u.status != "offline")
        .map(|u| {
            let mut v =
                json!({ "_id": u.id, "username": u.username, "status": u.status, "utcOffset": u.utc_offset });
            if let Some(name) = &u.name {
                v["name"] = name.clone().into();
            }
            if !u.status_text.is_empty() {
                v["statusText"] = u.status_text.clone().into();
            }
            if let Some(etag) = &u.avatar_etag {
                v["avatarETag"] = etag.clone().into();
            }
            v
        })
        .collect();
    Ok(ok!("users" => users, "full" => full))
}
