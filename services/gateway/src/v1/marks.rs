//! Pins, stars, mentions and search: `chat.pinMessage`, `chat.unPinMessage`,
//! `chat.starMessage`, `chat.unStarMessage`, `chat.getPinnedMessages`,
//! `chat.getStarredMessages`, `chat.getMentionedMessages`, `chat.search`.

use apogee_api::MarkedMessages;
use apogee_rc::Dates;
use apogee_types::Message;
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page};
use crate::reply::ok;

/// `messageId` from the body; Rocket.Chat words the error differently for pinning.
fn message_id(body: &Map<String, Value>, verb: &str) -> Result<String, ApiError> {
    match body.get("messageId").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
        Some(id) => Ok(id.to_owned()),
        None => Err(ApiError::typed(
            "error-messageid-param-not-provided",
            format!("The required \"messageId\" param is {verb}."),
        )),
    }
}

fn rendered(messages: &[Message]) -> Vec<Value> {
    messages.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect()
}

pub(crate) async fn pin(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let id = message_id(&body, "missing")?;
    let message = state.messaging.pin_message(&caller.principal, &id).await?;
    Ok(ok!("message" => apogee_rc::message(&message, Dates::Iso)))
}

pub(crate) async fn unpin(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let id = message_id(&body, "required")?;
    state.messaging.unpin_message(&caller.principal, &id).await?;
    Ok(ok!())
}

pub(crate) async fn star(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let id = message_id(&body, "required")?;
    state.messaging.star_message(&caller.principal, &id, true).await?;
    Ok(ok!())
}

pub(crate) async fn unstar(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let id = message_id(&body, "required")?;
    state.messaging.star_message(&caller.principal, &id, false).await?;
    Ok(ok!())
}

async fn marked(state: GatewayState, caller: Caller, query: Query, which: MarkedMessages) -> ApiResult {
    let Query(query) = query;
    let Some(rid) = query.get("roomId").filter(|r| !r.is_empty()) else {
        let code = match which {
            MarkedMessages::Pinned => "error-roomId-param-not-provided",
            MarkedMessages::Starred | MarkedMessages::Mentioned => "error-invalid-params",
        };
        return Err(ApiError::typed(code, "The required \"roomId\" query param is missing."));
    };
    let page = page(&state, &query).await?;
    let found = state.messaging.marked_messages(&caller.principal, rid, which, page).await?;
    let messages = rendered(&found.items);
    Ok(
        ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn pinned(State(state): State<GatewayState>, caller: Caller, query: Query) -> ApiResult {
    marked(state, caller, query, MarkedMessages::Pinned).await
}

pub(crate) async fn starred(State(state): State<GatewayState>, caller: Caller, query: Query) -> ApiResult {
    marked(state, caller, query, MarkedMessages::Starred).await
}

pub(crate) async fn mentioned(State(state): State<GatewayState>, caller: Caller, query: Query) -> ApiResult {
    marked(state, caller, query, MarkedMessages::Mentioned).await
}

pub(crate) async fn search(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("roomId").filter(|r| !r.is_empty()) else {
        return Err(ApiError::typed(
            "error-roomId-param-not-provided",
            "The required \"roomId\" query param is missing.",
        ));
    };
    let Some(text) = query.get("searchText").filter(|t| !t.is_empty()) else {
        return Err(ApiError::typed(
            "error-searchText-param-not-provided",
            "The required \"searchText\" query param is missing.",
        ));
    };
    let page = page(&state, &query).await?;
    let found = state.messaging.search_messages(&caller.principal, rid, text, page).await?;
    Ok(ok!("messages" => rendered(&found)))
}
