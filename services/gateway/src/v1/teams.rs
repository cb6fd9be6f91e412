//! `teams.*`, `channels.convertToTeam` / `groups.convertToTeam` and `users.listTeams`, with
//! Rocket.Chat's parameter checks; the rules live in the messaging service.

use apogee_api::{
    CreateTeam, TeamDissolve, TeamMemberFilter, TeamMemberParams, TeamRoomFilter, TeamSelector,
};
use apogee_rc::{Dates, iso};
use apogee_types::{Team, TeamMember};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str, page};
use crate::reply::ok;
use crate::v1::rooms::{CHANNELS, Family, GROUPS, resolve};

pub(crate) fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/api/v1/teams.create", post(create))
        .route("/api/v1/teams.list", get(list))
        .route("/api/v1/teams.listAll", get(list_all))
        .route("/api/v1/teams.info", get(info))
        .route("/api/v1/teams.delete", post(delete))
        .route("/api/v1/teams.convertToChannel", post(convert_to_channel))
        .route("/api/v1/teams.update", post(update))
        .route("/api/v1/teams.members", get(members))
        .route("/api/v1/teams.addMembers", post(add_members))
        .route("/api/v1/teams.updateMember", post(update_member))
        .route("/api/v1/teams.removeMember", post(remove_member))
        .route("/api/v1/teams.leave", post(leave))
        .route("/api/v1/teams.addRooms", post(add_rooms))
        .route("/api/v1/teams.removeRoom", post(remove_room))
        .route("/api/v1/teams.updateRoom", post(update_room))
        .route("/api/v1/teams.listRooms", get(list_rooms))
        .route("/api/v1/teams.autocomplete", get(autocomplete))
        .route("/api/v1/channels.convertToTeam", post(channel_to_team))
        .route("/api/v1/groups.convertToTeam", post(group_to_team))
        .route("/api/v1/users.listTeams", get(user_teams))
}

pub(crate) fn team_json(team: &Team) -> Value {
    json!({
        "_id": team.id,
        "name": team.name,
        "type": team.kind,
        "roomId": team.room_id,
        "createdBy": { "_id": team.created_by.id, "username": team.created_by.username },
        "createdAt": iso(team.created_at),
        "_updatedAt": iso(team.updated_at),
    })
}

fn with(mut value: Value, extra: &[(&str, Value)]) -> Value {
    if let Value::Object(m) = &mut value {
        for (k, v) in extra {
            m.insert((*k).to_owned(), v.clone());
        }
    }
    value
}

fn room_json(room: &apogee_types::Room) -> Value {
    apogee_rc::room(room, Dates::Iso)
}

/// `teamId` or `teamName` from a body or query; refused as the validators do when neither is there.
fn selector(params: &Map<String, Value>) -> ApiResult<TeamSelector> {
    let id = body_str(params, "teamId").map(str::to_owned);
    let name = body_str(params, "teamName").map(str::to_owned);
    if id.is_none() && name.is_none() {
        return Err(ApiError::invalid_params("must have required property 'teamId'"));
    }
    Ok(TeamSelector { id, name })
}

fn query_map(query: &std::collections::HashMap<String, String>) -> Map<String, Value> {
    query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// An optional array of strings; `non_empty` refuses `[]` (the validators' `minItems: 1`).
fn strings(body: &Map<String, Value>, key: &str, non_empty: bool) -> ApiResult<Vec<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => {
            if non_empty && items.is_empty() {
                return Err(ApiError::invalid_params(format!("must NOT have fewer than 1 items: '{key}'")));
            }
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid_params(format!("must be array of strings: '{key}'")))
        }
        Some(_) => Err(ApiError::invalid_params(format!("must be array: '{key}'"))),
    }
}

fn member_params(value: &Value) -> ApiResult<TeamMemberParams> {
    let user_id = value
        .get("userId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_params("must have required property 'userId'"))?;
    let roles = match value.get("roles") {
        None | Some(Value::Null) => None,
        Some(Value::Array(r)) => Some(r.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Some(_) => return Err(ApiError::invalid_params("must be array: 'roles'")),
    };
    Ok(TeamMemberParams { user_id: user_id.to_owned(), roles })
}

async fn create(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let name = match body.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => return Err(ApiError::failure("Match error: Expected string in field name")),
    };
    let private = match body.get("type").and_then(Value::as_i64) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(ApiError::failure(
                "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation in field type",
            ));
        }
    };
    let members = strings(&body, "members", false)?;
    let owner = body_str(&body, "owner").map(str::to_owned);
    let read_only =
        body.get("room").and_then(|r| r.get("readOnly")).and_then(Value::as_bool).unwrap_or(false);
    let team = state
        .messaging
        .create_team(&caller.principal, CreateTeam { name, private, members, owner, read_only })
        .await?;
    Ok(ok!("team" => team_json(&team)))
}

async fn list_page(
    state: GatewayState,
    caller: Caller,
    query: &std::collections::HashMap<String, String>,
    all: bool,
) -> ApiResult {
    let page = page(&state, query).await?;
    let found = state.messaging.list_teams(&caller.principal, all, page).await?;
    let teams: Vec<Value> = found
        .items
        .iter()
        .map(|t| {
            with(
                team_json(&t.team),
                &[("rooms", t.rooms.into()), ("numberOfUsers", t.number_of_users.into())],
            )
        })
        .collect();
    Ok(
        ok!("teams" => teams.clone(), "total" => found.total, "count" => teams.len(), "offset" => found.offset),
    )
}

async fn list(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    list_page(state, caller, &query, false).await
}

async fn list_all(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    list_page(state, caller, &query, true).await
}

async fn info(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let sel = selector(&query_map(&query))?;
    let team = state.messaging.team_info(&caller.principal, sel).await?;
    Ok(ok!("teamInfo" => team_json(&team)))
}

async fn dissolve(
    state: GatewayState,
    caller: Caller,
    body: Map<String, Value>,
    how: TeamDissolve,
) -> ApiResult {
    let sel = selector(&body)?;
    let rooms = strings(&body, "roomsToRemove", false)?;
    state.messaging.dissolve_team(&caller.principal, sel, rooms, how).await?;
    Ok(ok!())
}

async fn delete(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    dissolve(state, caller, body, TeamDissolve::Delete).await
}

async fn convert_to_channel(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    dissolve(state, caller, body, TeamDissolve::ConvertToChannel).await
}

async fn update(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let Some(data) = body.get("data").and_then(Value::as_object) else {
        return Err(ApiError::invalid_params("must have required property 'data'"));
    };
    let name = data.get("name").and_then(Value::as_str).map(str::to_owned);
    let private = match data.get("type") {
        None => None,
        Some(t) => match t.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => return Err(ApiError::invalid_params("must be equal to one of the allowed values: 'type'")),
        },
    };
    state.messaging.update_team(&caller.principal, sel, name, private).await?;
    Ok(ok!())
}

fn member_json(member: &TeamMember, user: &apogee_types::User) -> Value {
    let mut u = json!({ "_id": user.id, "username": user.username, "status": user.status });
    if let Some(name) = &user.name {
        u["name"] = Value::String(name.clone());
    }
    let mut m = json!({
        "user": u,
        "createdBy": { "_id": member.created_by.id, "username": member.created_by.username },
        "createdAt": iso(member.created_at),
    });
    if let Some(roles) = &member.roles {
        m["roles"] = json!(roles);
    }
    m
}

async fn members(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let page = page(&state, &query).await?;
    let sel = selector(&query_map(&query))?;
    let filter = TeamMemberFilter {
        username: query.get("username").filter(|s| !s.is_empty()).cloned(),
        name: query.get("name").filter(|s| !s.is_empty()).cloned(),
        status: query
            .get("status[]")
            .or_else(|| query.get("status"))
            .map(|s| s.split(',').map(str::to_owned).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
    };
    let found = state.messaging.team_members(&caller.principal, sel, filter, page).await?;
    let members: Vec<Value> = found.items.iter().map(|i| member_json(&i.member, &i.user)).collect();
    Ok(
        ok!("members" => members.clone(), "total" => found.total, "count" => members.len(), "offset" => found.offset),
    )
}

async fn add_members(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let members = match body.get("members") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().map(member_params).collect::<ApiResult<Vec<_>>>()?
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid_params("must NOT have fewer than 1 items: 'members'"));
        }
        _ => return Err(ApiError::invalid_params("must have required property 'members'")),
    };
    state.messaging.add_team_members(&caller.principal, sel, members).await?;
    Ok(ok!())
}

async fn update_member(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let Some(member) = body.get("member") else {
        return Err(ApiError::invalid_params("must have required property 'member'"));
    };
    let member = member_params(member)?;
    state.messaging.update_team_member(&caller.principal, sel, member).await?;
    Ok(ok!())
}

async fn remove_member(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let Some(user_id) = body_str(&body, "userId").map(str::to_owned) else {
        return Err(ApiError::invalid_params("must have required property 'userId'"));
    };
    let rooms = strings(&body, "rooms", true)?;
    state.messaging.remove_team_member(&caller.principal, sel, &user_id, rooms, false).await?;
    Ok(ok!())
}

async fn leave(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let rooms = strings(&body, "rooms", true)?;
    let me = caller.principal.user_id.clone();
    state.messaging.remove_team_member(&caller.principal, sel, &me, rooms, true).await?;
    Ok(ok!())
}

async fn add_rooms(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let rooms = match body.get("rooms") {
        Some(Value::Array(_)) => strings(&body, "rooms", false)?,
        _ => {
            return Err(ApiError::failure(
                "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation",
            ));
        }
    };
    let rooms = state.messaging.add_team_rooms(&caller.principal, sel, rooms).await?;
    Ok(ok!("rooms" => rooms.iter().map(room_json).collect::<Vec<_>>()))
}

async fn remove_room(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let sel = selector(&body)?;
    let Some(rid) = body_str(&body, "roomId").map(str::to_owned) else {
        return Err(ApiError::invalid_params("must have required property 'roomId'"));
    };
    let room = state.messaging.remove_team_room(&caller.principal, sel, &rid).await?;
    Ok(ok!("room" => room_json(&room)))
}

async fn update_room(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let (Some(rid), Some(is_default)) =
        (body_str(&body, "roomId"), body.get("isDefault").and_then(Value::as_bool))
    else {
        return Err(ApiError::failure("Match error: Missing key 'isDefault'"));
    };
    let room = state.messaging.update_team_room(&caller.principal, rid, is_default).await?;
    Ok(ok!("room" => room_json(&room)))
}

async fn list_rooms(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let sel = selector(&query_map(&query))?;
    let page = page(&state, &query).await?;
    let filter = TeamRoomFilter {
        name: query.get("filter").filter(|s| !s.is_empty()).cloned(),
        auto_join: query.get("type").is_some_and(|t| t == "autoJoin"),
    };
    let found = state.messaging.team_rooms(&caller.principal, sel, filter, page).await?;
    let rooms: Vec<Value> = found.items.iter().map(room_json).collect();
    Ok(
        ok!("rooms" => rooms.clone(), "total" => found.total, "count" => rooms.len(), "offset" => found.offset),
    )
}

async fn to_team(state: GatewayState, family: Family, caller: Caller, body: Map<String, Value>) -> ApiResult {
    let (id_key, name_key) = if family.t == apogee_types::RoomType::Channel {
        ("channelId", "channelName")
    } else {
        ("roomId", "roomName")
    };
    // `channels.convertToTeam` validates its body against a `oneOf` of `{channelId}` and
    // `{channelName}`, each without other properties; `groups.convertToTeam` validates nothing.
    if family.t == apogee_types::RoomType::Channel {
        let one_string = |key: &str| body.len() == 1 && body.get(key).is_some_and(Value::is_string);
        if !(one_string(id_key) || one_string(name_key)) {
            return Err(ApiError::invalid_params("must match exactly one schema in oneOf"));
        }
    }
    let mut params = Map::new();
    if let Some(id) = body_str(&body, id_key) {
        params.insert("roomId".into(), id.into());
    }
    if let Some(name) = body_str(&body, name_key) {
        params.insert("roomName".into(), name.into());
    }
    if params.is_empty() {
        return Err(ApiError::invalid_params(format!("must have required property '{id_key}'")));
    }
    let room = resolve(&state, family, &caller.principal, &params).await?;
    let team = state.messaging.convert_room_to_team(&caller.principal, &room.id).await?;
    Ok(ok!("team" => team_json(&team)))
}

async fn channel_to_team(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    to_team(state, CHANNELS, caller, body).await
}

async fn group_to_team(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    to_team(state, GROUPS, caller, body).await
}

async fn user_teams(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let user_id = query.get("userId").cloned().unwrap_or_else(|| caller.principal.user_id.clone());
    let teams = state.messaging.user_teams(&caller.principal, &user_id).await?;
    let teams: Vec<Value> =
        teams.iter().map(|t| with(team_json(&t.team), &[("isOwner", t.is_owner.into())])).collect();
    Ok(ok!("teams" => teams))
}

/// `GET teams.autocomplete?name=`: up to ten teams whose main room's name or display name starts
/// with `name` (case-insensitive), among public teams and the caller's private ones, as
/// Rocket.Chat's `Team.autocomplete`.
async fn autocomplete(State(state): State<GatewayState>, caller: Caller, Query(query): Query) -> ApiResult {
    let Some(name) = query.get("name") else {
        return Err(ApiError::failure("Match error: Missing key 'name'"));
    };
    let prefix = name.trim().to_lowercase();
    let starts = |s: Option<&str>| s.is_some_and(|s| s.to_lowercase().starts_with(&prefix));
    let mut rooms: Vec<apogee_types::Room> = crate::v1::directory::directory_rooms(&state, &caller, "")
        .await?
        .into_iter()
        .filter(|r| r.team_main && (starts(r.name.as_deref()) || starts(r.fname.as_deref())))
        .collect();
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    let teams: Vec<Value> = rooms
        .iter()
        .take(10)
        .map(|r| {
            let mut m = Map::new();
            m.insert("_id".into(), r.id.clone().into());
            for (key, value) in [
                ("fname", &r.fname),
                ("teamId", &r.team_id),
                ("name", &r.name),
                ("avatarETag", &r.avatar_etag),
            ] {
                if let Some(v) = value {
                    m.insert(key.into(), v.clone().into());
                }
            }
            m.insert("t".into(), r.t.as_str().into());
            Value::Object(m)
        })
        .collect();
    Ok(ok!("teams" => teams))
}
