//! Room reads beside the ordinary member ones: `channels.online` / `groups.online`,
//! `channels.anonymousread`, `im.messages.others` / `dm.messages.others` and
//! `channels.getAllUserMentionsByChannel`.

use apogee_api::{MemberFilter, RoomSelector};
use apogee_rc::Dates;
use apogee_types::{ErrorKind, Message, Page, PageRequest, RoomType, ServiceError};
use axum::Extension;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Query, page};
use crate::reply::ok;
use crate::v1::rooms::Family;

fn messages_page(found: &Page<Message>) -> axum::response::Response {
    let messages: Vec<Value> = found.items.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect();
    ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total)
}

/// `*.online`: the room's members who are not offline, `[{_id, username}]`. The room comes from
/// the JSON `query` parameter, matched on `_id` and `name` (other fields match no room).
pub(crate) async fn online(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let query: Map<String, Value> = match q.get("query") {
        None => Map::new(),
        Some(raw) => serde_json::from_str(raw).map_err(|_| {
            ApiError::typed("error-invalid-query", format!("Invalid query parameter provided: \"{raw}\""))
        })?,
    };
    if query.is_empty() {
        return Err(ApiError::failure("Invalid query"));
    }
    let missing = || {
        ApiError::failure(if f.t == RoomType::Group {
            "Group does not exists"
        } else {
            "Channel does not exists"
        })
    };
    let text = |key: &str| query.get(key).and_then(Value::as_str).map(str::to_owned);
    let (id, name) = (text("_id"), text("name"));
    let supported = query.keys().all(|k| k == "_id" || k == "name")
        && query.values().all(Value::is_string)
        && (id.is_some() || name.is_some());
    if !supported {
        return Err(missing());
    }
    // Existence and type first, access after, as Rocket.Chat finds the room before checking.
    if let Some(id) = &id
        && state.messaging.find_room(id).await?.is_none_or(|r| r.t != f.t)
    {
        return Err(missing());
    }
    let denied = |e: ServiceError| match e.kind {
        ErrorKind::NotFound => missing(),
        ErrorKind::PermissionDenied => ApiError(ServiceError::not_allowed("Not Allowed")),
        _ => ApiError(e),
    };
    let room = state
        .messaging
        .room_info(&caller.principal, RoomSelector { id, name: name.clone(), family: None })
        .await
        .map_err(denied)?;
    if room.t != f.t || name.is_some_and(|n| room.name.as_deref() != Some(n.as_str())) {
        return Err(missing());
    }
    let filter =
        MemberFilter { text: None, status: vec!["online".to_owned(), "away".to_owned(), "busy".to_owned()] };
    let everyone = PageRequest { offset: 0, count: None };
    let found =
        state.messaging.members(&caller.principal, &room.id, filter, everyone).await.map_err(denied)?;
    let online: Vec<Value> =
        found.items.iter().map(|u| json!({ "_id": u.id, "username": u.username })).collect();
    Ok(ok!("online" => online))
}

/// `channels.anonymousread`: no login needed; the service checks the setting.
pub(crate) async fn anonymous_read(State(state): State<GatewayState>, Query(q): Query) -> ApiResult {
    let page = page(&state, &q).await?;
    // Rocket.Chat picks `roomId` when the key is there at all, even empty.
    let selector = match (q.get("roomId"), q.get("roomName")) {
        (Some(id), _) => RoomSelector { id: Some(id.clone()), name: None, family: Some(RoomType::Channel) },
        (None, name) => RoomSelector { id: None, name: name.cloned(), family: Some(RoomType::Channel) },
    };
    let found = state.messaging.anonymous_messages(selector, page).await?;
    Ok(messages_page(&found))
}

/// `im.messages.others` / `dm.messages.others`: an administrator reads any direct messages.
pub(crate) async fn messages_others(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let page = page(&state, &q).await?;
    let rid = q.get("roomId").cloned().unwrap_or_default();
    let found = state.messaging.others_messages(&caller.principal, &rid, page).await?;
    Ok(messages_page(&found))
}

/// `channels.getAllUserMentionsByChannel`: `{mentions, count, offset, total}`, oldest first
/// unless `sort` says `{"ts": -1}`.
pub(crate) async fn mentions_by_channel(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(q): Query,
) -> ApiResult {
    let Some(rid) = q.get("roomId").cloned() else {
        return Err(ApiError::invalid_params("must have required property 'roomId'"));
    };
    let page = page(&state, &q).await?;
    let newest_first = q
        .get("sort")
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        .and_then(|s| s.get("ts").and_then(Value::as_i64))
        == Some(-1);
    let found = state.messaging.mentions_in_room(&caller.principal, &rid, !newest_first, page).await?;
    let mentions: Vec<Value> = found.items.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect();
    Ok(
        ok!("mentions" => mentions.clone(), "count" => mentions.len(), "offset" => found.offset, "total" => found.total),
    )
}
