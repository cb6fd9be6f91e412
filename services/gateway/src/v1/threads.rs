//! Threads and the other message routes of issue 6: `chat.getThreadsList`,
//! `chat.syncThreadsList`, `chat.getThreadMessages`, `chat.syncThreadMessages`,
//! `chat.followMessage`, `chat.unfollowMessage`, `chat.getDeletedMessages`, `chat.ignoreUser`,
//! `chat.reportMessage`.

use apogee_api::{Changes, ThreadListKind};
use apogee_rc::Dates;
use apogee_types::{Message, Millis};
use axum::extract::State;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page, truthy};
use crate::reply::ok;

fn rendered(messages: &[Message]) -> Vec<Value> {
    messages.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect()
}

fn changes_json(changes: &Changes<Message>) -> Value {
    let remove: Vec<Value> = changes
        .remove
        .iter()
        .map(|(id, at)| json!({ "_id": id, "_deletedAt": apogee_rc::iso(*at) }))
        .collect();
    json!({ "update": rendered(&changes.update), "remove": remove })
}

/// Rocket.Chat checks `Threads_enabled` before the parameters of these routes.
async fn ensure_enabled(state: &GatewayState) -> Result<(), ApiError> {
    if state.auth.setting_bool("Threads_enabled", true).await {
        Ok(())
    } else {
        Err(ApiError::typed("error-not-allowed", "Threads Disabled"))
    }
}

/// `updatedSince`, required and a date, as the two sync routes check it.
fn updated_since(query: &std::collections::HashMap<String, String>) -> Result<Millis, ApiError> {
    let Some(raw) = query.get("updatedSince").filter(|v| !v.is_empty()) else {
        return Err(ApiError::typed(
            "error-updatedSince-param-invalid",
            "The required param \"updatedSince\" is missing.",
        ));
    };
    apogee_rc::parse_date(&Value::String(raw.clone())).ok_or_else(|| {
        ApiError::typed(
            "error-updatedSince-param-invalid",
            "The \"updatedSince\" query parameter must be a valid date.",
        )
    })
}

pub(crate) async fn threads_list(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("rid").filter(|r| !r.is_empty()) else {
        return Err(ApiError::invalid_params("Match error: Expected string, got undefined"));
    };
    let kind = match query.get("type").map(String::as_str) {
        Some("following") => ThreadListKind::Following,
        Some("unread") => ThreadListKind::Unread,
        _ => ThreadListKind::All,
    };
    let page = page(&state, &query).await?;
    let text = query.get("text").cloned();
    let found = state.messaging.threads(&caller.principal, rid, kind, text, page).await?;
    let threads = rendered(&found.items);
    Ok(
        ok!("threads" => threads.clone(), "count" => threads.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn sync_threads_list(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    ensure_enabled(&state).await?;
    let Some(rid) = query.get("rid").filter(|r| !r.is_empty()) else {
        return Err(ApiError::typed(
            "error-room-id-param-not-provided",
            "The required \"rid\" query param is missing.",
        ));
    };
    let since = updated_since(&query)?;
    let changes = state.messaging.sync_threads(&caller.principal, rid, since).await?;
    Ok(ok!("threads" => changes_json(&changes)))
}

fn required_tmid(query: &std::collections::HashMap<String, String>) -> Result<&String, ApiError> {
    query.get("tmid").filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::typed("error-invalid-params", "The required \"tmid\" query param is missing.")
    })
}

pub(crate) async fn thread_messages(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    ensure_enabled(&state).await?;
    let tmid = required_tmid(&query)?;
    let page = page(&state, &query).await?;
    let found = state.messaging.thread_messages(&caller.principal, tmid, page).await?;
    let messages = rendered(&found.items);
    Ok(
        ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn sync_thread_messages(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    ensure_enabled(&state).await?;
    let tmid = required_tmid(&query)?;
    let since = updated_since(&query)?;
    let changes = state.messaging.sync_thread_messages(&caller.principal, tmid, since).await?;
    Ok(ok!("messages" => changes_json(&changes)))
}

async fn follow(
    state: GatewayState,
    caller: Caller,
    body: serde_json::Map<String, Value>,
    on: bool,
) -> ApiResult {
    let Some(mid) = body.get("mid").and_then(Value::as_str).filter(|m| !m.is_empty()) else {
        // A one-argument `Meteor.Error`: the text is the code.
        return Err(ApiError::typed("The required \"mid\" body param is missing.", ""));
    };
    state.messaging.follow_message(&caller.principal, mid, on).await?;
    Ok(ok!())
}

pub(crate) async fn follow_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    follow(state, caller, body, true).await
}

pub(crate) async fn unfollow_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    follow(state, caller, body, false).await
}

pub(crate) async fn deleted_messages(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("roomId").filter(|r| !r.is_empty()) else {
        return Err(ApiError::typed("The required \"roomId\" query param is missing.", ""));
    };
    let Some(raw) = query.get("since").filter(|s| !s.is_empty()) else {
        return Err(ApiError::typed("The required \"since\" query param is missing.", ""));
    };
    let since = apogee_rc::parse_date(&Value::String(raw.clone()))
        .ok_or_else(|| ApiError::typed("The \"since\" query parameter must be a valid date.", ""))?;
    let page = page(&state, &query).await?;
    let found = state.messaging.deleted_messages(&caller.principal, rid, since, page).await?;
    let messages: Vec<Value> = found.items.iter().map(|(id, _)| json!({ "_id": id })).collect();
    Ok(
        ok!("messages" => messages.clone(), "count" => messages.len(), "offset" => found.offset, "total" => found.total),
    )
}

pub(crate) async fn ignore_user(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("rid").filter(|r| !r.trim().is_empty()) else {
        return Err(ApiError::typed(
            "error-room-id-param-not-provided",
            "The required \"rid\" param is missing.",
        ));
    };
    let Some(user_id) = query.get("userId").filter(|r| !r.trim().is_empty()) else {
        return Err(ApiError::typed(
            "error-user-id-param-not-provided",
            "The required \"userId\" param is missing.",
        ));
    };
    let ignore = query.get("ignore").is_none_or(|v| truthy(Some(v)) || v == "1");
    state.messaging.ignore_user(&caller.principal, rid, user_id, ignore).await?;
    Ok(ok!())
}

pub(crate) async fn report_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let field = |key: &str| match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid_params(format!("must be string: '{key}'"))),
        None => Err(ApiError::invalid_params(format!("must have required property '{key}'"))),
    };
    let (mid, description) = (field("messageId")?, field("description")?);
    if mid.is_empty() {
        return Err(ApiError::failure("The required \"messageId\" param is missing."));
    }
    if description.is_empty() {
        return Err(ApiError::failure("The required \"description\" param is missing."));
    }
    state.messaging.report_message(&caller.principal, &mid, &description).await?;
    Ok(ok!())
}
