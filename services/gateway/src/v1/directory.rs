//! `directory`, `spotlight`, `shield.svg`, `pw.getPolicy`, `pw.getPolicyReset` (Rocket.Chat's
//! `v1/misc.ts`, `methods/browseChannels.ts`, `lib/spotlight.js`).

use std::cmp::Ordering;

use apogee_api::{RoomListScope, UserListQuery};
use apogee_rc::Dates;
use apogee_types::{ErrorKind, PageRequest, Room, RoomType, User};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Query, page};
use crate::reply::{ok, success};

const ALL: PageRequest = PageRequest { offset: 0, count: None };

fn contains(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| h.to_lowercase().contains(needle))
}

fn pick(full: &Value, keys: &[&str]) -> Value {
    let mut m = Map::new();
    for key in keys {
        if let Some(v) = full.get(*key) {
            m.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(m)
}

fn verify_parameters() -> ApiError {
    ApiError::failure("Please verify the parameters")
}

/// `GET directory?query={"text","type"}&sort={field:±1}`.
pub(crate) async fn directory(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let page = page(&state, &q).await?;
    let query: Map<String, Value> = match q.get("query") {
        Some(raw) => serde_json::from_str(raw)
            .map_err(|_| ApiError::typed("error-invalid-query", "Invalid query parameter"))?,
        None => Map::new(),
    };
    let sort: Map<String, Value> = match q.get("sort") {
        Some(raw) => serde_json::from_str(raw)
            .map_err(|_| ApiError::typed("error-invalid-sort", "Invalid sort parameter provided"))?,
        None => Map::new(),
    };
    if sort.len() > 1 {
        return Err(ApiError::failure("This method support only one \"sort\" parameter"));
    }
    let (sort_by, ascending) = match sort.iter().next() {
        Some((k, v)) => (k.clone(), v.as_i64() == Some(1)),
        None => ("name".to_owned(), true),
    };
    let text = query.get("text").and_then(Value::as_str).unwrap_or_default().trim().to_lowercase();
    let kind = query.get("type").and_then(Value::as_str).unwrap_or("channels");
    let room_sorts = ["name", "createdAt", "usersCount", "usernames", "lastMessage"];
    let user_sorts = ["name", "createdAt", "usersCount", "username", "email", "bio"];
    let valid_sort = match kind {
        "channels" | "teams" => room_sorts.contains(&sort_by.as_str()),
        "users" => user_sorts.contains(&sort_by.as_str()),
        _ => return Err(verify_parameters()),
    };
    if !valid_sort {
        return Err(verify_parameters());
    }
    let (skip, limit) = (page.offset as usize, page.count.map_or(usize::MAX, |c| c as usize));
    let (results, total): (Vec<Value>, usize) = match kind {
        "teams" => {
            // Rocket.Chat's `getTeams`: the main rooms of public teams and of the caller's private
            // ones, featured first, each with how many rooms carry its team id.
            let mut rooms: Vec<Room> =
                directory_rooms(&state, &caller, &text).await?.into_iter().filter(|r| r.team_main).collect();
            rooms.sort_by(|a, b| {
                let o = room_order(&sort_by, a, b);
                b.featured.cmp(&a.featured).then(if ascending { o } else { o.reverse() })
            });
            let total = rooms.len();
            let mut shown = Vec::new();
            for room in rooms.iter().skip(skip).take(limit) {
                let mut item = directory_room(room);
                let count = match room.team_id.as_deref() {
                    Some(team_id) => state.messaging.team_rooms_count(team_id).await?,
                    None => 0,
                };
                if let Value::Object(m) = &mut item {
                    if let Some(prid) = &room.prid {
                        m.insert("prid".into(), prid.clone().into());
                    }
                    if let Some(team_id) = &room.team_id {
                        m.insert("teamId".into(), team_id.clone().into());
                    }
                    m.insert("teamMain".into(), Value::Bool(true));
                    m.insert("roomsCount".into(), count.into());
                }
                shown.push(item);
            }
            (shown, total)
        }
        "channels" => {
            let mut rooms = directory_rooms(&state, &caller, &text).await?;
            rooms.sort_by(|a, b| {
                let o = room_order(&sort_by, a, b);
                if ascending { o } else { o.reverse() }
            });
            let total = rooms.len();
            let shown = rooms.iter().skip(skip).take(limit).map(directory_room).collect();
            (shown, total)
        }
        _ => {
            // Rocket.Chat's `browseChannels` answers nothing without both permissions.
            if !state.auth.roles_have_permission(&caller.principal.roles, "view-outside-room").await? {
                return Err(verify_parameters());
            }
            let users = match state
                .auth
                .list_users(
                    &caller.principal,
                    UserListQuery { text: (!text.is_empty()).then(|| text.clone()), page: None },
                    ALL,
                )
                .await
            {
                Ok(found) => found.items,
                Err(e) if e.kind == ErrorKind::PermissionDenied => return Err(verify_parameters()),
                Err(e) => return Err(e.into()),
            };
            let full = state
                .auth
                .roles_have_permission(&caller.principal.roles, "view-full-other-user-info")
                .await?;
            let mut users: Vec<User> = users.into_iter().filter(|u| u.active).collect();
            users.sort_by(|a, b| {
                let o = user_order(&sort_by, a, b);
                if ascending { o } else { o.reverse() }
            });
            let total = users.len();
            let shown = users.iter().skip(skip).take(limit).map(|u| directory_user(u, full)).collect();
            (shown, total)
        }
    };
    Ok(ok!("result" => results.clone(), "count" => results.len(), "offset" => page.offset, "total" => total))
}

/// Public channels and the caller's private groups whose name or display name contains `text`.
pub(crate) async fn directory_rooms(
    state: &GatewayState,
    caller: &Caller,
    text: &str,
) -> ApiResult<Vec<Room>> {
    // Without `view-c-room`, only the caller's groups.
    let public = match state.messaging.list_rooms(&caller.principal, RoomListScope::Public, None, ALL).await {
        Ok(page) => page.items,
        Err(e) if e.kind == ErrorKind::PermissionDenied => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let groups = state
        .messaging
        .list_rooms(&caller.principal, RoomListScope::Joined(vec![RoomType::Group]), None, ALL)
        .await?
        .items;
    Ok(public
        .into_iter()
        .chain(groups)
        .filter(|r| {
            text.is_empty() || contains(r.name.as_deref(), text) || contains(r.fname.as_deref(), text)
        })
        .collect())
}

fn room_order(by: &str, a: &Room, b: &Room) -> Ordering {
    match by {
        "createdAt" => a.ts.cmp(&b.ts),
        "usersCount" => a.users_count.cmp(&b.users_count),
        "lastMessage" => a.lm.cmp(&b.lm),
        _ => a.name.cmp(&b.name),
    }
}

fn user_order(by: &str, a: &User, b: &User) -> Ordering {
    match by {
        "createdAt" => a.created_at.cmp(&b.created_at),
        "username" => a.username.cmp(&b.username),
        "email" => a.emails.first().map(|e| &e.address).cmp(&b.emails.first().map(|e| &e.address)),
        "bio" => a.bio.cmp(&b.bio),
        _ => a.name.cmp(&b.name),
    }
}

fn directory_room(room: &Room) -> Value {
    let full = apogee_rc::room(room, Dates::Iso);
    pick(
        &full,
        &[
            "_id",
            "t",
            "description",
            "topic",
            "name",
            "fname",
            "lastMessage",
            "ts",
            "archived",
            "default",
            "featured",
            "usersCount",
        ],
    )
}

fn directory_user(user: &User, full: bool) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), user.id.clone().into());
    m.insert("username".into(), user.username.clone().into());
    if let Some(name) = &user.name {
        m.insert("name".into(), name.clone().into());
    }
    if let Some(nickname) = &user.nickname {
        m.insert("nickname".into(), nickname.clone().into());
    }
    if let Some(bio) = &user.bio {
        m.insert("bio".into(), bio.clone().into());
    }
    m.insert("createdAt".into(), Dates::Iso.value(user.created_at));
    if full {
        m.insert("emails".into(), json!(user.emails));
    }
    Value::Object(m)
}

/// `GET spotlight?query=`: `#` searches rooms only, `@` users only.
pub(crate) async fn spotlight(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let Some(raw) = q.get("query") else {
        return Err(ApiError::invalid_params("must have required property 'query'"));
    };
    let (mut want_users, mut want_rooms) = (true, true);
    let mut text = raw.as_str();
    if let Some(rest) = text.strip_prefix('#') {
        want_users = false;
        text = rest;
    }
    if let Some(rest) = text.strip_prefix('@') {
        want_rooms = false;
        text = rest;
    }
    let text = text.trim().to_lowercase();
    let users = if want_users { spotlight_users(&state, &caller, &text).await? } else { Vec::new() };
    let rooms = if want_rooms { spotlight_rooms(&state, &caller, &text).await? } else { Vec::new() };
    Ok(ok!("users" => users, "rooms" => rooms))
}

const SPOTLIGHT_LIMIT: usize = 5;

async fn spotlight_users(state: &GatewayState, caller: &Caller, text: &str) -> ApiResult<Vec<Value>> {
    let query = UserListQuery { text: (!text.is_empty()).then(|| text.to_owned()), page: None };
    let found = match state.auth.list_users(&caller.principal, query, ALL).await {
        Ok(found) => found.items,
        Err(e) if e.kind == ErrorKind::PermissionDenied => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut users: Vec<User> = found.into_iter().filter(|u| u.active).collect();
    // An exact username first, then by username.
    users.sort_by(|a, b| {
        (a.username.to_lowercase() != text, &a.username)
            .cmp(&(b.username.to_lowercase() != text, &b.username))
    });
    Ok(users
        .iter()
        .take(SPOTLIGHT_LIMIT)
        .map(|u| {
            let mut m = Map::new();
            m.insert("_id".into(), u.id.clone().into());
            m.insert("username".into(), u.username.clone().into());
            m.insert("name".into(), u.name.clone().unwrap_or_else(|| u.username.clone()).into());
            m.insert("status".into(), u.status.clone().into());
            if !u.status_text.is_empty() {
                m.insert("statusText".into(), u.status_text.clone().into());
            }
            if let Some(nickname) = &u.nickname {
                m.insert("nickname".into(), nickname.clone().into());
            }
            if let Some(etag) = &u.avatar_etag {
                m.insert("avatarETag".into(), etag.clone().into());
            }
            Value::Object(m)
        })
        .collect())
}

async fn spotlight_rooms(state: &GatewayState, caller: &Caller, text: &str) -> ApiResult<Vec<Value>> {
    let matches =
        |r: &Room| text.is_empty() || contains(r.name.as_deref(), text) || contains(r.fname.as_deref(), text);
    let joined = state
        .messaging
        .list_rooms(
            &caller.principal,
            RoomListScope::Joined(vec![RoomType::Channel, RoomType::Group]),
            None,
            ALL,
        )
        .await?
        .items;
    let outside =
        state.auth.roles_have_permission(&caller.principal.roles, "view-outside-room").await.unwrap_or(false);
    let public = if outside {
        match state.messaging.list_rooms(&caller.principal, RoomListScope::Public, None, ALL).await {
            Ok(page) => page.items,
            Err(e) if e.kind == ErrorKind::PermissionDenied => Vec::new(),
            Err(e) => return Err(e.into()),
        }
    } else {
        Vec::new()
    };
    let mut rooms: Vec<Room> = Vec::new();
    for room in joined.into_iter().chain(public) {
        if matches(&room) && !rooms.iter().any(|r| r.id == room.id) {
            rooms.push(room);
        }
    }
    let exact = |r: &Room| r.name.as_deref().map(str::to_lowercase).as_deref() != Some(text);
    rooms.sort_by(|a, b| (exact(a), &a.name).cmp(&(exact(b), &b.name)));
    Ok(rooms
        .iter()
        .take(SPOTLIGHT_LIMIT)
        .map(|r| {
            pick(
                &apogee_rc::room(r, Dates::Iso),
                &["_id", "t", "name", "fname", "teamMain", "joinCodeRequired", "lastMessage", "prid"],
            )
        })
        .collect())
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET shield.svg?type=&name=&channel=&icon=`: a badge.
pub(crate) async fn shield(State(state): State<GatewayState>, Query(q): Query) -> ApiResult {
    if !state.auth.setting_bool("API_Enable_Shields", true).await {
        return Err(ApiError::typed("error-endpoint-disabled", "This endpoint is disabled"));
    }
    let kind = q.get("type").map(String::as_str).filter(|t| !t.is_empty());
    let types = state.auth.setting_string("API_Shield_Types").await.unwrap_or_else(|| "*".into());
    if let Some(kind) = kind
        && types.trim() != "*"
        && !types.split(',').any(|t| t.trim() == kind)
    {
        return Err(ApiError::typed("error-shield-disabled", "This shield type is disabled"));
    }
    let hide_icon = q.get("icon").map(String::as_str) == Some("false");
    let name = q.get("name").map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if hide_icon && name.is_none() {
        return Err(ApiError::failure("Name cannot be empty when icon is hidden"));
    }
    let mut background = "#4c1";
    let text = match kind {
        Some("online") => format!("{} Online", state.auth.online_users().await?.len()),
        Some("channel") => match q.get("channel").filter(|c| !c.is_empty()) {
            Some(channel) => format!("#{channel}"),
            None => return Err(ApiError::failure("Shield channel is required for type \"channel\"")),
        },
        Some("user") => {
            let user = match (q.get("userId"), q.get("username")) {
                (Some(id), _) if !id.is_empty() => {
                    state.auth.find_user(apogee_api::UserSelector::Id(id.clone())).await?
                }
                (_, Some(n)) if !n.is_empty() => {
                    state.auth.find_user(apogee_api::UserSelector::Username(n.clone())).await?
                }
                _ => {
                    return Err(ApiError::typed(
                        "error-user-param-not-provided",
                        "The required \"userId\" or \"username\" param was not provided",
                    ));
                }
            };
            let Some(user) = user else {
                return Err(ApiError::typed(
                    "error-invalid-user",
                    "The required \"userId\" or \"username\" param provided does not match any users",
                ));
            };
            background = match user.status.as_str() {
                "online" => "#1fb31f",
                "away" => "#dc9b01",
                "busy" => "#bc2031",
                _ => "#a5a1a1",
            };
            let real = state.auth.setting_bool("UI_Use_Real_Name", false).await;
            match &user.name {
                Some(n) if real => n.clone(),
                _ => format!("@{}", user.username),
            }
        }
        _ => "JOIN CHAT".to_owned(),
    };
    let icon_size = if hide_icon { 7 } else { 24 };
    let left = name.as_ref().map_or(icon_size, |n| n.chars().count() * 6 + 7 + icon_size);
    let right = text.chars().count() * 6 + 20;
    let width = left + right;
    let (text, name) = (escape_xml(&text), name.as_deref().map(escape_xml));
    let site = state.auth.setting_string("Site_Url").await.unwrap_or_default();
    let icon = if hide_icon {
        String::new()
    } else {
        format!(
            r#"<image x="5" y="3" width="14" height="14" xlink:href="{}/assets/favicon.svg"/>"#,
            escape_xml(site.trim_end_matches('/'))
        )
    };
    let label = name.map_or_else(String::new, |n| {
        format!(
            r##"<text x="{icon_size}" y="15" fill="#010101" fill-opacity=".3">{n}</text><text x="{icon_size}" y="14">{n}</text>"##
        )
    });
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{width}" height="20"><linearGradient id="b" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><mask id="a"><rect width="{width}" height="20" rx="3" fill="#fff"/></mask><g mask="url(#a)"><path fill="#555" d="M0 0h{left}v20H0z"/><path fill="{background}" d="M{left} 0h{right}v20H{left}z"/><path fill="url(#b)" d="M0 0h{width}v20H0z"/></g>{icon}<g fill="#fff" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">{label}<text x="{tx}" y="15" fill="#010101" fill-opacity=".3">{text}</text><text x="{tx}" y="14">{text}</text></g></svg>"##,
        tx = left + 7,
    );
    let mut response = (StatusCode::OK, svg).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml;charset=utf-8"));
    Ok(response)
}

async fn password_policy(state: &GatewayState) -> Map<String, Value> {
    let key = |s: &str| format!("Accounts_Password_Policy_{s}");
    let enabled = state.auth.setting_bool(&key("Enabled"), false).await;
    let mut policy: Vec<Value> = Vec::new();
    if enabled {
        let min = state.auth.setting_i64(&key("MinLength"), 7).await;
        if min >= 1 {
            policy.push(json!(["get-password-policy-minLength", { "minLength": min }]));
        }
        let max = state.auth.setting_i64(&key("MaxLength"), -1).await;
        if max >= 1 {
            policy.push(json!(["get-password-policy-maxLength", { "maxLength": max }]));
        }
        let forbid = state.auth.setting_bool(&key("ForbidRepeatingCharacters"), true).await;
        if forbid {
            policy.push(json!(["get-password-policy-forbidRepeatingCharacters"]));
            let count = state.auth.setting_i64(&key("ForbidRepeatingCharactersCount"), 3).await;
            if count != 0 {
                policy.push(json!([
                    "get-password-policy-forbidRepeatingCharactersCount",
                    { "forbidRepeatingCharactersCount": count }
                ]));
            }
        }
        for (setting, name) in [
            ("AtLeastOneLowercase", "get-password-policy-mustContainAtLeastOneLowercase"),
            ("AtLeastOneUppercase", "get-password-policy-mustContainAtLeastOneUppercase"),
            ("AtLeastOneNumber", "get-password-policy-mustContainAtLeastOneNumber"),
            ("AtLeastOneSpecialCharacter", "get-password-policy-mustContainAtLeastOneSpecialCharacter"),
        ] {
            if state.auth.setting_bool(&key(setting), true).await {
                policy.push(json!([name]));
            }
        }
    }
    let mut m = Map::new();
    m.insert("enabled".into(), enabled.into());
    m.insert("policy".into(), Value::Array(policy));
    m
}

/// `GET pw.getPolicy`.
pub(crate) async fn pw_get_policy(State(state): State<GatewayState>) -> ApiResult {
    Ok(success(password_policy(&state).await))
}

/// `GET pw.getPolicyReset?token=`: no password-reset tokens are issued yet, so every token is
/// unknown.
pub(crate) async fn pw_get_policy_reset(Query(q): Query) -> ApiResult {
    if !q.contains_key("token") {
        return Err(ApiError::invalid_params("must have required property 'token'"));
    }
    Err(apogee_types::ServiceError::unauthorized().into())
}
