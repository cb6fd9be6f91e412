//! `subscriptions.get`, `subscriptions.getOne`, `subscriptions.read`.

use apogee_rc::{Dates, iso};
use axum::extract::State;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, date_param};
use crate::reply::ok;

pub(crate) async fn get(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    // The route's schema allows `updatedSince` and nothing else.
    if query.keys().any(|k| k != "updatedSince") {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    let since = date_param(
        query.get("updatedSince"),
        "error-roomId-param-invalid",
        "The \"lastUpdate\" query parameter must be a valid date.",
    )?;
    let changes = state.messaging.subscriptions(&caller.principal, since).await?;
    let update: Vec<Value> = changes.update.iter().map(|s| apogee_rc::subscription(s, Dates::Iso)).collect();
    let remove: Vec<Value> =
        changes.remove.iter().map(|(id, at)| json!({ "_id": id, "_deletedAt": iso(*at) })).collect();
    Ok(ok!("update" => update, "remove" => remove))
}

pub(crate) async fn get_one(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(rid) = query.get("roomId").filter(|r| !r.is_empty()) else {
        return Err(ApiError::invalid_params("must have required property 'roomId'"));
    };
    let sub = state.messaging.subscription(&caller.principal, rid).await?;
    Ok(ok!("subscription" => sub.map_or(Value::Null, |s| apogee_rc::subscription(&s, Dates::Iso))))
}

pub(crate) async fn read(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    if body.contains_key("rid") && body.contains_key("roomId") && body.get("rid") != body.get("roomId") {
        return Err(ApiError::invalid_params("must match exactly one schema in oneOf"));
    }
    // Rocket.Chat's validator coerces a number or boolean to the string the schema asks for
    // (`{rid: 12345}` reads room "12345", which then has no subscription).
    let coerced = |key: &str| match body.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        _ => None,
    };
    let Some(rid) = coerced("rid").or_else(|| coerced("roomId")).filter(|r| !r.is_empty()) else {
        return Err(ApiError::invalid_params("must have required property 'rid'"));
    };
    let rid = rid.as_str();
    match body.get("readThreads") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(_) => return Err(ApiError::invalid_params("must be boolean: 'readThreads'")),
    }
    state.messaging.mark_read(&caller.principal, rid).await?;
    if body.get("readThreads").and_then(Value::as_bool).unwrap_or(false) {
        state.messaging.read_threads(&caller.principal, rid, None).await?;
    }
    Ok(ok!())
}

/// `subscriptions.unread`: `{roomId}` or `{firstUnreadMessage: {_id}}`.
pub(crate) async fn unread(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let rid = match body.get("roomId") {
        None => None,
        Some(Value::String(rid)) => Some(rid.clone()),
        Some(_) => return Err(ApiError::invalid_params("must be string: 'roomId'")),
    };
    let first = match body.get("firstUnreadMessage") {
        None => None,
        Some(Value::Object(m)) => match m.get("_id") {
            Some(Value::String(id)) => Some(id.clone()),
            _ => return Err(ApiError::invalid_params("must have required property '_id'")),
        },
        Some(_) => return Err(ApiError::invalid_params("must be object: 'firstUnreadMessage'")),
    };
    if rid.is_none() == first.is_none() {
        return Err(ApiError::invalid_params("must match exactly one schema in oneOf"));
    }
    state.messaging.mark_unread(&caller.principal, rid, first).await?;
    Ok(ok!())
}
