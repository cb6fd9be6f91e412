//! `/api/info`, settings, permissions and roles.

use apogee_rc::iso;
use apogee_types::{Permission, Role, ServiceError};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, date_param, page};
use crate::reply::ok;

/// The Rocket.Chat release whose API we answer for; mobile apps refuse releases they consider
/// unsupported, and pick code paths by it (protocol.md §8.4).
pub(crate) const RC_VERSION: &str = "7.10.0";

/// `GET /api/info`: the full version and build info only for callers with `view-statistics`.
pub(crate) async fn info(State(state): State<GatewayState>, headers: HeaderMap) -> ApiResult {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (user_id, token) = (header("x-user-id"), header("x-auth-token"));
    let privileged = if user_id.is_empty() || token.is_empty() {
        false
    } else {
        match state.authenticate(&user_id, &token).await {
            Ok(who) => state.auth.roles_have_permission(&who.roles, "view-statistics").await?,
            Err(_) => false,
        }
    };
    let min = json!({ "desktop": "3.9.6", "mobile": "4.39.0" });
    let apogee = env!("CARGO_PKG_VERSION");
    if !privileged {
        let short = RC_VERSION.rsplit_once('.').map_or(RC_VERSION, |(head, _)| head);
        return Ok(ok!("version" => short, "minimumClientVersions" => min, "apogeeVersion" => apogee));
    }
    let (total_memory, free_memory) = memory_bytes();
    let info = json!({
        "version": RC_VERSION,
        "build": {
            "arch": std::env::consts::ARCH,
            "platform": std::env::consts::OS,
            "osRelease": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default(),
            "totalMemory": total_memory,
            "freeMemory": free_memory,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        },
        "marketplaceApiVersion": "1.0.0",
        // We are not a Rocket.Chat build: the commit names our own release.
        "commit": { "tag": apogee },
    });
    Ok(
        ok!("version" => RC_VERSION, "info" => info, "minimumClientVersions" => min, "apogeeVersion" => apogee),
    )
}

/// Total and available memory in bytes, from `/proc/meminfo` (0 where it cannot be read).
fn memory_bytes() -> (u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// `GET settings.public`: `_id=a,b` or the legacy `query={"_id":{"$in":[…]}}`.
pub(crate) async fn settings_public(State(state): State<GatewayState>, Query(query): Query) -> ApiResult {
    let mut ids: Option<Vec<String>> = query
        .get("_id")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
    if ids.is_none()
        && let Some(q) = query.get("query")
    {
        let parsed: Value = serde_json::from_str(q)
            .map_err(|_| ApiError::typed("error-invalid-query", "Invalid query parameter"))?;
        ids = parsed["_id"]["$in"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
    }
    let mut q = query.clone();
    q.remove("query");
    let page = page(&state, &q).await?;
    let found = state.auth.public_settings(ids, page).await?;
    let settings: Vec<Value> = found.items.iter().map(apogee_rc::setting_public).collect();
    Ok(
        ok!("settings" => settings.clone(), "count" => settings.len(), "offset" => found.offset, "total" => found.total),
    )
}

/// `GET settings.oauth`: no OAuth services are configured.
pub(crate) async fn settings_oauth() -> ApiResult {
    Ok(ok!("services" => Vec::<Value>::new()))
}

pub(crate) async fn get_setting(
    State(state): State<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let setting = state.auth.get_setting(&caller.principal, &id).await?;
    Ok(ok!("_id" => setting.id, "value" => setting.value))
}

pub(crate) async fn set_setting(
    State(state): State<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult {
    let Some(value) = body.get("value").cloned() else {
        return Err(ApiError::invalid_params("must have required property 'value'"));
    };
    state.auth.set_setting(&caller.principal, &id, value).await?;
    Ok(ok!())
}

fn permission_json(p: &Permission) -> Value {
    json!({ "_id": p.id, "roles": p.roles, "_updatedAt": iso(p.updated_at) })
}

pub(crate) async fn permissions_list_all(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let since = date_param(
        query.get("updatedSince"),
        "error-updatedSince-param-invalid",
        "Invalid date for `updatedSince`",
    )?;
    let all = state.auth.permissions(&caller.principal).await?;
    let update: Vec<Value> =
        all.iter().filter(|p| since.is_none_or(|s| p.updated_at > s)).map(permission_json).collect();
    Ok(ok!("update" => update, "remove" => Vec::<Value>::new()))
}

pub(crate) async fn permissions_update(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let invalid =
        || ApiError(ServiceError::failure_typed("error-invalid-body-params", "Invalid body params"));
    let list = body.get("permissions").and_then(Value::as_array).ok_or_else(invalid)?;
    let mut changes = Vec::with_capacity(list.len());
    for entry in list {
        let id = entry.get("_id").and_then(Value::as_str).ok_or_else(invalid)?;
        let roles = entry.get("roles").and_then(Value::as_array).ok_or_else(invalid)?;
        let roles: Option<Vec<String>> = roles.iter().map(|r| r.as_str().map(str::to_owned)).collect();
        changes.push((id.to_owned(), roles.ok_or_else(invalid)?));
    }
    let all = state.auth.update_permissions(&caller.principal, changes).await?;
    Ok(ok!("permissions" => all.iter().map(permission_json).collect::<Vec<_>>()))
}

pub(crate) fn role_json(r: &Role) -> Value {
    json!({
        "_id": r.id, "name": r.name, "description": r.description, "scope": r.scope,
        "protected": r.protected, "mandatory2fa": r.mandatory_2fa, "_updatedAt": iso(r.updated_at),
    })
}

pub(crate) async fn roles_list(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let roles = state.auth.roles(&caller.principal).await?;
    Ok(ok!("roles" => roles.iter().map(role_json).collect::<Vec<_>>()))
}
