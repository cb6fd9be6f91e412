//! `rooms.*` routes beyond `rooms.get` / `rooms.info`: favorites, notification preferences,
//! name and membership checks, leaving and deleting by room id or name.

use apogee_api::{RoomChange, RoomListScope, RoomSelector, UserSelector};
use apogee_rc::Dates;
use apogee_types::{ErrorKind, PageRequest, Principal, Room, RoomType, ServiceError};
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str, page, truthy};
use crate::reply::ok;

/// `findRoomByIdOrName` of Rocket.Chat's `rooms.*` routes names every room a channel.
fn not_found() -> ApiError {
    ApiError::typed(
        "error-room-not-found",
        "The required \"roomId\" or \"roomName\" param provided does not match any channel",
    )
}

fn selector(params: &Map<String, Value>) -> ApiResult<RoomSelector> {
    let id = body_str(params, "roomId").map(str::to_owned);
    let name = body_str(params, "roomName").map(str::to_owned);
    if id.is_none() && name.is_none() {
        return Err(ApiError::typed(
            "error-roomid-param-not-provided",
            "The parameter \"roomId\" or \"roomName\" is required",
        ));
    }
    if id.as_deref().or(name.as_deref()).is_none_or(str::is_empty) {
        return Err(not_found());
    }
    Ok(RoomSelector { id, name, family: None })
}

/// A room the caller may see, by `roomId` or `roomName`.
async fn find(state: &GatewayState, who: &Principal, params: &Map<String, Value>) -> ApiResult<Room> {
    let selector = selector(params)?;
    state
        .messaging
        .room_info(who, selector)
        .await
        .map_err(|e| if e.error_type == "error-room-not-found" { not_found() } else { ApiError(e) })
}

/// `POST rooms.favorite {roomId|roomName, favorite}`.
pub(crate) async fn favorite(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(favorite) = body.get("favorite") else {
        return Err(ApiError::failure("The 'favorite' param is required"));
    };
    let favorite = match favorite {
        Value::Bool(b) => *b,
        Value::Null => false,
        _ => {
            return Err(ApiError::typed("error-invalid-favorite", "Match error: Expected boolean"));
        }
    };
    let selector = selector(&body)?;
    state.messaging.set_favorite(&caller.principal, selector, favorite).await?;
    Ok(ok!())
}

/// `POST rooms.saveNotification {roomId, notifications: {field: value}}`.
pub(crate) async fn save_notification(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(rid) = body_str(&body, "roomId").filter(|s| !s.is_empty()) else {
        return Err(ApiError::failure("The 'roomId' param is required"));
    };
    let Some(notifications) = body.get("notifications").and_then(Value::as_object).filter(|n| !n.is_empty())
    else {
        return Err(ApiError::failure("The 'notifications' param is required"));
    };
    for (field, value) in notifications {
        let Some(value) = value.as_str() else {
            return Err(ApiError(ServiceError::invalid("", "Match error: Expected string")));
        };
        state.messaging.save_notification(&caller.principal, rid, field, value).await?;
    }
    Ok(ok!())
}

/// `GET rooms.nameExists?roomName=`.
pub(crate) async fn name_exists(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(name) = query.get("roomName") else {
        return Err(ApiError::invalid_params("must have required property 'roomName'"));
    };
    let exists = state.messaging.room_name_exists(&caller.principal, name).await?;
    Ok(ok!("exists" => exists))
}

/// `POST rooms.leave {roomId|roomName}`.
pub(crate) async fn leave(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    // A private group the caller cannot see is one they are not in (Rocket.Chat finds it first).
    let room = find(&state, &caller.principal, &body).await.map_err(|e| {
        if e.0.kind == ErrorKind::PermissionDenied {
            ApiError::typed("error-user-not-in-room", "You are not in this room")
        } else {
            e
        }
    })?;
    state.messaging.leave_room(&caller.principal, &room.id).await?;
    Ok(ok!())
}

/// `POST rooms.delete {roomId}`.
pub(crate) async fn delete(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let Some(rid) = body_str(&body, "roomId").filter(|s| !s.is_empty()) else {
        return Err(ApiError::failure("The 'roomId' param is required"));
    };
    state.messaging.delete_room(&caller.principal, rid).await.map_err(|e| {
        if e.error_type == "error-room-not-found" {
            ApiError::typed("error-invalid-room", "Invalid room")
        } else {
            ApiError(e)
        }
    })?;
    Ok(ok!())
}

/// `GET rooms.isMember?roomId=&userId=|username=`.
pub(crate) async fn is_member(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let param = |key: &str| query.get(key).filter(|s| !s.is_empty()).cloned();
    let (Some(rid), user) = (param("roomId"), param("userId")) else {
        return Err(ApiError::invalid_params("must have required property 'roomId'"));
    };
    let user = match (user, param("username")) {
        (Some(id), None) => UserSelector::Id(id),
        (None, Some(username)) => UserSelector::Username(username),
        (None, None) => {
            return Err(ApiError::invalid_params("must have required property 'userId'"));
        }
        (Some(_), Some(_)) => return Err(ApiError::invalid_params("must match exactly one schema in oneOf")),
    };
    let is_member = state.messaging.is_member(&caller.principal, &rid, user).await.map_err(|e| {
        if e.kind == ErrorKind::PermissionDenied {
            ApiError(ServiceError::unauthorized())
        } else {
            ApiError(e)
        }
    })?;
    Ok(ok!("isMember" => is_member))
}

/// How many rooms the autocomplete routes return.
const AUTOCOMPLETE_LIMIT: usize = 10;

/// `view-room-administration` refusals of the admin room lists are plain `Error`s in Rocket.Chat.
fn not_authorized(e: ServiceError) -> ApiError {
    if e.kind == ErrorKind::PermissionDenied {
        ApiError::failure("error-not-authorized")
    } else {
        ApiError(e)
    }
}

/// The fields the autocomplete routes project.
fn item(room: &Room, encrypted: bool) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), room.id.clone().into());
    if let Some(name) = &room.name {
        m.insert("name".into(), name.clone().into());
    }
    if let Some(fname) = room.fname.as_ref().or(room.name.as_ref()) {
        m.insert("fname".into(), fname.clone().into());
    }
    m.insert("t".into(), room.t.as_str().into());
    if encrypted {
        m.insert("encrypted".into(), room.encrypted.into());
    }
    Value::Object(m)
}

/// The `name` of a `selector={"name": …}` query parameter; `None` when it is missing.
fn selector_name(query: &std::collections::HashMap<String, String>) -> ApiResult<Option<String>> {
    let Some(raw) = query.get("selector").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let parsed: Value = serde_json::from_str(raw).map_err(|_| ApiError::failure("Invalid selector"))?;
    Ok(Some(parsed.get("name").and_then(Value::as_str).unwrap_or_default().to_owned()))
}

fn selector_required() -> ApiError {
    ApiError::failure("The 'selector' param is required")
}

fn matches(room: &Room, text: &str, prefix: bool) -> bool {
    let text = text.to_lowercase();
    [room.name.as_deref(), room.fname.as_deref()].into_iter().flatten().any(|n| {
        let n = n.to_lowercase();
        if prefix { n.starts_with(&text) } else { n.contains(&text) }
    })
}

fn by_name(rooms: &mut [Room]) {
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
}

const EVERYTHING: PageRequest = PageRequest { offset: 0, count: None };

/// `GET rooms.adminRooms?filter=&types[]=&offset=&count=`.
pub(crate) async fn admin_rooms(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let page = page(&state, &query).await?;
    let types: Vec<RoomType> = query
        .get("types[]")
        .or_else(|| query.get("types"))
        .map(|t| t.split(',').filter_map(|t| RoomType::parse(t.trim())).collect())
        .unwrap_or_default();
    let text = query.get("filter").map(|f| f.trim().to_owned()).filter(|f| !f.is_empty());
    let found = state
        .messaging
        .list_rooms(&caller.principal, RoomListScope::All(types), text, page)
        .await
        .map_err(not_authorized)?;
    let rooms: Vec<Value> = found.items.iter().map(|r| apogee_rc::room(r, Dates::Iso)).collect();
    Ok(ok!("count" => rooms.len(), "rooms" => rooms, "offset" => found.offset, "total" => found.total))
}

/// `GET rooms.autocomplete.adminRooms?selector={"name":…}`: rooms whose name starts with it.
pub(crate) async fn autocomplete_admin_rooms(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let name = selector_name(&query)?.ok_or_else(selector_required)?;
    let found = state
        .messaging
        .list_rooms(&caller.principal, RoomListScope::All(vec![]), None, EVERYTHING)
        .await
        .map_err(not_authorized)?;
    let mut rooms: Vec<Room> = found.items.into_iter().filter(|r| matches(r, &name, true)).collect();
    by_name(&mut rooms);
    let items: Vec<Value> = rooms.iter().take(AUTOCOMPLETE_LIMIT).map(|r| item(r, true)).collect();
    Ok(ok!("items" => items))
}

/// The caller's channels and groups whose name contains `name`, by name.
async fn own_rooms(state: &GatewayState, who: &Principal, name: &str) -> ApiResult<Vec<Room>> {
    let scope = RoomListScope::Joined(vec![RoomType::Channel, RoomType::Group]);
    let found = state.messaging.list_rooms(who, scope, None, EVERYTHING).await?;
    let mut rooms: Vec<Room> = found.items.into_iter().filter(|r| matches(r, name, false)).collect();
    by_name(&mut rooms);
    Ok(rooms)
}

/// `GET rooms.autocomplete.channelAndPrivate?selector={"name":…}`.
pub(crate) async fn autocomplete_channel_and_private(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let name = selector_name(&query)?.ok_or_else(selector_required)?;
    let rooms = own_rooms(&state, &caller.principal, &name).await?;
    let items: Vec<Value> = rooms.iter().take(AUTOCOMPLETE_LIMIT).map(|r| item(r, false)).collect();
    Ok(ok!("items" => items))
}

/// `GET rooms.autocomplete.channelAndPrivate.withPagination?selector=…&offset=&count=`.
pub(crate) async fn autocomplete_channel_and_private_paged(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let page = page(&state, &query).await?;
    let name = selector_name(&query)?.ok_or_else(selector_required)?;
    let rooms = own_rooms(&state, &caller.principal, &name).await?;
    let total = rooms.len();
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let count = page.count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let items: Vec<Value> = rooms.iter().skip(offset).take(count).map(|r| item(r, false)).collect();
    Ok(ok!("count" => items.len(), "items" => items, "offset" => page.offset, "total" => total))
}

/// `GET rooms.autocomplete.availableForTeams?name=`: channels and groups the caller owns whose
/// name starts with `name` (no room belongs to a team here).
pub(crate) async fn autocomplete_available_for_teams(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let name = query.get("name").cloned().unwrap_or_default();
    let subs = state.messaging.subscriptions(&caller.principal, None).await?.update;
    let owned: Vec<String> = subs
        .into_iter()
        .filter(|s| s.roles.iter().any(|r| r == "owner") && s.t != RoomType::Direct)
        .map(|s| s.rid)
        .collect();
    let scope = RoomListScope::Joined(vec![RoomType::Channel, RoomType::Group]);
    let found = state.messaging.list_rooms(&caller.principal, scope, None, EVERYTHING).await?;
    let mut rooms: Vec<Room> =
        found.items.into_iter().filter(|r| owned.contains(&r.id) && matches(r, &name, true)).collect();
    by_name(&mut rooms);
    let items: Vec<Value> = rooms.iter().take(AUTOCOMPLETE_LIMIT).map(|r| item(r, false)).collect();
    Ok(ok!("items" => items))
}

/// Every setting Rocket.Chat's `saveRoomSettings` knows. Those without a `RoomChange` here
/// (system messages, retention, encryption, side panel) are refused, never silently
/// dropped.
const ROOM_SETTINGS: [&str; 22] = [
    "roomAvatar",
    "featured",
    "roomName",
    "roomTopic",
    "roomAnnouncement",
    "roomCustomFields",
    "roomDescription",
    "roomType",
    "readOnly",
    "reactWhenReadOnly",
    "systemMessages",
    "default",
    "joinCode",
    "retentionEnabled",
    "retentionMaxAge",
    "retentionExcludePinned",
    "retentionFilesOnly",
    "retentionIgnoreThreads",
    "retentionOverrideGlobal",
    "encrypted",
    "favorite",
    "sidepanel",
];

fn room_change(key: &str, value: &Value) -> Option<RoomChange> {
    let text = || match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let flag = || value.as_bool().unwrap_or_else(|| truthy(value.as_str()));
    Some(match key {
        "roomName" => RoomChange::Name(text()),
        "roomTopic" => RoomChange::Topic(text()),
        "roomDescription" => RoomChange::Description(text()),
        "roomAnnouncement" => RoomChange::Announcement(text()),
        "readOnly" => RoomChange::ReadOnly(flag()),
        "default" => RoomChange::Default(flag()),
        "featured" => RoomChange::Featured(flag()),
        "reactWhenReadOnly" => RoomChange::ReactWhenReadOnly(flag()),
        "favorite" => {
            let part = |k: &str| value.get(k).and_then(Value::as_bool).unwrap_or(false);
            RoomChange::Favorite(part("favorite") && part("defaultValue"))
        }
        "joinCode" => RoomChange::JoinCode(text()),
        "roomType" => RoomChange::Type(RoomType::parse(value.as_str()?)?),
        "roomCustomFields" => RoomChange::CustomFields(value.as_object()?.clone()),
        "sidepanel" => RoomChange::Sidepanel(Some(value.clone()).filter(|v| !v.is_null())),
        _ => return None,
    })
}

/// `POST rooms.saveRoomSettings {rid, roomName?, roomTopic?, …}` → `{rid}`.
pub(crate) async fn save_room_settings(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(rid) = body_str(&body, "rid") else {
        return Err(ApiError::typed("error-invalid-room", "Invalid room"));
    };
    let settings: Vec<(&String, &Value)> = body.iter().filter(|(k, _)| k.as_str() != "rid").collect();
    if !settings.iter().all(|(k, _)| ROOM_SETTINGS.contains(&k.as_str())) {
        return Err(ApiError::typed("error-invalid-settings", "Invalid settings provided"));
    }
    if let Some((_, value)) = settings.iter().find(|(k, _)| k.as_str() == "roomType")
        && value.as_str().and_then(RoomType::parse).is_none_or(|t| t == RoomType::Direct)
    {
        return Err(ApiError::typed("error-invalid-room-type", "error-invalid-room-type"));
    }
    // The avatar's bytes go to the files service, which has the messaging service record it.
    let mut avatar = None;
    let mut changes = Vec::with_capacity(settings.len());
    for (key, value) in &settings {
        if key.as_str() == "roomAvatar" {
            avatar = match value {
                Value::String(s) if !s.is_empty() => Some(Some(s.clone())),
                Value::Null | Value::String(_) => Some(None),
                _ => return Err(ApiError::typed("error-invalid-settings", "Invalid settings provided")),
            };
            continue;
        }
        match room_change(key, value) {
            Some(change) => changes.push(change),
            None => {
                return Err(ApiError::typed(
                    "error-invalid-settings",
                    format!("The setting {key} is not supported by this server yet"),
                ));
            }
        }
    }
    if !changes.is_empty() || avatar.is_none() {
        state.messaging.save_room_settings(&caller.principal, rid, changes).await?;
    }
    if let Some(data_url) = avatar {
        let files = state.files.as_ref().ok_or_else(|| {
            ApiError(apogee_types::ServiceError::new(
                apogee_types::ErrorKind::Unavailable,
                "",
                "the files service is not configured",
            ))
        })?;
        files.set_room_avatar(&caller.principal, rid, data_url).await?;
    }
    Ok(ok!("rid" => rid))
}

async fn mute(state: GatewayState, caller: Caller, body: Map<String, Value>, muted: bool) -> ApiResult {
    let param = |key: &str| body_str(&body, key).filter(|s| !s.is_empty()).map(str::to_owned);
    let Some(rid) = param("roomId") else {
        return Err(ApiError::invalid_params("must have required property 'roomId'"));
    };
    let user = match (param("userId"), param("username")) {
        (Some(id), None) => UserSelector::Id(id),
        (None, Some(username)) => UserSelector::Username(username),
        (None, None) => return Err(ApiError::invalid_params("must have required property 'userId'")),
        (Some(_), Some(_)) => return Err(ApiError::invalid_params("must match exactly one schema in oneOf")),
    };
    state.messaging.set_muted(&caller.principal, &rid, user, muted).await?;
    Ok(ok!())
}

/// `POST rooms.muteUser {roomId, userId|username}`.
pub(crate) async fn mute_user(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    mute(state, caller, body, true).await
}

/// `POST rooms.unmuteUser {roomId, userId|username}`.
pub(crate) async fn unmute_user(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    mute(state, caller, body, false).await
}

/// `POST rooms.cleanHistory {roomId, latest, oldest, inclusive?, limit?, excludePinned?,
/// filesOnly?, ignoreThreads?, ignoreDiscussion?, users?}`: `{_id, count}`.
pub(crate) async fn clean_history(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    const KNOWN: [&str; 10] = [
        "roomId",
        "latest",
        "oldest",
        "inclusive",
        "excludePinned",
        "filesOnly",
        "users",
        "limit",
        "ignoreDiscussion",
        "ignoreThreads",
    ];
    for key in ["roomId", "latest", "oldest"] {
        crate::extract::require_str(&body, key)?;
    }
    if body.keys().any(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    let flag = |key: &str| -> ApiResult<bool> {
        match body.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::invalid_params(format!("must be boolean: '{key}'"))),
        }
    };
    let (inclusive, exclude_pinned, files_only) =
        (flag("inclusive")?, flag("excludePinned")?, flag("filesOnly")?);
    let (ignore_threads, ignore_discussion) = (flag("ignoreThreads")?, flag("ignoreDiscussion")?);
    let limit = match body.get("limit") {
        None => 0,
        Some(Value::Number(n)) => n.as_f64().filter(|n| *n > 0.0).map_or(0, |n| n as u64),
        Some(_) => return Err(ApiError::invalid_params("must be number: 'limit'")),
    };
    let from_users = match body.get("users") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|u| u.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::invalid_params("must be string: 'users'"))?,
        Some(_) => return Err(ApiError::invalid_params("must be array: 'users'")),
    };
    let rid = body_str(&body, "roomId").unwrap_or_default();
    let room = state.messaging.find_room(rid).await?.ok_or_else(not_found)?;
    let date = |key: &str| -> ApiResult<apogee_types::Millis> {
        body.get(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .and_then(apogee_rc::parse_date)
            .ok_or_else(|| ApiError::failure(format!("Body parameter \"{key}\" is required.")))
    };
    let req = apogee_api::CleanHistory {
        latest: date("latest")?,
        oldest: date("oldest")?,
        inclusive,
        limit,
        exclude_pinned,
        files_only,
        ignore_threads,
        ignore_discussion,
        from_users,
    };
    let count = state.messaging.clean_history(&caller.principal, &room.id, req).await?;
    Ok(ok!("_id" => room.id, "count" => count))
}
