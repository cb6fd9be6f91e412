//! `rooms.createDiscussion`, `rooms.getDiscussions`, `chat.getDiscussions`.

use apogee_api::{CreateDiscussion, RoomSelector};
use apogee_rc::Dates;
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page};
use crate::reply::ok;

/// The discussion's fields from a request body, checked as Rocket.Chat checks them.
pub(crate) fn create_request(body: &Map<String, Value>) -> Result<CreateDiscussion, ApiError> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let Some(prid) = text("prid") else {
        return Err(ApiError::failure("Body parameter \"prid\" is required."));
    };
    let Some(name) = text("t_name") else {
        return Err(ApiError::failure("Body parameter \"t_name\" is required."));
    };
    let users = match body.get("users") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(users)) => {
            users.iter().filter_map(Value::as_str).filter(|u| !u.is_empty()).map(str::to_owned).collect()
        }
        Some(_) => return Err(ApiError::failure("Body parameter \"users\" must be an array.")),
    };
    let encrypted = match body.get("encrypted") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::failure("Body parameter \"encrypted\" must be a boolean when included."));
        }
    };
    Ok(CreateDiscussion {
        prid,
        pmid: text("pmid"),
        name,
        reply: text("reply"),
        users,
        encrypted,
        topic: text("topic"),
    })
}

/// The created room with `rid`, as Rocket.Chat answers it.
pub(crate) fn discussion_json(room: &apogee_types::Room, dates: Dates) -> Value {
    let mut out = apogee_rc::room(room, dates);
    out["rid"] = Value::String(room.id.clone());
    out
}

pub(crate) async fn create(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let req = create_request(&body)?;
    let room = state.messaging.create_discussion(&caller.principal, req).await?;
    Ok(ok!("discussion" => discussion_json(&room, Dates::Iso)))
}

pub(crate) async fn of_room(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let pick = |key: &str| query.get(key).filter(|v| !v.trim().is_empty()).cloned();
    let selector = match (pick("roomId"), pick("roomName")) {
        (None, None) => {
            return Err(ApiError::typed(
                "error-roomid-param-not-provided",
                "The parameter \"roomId\" or \"roomName\" is required",
            ));
        }
        (id, name) => RoomSelector { id, name, family: None },
    };
    let page = page(&state, &query).await?;
    let found = state.messaging.room_discussions(&caller.principal, selector, page).await?;
    let rooms: Vec<Value> = found.items.iter().map(|r| apogee_rc::room(r, Dates::Iso)).collect();
    Ok(
        ok!("discussions" => rooms.clone(), "count" => rooms.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn messages(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("roomId").filter(|r| !r.is_empty()) else {
        return Err(ApiError::typed(
            "error-invalid-params",
            "The required \"roomId\" query param is missing.",
        ));
    };
    let page = page(&state, &query).await?;
    let text = query.get("text").map(String::as_str).unwrap_or_default();
    let found = state.messaging.discussion_messages(&caller.principal, rid, text, page).await?;
    let messages: Vec<Value> = found.items.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect();
    Ok(
        ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total),
    )
}
