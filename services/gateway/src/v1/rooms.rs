//! The three room families — `channels.*` (t=c), `groups.*` (t=p), `im.*`/`dm.*` (t=d) — which
//! share their shapes and differ in the wrapper key and a few parsing quirks, plus `rooms.get`
//! and `rooms.info`.

use std::collections::HashMap;

use apogee_api::{
    CreateRoom, HistoryRequest, MemberFilter, RoomChange, RoomListScope, RoomSelector, UserSelector,
};
use apogee_rc::{Dates, iso};
use apogee_types::{Millis, Principal, Room, RoomType};
use axum::Extension;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str, date_param, page, truthy};
use crate::reply::{ok, success};

/// Which family a route belongs to, and the keys its responses use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    pub t: RoomType,
    /// `channel`, `group`, `room`.
    pub one: &'static str,
    /// `channels`, `groups`, `ims`.
    pub many: &'static str,
}

pub(crate) const CHANNELS: Family = Family { t: RoomType::Channel, one: "channel", many: "channels" };
pub(crate) const GROUPS: Family = Family { t: RoomType::Group, one: "group", many: "groups" };
pub(crate) const IMS: Family = Family { t: RoomType::Direct, one: "room", many: "ims" };

pub(crate) fn query_params(query: &HashMap<String, String>) -> Map<String, Value> {
    query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// Resolves `roomId` / `roomName` (and, for DMs, `username`) to a room the caller may see.
pub(crate) async fn resolve(
    state: &GatewayState,
    family: Family,
    who: &Principal,
    params: &Map<String, Value>,
) -> ApiResult<Room> {
    let id = body_str(params, "roomId").filter(|s| !s.is_empty()).map(str::to_owned);
    let name = body_str(params, "roomName").filter(|s| !s.is_empty()).map(str::to_owned);
    if family.t == RoomType::Direct
        && id.is_none()
        && let Some(username) = body_str(params, "username").filter(|s| !s.is_empty())
    {
        return Ok(state.messaging.create_direct(who, vec![username.to_owned()], false).await?);
    }
    if id.is_none() && name.is_none() {
        let message = if family.t == RoomType::Direct {
            "Body param \"roomId\" or \"username\" is required"
        } else {
            "The parameter \"roomId\" or \"roomName\" is required"
        };
        return Err(ApiError::typed("error-room-param-not-provided", message));
    }
    let selector = RoomSelector { id, name, family: Some(family.t) };
    match state.messaging.room_info(who, selector).await {
        // `findDirectMessageRoom` (`getRoomByNameOrIdWithOptionToJoin`) names neither the room
        // nor its absence: any id that is not a direct message is an `invalid-channel`.
        Err(e) if family.t == RoomType::Direct && e.kind == apogee_types::ErrorKind::NotFound => {
            Err(ApiError::typed("invalid-channel", ""))
        }
        other => Ok(other?),
    }
}

fn room_json(room: &Room) -> Value {
    apogee_rc::room(room, Dates::Iso)
}

pub(crate) fn one(family: Family, room: &Room) -> axum::response::Response {
    ok!(family.one => room_json(room))
}

pub(crate) async fn create(
    State(state): State<GatewayState>,
    Extension(family): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(name) = body_str(&body, "name").filter(|n| !n.is_empty()) else {
        let message = if family.t == RoomType::Channel {
            "Param \"name\" is required"
        } else {
            "Body param \"name\" is required"
        };
        return Err(ApiError::failure(message));
    };
    let members = match body.get("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| m.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::invalid_params("must be array of strings: 'members'"))?,
        Some(_) => return Err(ApiError::invalid_params("must be array: 'members'")),
    };
    let extra = body.get("extraData").and_then(Value::as_object).cloned().unwrap_or_default();
    let flag = |key: &str| {
        body.get(key).and_then(Value::as_bool).or_else(|| extra.get(key).and_then(Value::as_bool))
    };
    let req = CreateRoom {
        t: Some(family.t),
        name: name.to_owned(),
        members,
        read_only: flag("readOnly").unwrap_or(false),
        exclude_self: flag("excludeSelf").unwrap_or(false),
        topic: extra.get("topic").and_then(Value::as_str).map(str::to_owned),
        broadcast: flag("broadcast").unwrap_or(false),
        encrypted: flag("encrypted").unwrap_or(false),
        custom_fields: body.get("customFields").and_then(Value::as_object).cloned().unwrap_or_default(),
        team_id: extra.get("teamId").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned),
    };
    let room = state.messaging.create_room(&caller.principal, req).await?;
    Ok(one(family, &room))
}

/// `im.create` / `dm.create`: `{username}` or `{usernames: "a,b"}`.
pub(crate) async fn create_direct(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let usernames: Vec<String> = match (body_str(&body, "username"), body_str(&body, "usernames")) {
        (Some(u), _) => vec![u.to_owned()],
        (None, Some(list)) => {
            list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
        }
        (None, None) => {
            return Err(ApiError::invalid_params("must have required property 'username' or 'usernames'"));
        }
    };
    let exclude_self = body.get("excludeSelf").and_then(Value::as_bool).unwrap_or(false);
    let room = state.messaging.create_direct(&caller.principal, usernames, exclude_self).await?;
    let mut shown = room_json(&room);
    if let Value::Object(m) = &mut shown {
        m.insert("rid".into(), Value::String(room.id.clone()));
    }
    Ok(ok!("room" => shown))
}

pub(crate) async fn info(
    State(state): State<GatewayState>,
    Extension(family): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, family, &caller.principal, &query_params(&query)).await?;
    Ok(one(family, &room))
}

/// `channels.list` (every public channel), `groups.list` / `im.list` / `*.list.joined` (the
/// caller's), `groups.listAll` / `im.list.everyone` (admins).
pub(crate) async fn list(
    state: GatewayState,
    family: Family,
    caller: &Caller,
    query: &HashMap<String, String>,
    scope: RoomListScope,
) -> ApiResult {
    let page = page(&state, query).await?;
    let text = query.get("name").or_else(|| query.get("text")).filter(|t| !t.is_empty()).cloned();
    let found = state.messaging.list_rooms(&caller.principal, scope, text, page).await?;
    let rooms: Vec<Value> = found.items.iter().map(room_json).collect();
    Ok(
        ok!(family.many => rooms.clone(), "count" => rooms.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn list_public(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    list(state, f, &caller, &q, RoomListScope::Public).await
}

pub(crate) async fn list_joined(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    list(state, f, &caller, &q, RoomListScope::Joined(vec![f.t])).await
}

pub(crate) async fn list_all(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    list(state, f, &caller, &q, RoomListScope::All(vec![f.t])).await
}

pub(crate) async fn join(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let code = body_str(&body, "joinCode").map(str::to_owned);
    let room = state.messaging.join_room(&caller.principal, &room.id, code).await?;
    Ok(one(f, &room))
}

pub(crate) async fn leave(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let room = state.messaging.leave_room(&caller.principal, &room.id).await?;
    Ok(one(f, &room))
}

pub(crate) fn target_user(body: &Map<String, Value>) -> ApiResult<UserSelector> {
    match (body_str(body, "userId"), body_str(body, "username")) {
        (Some(id), _) if !id.is_empty() => Ok(UserSelector::Id(id.to_owned())),
        (_, Some(name)) if !name.is_empty() => Ok(UserSelector::Username(name.to_owned())),
        _ => Err(ApiError::typed(
            "error-user-param-not-provided",
            "The required \"userId\" or \"username\" param was not provided",
        )),
    }
}

pub(crate) async fn invite(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let room = state.messaging.add_member(&caller.principal, &room.id, target_user(&body)?).await?;
    Ok(one(f, &room))
}

/// `channels.addAll` / `groups.addAll`: `{roomId | roomName, activeUsersOnly?}`.
pub(crate) async fn add_all(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    // Only `channels.addAll` declares a schema; `groups.addAll` goes straight to the lookup.
    if f.t == RoomType::Channel {
        validate_add_all(&body)?;
    }
    let room = resolve(&state, f, &caller.principal, &body).await?;
    // The method's `check(activeUsersOnly, Boolean)`; absent means `false`.
    let active_only = match body.get("activeUsersOnly") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::failure(format!("Match error: Expected boolean, got {}", js_type(other))));
        }
    };
    let room = state.messaging.add_all_users(&caller.principal, &room.id, active_only).await?;
    Ok(one(f, &room))
}

/// The name Meteor's `check` gives a value's type in its errors.
fn js_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Object(_) => "object",
    }
}

/// `isChannelsAddAllProps`: exactly one of `{roomId, activeUsersOnly?}` and
/// `{roomName, activeUsersOnly?}` (boolean or null), nothing else; ajv reports each branch's first
/// error, then the `oneOf`.
fn validate_add_all(body: &Map<String, Value>) -> ApiResult<()> {
    let branch = |key: &str| -> Option<String> {
        match body.get(key) {
            None => return Some(format!("must have required property '{key}'")),
            Some(Value::String(_)) => {}
            Some(_) => return Some("must be string".into()),
        }
        if body.keys().any(|k| k != key && k != "activeUsersOnly") {
            return Some("must NOT have additional properties".into());
        }
        match body.get("activeUsersOnly") {
            None | Some(Value::Null | Value::Bool(_)) => None,
            Some(_) => Some("must be boolean".into()),
        }
    };
    match (branch("roomId"), branch("roomName")) {
        (None, Some(_)) | (Some(_), None) => Ok(()),
        (None, None) => Err(ApiError::invalid_params("must match exactly one schema in oneOf")),
        (Some(a), Some(b)) => {
            Err(ApiError::invalid_params(format!("{a}\n {b}\n must match exactly one schema in oneOf")))
        }
    }
}

pub(crate) async fn kick(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    // Rocket.Chat finds the room by id without checking access here: whoever may kick from any
    // room need not be able to read it, and the service decides.
    let rid = match body_str(&body, "roomId").filter(|id| !id.is_empty()) {
        Some(id) => match state.messaging.find_room(id).await? {
            Some(room) if room.t == f.t => room.id,
            _ => return Err(ApiError(room_not_found(f))),
        },
        None => resolve(&state, f, &caller.principal, &body).await?.id,
    };
    let room = state.messaging.remove_member(&caller.principal, &rid, target_user(&body)?).await?;
    // `groups.kick` answers with `success` alone.
    if f.t == RoomType::Group { Ok(ok!()) } else { Ok(one(f, &room)) }
}

fn room_not_found(f: Family) -> apogee_types::ServiceError {
    let what = if f.t == RoomType::Group { "group" } else { "channel" };
    apogee_types::ServiceError::invalid(
        "error-room-not-found",
        format!("The required \"roomId\" or \"roomName\" param provided does not match any {what}"),
    )
}

/// `*.history`, with 6.14's per-family parsing: `groups.history` counts 20 by default without
/// the upper clamp and shows thread replies unless told not to.
pub(crate) async fn history(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let latest = date_param(query.get("latest"), "error-invalid-date", "Invalid date for `latest`")?;
    let oldest = date_param(query.get("oldest"), "error-invalid-date", "Invalid date for `oldest`")?;
    let (offset, count, show_threads) = if f.t == RoomType::Group {
        let number = |k: &str| query.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let show = query.get("showThreadMessages").map(|v| v != "false").unwrap_or(true);
        (number("offset").unwrap_or(0), Some(number("count").unwrap_or(20)), show)
    } else {
        let p = page(&state, &query).await?;
        (p.offset, p.count, truthy(query.get("showThreadMessages").map(String::as_str)))
    };
    let req = HistoryRequest {
        latest,
        oldest,
        inclusive: truthy(query.get("inclusive").map(String::as_str)),
        offset,
        count,
        unreads: truthy(query.get("unreads").map(String::as_str)),
        show_thread_messages: show_threads,
        oldest_first: false,
    };
    let unreads = req.unreads;
    let history = state.messaging.history(&caller.principal, &room.id, req).await?;
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(history.messages.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect()),
    );
    if unreads {
        body.insert("unreadNotLoaded".into(), history.unread_not_loaded.unwrap_or(0).into());
        if let Some(first) = &history.first_unread {
            body.insert("firstUnread".into(), apogee_rc::message(first, Dates::Iso));
        }
    }
    Ok(success(body))
}

pub(crate) async fn messages(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let page = page(&state, &query).await?;
    let found = state.messaging.room_messages(&caller.principal, &room.id, page).await?;
    let messages: Vec<Value> = found.items.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect();
    Ok(
        ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn members(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let page = page(&state, &query).await?;
    let filter = MemberFilter {
        text: query.get("filter").filter(|f| !f.is_empty()).cloned(),
        status: query
            .get("status[]")
            .or_else(|| query.get("status"))
            .map(|s| s.split(',').map(str::to_owned).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
    };
    let found = state.messaging.members(&caller.principal, &room.id, filter, page).await?;
    let members: Vec<Value> = found
        .items
        .iter()
        .map(|u| {
            let mut m = json!({
                "_id": u.id, "username": u.username, "status": u.status,
                "utcOffset": u.utc_offset, "_updatedAt": iso(u.updated_at),
            });
            if let Some(name) = &u.name {
                m["name"] = Value::String(name.clone());
            }
            m
        })
        .collect();
    Ok(
        ok!("members" => members.clone(), "count" => members.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn counters(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let user_id = query.get("userId").filter(|u| !u.is_empty()).cloned();
    let c = state.messaging.counters(&caller.principal, &room.id, user_id).await?;
    let date = |d: Option<Millis>| d.map_or(Value::Null, |d| Value::String(iso(d)));
    Ok(ok!(
        "joined" => c.joined,
        "members" => c.members,
        "unreads" => c.unreads.map_or(Value::Null, Value::from),
        "unreadsFrom" => date(c.unreads_from),
        "msgs" => c.msgs,
        "latest" => date(c.latest),
        "userMentions" => c.user_mentions,
    ))
}

/// `setTopic`, `setDescription`, `setPurpose`, `setAnnouncement`: answer `{<key>: value}`.
async fn set_text(
    state: GatewayState,
    f: Family,
    caller: Caller,
    body: Map<String, Value>,
    key: &'static str,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let Some(value) = body.get(key) else {
        return Err(ApiError::failure(format!("The bodyParam \"{key}\" is required")));
    };
    let Some(value) = value.as_str().map(str::to_owned) else {
        return Err(ApiError::invalid_params(format!("must be string: '{key}'")));
    };
    let change = match key {
        "topic" => RoomChange::Topic(value.clone()),
        "description" => RoomChange::Description(value.clone()),
        "purpose" => RoomChange::Purpose(value.clone()),
        _ => RoomChange::Announcement(value.clone()),
    };
    state.messaging.update_room(&caller.principal, &room.id, change).await?;
    Ok(ok!(key => value))
}

pub(crate) async fn set_topic(
    State(s): State<GatewayState>,
    Extension(f): Extension<Family>,
    c: Caller,
    Body(b): Body,
) -> ApiResult {
    set_text(s, f, c, b, "topic").await
}

pub(crate) async fn set_description(
    State(s): State<GatewayState>,
    Extension(f): Extension<Family>,
    c: Caller,
    Body(b): Body,
) -> ApiResult {
    set_text(s, f, c, b, "description").await
}

pub(crate) async fn set_purpose(
    State(s): State<GatewayState>,
    Extension(f): Extension<Family>,
    c: Caller,
    Body(b): Body,
) -> ApiResult {
    set_text(s, f, c, b, "purpose").await
}

pub(crate) async fn set_announcement(
    State(s): State<GatewayState>,
    Extension(f): Extension<Family>,
    c: Caller,
    Body(b): Body,
) -> ApiResult {
    set_text(s, f, c, b, "announcement").await
}

pub(crate) async fn rename(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let Some(name) = body_str(&body, "name").filter(|n| !n.is_empty()) else {
        return Err(ApiError::failure("The bodyParam \"name\" is required"));
    };
    let room =
        state.messaging.update_room(&caller.principal, &room.id, RoomChange::Name(name.to_owned())).await?;
    Ok(one(f, &room))
}

pub(crate) async fn archive(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    state.messaging.update_room(&caller.principal, &room.id, RoomChange::Archived(true)).await?;
    Ok(ok!())
}

pub(crate) async fn unarchive(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    state.messaging.update_room(&caller.principal, &room.id, RoomChange::Archived(false)).await?;
    Ok(ok!())
}

pub(crate) async fn open(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let rid = if f.t == RoomType::Direct {
        // `im.open` checks access before existence: a room that is gone is simply not the caller's.
        let Some(rid) = body_str(&body, "roomId").filter(|r| !r.is_empty()) else {
            return Err(ApiError::typed(
                "error-room-param-not-provided",
                "Body param \"roomId\" is required",
            ));
        };
        rid.to_owned()
    } else {
        resolve(&state, f, &caller.principal, &body).await?.id
    };
    match state.messaging.set_open(&caller.principal, &rid, true).await {
        Err(e) if f.t == RoomType::Direct && e.kind == apogee_types::ErrorKind::NotFound => {
            Err(ApiError(apogee_types::ServiceError::unauthorized()))
        }
        other => other.map(|()| ok!()).map_err(ApiError::from),
    }
}

pub(crate) async fn close(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let rid = if f.t == RoomType::Direct {
        // `im.close` checks access before existence: a room that is gone is simply not the caller's.
        let Some(rid) = body_str(&body, "roomId").filter(|r| !r.is_empty()) else {
            return Err(ApiError::typed(
                "error-room-param-not-provided",
                "Body param \"roomId\" is required",
            ));
        };
        rid.to_owned()
    } else {
        resolve(&state, f, &caller.principal, &body).await?.id
    };
    match state.messaging.set_open(&caller.principal, &rid, false).await {
        Err(e) if f.t == RoomType::Direct && e.kind == apogee_types::ErrorKind::NotFound => {
            Err(ApiError(apogee_types::ServiceError::unauthorized()))
        }
        other => other.map(|()| ok!()).map_err(ApiError::from),
    }
}

pub(crate) async fn delete(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    state.messaging.delete_room(&caller.principal, &room.id).await?;
    Ok(ok!())
}

/// `rooms.get`: the caller's rooms, all or changed since `updatedSince`.
pub(crate) async fn rooms_get(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let since = date_param(
        query.get("updatedSince"),
        "error-updatedSince-param-invalid",
        "The \"updatedSince\" query parameter must be a valid date.",
    )?;
    let changes = state.messaging.rooms(&caller.principal, since).await?;
    let update: Vec<Value> = changes.update.iter().map(room_json).collect();
    let remove: Vec<Value> =
        changes.remove.iter().map(|(id, at)| json!({ "_id": id, "_deletedAt": iso(*at) })).collect();
    Ok(ok!("update" => update, "remove" => remove))
}

/// `rooms.info`: any room type, by `roomId` or `roomName`.
pub(crate) async fn rooms_info(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let id = query.get("roomId").filter(|s| !s.is_empty()).cloned();
    let name = query.get("roomName").filter(|s| !s.is_empty()).cloned();
    if id.is_none() && name.is_none() {
        return Err(ApiError::typed(
            "error-room-param-not-provided",
            "The parameter \"roomId\" or \"roomName\" is required",
        ));
    }
    let room =
        state.messaging.room_info(&caller.principal, RoomSelector { id, name, family: None }).await.map_err(
            |e| {
                if e.kind == apogee_types::ErrorKind::PermissionDenied {
                    apogee_types::ServiceError::not_allowed("not-allowed")
                } else {
                    e
                }
            },
        )?;
    let fields = match query.get("fields") {
        None => None,
        Some(f) => Some(
            serde_json::from_str::<Map<String, Value>>(f)
                .map_err(|_| ApiError::typed("error-invalid-fields", "Invalid fields parameter"))?,
        ),
    };
    let mut body = Map::new();
    let mut json_room = room_json(&room);
    if let (Some(fields), Value::Object(doc)) = (&fields, &mut json_room) {
        project(doc, fields);
    }
    body.insert("room".into(), json_room);
    // A discussion's parent room, else the team's main room (Rocket.Chat's `Team.getRoomInfo`).
    let mut parent = match &room.prid {
        Some(prid) => state.messaging.find_room(prid).await?.map(|p| {
            let mut v = summary(&p);
            v["prid"] = json!(p.prid);
            v["u"] = json!(p.u);
            v
        }),
        None => None,
    };
    if let Some(team_id) = &room.team_id {
        let selector = apogee_api::TeamSelector { id: Some(team_id.clone()), name: None };
        match state.messaging.team_info(&caller.principal, selector).await {
            Ok(team) => {
                body.insert(
                    "team".into(),
                    json!({"_id": team.id, "name": team.name, "roomId": team.room_id, "type": team.kind}),
                );
                if !room.team_main && parent.is_none() {
                    parent = state.messaging.find_room(&team.room_id).await?.map(|m| summary(&m));
                }
            }
            // A team the caller may not see is left out; the room itself was readable.
            Err(e)
                if matches!(
                    e.kind,
                    apogee_types::ErrorKind::Unauthenticated
                        | apogee_types::ErrorKind::PermissionDenied
                        | apogee_types::ErrorKind::NotFound
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(parent) = parent {
        body.insert("parent".into(), parent);
    }
    Ok(success(body))
}

/// `{_id, name, fname, t}` of a room, as `rooms.info` shows a parent.
fn summary(room: &Room) -> Value {
    json!({"_id": room.id, "name": room.name, "fname": room.fname, "t": room.t})
}

/// A Mongo-style projection: `{a: 1}` keeps `_id` and `a`, `{a: 0}` drops `a`.
fn project(doc: &mut Map<String, Value>, fields: &Map<String, Value>) {
    let on = |v: &Value| v.as_i64().is_some_and(|n| n != 0) || v.as_bool() == Some(true);
    if fields.values().any(on) {
        let keep_id = fields.get("_id").is_none_or(on);
        doc.retain(|k, _| fields.get(k).is_some_and(on) || (k == "_id" && keep_id));
    } else {
        for key in fields.keys() {
            doc.remove(key);
        }
    }
}
