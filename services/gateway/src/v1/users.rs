//! `users.create`, `users.register`, `users.info`, `users.list`.

use apogee_api::{NewUser, UserListQuery, UserSelector};
use apogee_rc::Dates;
use apogee_types::{ErrorKind, ServiceError};
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str, page, require_str, truthy};
use crate::reply::ok;

fn optional_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_params(format!("must be boolean: '{key}'"))),
    }
}

pub(crate) async fn create(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    for key in ["email", "name", "password", "username"] {
        require_str(&body, key)?;
    }
    let roles = match body.get("roles") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid_params("must be array of strings: 'roles'"))?,
        ),
        Some(_) => return Err(ApiError::invalid_params("must be array: 'roles'")),
    };
    let new = NewUser {
        username: require_str(&body, "username")?.to_owned(),
        email: require_str(&body, "email")?.to_owned(),
        password: require_str(&body, "password")?.to_owned(),
        name: Some(require_str(&body, "name")?.to_owned()),
        roles,
        active: optional_bool(&body, "active")?,
        verified: optional_bool(&body, "verified")?.unwrap_or(false),
        join_default_channels: optional_bool(&body, "joinDefaultChannels")?.unwrap_or(true),
        require_password_change: optional_bool(&body, "requirePasswordChange")?.unwrap_or(false),
        kind: None,
        custom_fields: body.get("customFields").and_then(Value::as_object).cloned().unwrap_or_default(),
    };
    let user = state.auth.create_user(&caller.principal, new).await?;
    Ok(ok!("user" => apogee_rc::user_public(&user, Dates::Iso, true)))
}

pub(crate) async fn register(State(state): State<GatewayState>, Body(body): Body) -> ApiResult {
    for key in ["username", "email", "pass", "name"] {
        require_str(&body, key)?;
    }
    let new = NewUser {
        username: require_str(&body, "username")?.to_owned(),
        email: require_str(&body, "email")?.to_owned(),
        password: require_str(&body, "pass")?.to_owned(),
        name: body_str(&body, "name").map(str::to_owned),
        ..NewUser::default()
    };
    let user = state.auth.register_user(new).await?;
    Ok(ok!("user" => apogee_rc::user_public(&user, Dates::Iso, true)))
}

pub(crate) async fn info(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let selector = match (query.get("userId"), query.get("username")) {
        (Some(id), _) if !id.is_empty() => UserSelector::Id(id.clone()),
        (_, Some(name)) if !name.is_empty() => UserSelector::Username(name.clone()),
        _ => {
            return Err(ApiError::typed(
                "error-user-param-not-provided",
                "The required \"userId\" or \"username\" param was not provided",
            ));
        }
    };
    let user = state.auth.user_info(&caller.principal, selector).await.map_err(|e| {
        if e.kind == ErrorKind::NotFound {
            ApiError(ServiceError::invalid(
                "error-invalid-user",
                "The required \"userId\" or \"username\" param provided does not match any users",
            ))
        } else {
            ApiError(e)
        }
    })?;
    let full = user.id == caller.principal.user_id
        || state.auth.roles_have_permission(&caller.principal.roles, "view-full-other-user-info").await?;
    let mut shown = apogee_rc::user_public(&user, Dates::Iso, full);
    if user.id == caller.principal.user_id {
        // Oneself also sees one's `services`: whether a password is set, and the login tokens'
        // hashes (`getFullUserData` with `services` projected for `myself`).
        let tokens = state.auth.own_login_tokens(&caller.principal).await?;
        let login_tokens: Vec<Value> = tokens
            .iter()
            .map(|t| {
                let mut v =
                    serde_json::json!({"hashedToken": t.hashed_token, "when": apogee_rc::iso(t.created_at)});
                if let Some(name) = &t.name {
                    v["type"] = "personalAccessToken".into();
                    v["name"] = name.clone().into();
                }
                v
            })
            .collect();
        let mut services = Map::new();
        if user.password_bcrypt.is_some() {
            services.insert("password".into(), true.into());
        }
        services.insert("resume".into(), serde_json::json!({ "loginTokens": login_tokens }));
        shown["services"] = Value::Object(services);
    }
    // `fields={"userRooms":1}` is how Rocket.Chat asks; `includeUserRooms` is the older flag.
    let user_rooms = query
        .get("fields")
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .is_some_and(|f| f["userRooms"].as_i64() == Some(1));
    if user_rooms || truthy(query.get("includeUserRooms").map(String::as_str)) {
        // Refused when the caller may not see the user's rooms: the rest of the answer stands.
        if let Ok(subs) = state.messaging.user_subscriptions(&caller.principal, &user.id).await {
            let mut rooms: Vec<Value> = subs
                .iter()
                .map(|s| {
                    serde_json::json!({"_id": s.id, "rid": s.rid, "name": s.name, "t": s.t.as_str(),
                                       "roles": s.roles, "unread": s.unread})
                })
                .collect();
            rooms.sort_by(|a, b| {
                (a["t"].as_str(), a["name"].as_str()).cmp(&(b["t"].as_str(), b["name"].as_str()))
            });
            shown["rooms"] = Value::Array(rooms);
        }
    }
    Ok(ok!("user" => shown))
}

pub(crate) async fn list(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let page = page(&state, &query).await?;
    // Off by default; when on, `users.list` is for those who may see outside their rooms
    // (spotlight and the directory apply `view-outside-room` their own way).
    if state.auth.setting_bool("API_Apply_permission_view-outside-room_on_users-list", false).await
        && !state.auth.roles_have_permission(&caller.principal.roles, "view-outside-room").await?
    {
        return Err(ApiError(ServiceError::unauthorized()));
    }
    let text = query.get("text").or_else(|| query.get("filter")).filter(|t| !t.is_empty()).cloned();
    let found =
        state.auth.list_users(&caller.principal, UserListQuery { text, page: Some(page) }, page).await?;
    let full = state.auth.roles_have_permission(&caller.principal.roles, "view-full-other-user-info").await?;
    let users: Vec<Value> = found.items.iter().map(|u| apogee_rc::user_public(u, Dates::Iso, full)).collect();
    Ok(
        ok!("users" => users.clone(), "count" => users.len(), "offset" => found.offset, "total" => found.total),
    )
}
