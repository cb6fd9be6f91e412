//! The DDP method table, shared by `/websocket` and the REST tunnels `method.call/:method` and
//! `method.callAnon/:method` (protocol.md §3.8, §4.4). Methods translate Rocket.Chat's
//! positional parameters into service calls; the rules live in the services.

use std::sync::Arc;

use apogee_api::events::{BusEvent, RoomEvent, room_subject};
use apogee_api::{
    CreateRoom, Credentials, HistoryRequest, LoginRequest, LoginUser, MemberFilter, NewMessage, Password,
    RoomSelector,
};
use apogee_bus::Subject;
use apogee_rc::{Dates, parse_date};
use apogee_types::{ErrorKind, Millis, PageRequest, Principal, RoomType, ServiceError, ServiceResult};
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::hub::Conn;

/// What a method runs with. `conn` is `None` for the REST tunnels.
pub(crate) struct MethodCtx<'a> {
    pub state: &'a GatewayState,
    pub principal: Option<Principal>,
    pub token: Option<String>,
    pub conn: Option<&'a Arc<Conn>>,
}

fn invalid_user() -> ServiceError {
    ServiceError::invalid("error-invalid-user", "Invalid user")
}

fn match_failed() -> ServiceError {
    ServiceError::invalid("400", "Match failed")
}

fn websocket_only() -> ServiceError {
    ServiceError::not_allowed("This method is only available over the WebSocket")
}

fn str_param(params: &[Value], i: usize) -> ServiceResult<String> {
    params.get(i).and_then(Value::as_str).map(str::to_owned).ok_or_else(match_failed)
}

/// A date parameter: only an EJSON `{"$date": ms}` counts, as Rocket.Chat's `instanceof Date`.
fn date_param(params: &[Value], i: usize) -> Option<Millis> {
    params.get(i).filter(|v| v.get("$date").is_some()).and_then(parse_date)
}

fn count_param(params: &[Value], i: usize, default: u64) -> u64 {
    params.get(i).and_then(Value::as_u64).unwrap_or(default)
}

/// `{limit, skip}` of the thread methods; Rocket.Chat refuses more than 100.
fn limit_skip(args: &Map<String, Value>, default_limit: u64) -> ServiceResult<(u64, u64)> {
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(default_limit);
    if limit > 100 {
        return Err(ServiceError::invalid("error-not-allowed", "max limit: 100"));
    }
    Ok((limit, args.get("skip").and_then(Value::as_u64).unwrap_or(0)))
}

impl MethodCtx<'_> {
    fn who(&self) -> ServiceResult<&Principal> {
        self.principal.as_ref().ok_or_else(invalid_user)
    }
}

/// Runs a method; `Ok(None)` is a result without a value.
pub(crate) async fn call(
    ctx: &mut MethodCtx<'_>,
    method: &str,
    params: Vec<Value>,
) -> ServiceResult<Option<Value>> {
    let state = ctx.state;
    let msg = |m: &apogee_types::Message| apogee_rc::message(m, Dates::Ejson);
    match method {
        "login" => login(ctx, params).await.map(Some),
        "logout" => {
            if ctx.conn.is_none() {
                return Err(websocket_only());
            }
            if let (Some(who), Some(token)) = (ctx.principal.clone(), ctx.token.clone()) {
                state.auth.logout(&who, &token).await?;
            }
            ctx.principal = None;
            ctx.token = None;
            Ok(None)
        }
        "sendMessage" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(m)) = params.first() else { return Err(match_failed()) };
            let new = new_message(m)?;
            let rid = new.rid.clone();
            match state.messaging.send_message(&who, new).await {
                Ok(saved) => Ok(Some(msg(&saved))),
                Err(e) => {
                    // Rocket.Chat also tells the sender why, as a private message from rocket.cat
                    // on `<uid>/message`.
                    if ctx.conn.is_some() && e.kind == ErrorKind::InvalidArgument {
                        ephemeral(state, &who, &rid, &e.message);
                    }
                    Err(e)
                }
            }
        }
        "updateMessage" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(m)) = params.first() else { return Err(match_failed()) };
            let (Some(id), Some(rid), Some(text)) = (
                m.get("_id").and_then(Value::as_str),
                m.get("rid").and_then(Value::as_str),
                m.get("msg").and_then(Value::as_str),
            ) else {
                return Err(match_failed());
            };
            let custom_fields = m.get("customFields").filter(|v| !v.is_null()).cloned();
            state.messaging.update_message(&who, rid, id, text.to_owned(), custom_fields).await?;
            Ok(None)
        }
        "deleteMessage" => {
            let who = ctx.who()?.clone();
            let id =
                params.first().and_then(|m| m.get("_id")).and_then(Value::as_str).ok_or_else(match_failed)?;
            state.messaging.delete_message(&who, None, id).await?;
            if let Some(files) = &state.files {
                // The deletion stands either way; the files service's bus consumer retries the files.
                if let Err(e) = files.forget_message_files(&who, id).await {
                    tracing::warn!(error = %e, "could not remove the files of a deleted message");
                }
            }
            Ok(None)
        }
        "setReaction" => {
            let who = ctx.who()?.clone();
            let emoji = str_param(&params, 0)?;
            let id = str_param(&params, 1)?;
            let should_react = params.get(2).and_then(Value::as_bool);
            state.messaging.react(&who, &id, &emoji, should_react).await?;
            Ok(None)
        }
        "loadHistory" => {
            let who = ctx.who()?.clone();
            let rid = str_param(&params, 0)?;
            let req = HistoryRequest {
                latest: date_param(&params, 1),
                count: Some(count_param(&params, 2, 20)),
                unreads: date_param(&params, 3).is_some(),
                show_thread_messages: params.get(4).and_then(Value::as_bool).unwrap_or(true),
                ..Default::default()
            };
            match state.messaging.history(&who, &rid, req).await {
                Ok(h) => {
                    let mut out = json!({ "messages": h.messages.iter().map(msg).collect::<Vec<_>>() });
                    if let Some(n) = h.unread_not_loaded {
                        out["unreadNotLoaded"] = n.into();
                    }
                    if let Some(first) = &h.first_unread {
                        out["firstUnread"] = msg(first);
                    }
                    Ok(Some(out))
                }
                // Rocket.Chat answers `false` when the caller may not read the room.
                Err(e) if e.kind == ErrorKind::PermissionDenied => Ok(Some(Value::Bool(false))),
                Err(e) => Err(e),
            }
        }
        "loadMissedMessages" => {
            let who = ctx.who()?.clone();
            let rid = str_param(&params, 0)?;
            let start = date_param(&params, 1).ok_or_else(match_failed)?;
            let req =
                HistoryRequest { oldest: Some(start), show_thread_messages: true, ..Default::default() };
            let h = state.messaging.history(&who, &rid, req).await?;
            Ok(Some(Value::Array(h.messages.iter().map(msg).collect())))
        }
        "loadNextMessages" => {
            let who = ctx.who()?.clone();
            let rid = str_param(&params, 0)?;
            let req = HistoryRequest {
                oldest: date_param(&params, 1),
                count: Some(count_param(&params, 2, 20)),
                show_thread_messages: true,
                oldest_first: true,
                ..Default::default()
            };
            let h = state.messaging.history(&who, &rid, req).await?;
            Ok(Some(json!({ "messages": h.messages.iter().map(msg).collect::<Vec<_>>() })))
        }
        "getRoomIdByNameOrId" => {
            let who = ctx.who()?.clone();
            let key = str_param(&params, 0)?;
            // Only "no such room" becomes "Not allowed"; a service that cannot answer says so.
            let unavailable =
                |e: &ServiceError| matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal);
            let room = match state.messaging.room_info(&who, RoomSelector::id(key.clone())).await {
                Ok(room) => room,
                Err(e) if unavailable(&e) => return Err(e),
                Err(_) => state
                    .messaging
                    .room_info(&who, RoomSelector { id: None, name: Some(key), family: None })
                    .await
                    .map_err(
                        |e| if unavailable(&e) { e } else { ServiceError::not_allowed("Not allowed") },
                    )?,
            };
            Ok(Some(Value::String(room.id)))
        }
        "getRoomNameById" => {
            let who = ctx.who()?.clone();
            let room = state.messaging.room_info(&who, RoomSelector::id(str_param(&params, 0)?)).await?;
            Ok(Some(room.name.map_or(Value::Null, Value::String)))
        }
        "getRoomByTypeAndName" => {
            let who = ctx.who()?.clone();
            let family = RoomType::parse(&str_param(&params, 0)?).ok_or_else(match_failed)?;
            let name = str_param(&params, 1)?;
            let selector = if family == RoomType::Direct {
                RoomSelector { id: Some(name), name: None, family: Some(family) }
            } else {
                RoomSelector { id: None, name: Some(name), family: Some(family) }
            };
            let room = state.messaging.room_info(&who, selector).await?;
            Ok(Some(apogee_rc::room(&room, Dates::Ejson)))
        }
        "rooms/get" => {
            let Some(who) = ctx.principal.clone() else { return Ok(Some(json!([]))) };
            let since = date_param(&params, 0);
            let changes = state.messaging.rooms(&who, since).await?;
            let update: Vec<Value> =
                changes.update.iter().map(|r| apogee_rc::room(r, Dates::Ejson)).collect();
            Ok(Some(match since {
                None => Value::Array(update),
                Some(_) => json!({ "update": update, "remove": removed(&changes.remove) }),
            }))
        }
        "subscriptions/get" => {
            let Some(who) = ctx.principal.clone() else { return Ok(Some(json!([]))) };
            let since = date_param(&params, 0);
            let changes = state.messaging.subscriptions(&who, since).await?;
            let update: Vec<Value> =
                changes.update.iter().map(|s| apogee_rc::subscription(s, Dates::Ejson)).collect();
            Ok(Some(match since {
                None => Value::Array(update),
                Some(_) => json!({ "update": update, "remove": removed(&changes.remove) }),
            }))
        }
        "readMessages" => {
            let who = ctx.who()?.clone();
            state.messaging.mark_read(&who, &str_param(&params, 0)?).await?;
            Ok(None)
        }
        "createDirectMessage" => {
            let who = ctx.who()?.clone();
            let usernames: Vec<String> =
                params.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            let room = state.messaging.create_direct(&who, usernames, false).await?;
            Ok(Some(json!({ "t": "d", "rid": room.id, "usernames": room.usernames })))
        }
        "createChannel" | "createPrivateGroup" => {
            let who = ctx.who()?.clone();
            let members = params
                .get(1)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let req = CreateRoom {
                t: Some(if method == "createChannel" { RoomType::Channel } else { RoomType::Group }),
                name: str_param(&params, 0)?,
                members,
                read_only: params.get(2).and_then(Value::as_bool).unwrap_or(false),
                custom_fields: params.get(3).and_then(Value::as_object).cloned().unwrap_or_default(),
                ..Default::default()
            };
            let room = state.messaging.create_room(&who, req).await?;
            Ok(Some(json!({ "rid": room.id, "name": room.name })))
        }
        "joinRoom" => {
            let who = ctx.who()?.clone();
            let code = params.get(1).and_then(Value::as_str).map(str::to_owned);
            state.messaging.join_room(&who, &str_param(&params, 0)?, code).await?;
            Ok(Some(Value::Bool(true)))
        }
        "addAllUserToRoom" => {
            let who = ctx.who()?.clone();
            let rid = str_param(&params, 0)?;
            let active_only = match params.get(1) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(match_failed()),
            };
            state.messaging.add_all_users(&who, &rid, active_only).await?;
            Ok(Some(Value::Bool(true)))
        }
        "leaveRoom" => {
            let who = ctx.who()?.clone();
            state.messaging.leave_room(&who, &str_param(&params, 0)?).await?;
            Ok(None)
        }
        "getUsersOfRoom" => {
            let who = ctx.who()?.clone();
            let rid = str_param(&params, 0)?;
            let show_all = params.get(1).and_then(Value::as_bool).unwrap_or(false);
            let options = params.get(2).cloned().unwrap_or(Value::Null);
            let page = PageRequest {
                offset: options.get("skip").and_then(Value::as_u64).unwrap_or(0),
                count: options.get("limit").and_then(Value::as_u64).filter(|l| *l > 0),
            };
            let filter = MemberFilter {
                text: params.get(3).and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned),
                status: if show_all { vec![] } else { vec!["online".into(), "away".into(), "busy".into()] },
            };
            let found = state.messaging.members(&who, &rid, filter, page).await?;
            let records: Vec<Value> = found
                .items
                .iter()
                .map(|u| json!({ "_id": u.id, "username": u.username, "name": u.name, "status": u.status, "utcOffset": u.utc_offset }))
                .collect();
            Ok(Some(json!({ "total": found.total, "records": records })))
        }
        "getRoomRoles" => {
            let who = ctx.who()?.clone();
            let subs = state.messaging.room_roles(&who, &str_param(&params, 0)?).await?;
            Ok(Some(Value::Array(
                subs.iter()
                    .map(|s| json!({ "rid": s.rid, "u": s.u, "roles": s.roles, "_id": s.id }))
                    .collect(),
            )))
        }
        "public-settings/get" => {
            let all = state.auth.public_settings(None, PageRequest { offset: 0, count: None }).await?;
            let since = date_param(&params, 0);
            let settings: Vec<Value> = all
                .items
                .iter()
                .filter(|s| since.is_none_or(|d| s.updated_at > d))
                .map(apogee_rc::setting_public)
                .collect();
            Ok(Some(match since {
                None => Value::Array(settings),
                Some(_) => json!({ "update": settings, "remove": [] }),
            }))
        }
        "permissions/get" => {
            let who = ctx.who()?.clone();
            let since = date_param(&params, 0);
            let all = state.auth.permissions(&who).await?;
            let list: Vec<Value> = all
                .iter()
                .filter(|p| since.is_none_or(|d| p.updated_at > d))
                .map(|p| json!({ "_id": p.id, "roles": p.roles, "_updatedAt": Dates::Ejson.value(p.updated_at) }))
                .collect();
            Ok(Some(match since {
                None => Value::Array(list),
                Some(_) => json!({ "update": list, "remove": [] }),
            }))
        }
        "license:getModules" | "listCustomSounds" | "listCustomUserStatus" => Ok(Some(json!([]))),
        "UserPresence:setDefaultStatus" => {
            let who = ctx.who()?.clone();
            let status = str_param(&params, 0)?;
            presence_set(ctx, &who, &status, Some(status.clone()), None).await
        }
        "UserPresence:online" | "UserPresence:away" => {
            let who = ctx.who()?.clone();
            let user = state.auth.me(&who).await?;
            let status = if method == "UserPresence:away" { "away".to_owned() } else { user.status_default };
            presence_set(ctx, &who, &status, None, None).await
        }
        "setUserStatus" => {
            let who = ctx.who()?.clone();
            let status = params.first().and_then(Value::as_str).map(str::to_owned);
            let text = params.get(1).and_then(Value::as_str).map(str::to_owned);
            let user = state.auth.me(&who).await?;
            let status = status.unwrap_or(user.status_default);
            presence_set(ctx, &who, &status.clone(), Some(status), text).await
        }
        "stream-notify-room" => {
            let who = ctx.who()?.clone();
            notify_room(ctx, &who, &params).await?;
            Ok(None)
        }
        "getThreadsList" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(args)) = params.first() else { return Err(match_failed()) };
            let rid = args.get("rid").and_then(Value::as_str).ok_or_else(match_failed)?;
            let (limit, skip) = limit_skip(args, 50)?;
            let page = PageRequest { offset: skip, count: Some(limit) };
            let found =
                state.messaging.threads(&who, rid, apogee_api::ThreadListKind::All, None, page).await?;
            Ok(Some(Value::Array(found.items.iter().map(msg).collect())))
        }
        "getThreadMessages" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(args)) = params.first() else { return Err(match_failed()) };
            let tmid = args.get("tmid").and_then(Value::as_str).ok_or_else(match_failed)?;
            let (limit, skip) = limit_skip(args, 0)?;
            // Rocket.Chat answers the root, then its replies newest first, and marks the thread read.
            let root = match state.messaging.get_message(&who, tmid).await {
                Ok(root) => root,
                Err(e) if e.error_type == "error-invalid-message" => return Ok(Some(json!([]))),
                Err(_) => return Err(ServiceError::invalid("error-not-allowed", "Not allowed")),
            };
            let all = PageRequest { offset: 0, count: None };
            let mut replies = state.messaging.thread_messages(&who, tmid, all).await?.items;
            if replies.is_empty() {
                return Ok(Some(json!([])));
            }
            state.messaging.read_threads(&who, &root.rid, Some(root.id.clone())).await?;
            replies.reverse();
            let take = if limit == 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
            let mut out = vec![msg(&root)];
            out.extend(replies.iter().skip(usize::try_from(skip).unwrap_or(usize::MAX)).take(take).map(msg));
            Ok(Some(Value::Array(out)))
        }
        "createDiscussion" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(args)) = params.first() else { return Err(match_failed()) };
            let req = crate::v1::discussions::create_request(args).map_err(|e| e.0)?;
            let room = state.messaging.create_discussion(&who, req).await?;
            Ok(Some(crate::v1::discussions::discussion_json(&room, Dates::Ejson)))
        }
        "followMessage" | "unfollowMessage" => {
            let who = ctx.who()?.clone();
            let mid =
                params.first().and_then(|p| p.get("mid")).and_then(Value::as_str).ok_or_else(match_failed)?;
            state.messaging.follow_message(&who, mid, method == "followMessage").await?;
            Ok(None)
        }
        "pinMessage" | "unpinMessage" => {
            let who = ctx.who()?.clone();
            let id =
                params.first().and_then(|m| m.get("_id")).and_then(Value::as_str).ok_or_else(match_failed)?;
            if method == "pinMessage" {
                let pinned = state.messaging.pin_message(&who, id).await?;
                Ok(Some(msg(&pinned)))
            } else {
                state.messaging.unpin_message(&who, id).await?;
                Ok(Some(Value::Bool(true)))
            }
        }
        "starMessage" => {
            let who = ctx.who()?.clone();
            let Some(Value::Object(m)) = params.first() else { return Err(match_failed()) };
            let (Some(id), Some(starred)) =
                (m.get("_id").and_then(Value::as_str), m.get("starred").and_then(Value::as_bool))
            else {
                return Err(match_failed());
            };
            state.messaging.star_message(&who, id, starred).await?;
            Ok(Some(Value::Bool(true)))
        }
        "messageSearch" => {
            let who = ctx.who()?.clone();
            let text = str_param(&params, 0)?;
            // Without a room Rocket.Chat searches nothing unless global search is on (off by
            // default; searching every room of the caller is not built here).
            let Some(rid) = params.get(1).and_then(Value::as_str) else {
                return Ok(Some(json!({ "message": { "docs": [] } })));
            };
            let limit = count_param(&params, 2, 20);
            let offset = count_param(&params, 3, 0);
            let page = PageRequest { offset, count: Some(limit) };
            match state.messaging.search_messages(&who, rid, &text, page).await {
                Ok(found) => {
                    Ok(Some(json!({ "message": { "docs": found.iter().map(msg).collect::<Vec<_>>() } })))
                }
                // A room the caller cannot read answers `false`.
                Err(e) if e.error_type == "error-not-allowed" => Ok(Some(Value::Bool(false))),
                Err(e) => Err(e),
            }
        }
        _ => super::extra::call(ctx, method, params).await,
    }
}

/// A private message from rocket.cat to the user's own sockets (`stream-notify-user` `<uid>/message`).
fn ephemeral(state: &GatewayState, who: &Principal, rid: &str, text: &str) {
    let now = Dates::Ejson.value(Millis::now());
    let message = json!({
        "_id": apogee_types::random_id(), "rid": rid, "ts": now, "msg": text,
        "u": { "_id": "rocket.cat", "username": "rocket.cat" }, "private": true, "groupable": false,
        "_updatedAt": now,
    });
    let frame = crate::ddp::frame::stream_event(
        "stream-notify-user",
        &format!("{}/message", who.user_id),
        json!([message]),
    );
    for conn in state.hub.user_sockets(&who.user_id) {
        if conn.watches.lock().is_ok_and(|w| w.notify_user.contains("message")) {
            conn.send(frame.clone());
        }
    }
}

fn removed(list: &[(String, Millis)]) -> Vec<Value> {
    list.iter().map(|(id, at)| json!({ "_id": id, "_deletedAt": Dates::Ejson.value(*at) })).collect()
}

async fn presence_set(
    ctx: &MethodCtx<'_>,
    who: &Principal,
    status: &str,
    default: Option<String>,
    text: Option<String>,
) -> ServiceResult<Option<Value>> {
    if ctx.conn.is_none() {
        return Err(websocket_only());
    }
    ctx.state.presence.set(&who.user_id, status, default, text).await?;
    Ok(None)
}

/// The `sendMessage` parameter, as `chat.sendMessage` reads it.
fn new_message(m: &Map<String, Value>) -> ServiceResult<NewMessage> {
    let string = |key: &str| -> ServiceResult<Option<String>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(match_failed()),
        }
    };
    let rid = string("rid")?
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ServiceError::failure("The 'rid' property on the message object is missing."))?;
    Ok(NewMessage {
        id: string("_id")?,
        rid,
        msg: string("msg")?.unwrap_or_default(),
        tmid: string("tmid")?,
        tshow: m.get("tshow").and_then(Value::as_bool).unwrap_or(false),
        groupable: m.get("groupable").and_then(Value::as_bool),
        extra: crate::v1::chat::client_extra(m),
    })
}

async fn login(ctx: &mut MethodCtx<'_>, params: Vec<Value>) -> ServiceResult<Value> {
    if ctx.conn.is_none() {
        return Err(websocket_only());
    }
    let Some(Value::Object(p)) = params.into_iter().next() else { return Err(match_failed()) };
    // `{totp: {login: {...}, code}}` wraps another form; two-factor is not enforced yet.
    let p = match p.get("totp").and_then(|t| t.get("login")).and_then(Value::as_object) {
        Some(inner) => inner.clone(),
        None => p,
    };
    let credentials = if let Some(token) = p.get("resume").and_then(Value::as_str) {
        Credentials::Resume { token: token.to_owned() }
    } else {
        let user = match p.get("user") {
            Some(Value::Object(u)) => match (u.get("username"), u.get("email")) {
                (Some(Value::String(n)), _) => LoginUser::Username(n.clone()),
                (_, Some(Value::String(e))) => LoginUser::Email(e.clone()),
                _ => return Err(match_failed()),
            },
            Some(Value::String(s)) => LoginUser::UsernameOrEmail(s.clone()),
            _ => return Err(ServiceError::invalid("400", "Unrecognized options for login request")),
        };
        let password = match p.get("password") {
            Some(Value::String(s)) => Password::Plain(s.clone()),
            Some(Value::Object(o)) => Password::Digest {
                digest: o.get("digest").and_then(Value::as_str).unwrap_or_default().to_owned(),
                algorithm: o.get("algorithm").and_then(Value::as_str).unwrap_or_default().to_owned(),
            },
            _ => return Err(match_failed()),
        };
        Credentials::Password { user, password }
    };
    let kind = if matches!(credentials, Credentials::Resume { .. }) { "resume" } else { "password" };
    let response =
        ctx.state.auth.login(LoginRequest { credentials, client_ip: None }).await.map_err(|e| {
            // Meteor's `login` answers an unknown user with 403 "User not found".
            if e.error_type == "Unauthorized" {
                ServiceError::new(ErrorKind::Unauthenticated, "403", "User not found")
            } else {
                e
            }
        })?;
    ctx.principal = Some(response.user.principal());
    ctx.token = Some(response.token.clone());
    Ok(json!({
        "id": response.user.id,
        "token": response.token,
        "tokenExpires": Dates::Ejson.value(response.token_expires),
        "type": kind,
    }))
}

/// Typing and other room activity: relayed to the room's other watchers, never stored.
async fn notify_room(ctx: &MethodCtx<'_>, who: &Principal, params: &[Value]) -> ServiceResult<()> {
    let event_name = str_param(params, 0)?;
    let Some((rid, event)) = event_name.split_once('/') else { return Ok(()) };
    if event != "user-activity" && event != "typing" {
        return Ok(());
    }
    // Rocket.Chat drops a write whose username is not the caller's (or their name with real names).
    let username = params.get(1).and_then(Value::as_str).unwrap_or_default();
    let real_names = ctx.state.auth.setting_bool("UI_Use_Real_Name", false).await;
    let is_caller = username == who.username || (real_names && who.name.as_deref() == Some(username));
    if !is_caller || ctx.state.messaging.room_info(who, RoomSelector::id(rid)).await.is_err() {
        return Ok(());
    }
    let activity: Vec<String> = match params.get(2) {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        // The legacy `typing` event carries a boolean.
        Some(Value::Bool(true)) => vec!["user-typing".into()],
        _ => vec![],
    };
    let extra = params
        .get(3)
        .cloned()
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .unwrap_or(Value::Null);
    let event = RoomEvent::Activity {
        username: username.to_owned(),
        activity,
        extra,
        origin: ctx.conn.map(|c| ctx.state.hub.origin(c.id)).unwrap_or_default(),
    };
    if let Ok(subject) = Subject::new(&room_subject(rid, "activity"))
        && let Err(e) = ctx.state.bus.publish(&subject, event.encode()).await
    {
        tracing::warn!(error = %e, "typing not relayed");
    }
    Ok(())
}
