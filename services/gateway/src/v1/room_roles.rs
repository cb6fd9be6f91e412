//! `*.addOwner` / `removeOwner` / `addModerator` / `removeModerator` / `addLeader` /
//! `removeLeader`, `*.roles` and `*.moderators` for channels and groups.

use axum::Extension;
use axum::extract::State;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Query};
use crate::reply::ok;
use crate::v1::rooms::{Family, query_params, resolve, target_user};

async fn set_role(
    state: GatewayState,
    f: Family,
    caller: Caller,
    body: serde_json::Map<String, Value>,
    role: &str,
    add: bool,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &body).await?;
    let user = target_user(&body)?;
    state.messaging.set_room_role(&caller.principal, &room.id, user, role, add).await?;
    Ok(ok!())
}

macro_rules! role_route {
    ($name:ident, $role:literal, $add:literal) => {
        pub(crate) async fn $name(
            State(state): State<GatewayState>,
            Extension(f): Extension<Family>,
            caller: Caller,
            Body(body): Body,
        ) -> ApiResult {
            set_role(state, f, caller, body, $role, $add).await
        }
    };
}

role_route!(add_owner, "owner", true);
role_route!(remove_owner, "owner", false);
role_route!(add_moderator, "moderator", true);
role_route!(remove_moderator, "moderator", false);
role_route!(add_leader, "leader", true);
role_route!(remove_leader, "leader", false);

/// `*.roles`: members holding room roles.
pub(crate) async fn roles(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let subs = state.messaging.room_roles(&caller.principal, &room.id).await?;
    let roles: Vec<Value> =
        subs.iter().map(|s| json!({ "_id": s.id, "rid": s.rid, "u": s.u, "roles": s.roles })).collect();
    Ok(ok!("roles" => roles))
}

/// `*.moderators`: the room's moderators.
pub(crate) async fn moderators(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let subs = state.messaging.room_roles(&caller.principal, &room.id).await?;
    let moderators: Vec<Value> = subs
        .iter()
        .filter(|s| s.roles.iter().any(|r| r == "moderator"))
        .map(|s| json!({ "_id": s.u.id, "username": s.u.username, "name": s.u.name }))
        .collect();
    Ok(ok!("moderators" => moderators))
}
