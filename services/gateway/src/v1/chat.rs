//! `chat.postMessage`, `chat.sendMessage`, `chat.getMessage`.

use apogee_api::{NewMessage, RoomSelector, UserSelector};
use apogee_rc::Dates;
use apogee_types::{Millis, Principal, RoomType};
use axum::extract::State;
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query};
use crate::reply::ok;

/// Fields a client may set on a message besides its text; everything else is the server's.
const CLIENT_FIELDS: &[&str] =
    &["alias", "emoji", "avatar", "attachments", "blocks", "customFields", "bot", "parseUrls"];

pub(crate) fn client_extra(source: &Map<String, Value>) -> Map<String, Value> {
    CLIENT_FIELDS
        .iter()
        .filter_map(|k| source.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

fn optional_string(source: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match source.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_params(format!("must be string: '{key}'"))),
    }
}

/// Finds the room a `chat.postMessage` target names: `#channel` (joining a public channel the
/// caller is not in), `@username` (the DM), or a bare room id or name.
async fn post_target(state: &GatewayState, who: &Principal, target: &str) -> ApiResult<String> {
    let invalid = || ApiError::typed("invalid-channel", "Invalid channel");
    // A service that cannot answer is not an invalid target.
    let not_found = |e: &apogee_types::ServiceError| {
        !matches!(e.kind, apogee_types::ErrorKind::Unavailable | apogee_types::ErrorKind::Internal)
    };
    if let Some(user) = target.strip_prefix('@') {
        // A username, or a user id (Rocket.Chat looks up either).
        let username = match state.auth.find_user(UserSelector::Username(user.to_owned())).await? {
            Some(found) => found.username,
            None => state
                .auth
                .find_user(UserSelector::Id(user.to_owned()))
                .await?
                .map_or_else(|| user.to_owned(), |u| u.username),
        };
        let room = state.messaging.create_direct(who, vec![username], false).await?;
        return Ok(room.id);
    }
    // `#x` and a bare `x` name a room by id or by name, id first.
    let key = target.strip_prefix('#').unwrap_or(target);
    let room = match state.messaging.room_info(who, RoomSelector::id(key)).await {
        Ok(room) => room,
        Err(e) if not_found(&e) => {
            let by_name = RoomSelector { id: None, name: Some(key.to_owned()), family: None };
            state
                .messaging
                .room_info(who, by_name)
                .await
                .map_err(|e| if not_found(&e) { invalid() } else { e.into() })?
        }
        Err(e) => return Err(e.into()),
    };
    if room.t == RoomType::Channel && state.messaging.subscription(who, &room.id).await?.is_none() {
        state.messaging.join_room(who, &room.id, None).await?;
    }
    Ok(room.id)
}

/// What an incoming webhook falls back to when a call leaves it out (the integration's
/// settings); empty for `chat.postMessage`.
#[derive(Default)]
pub(crate) struct WebhookDefaults {
    pub channel: Vec<String>,
    pub alias: Option<String>,
    pub avatar: Option<String>,
    pub emoji: Option<String>,
}

/// A string or an array of strings (`channel`, `roomId`); anything else counts as absent.
fn targets(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().map(|v| v.as_str().map(str::to_owned).unwrap_or_default()).collect()
        }
        _ => Vec::new(),
    }
}

/// A non-empty string field.
fn text_field(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Rocket.Chat's `processWebhookMessage`, shared by `chat.postMessage` and incoming webhooks:
/// posts one message per target (`channel`, else `roomId`, else the defaults; duplicates once)
/// as `who`, and returns each target as given with its stored message.
pub(crate) async fn process_webhook_message(
    state: &GatewayState,
    who: &Principal,
    body: &Map<String, Value>,
    defaults: &WebhookDefaults,
) -> ApiResult<Vec<(String, apogee_types::Message)>> {
    let mut channels = targets(body.get("channel"));
    if channels.is_empty() {
        channels = targets(body.get("roomId"));
    }
    if channels.is_empty() {
        channels.clone_from(&defaults.channel);
    }
    let mut seen = std::collections::HashSet::new();
    channels.retain(|c| seen.insert(c.clone()));
    if channels.is_empty() {
        return Err(ApiError::typed("invalid-channel", ""));
    }
    let text = text_field(body, "text").or_else(|| text_field(body, "msg")).unwrap_or_default();
    let mut extra = client_extra(body);
    for key in ["alias", "avatar", "emoji"] {
        extra.remove(key);
    }
    if let Some(alias) =
        text_field(body, "username").or_else(|| text_field(body, "alias")).or(defaults.alias.clone())
    {
        extra.insert("alias".into(), Value::String(alias));
    }
    // One face per message: an avatar wins over an emoji, the call's over the integration's.
    let avatar = text_field(body, "icon_url").or_else(|| text_field(body, "avatar"));
    let emoji = text_field(body, "icon_emoji").or_else(|| text_field(body, "emoji"));
    let face = match (avatar, emoji) {
        (Some(a), _) => Some(("avatar", a)),
        (None, Some(e)) => Some(("emoji", e)),
        (None, None) => match (defaults.avatar.clone().filter(|a| !a.is_empty()), defaults.emoji.clone()) {
            (Some(a), _) => Some(("avatar", a)),
            (None, Some(e)) if !e.is_empty() => Some(("emoji", e)),
            _ => None,
        },
    };
    if let Some((key, value)) = face {
        extra.insert(key.into(), Value::String(value));
    }
    match extra.get_mut("attachments") {
        Some(Value::Array(attachments)) => {
            // Slack's `msg` on an attachment is Rocket.Chat's `text`.
            for attachment in attachments.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(msg) = attachment.get("msg").and_then(Value::as_str).filter(|m| !m.is_empty()) {
                    let text = Value::String(msg.trim().to_owned());
                    attachment.remove("msg");
                    attachment.insert("text".into(), text);
                }
            }
        }
        Some(_) => {
            extra.remove("attachments");
        }
        None => {}
    }
    let tmid = optional_string(body, "tmid")?;
    let groupable = Some(body.get("groupable").and_then(Value::as_bool).unwrap_or(false));
    let mut sent = Vec::with_capacity(channels.len());
    for channel in channels {
        let rid = post_target(state, who, &channel).await?;
        let message = NewMessage {
            id: None,
            rid,
            msg: text.trim().to_owned(),
            tmid: tmid.clone(),
            tshow: false,
            groupable,
            extra: extra.clone(),
        };
        sent.push((channel, state.messaging.send_message(who, message).await?));
    }
    Ok(sent)
}

pub(crate) async fn post_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    if targets(body.get("roomId")).is_empty() && targets(body.get("channel")).is_empty() {
        return Err(ApiError::typed("invalid-channel", ""));
    }
    for key in ["text", "msg", "tmid"] {
        optional_string(&body, key)?;
    }
    let sent = process_webhook_message(&state, &caller.principal, &body, &WebhookDefaults::default()).await?;
    let Some((channel, saved)) = sent.into_iter().next() else {
        return Err(ApiError::typed("invalid-channel", "Invalid channel"));
    };
    Ok(ok!(
        "ts" => Millis::now().0,
        "channel" => channel,
        "message" => apogee_rc::message(&saved, Dates::Iso),
    ))
}

pub(crate) async fn send_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(Value::Object(message)) = body.get("message") else {
        return Err(ApiError::typed("error-invalid-params", "The \"message\" parameter must be provided."));
    };
    if message.get("t").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::failure("Cannot send system messages using 'chat.sendMessage'"));
    }
    let Some(rid) = optional_string(message, "rid")?.filter(|r| !r.is_empty()) else {
        // Rocket.Chat throws a plain `Error` here: no `errorType`.
        return Err(ApiError::failure("The 'rid' property on the message object is missing."));
    };
    for key in ["alias", "emoji"] {
        optional_string(message, key)?;
    }
    let tshow = match message.get("tshow") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid_params("must be boolean: 'tshow'")),
    };
    let new = NewMessage {
        id: optional_string(message, "_id")?,
        rid,
        msg: optional_string(message, "msg")?.or(optional_string(message, "text")?).unwrap_or_default(),
        tmid: optional_string(message, "tmid")?,
        tshow,
        groupable: message.get("groupable").and_then(Value::as_bool),
        extra: client_extra(message),
    };
    let saved = state.messaging.send_message(&caller.principal, new).await?;
    Ok(ok!("message" => apogee_rc::message(&saved, Dates::Iso)))
}

pub(crate) async fn get_message(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(id) = query.get("msgId").filter(|s| !s.is_empty()) else {
        return Err(ApiError::typed(
            "error-invalid-params",
            "The \"msgId\" query parameter must be provided.",
        ));
    };
    let message = state.messaging.get_message(&caller.principal, id).await?;
    Ok(ok!("message" => apogee_rc::message(&message, Dates::Iso)))
}

pub(crate) async fn update(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let field = |key: &str| match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid_params(format!("must be string: '{key}'"))),
        None => Err(ApiError::invalid_params(format!("must have required property '{key}'"))),
    };
    let (rid, id, text) = (field("roomId")?, field("msgId")?, field("text")?);
    let custom_fields = match body.get("customFields") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(ApiError::invalid_params("must be object: 'customFields'")),
    };
    let message = state.messaging.update_message(&caller.principal, &rid, &id, text, custom_fields).await?;
    Ok(ok!("message" => apogee_rc::message(&message, Dates::Iso)))
}

pub(crate) async fn delete(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let (Some(rid), Some(id)) =
        (body.get("roomId").and_then(Value::as_str), body.get("msgId").and_then(Value::as_str))
    else {
        return Err(ApiError::invalid_params("Match error: roomId and msgId must be strings"));
    };
    let deleted = state.messaging.delete_message(&caller.principal, Some(rid), id).await?;
    // Rocket.Chat answers once the files are gone too (a `*.files` listing right after must
    // not show them).
    if let Some(files) = &state.files {
        // The deletion stands either way; the files service's bus consumer retries the files.
        if let Err(e) = files.forget_message_files(&caller.principal, &deleted.id).await {
            tracing::warn!(error = %e, "could not remove the files of a deleted message");
        }
    }
    Ok(ok!(
        "_id" => deleted.id.clone(),
        "ts" => Millis::now().0.to_string(),
        "message" => serde_json::json!({ "_id": deleted.id, "rid": deleted.rid, "u": deleted.u }),
    ))
}

pub(crate) async fn react(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let Some(id) = body.get("messageId").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return Err(ApiError::typed(
            "error-messageid-param-not-provided",
            "The required \"messageId\" param is missing.",
        ));
    };
    let emoji =
        body.get("emoji").or_else(|| body.get("reaction")).and_then(Value::as_str).unwrap_or_default();
    let should_react = body.get("shouldReact").and_then(Value::as_bool);
    state.messaging.react(&caller.principal, id, emoji, should_react).await?;
    Ok(ok!())
}

/// `chat.syncMessages`: what changed in a room since a date (legacy `lastUpdate`), or one page
/// of changes after a cursor (`type=UPDATED|DELETED` with `next` or `previous`, 7.1+).
pub(crate) async fn sync_messages(
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
    let who = &caller.principal;
    let removed_json = |list: &[(String, Millis)]| -> Vec<Value> {
        list.iter()
            .map(|(id, at)| serde_json::json!({ "_id": id, "_deletedAt": apogee_rc::iso(*at) }))
            .collect()
    };
    if let Some(kind) = query.get("type") {
        let cursor = |key: &str| query.get(key).map(|v| v.trim().parse::<i64>().map(Millis));
        let (since, before) = match (cursor("next"), cursor("previous")) {
            (Some(Ok(next)), None) => (next, false),
            (None, Some(Ok(previous))) => (previous, true),
            _ => {
                return Err(ApiError::invalid_params(
                    "either \"next\" or \"previous\" is required, as epoch milliseconds",
                ));
            }
        };
        if query.contains_key("lastUpdate") {
            return Err(ApiError::invalid_params("\"lastUpdate\" cannot be used with a cursor"));
        }
        let count = query.get("count").and_then(|c| c.parse::<u64>().ok()).unwrap_or(50).clamp(1, 100);
        // One more than asked tells whether there is a next page.
        let (items, mut cursor_at): (Vec<Value>, Vec<Millis>) = match kind.as_str() {
            "UPDATED" => {
                let found =
                    state.messaging.changed_messages(who, rid, since, before, Some(count + 1)).await?;
                (
                    found.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect(),
                    found.iter().map(|m| m.updated_at).collect(),
                )
            }
            "DELETED" => {
                let found =
                    state.messaging.removed_messages(who, rid, since, before, Some(count + 1)).await?;
                (removed_json(&found), found.iter().map(|(_, at)| *at).collect())
            }
            _ => return Err(ApiError::invalid_params("type must be UPDATED or DELETED")),
        };
        let more = items.len() as u64 > count;
        let items: Vec<Value> =
            items.into_iter().take(usize::try_from(count).unwrap_or(usize::MAX)).collect();
        cursor_at.truncate(items.len());
        let edge = cursor_at
            .last()
            .filter(|_| more)
            .map(|at| Value::String(at.0.to_string()))
            .unwrap_or(Value::Null);
        let (next, previous) = if before { (Value::Null, edge) } else { (edge, Value::Null) };
        let key = if kind == "UPDATED" { "updated" } else { "deleted" };
        let mut result = serde_json::json!({ "updated": [], "deleted": [], "cursor": { "next": next, "previous": previous } });
        result[key] = Value::Array(items);
        return Ok(ok!("result" => result));
    }
    let Some(last_update) = query.get("lastUpdate").filter(|v| !v.is_empty()) else {
        return Err(ApiError::typed(
            "error-lastUpdate-param-not-provided",
            "The required \"lastUpdate\" query param is missing.",
        ));
    };
    let since = apogee_rc::parse_date(&Value::String(last_update.clone())).ok_or_else(|| {
        ApiError::typed(
            "error-roomId-param-invalid",
            "The \"lastUpdate\" query parameter must be a valid date.",
        )
    })?;
    let mut updated = state.messaging.changed_messages(who, rid, since, false, None).await?;
    updated.sort_by_key(|m| std::cmp::Reverse(m.ts));
    let deleted = state.messaging.removed_messages(who, rid, since, false, None).await?;
    let updated: Vec<Value> = updated.iter().map(|m| apogee_rc::message(m, Dates::Iso)).collect();
    Ok(ok!("result" => serde_json::json!({ "updated": updated, "deleted": removed_json(&deleted) })))
}
