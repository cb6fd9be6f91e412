//! `commands.get`, `commands.list`, `commands.run`.

use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::commands::{self, COMMANDS, Invocation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page};
use crate::reply::ok;

pub(crate) async fn get(
    State(_state): State<GatewayState>,
    _caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(name) = query.get("command") else {
        return Err(ApiError::failure("The query param \"command\" must be provided."));
    };
    let Some(command) = commands::find(&name.to_lowercase()) else {
        return Err(ApiError::failure(format!("There is no command in the system by the name of: {name}")));
    };
    Ok(ok!("command" => command.to_json()))
}

/// Orders by the `sort` fields; Rocket.Chat's default sort is by `name`, which commands lack,
/// so the registration order stays.
fn sort(list: &mut [Value], sort: &Map<String, Value>) {
    let key = |v: &Value, field: &str| {
        v.get(field).map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned))
    };
    list.sort_by(|a, b| {
        for (field, direction) in sort {
            let order = key(a, field).cmp(&key(b, field));
            if order != std::cmp::Ordering::Equal {
                return if direction.as_i64() == Some(-1) { order.reverse() } else { order };
            }
        }
        std::cmp::Ordering::Equal
    });
}

pub(crate) async fn list(
    State(state): State<GatewayState>,
    _caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let page = page(&state, &query).await?;
    let filter: Map<String, Value> =
        query.get("query").and_then(|q| serde_json::from_str(q).ok()).unwrap_or_default();
    let mut list: Vec<Value> = COMMANDS
        .iter()
        .filter(|c| filter.get("command").is_none_or(|wanted| wanted.as_str() == Some(c.command)))
        .map(commands::Command::to_json)
        .collect();
    let total = list.len();
    if let Some(fields) = query.get("sort").and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok()) {
        sort(&mut list, &fields);
    }
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let shown: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(page.count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX)))
        .collect();
    // Rocket.Chat's `count` is the number of matching commands, not of the page.
    Ok(ok!("commands" => shown, "offset" => page.offset, "count" => total, "total" => total))
}

pub(crate) async fn run(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let Some(Value::String(command)) = body.get("command") else {
        return Err(ApiError::failure("You must provide a command to run."));
    };
    let params = match body.get("params") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) if is_falsy(v) => String::new(),
        Some(_) => return Err(ApiError::failure("The parameters for the command must be a single string.")),
    };
    let Some(Value::String(rid)) = body.get("roomId") else {
        return Err(ApiError::failure(
            "The room's id where to execute this command must be provided and be a string.",
        ));
    };
    let tmid = match body.get("tmid") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.is_empty() => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(v) if is_falsy(v) => None,
        Some(_) => return Err(ApiError::failure("The tmid parameter when provided must be a string.")),
    };
    let name = command.to_lowercase();
    if commands::find(&name).is_none() {
        return Err(ApiError::failure("The command provided does not exist (or is disabled)."));
    }
    // Rocket.Chat refuses a room the caller cannot access with its bare 403.
    if state.messaging.room_info(&caller.principal, apogee_api::RoomSelector::id(rid.clone())).await.is_err()
    {
        return Err(ApiError(apogee_types::ServiceError::unauthorized()));
    }
    if let Some(tmid) = &tmid {
        let thread = state.messaging.get_message(&caller.principal, tmid).await.ok();
        if thread.is_none_or(|m| m.rid != *rid) {
            return Err(ApiError::failure("Invalid thread."));
        }
    }
    let inv = Invocation {
        command: name,
        params,
        rid: rid.clone(),
        tmid,
        message_id: Some(apogee_types::random_id()),
    };
    commands::run(&state, &caller.principal, inv).await?;
    // The built-in commands return nothing, so Rocket.Chat's `result` drops out of the body.
    Ok(ok!())
}

/// JavaScript's falsy values besides `null` and `""` (`false`, `0`): treated as absent.
fn is_falsy(v: &Value) -> bool {
    matches!(v, Value::Bool(false)) || v.as_f64() == Some(0.0)
}
