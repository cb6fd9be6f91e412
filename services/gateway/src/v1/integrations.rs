//! `integrations.*`, `channels.getIntegrations` / `groups.getIntegrations` and the incoming
//! webhooks at `/hooks/:integrationId/:token` (also `/hooks/:integrationId/:userId/:token`).
//!
//! Only incoming webhooks exist: an outgoing one would need the server to call out on every
//! matching message, which is not built, so `webhook-outgoing` is refused at creation.

use apogee_api::IntegrationInput;
use apogee_rc::Dates;
use apogee_types::{ErrorKind, Integration, Principal, RoomType, ServiceError};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, ClientIp, Query, page};
use crate::reply::{json as json_reply, ok};
use crate::v1::chat::{WebhookDefaults, process_webhook_message};
use crate::v1::rooms::{Family, query_params, resolve};

const ANY_MANAGE: [&str; 4] = [
    "manage-outgoing-integrations",
    "manage-own-outgoing-integrations",
    "manage-incoming-integrations",
    "manage-own-incoming-integrations",
];

fn render(integration: &Integration) -> Value {
    apogee_rc::integration(integration, Dates::Iso)
}

/// One property of a request schema, as Rocket.Chat's validators (ajv) declare it.
#[derive(Clone, Copy, PartialEq)]
enum Prop {
    /// A string containing this text (ajv's unanchored `pattern`).
    Pattern(&'static str),
    Str,
    OptStr,
    Bool,
    OptBool,
}

/// The first error ajv reports for one branch of a schema: a missing required property, a
/// property of the wrong type, or (when `closed`) a property the schema does not know.
fn first_error(
    body: &Map<String, Value>,
    props: &[(&str, Prop)],
    required: &[&str],
    closed: bool,
) -> Option<String> {
    if let Some(missing) = required.iter().find(|k| !body.contains_key(**k)) {
        return Some(format!("must have required property '{missing}'"));
    }
    for (key, prop) in props {
        let Some(value) = body.get(*key) else { continue };
        let error = match (prop, value) {
            (Prop::OptStr | Prop::OptBool, Value::Null) | (Prop::Str | Prop::OptStr, Value::String(_)) => {
                None
            }
            (Prop::Bool | Prop::OptBool, Value::Bool(_)) => None,
            (Prop::Pattern(p), Value::String(s)) if s.contains(p) => None,
            (Prop::Pattern(p), Value::String(_)) => Some(format!("must match pattern \"{p}\"")),
            (Prop::Bool | Prop::OptBool, _) => Some("must be boolean".to_owned()),
            _ => Some("must be string".to_owned()),
        };
        if error.is_some() {
            return error;
        }
    }
    if closed && body.keys().any(|k| !props.iter().any(|(p, _)| p == k)) {
        return Some("must NOT have additional properties".to_owned());
    }
    None
}

/// One branch of a `oneOf`: its properties, the required ones, and whether others are refused.
type Branch<'a> = (&'a [(&'a str, Prop)], &'a [&'a str], bool);

/// A `oneOf` of branches: `Ok(index)` of the one branch that matches, else ajv's message.
fn one_of(body: &Map<String, Value>, branches: &[Branch<'_>]) -> Result<usize, ApiError> {
    let results: Vec<Option<String>> = branches
        .iter()
        .map(|(props, required, closed)| first_error(body, props, required, *closed))
        .collect();
    let passing: Vec<usize> =
        results.iter().enumerate().filter(|(_, e)| e.is_none()).map(|(i, _)| i).collect();
    if let [only] = passing.as_slice() {
        return Ok(*only);
    }
    let mut messages: Vec<String> = results.into_iter().flatten().collect();
    messages.push("must match exactly one schema in oneOf".to_owned());
    Err(ApiError::invalid_params(messages.join("\n ")))
}

const INCOMING_PROPS: &[(&str, Prop)] = &[
    ("type", Prop::Pattern("webhook-incoming")),
    ("username", Prop::Str),
    ("channel", Prop::Str),
    ("scriptEnabled", Prop::Bool),
    ("overrideDestinationChannelEnabled", Prop::OptBool),
    ("script", Prop::OptStr),
    ("name", Prop::Str),
    ("enabled", Prop::Bool),
    ("alias", Prop::OptStr),
    ("avatar", Prop::OptStr),
    ("emoji", Prop::OptStr),
    ("scriptEngine", Prop::OptStr),
];

/// The outgoing branch, checked only for the properties that decide which branch matches
/// (its other fields are never read: outgoing webhooks are refused).
const OUTGOING_PROPS: &[(&str, Prop)] = &[
    ("type", Prop::Pattern("webhook-outgoing")),
    ("username", Prop::Str),
    ("channel", Prop::Str),
    ("event", Prop::Str),
    ("scriptEnabled", Prop::Bool),
    ("name", Prop::Str),
    ("enabled", Prop::Bool),
];

fn opt_string(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn input(body: &Map<String, Value>) -> IntegrationInput {
    IntegrationInput {
        name: opt_string(body, "name").unwrap_or_default(),
        enabled: body.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        username: opt_string(body, "username").unwrap_or_default(),
        channel: opt_string(body, "channel").unwrap_or_default(),
        alias: opt_string(body, "alias"),
        avatar: opt_string(body, "avatar"),
        emoji: opt_string(body, "emoji"),
        script_enabled: body.get("scriptEnabled").and_then(Value::as_bool).unwrap_or(false),
        script_engine: opt_string(body, "scriptEngine"),
        script: opt_string(body, "script"),
        override_destination_channel_enabled: body
            .get("overrideDestinationChannelEnabled")
            .and_then(Value::as_bool),
    }
}

fn invalid_type() -> ApiError {
    ApiError::failure("Invalid integration type.")
}

async fn can_manage_any(state: &GatewayState, who: &Principal) -> ApiResult<bool> {
    for permission in ANY_MANAGE {
        if state.auth.roles_have_permission(&who.roles, permission).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `POST integrations.create`.
pub(crate) async fn create(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let incoming_required: &[&str] = &["type", "username", "channel", "scriptEnabled", "name", "enabled"];
    let outgoing_required: &[&str] =
        &["type", "username", "channel", "event", "scriptEnabled", "name", "enabled"];
    one_of(&body, &[(INCOMING_PROPS, incoming_required, true), (OUTGOING_PROPS, outgoing_required, false)])?;
    // Only the exact type is created; a type that merely contains it passes the schema, as in
    // Rocket.Chat, and is refused here. Outgoing webhooks are not built (see the module).
    if body.get("type").and_then(Value::as_str) != Some(apogee_types::WEBHOOK_INCOMING) {
        return Err(invalid_type());
    }
    let integration = state.auth.create_integration(&caller.principal, input(&body)).await?;
    Ok(ok!("integration" => render(&integration)))
}

/// `PUT integrations.update`.
pub(crate) async fn update(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let incoming_required: &[&str] =
        &["integrationId", "type", "channel", "scriptEnabled", "name", "enabled"];
    let mut incoming_props = INCOMING_PROPS.to_vec();
    incoming_props.push(("integrationId", Prop::Str));
    let outgoing_required: &[&str] =
        &["type", "username", "channel", "event", "scriptEnabled", "name", "enabled"];
    one_of(
        &body,
        &[(&incoming_props, incoming_required, false), (OUTGOING_PROPS, outgoing_required, false)],
    )?;
    match body.get("type").and_then(Value::as_str) {
        Some(apogee_types::WEBHOOK_INCOMING) => {
            let id = opt_string(&body, "integrationId").unwrap_or_default();
            let integration = state.auth.update_integration(&caller.principal, &id, input(&body)).await?;
            Ok(ok!("integration" => render(&integration)))
        }
        // No outgoing webhook is ever stored.
        Some(apogee_types::WEBHOOK_OUTGOING) => Err(ApiError::failure("No integration found.")),
        _ => Err(invalid_type()),
    }
}

/// `POST integrations.remove`: the record as it was.
pub(crate) async fn remove(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let id_props: &[(&str, Prop)] =
        &[("type", Prop::Pattern("webhook-incoming")), ("integrationId", Prop::Str)];
    let url_props: &[(&str, Prop)] =
        &[("type", Prop::Pattern("webhook-outgoing")), ("target_url", Prop::Str)];
    let out_props: &[(&str, Prop)] =
        &[("type", Prop::Pattern("webhook-outgoing")), ("integrationId", Prop::Str)];
    one_of(
        &body,
        &[
            (id_props, &["type", "integrationId"], false),
            (url_props, &["type", "target_url"], false),
            (out_props, &["type", "integrationId"], false),
        ],
    )?;
    match body.get("type").and_then(Value::as_str) {
        Some(apogee_types::WEBHOOK_INCOMING) => {
            let id = opt_string(&body, "integrationId").unwrap_or_default();
            let integration = state.auth.remove_integration(&caller.principal, &id).await?;
            Ok(ok!("integration" => render(&integration)))
        }
        kind => {
            if !can_manage_any(&state, &caller.principal).await? {
                return Err(ApiError(ServiceError::unauthorized()));
            }
            if kind == Some(apogee_types::WEBHOOK_OUTGOING) {
                return Err(ApiError::failure("No integration found."));
            }
            Err(invalid_type())
        }
    }
}

/// `GET integrations.get?integrationId=&createdBy=`.
pub(crate) async fn get(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let Some(id) = query.get("integrationId") else {
        return Err(ApiError::invalid_params("must have required property 'integrationId'"));
    };
    if id.is_empty() {
        return Err(ApiError::failure("The query parameter \"integrationId\" is required."));
    }
    let created_by = query.get("createdBy").cloned();
    let integration = state.auth.get_integration(&caller.principal, id, created_by).await?;
    Ok(ok!("integration" => render(&integration)))
}

/// `GET integrations.list`: newest first.
pub(crate) async fn list(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    if !can_manage_any(&state, &caller.principal).await? {
        return Err(ApiError(ServiceError::unauthorized()));
    }
    let page = page(&state, &query).await?;
    let found = state.auth.list_integrations(&caller.principal, None, page).await?;
    let items: Vec<Value> = found.items.iter().map(render).collect();
    Ok(ok!(
        "integrations" => items.clone(),
        "offset" => found.offset,
        "items" => items.len(),
        "count" => items.len(),
        "total" => found.total,
    ))
}

/// `GET integrations.history?id=`: the calls of an outgoing webhook. None is ever made (see the
/// module), so every permitted answer is the true, empty history.
pub(crate) async fn history(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let mut allowed = false;
    for permission in ["manage-outgoing-integrations", "manage-own-outgoing-integrations"] {
        allowed |= state.auth.roles_have_permission(&caller.principal.roles, permission).await?;
    }
    if !allowed {
        return Err(ApiError(ServiceError::unauthorized()));
    }
    if query.get("id").is_none_or(|id| id.trim().is_empty()) {
        return Err(ApiError::failure("Invalid integration id."));
    }
    let page = page(&state, &query).await?;
    Ok(
        ok!("history" => Vec::<Value>::new(), "offset" => page.offset, "items" => 0, "count" => 0, "total" => 0),
    )
}

/// `GET channels.getIntegrations` / `groups.getIntegrations`: the integrations posting into the
/// room, and (unless `includeAllPublicChannels=false` / `includeAllPrivateGroups=false`) those
/// posting into every public channel / private group, oldest first.
pub(crate) async fn of_room(
    State(state): State<GatewayState>,
    Extension(family): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    if !can_manage_any(&state, &caller.principal).await? {
        return Err(ApiError(ServiceError::unauthorized()));
    }
    let room = resolve(&state, family, &caller.principal, &query_params(&query)).await?;
    let (all_key, all_value) = if family.t == RoomType::Group {
        ("includeAllPrivateGroups", "all_private_groups")
    } else {
        ("includeAllPublicChannels", "all_public_channels")
    };
    let mut channels = vec![format!("#{}", room.name.clone().unwrap_or_default())];
    if query.get(all_key).is_none_or(|v| v == "true") {
        channels.push(all_value.to_owned());
    }
    let page = page(&state, &query).await?;
    let found = state.auth.list_integrations(&caller.principal, Some(channels), page).await?;
    let items: Vec<Value> = found.items.iter().map(render).collect();
    Ok(ok!(
        "integrations" => items.clone(),
        "count" => items.len(),
        "offset" => found.offset,
        "total" => found.total,
    ))
}

fn hook_failure(status: StatusCode, error: &str) -> Response {
    json_reply(status, &json!({ "success": false, "error": error }))
}

/// The call's parameters: a JSON object, or a form whose only field `payload` holds the JSON
/// (Slack's convention); any other form is its fields as strings.
/// `Err` is the parse error's text, answered with a 400.
fn hook_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Map<String, Value>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: Map<String, Value> = crate::extract::parse_query(&String::from_utf8_lossy(bytes))
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        if let (1, Some(Value::String(payload))) = (fields.len(), fields.get("payload")) {
            return match serde_json::from_str::<Value>(payload) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Ok(Map::new()),
                Err(e) => Err(e.to_string()),
            };
        }
        return Ok(fields);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// `POST|GET /hooks/:integrationId/:token`.
pub(crate) async fn hook(
    State(state): State<GatewayState>,
    Path((id, token)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    run_hook(state, id, token, ip, headers, bytes).await
}

/// `POST|GET /hooks/:integrationId/:userId/:token` (the user id is not checked, as in Rocket.Chat).
pub(crate) async fn hook_with_user(
    State(state): State<GatewayState>,
    Path((id, _user_id, token)): Path<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    run_hook(state, id, token, ip, headers, bytes).await
}

async fn run_hook(
    state: GatewayState,
    id: String,
    token: String,
    ip: Option<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match hook_body(&headers, &bytes) {
        Ok(body) => body,
        Err(error) => return hook_failure(StatusCode::BAD_REQUEST, &error),
    };
    let (integration, principal) = match state.auth.webhook(&id, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return hook_failure(StatusCode::NOT_FOUND, "Invalid integration id or token provided."),
        Err(e) => return ApiError(e).into_response(),
    };
    let Some(principal) = principal else { return crate::error::not_logged_in() };
    let route = format!("/hooks/{id}/");
    let work = execute(&state, integration, &principal, body);
    crate::v1::files::limited(&state, &route, ip.as_deref(), &principal, work).await
}

async fn execute(
    state: &GatewayState,
    integration: Integration,
    who: &Principal,
    mut body: Map<String, Value>,
) -> Response {
    if !integration.enabled {
        return hook_failure(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    // An empty call posts nothing and succeeds (Rocket.Chat's workaround for probes).
    if body.is_empty() && !integration.script_enabled {
        return ok!();
    }
    let overrides = ["channel", "roomId"].iter().any(|k| body.get(*k).is_some_and(|v| !v.is_null()));
    if overrides && !integration.override_destination_channel_enabled {
        return hook_failure(
            StatusCode::BAD_REQUEST,
            "overriding destination channel is disabled for this integration",
        );
    }
    body.insert("bot".into(), json!({ "i": integration.id }));
    let defaults = WebhookDefaults {
        channel: integration.channel.clone(),
        alias: integration.alias.clone(),
        avatar: integration.avatar.clone(),
        emoji: integration.emoji.clone(),
    };
    match process_webhook_message(state, who, &body, &defaults).await {
        Ok(_) => ok!(),
        // Rocket.Chat answers `failure(error || message)`: the bare error code when there is one.
        Err(ApiError(e)) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            ApiError(e).into_response()
        }
        Err(ApiError(e)) => {
            let text = if e.error_type.is_empty() { e.message } else { e.error_type };
            hook_failure(StatusCode::BAD_REQUEST, &text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn ajv_like_first_errors() {
        let props: &[(&str, Prop)] = &[("type", Prop::Pattern("webhook-incoming")), ("name", Prop::Str)];
        let required: &[&str] = &["type", "name"];
        assert_eq!(
            first_error(&body(json!({"type": "x-webhook-incoming-y", "name": "n"})), props, required, true),
            None
        );
        assert_eq!(
            first_error(&body(json!({"type": "webhook-incoming"})), props, required, true).as_deref(),
            Some("must have required property 'name'")
        );
        assert_eq!(
            first_error(&body(json!({"type": "other", "name": "n"})), props, required, true).as_deref(),
            Some("must match pattern \"webhook-incoming\"")
        );
        assert_eq!(
            first_error(&body(json!({"type": "webhook-incoming", "name": 1})), props, required, true)
                .as_deref(),
            Some("must be string")
        );
        assert_eq!(
            first_error(
                &body(json!({"type": "webhook-incoming", "name": "n", "x": 1})),
                props,
                required,
                true
            )
            .as_deref(),
            Some("must NOT have additional properties")
        );
        assert_eq!(
            first_error(
                &body(json!({"type": "webhook-incoming", "name": "n", "x": 1})),
                props,
                required,
                false
            ),
            None
        );
    }

    #[test]
    fn forms_unwrap_their_payload() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap_or_else(|_| unreachable!()),
        );
        let parsed = hook_body(&headers, b"payload=%7B%22text%22%3A%22hi%22%7D").ok();
        assert_eq!(parsed, Some(body(json!({"text": "hi"}))));
        let plain = hook_body(&headers, b"text=hi&alias=a").ok();
        assert_eq!(plain, Some(body(json!({"text": "hi", "alias": "a"}))));
        assert!(hook_body(&headers, b"payload=%7Bnope").is_err());
        assert_eq!(hook_body(&HeaderMap::new(), b"  ").ok(), Some(Map::new()));
    }
}
