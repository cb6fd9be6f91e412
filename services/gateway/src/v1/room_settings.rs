//! `channels.*` / `groups.*` `setReadOnly`, `setType`, `setJoinCode`, `setDefault`,
//! `setCustomFields`: one room attribute each, answered with the room after the change.

use apogee_api::RoomChange;
use apogee_types::{RoomType, ServiceError};
use axum::Extension;
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller};
use crate::v1::rooms::{Family, one, resolve};

/// "The channel …" / "The private group …", as Rocket.Chat words the "nothing to change" refusals.
fn noun(f: Family) -> &'static str {
    if f.t == RoomType::Group { "private group" } else { "channel" }
}

async fn apply(state: &GatewayState, f: Family, caller: &Caller, rid: &str, change: RoomChange) -> ApiResult {
    let room = state.messaging.update_room(&caller.principal, rid, change).await?;
    Ok(one(f, &room))
}

pub(crate) async fn set_read_only(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(read_only) = body.get("readOnly").and_then(Value::as_bool) else {
        return Err(ApiError::failure("The bodyParam \"readOnly\" is required"));
    };
    let room = resolve(&state, f, &caller.principal, &body).await?;
    if room.ro == read_only {
        return Err(ApiError::failure(format!(
            "The {} read only setting is the same as what it would be changed to.",
            noun(f)
        )));
    }
    apply(&state, f, &caller, &room.id, RoomChange::ReadOnly(read_only)).await
}

pub(crate) async fn set_type(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let t = body.get("type").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    if t.is_empty() {
        return Err(ApiError::failure("The bodyParam \"type\" is required"));
    }
    let room = resolve(&state, f, &caller.principal, &body).await?;
    if room.t.as_str() == t {
        return Err(ApiError::failure(format!(
            "The {} type is the same as what it would be changed to.",
            noun(f)
        )));
    }
    let t = match t {
        "c" => RoomType::Channel,
        "p" => RoomType::Group,
        _ => return Err(ApiError::typed("error-invalid-room-type", format!("{t} is not a valid room type"))),
    };
    apply(&state, f, &caller, &room.id, RoomChange::Type(t)).await
}

pub(crate) async fn set_join_code(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let code = body.get("joinCode").and_then(Value::as_str).unwrap_or_default();
    if code.trim().is_empty() {
        return Err(ApiError::failure("The bodyParam \"joinCode\" is required"));
    }
    let room = resolve(&state, f, &caller.principal, &body).await?;
    apply(&state, f, &caller, &room.id, RoomChange::JoinCode(code.to_owned())).await
}

pub(crate) async fn set_default(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    // Rocket.Chat takes a boolean or its text ("true", "1"); anything else is false.
    let default = match body.get("default") {
        None | Some(Value::Null) => {
            return Err(ApiError(ServiceError::failure_typed(
                "error-channels-setdefault-is-same",
                "The bodyParam \"default\" is required",
            )));
        }
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            let text = match other {
                Value::String(s) => s.to_lowercase(),
                v => v.to_string(),
            };
            text == "true" || text == "1"
        }
    };
    let room = resolve(&state, f, &caller.principal, &body).await?;
    if room.default == default {
        return Err(ApiError(ServiceError::failure_typed(
            "error-channels-setdefault-missing-default-param",
            "The channel default setting is the same as what it would be changed to.",
        )));
    }
    apply(&state, f, &caller, &room.id, RoomChange::Default(default)).await
}

pub(crate) async fn set_custom_fields(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(fields) = body.get("customFields").and_then(Value::as_object).cloned() else {
        return Err(ApiError::failure("The bodyParam \"customFields\" is required with a type like object."));
    };
    let room = resolve(&state, f, &caller.principal, &body).await?;
    apply(&state, f, &caller, &room.id, RoomChange::CustomFields(Map::from_iter(fields))).await
}
