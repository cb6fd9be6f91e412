//! `teams.*`, `channels.convertToTeam`, `groups.convertToTeam`, `users.listTeams`: success,
//! Rocket.Chat's refusals, and the sidebar events the changes emit.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

async fn team(client: &Client, name: &str, kind: u8, extra: Value) -> Value {
    let mut body = json!({"name": name, "type": kind});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    client.ok_post("teams.create", body).await["team"].clone()
}

fn failure(resp: &(reqwest::StatusCode, Value), status: u16, error: &str) {
    assert_error(resp, status, None);
    assert_eq!(resp.1["error"], error, "{}", resp.1);
}

async fn watch(server: &TestServer, who: &Client) -> Ddp {
    let mut ws = Ddp::login(&server.url, who.token()).await;
    let uid = who.user_id().to_owned();
    for event in ["subscriptions-changed", "rooms-changed"] {
        assert_eq!(
            ws.sub("stream-notify-user", json!([format!("{uid}/{event}"), false])).await["msg"],
            "ready"
        );
    }
    ws
}

#[tokio::test]
async fn create_info_list_and_refusals() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let mut bob_ws = watch(&server, &bob).await;

    let public = team(&admin, "alpha", 0, json!({"members": [bob.user_id()]})).await;
    assert_eq!((public["name"].as_str(), public["type"].as_i64()), (Some("alpha"), Some(0)));
    let rid = public["roomId"].as_str().unwrap().to_owned();
    // Bob was added to the main room: his sidebar hears of it.
    let inserted =
        bob_ws.event("stream-notify-user", &format!("{}/subscriptions-changed", bob.user_id())).await;
    assert_eq!(
        (inserted["fields"]["args"][0].as_str(), inserted["fields"]["args"][1]["rid"].as_str()),
        (Some("inserted"), Some(rid.as_str()))
    );
    let room = bob_ws.event("stream-notify-user", &format!("{}/rooms-changed", bob.user_id())).await;
    assert_eq!(room["fields"]["args"][1]["teamMain"], true);
    assert_eq!(room["fields"]["args"][1]["teamId"], public["_id"]);

    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(
        (info["channel"]["teamMain"].clone(), info["channel"]["teamId"].clone()),
        (json!(true), public["_id"].clone())
    );

    // A private team owned by someone else than the caller.
    let private = team(&admin, "secret", 1, json!({"owner": carol.user_id()})).await;
    let owners = carol.ok_get(&format!("teams.members?teamId={}", private["_id"].as_str().unwrap())).await;
    assert_eq!(owners["total"], 1);
    assert_eq!(owners["members"][0]["user"]["username"], "carol");
    assert_eq!(owners["members"][0]["roles"], json!(["owner"]));

    failure(
        &admin.post("teams.create", json!({"name": "alpha", "type": 0})).await,
        400,
        "team-name-already-exists",
    );
    failure(
        &admin.post("teams.create", json!({"name": "bad*name", "type": 0})).await,
        400,
        "error-team-creation",
    );
    failure(&admin.get("teams.info?teamName=bad*name").await, 400, "Team not found");
    failure(&admin.get("teams.members?teamName=bad*name").await, 400, "team-does-not-exist");
    assert_error(&admin.post("teams.create", json!({"name": "x", "type": 7})).await, 400, None);

    let by_name = bob.ok_get("teams.info?teamName=alpha").await;
    assert_eq!(by_name["teamInfo"]["_id"], public["_id"]);
    assert_eq!(by_name["teamInfo"]["roomId"], rid.as_str());
    // Bob is not in the private team's room.
    failure(
        &bob.get(&format!("teams.info?teamId={}", private["_id"].as_str().unwrap())).await,
        403,
        "unauthorized",
    );

    let mine = bob.ok_get("teams.list").await;
    assert_eq!(mine["total"], 1);
    assert_eq!(
        (
            mine["teams"][0]["name"].as_str(),
            mine["teams"][0]["numberOfUsers"].as_i64(),
            mine["teams"][0]["rooms"].as_i64()
        ),
        (Some("alpha"), Some(2), Some(1))
    );
    failure(&bob.get("teams.listAll").await, 403, "unauthorized");
    assert_eq!(admin.ok_get("teams.listAll").await["total"], 2);

    // users.listTeams: private teams only for those who may see them.
    let carols = bob.ok_get(&format!("users.listTeams?userId={}", carol.user_id())).await;
    assert_eq!(carols["teams"], json!([]));
    let carols = admin.ok_get(&format!("users.listTeams?userId={}", carol.user_id())).await;
    assert_eq!(
        (carols["teams"][0]["name"].as_str(), carols["teams"][0]["isOwner"].as_bool()),
        (Some("secret"), Some(true))
    );

    // Without `create-team`, nothing is created.
    admin
        .ok_post("permissions.update", json!({"permissions": [{"_id": "create-team", "roles": ["admin"]}]}))
        .await;
    failure(&bob.post("teams.create", json!({"name": "nope", "type": 0})).await, 403, "unauthorized");
    assert_error(&admin.get("teams.info?teamName=nope").await, 400, None);
}

#[tokio::test]
async fn members_add_update_remove_and_leave() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let t = team(&admin, "crew", 0, json!({})).await;
    let id = t["_id"].as_str().unwrap().to_owned();
    let rid = t["roomId"].as_str().unwrap().to_owned();
    let mut bob_ws = watch(&server, &bob).await;

    // Members only: bob may not add anyone.
    failure(
        &bob.post("teams.addMembers", json!({"teamId": id, "members": [{"userId": carol.user_id()}]})).await,
        403,
        "unauthorized",
    );
    assert_error(
        &admin.post("teams.addMembers", json!({"teamId": id, "members": []})).await,
        400,
        Some("invalid-params"),
    );
    admin
        .ok_post("teams.addMembers", json!({"teamName": "crew", "members": [{"userId": bob.user_id(), "roles": ["member"]}, {"userId": carol.user_id()}]}))
        .await;
    let inserted =
        bob_ws.event("stream-notify-user", &format!("{}/subscriptions-changed", bob.user_id())).await;
    assert_eq!(inserted["fields"]["args"][1]["rid"], rid.as_str());
    let members = admin.ok_get(&format!("teams.members?teamId={id}")).await;
    assert_eq!(members["total"], 3);
    let filtered = admin.ok_get(&format!("teams.members?teamId={id}&username=CAR")).await;
    assert_eq!(
        (filtered["total"].as_i64(), filtered["members"][0]["user"]["username"].as_str()),
        (Some(1), Some("carol"))
    );
    assert_eq!(admin.ok_get(&format!("channels.members?roomId={rid}")).await["total"], 3);

    // updateMember: team roles and room roles together.
    failure(
        &bob.post(
            "teams.updateMember",
            json!({"teamId": id, "member": {"userId": bob.user_id(), "roles": ["owner"]}}),
        )
        .await,
        403,
        "unauthorized",
    );
    admin
        .ok_post(
            "teams.updateMember",
            json!({"teamId": id, "member": {"userId": bob.user_id(), "roles": ["moderator", "owner"]}}),
        )
        .await;
    let changed = bob_ws
        .recv_where(|f| {
            f["fields"]["eventName"] == format!("{}/subscriptions-changed", bob.user_id())
                && f["fields"]["args"][1]["roles"] == json!(["moderator", "owner"])
        })
        .await;
    assert_eq!(changed["fields"]["args"][0], "updated");
    let roles = admin.ok_get(&format!("channels.roles?roomId={rid}")).await;
    assert!(roles["roles"].as_array().unwrap().iter().any(|r| r["u"]["username"] == "bob"));

    // removeMember: the last owner stays; empty `rooms` is invalid.
    admin
        .ok_post(
            "teams.updateMember",
            json!({"teamId": id, "member": {"userId": bob.user_id(), "roles": []}}),
        )
        .await;
    failure(
        &admin.post("teams.removeMember", json!({"teamId": id, "userId": admin.user_id()})).await,
        400,
        "last-owner-can-not-be-removed",
    );
    assert_error(
        &admin
            .post("teams.removeMember", json!({"teamId": id, "userId": carol.user_id(), "rooms": []}))
            .await,
        400,
        Some("invalid-params"),
    );
    failure(
        &bob.post("teams.removeMember", json!({"teamId": id, "userId": carol.user_id()})).await,
        403,
        "unauthorized",
    );
    admin.ok_post("teams.removeMember", json!({"teamId": id, "userId": carol.user_id()})).await;
    assert_eq!(admin.ok_get(&format!("teams.members?teamId={id}")).await["total"], 2);
    assert_eq!(admin.ok_get(&format!("channels.members?roomId={rid}")).await["total"], 2);
    failure(
        &admin.post("teams.removeMember", json!({"teamId": id, "userId": carol.user_id()})).await,
        400,
        "member-does-not-exist",
    );

    // leave: the last owner may not; a member may, and their subscription goes.
    failure(&admin.post("teams.leave", json!({"teamId": id})).await, 400, "last-owner-can-not-be-removed");
    assert_error(
        &bob.post("teams.leave", json!({"teamId": id, "rooms": []})).await,
        400,
        Some("invalid-params"),
    );
    bob.ok_post("teams.leave", json!({"teamName": "crew"})).await;
    let removed = bob_ws
        .recv_where(|f| {
            f["fields"]["eventName"] == format!("{}/subscriptions-changed", bob.user_id())
                && f["fields"]["args"][0] == "removed"
        })
        .await;
    assert_eq!(removed["fields"]["args"][1]["rid"], rid.as_str());
    assert_eq!(bob.ok_get("teams.list").await["total"], 0);

    // Joining the main room makes a team member again (channels.join), leaving it ends it.
    bob.ok_post("channels.join", json!({"roomId": rid})).await;
    assert_eq!(bob.ok_get("teams.list").await["total"], 1);
    bob.ok_post("channels.leave", json!({"roomId": rid})).await;
    assert_eq!(bob.ok_get("teams.list").await["total"], 0);
}

#[tokio::test]
async fn rooms_of_a_team() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let t = team(&admin, "ops", 0, json!({"members": [bob.user_id()]})).await;
    let id = t["_id"].as_str().unwrap().to_owned();
    let public = admin.ok_post("channels.create", json!({"name": "ops-public"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let private = admin.ok_post("groups.create", json!({"name": "ops-private"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs = bob.ok_post("channels.create", json!({"name": "bobs-room"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    failure(
        &bob.post("teams.addRooms", json!({"teamId": id, "rooms": [bobs]})).await,
        403,
        "error-no-permission-team-channel",
    );
    failure(
        &admin.post("teams.addRooms", json!({"teamId": id, "rooms": ["nope"]})).await,
        400,
        "invalid-room",
    );
    failure(
        &admin.post("teams.addRooms", json!({"teamId": id, "rooms": [bobs]})).await,
        400,
        "error-no-owner-channel",
    );
    let mut admin_ws = watch(&server, &admin).await;
    let added = admin.ok_post("teams.addRooms", json!({"teamId": id, "rooms": [public, private]})).await;
    assert_eq!(added["rooms"].as_array().unwrap().len(), 2);
    assert!(added["rooms"].as_array().unwrap().iter().all(|r| r["teamId"] == id.as_str()));
    let changed = admin_ws
        .recv_where(|f| {
            f["fields"]["eventName"] == format!("{}/rooms-changed", admin.user_id())
                && f["fields"]["args"][1]["_id"] == public.as_str()
                && f["fields"]["args"][1]["teamId"] == id.as_str()
        })
        .await;
    assert_eq!(changed["fields"]["args"][0], "updated");
    failure(
        &admin.post("teams.addRooms", json!({"teamId": id, "rooms": [public]})).await,
        400,
        "room-already-on-team",
    );

    // listRooms: bob (no view-all-team-channels) sees the public room only.
    let seen = bob.ok_get(&format!("teams.listRooms?teamId={id}")).await;
    assert_eq!((seen["total"].as_i64(), seen["rooms"][0]["_id"].as_str()), (Some(1), Some(public.as_str())));
    assert_eq!(admin.ok_get(&format!("teams.listRooms?teamId={id}")).await["total"], 2);
    assert_eq!(admin.ok_get(&format!("teams.listRooms?teamId={id}&filter=PRIV")).await["total"], 1);

    // updateRoom: an auto-join room takes the team's members.
    failure(
        &bob.post("teams.updateRoom", json!({"roomId": public, "isDefault": true})).await,
        403,
        "unauthorized",
    );
    let room = admin.ok_post("teams.updateRoom", json!({"roomId": public, "isDefault": true})).await;
    assert_eq!(
        (room["room"]["teamDefault"].clone(), room["room"]["usersCount"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(admin.ok_get(&format!("teams.listRooms?teamId={id}&type=autoJoin")).await["total"], 1);
    // A new member joins the default room too.
    admin.ok_post("teams.addMembers", json!({"teamId": id, "members": [{"userId": carol.user_id()}]})).await;
    assert_eq!(admin.ok_get(&format!("channels.members?roomId={public}")).await["total"], 3);
    failure(
        &admin.post("teams.updateRoom", json!({"roomId": bobs, "isDefault": true})).await,
        400,
        "room-not-on-team",
    );

    // Private team: outsiders cannot list its rooms.
    let hidden = team(&admin, "hidden", 1, json!({})).await;
    failure(
        &bob.get(&format!("teams.listRooms?teamId={}", hidden["_id"].as_str().unwrap())).await,
        400,
        "user-not-on-private-team",
    );

    // removeRoom.
    failure(
        &bob.post("teams.removeRoom", json!({"teamId": id, "roomId": private})).await,
        403,
        "unauthorized",
    );
    let removed = admin.ok_post("teams.removeRoom", json!({"teamId": id, "roomId": private})).await;
    assert!(removed["room"].get("teamId").is_none());
    failure(
        &admin.post("teams.removeRoom", json!({"teamId": id, "roomId": private})).await,
        400,
        "room-not-on-that-team",
    );
    assert_eq!(admin.ok_get(&format!("teams.listRooms?teamId={id}")).await["total"], 1);
}

#[tokio::test]
async fn delete_convert_and_update() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let t = team(&admin, "gone", 0, json!({"members": [bob.user_id()]})).await;
    let id = t["_id"].as_str().unwrap().to_owned();
    let main = t["roomId"].as_str().unwrap().to_owned();
    let erased = admin.ok_post("channels.create", json!({"name": "gone-a"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = admin.ok_post("channels.create", json!({"name": "gone-b"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.ok_post("teams.addRooms", json!({"teamId": id, "rooms": [erased, kept]})).await;
    let mut bob_ws = watch(&server, &bob).await;

    failure(&bob.post("teams.delete", json!({"teamId": id})).await, 403, "unauthorized");
    failure(&admin.post("teams.delete", json!({"teamName": "nope"})).await, 400, "team-does-not-exist");
    admin.ok_post("teams.delete", json!({"teamName": "gone", "roomsToRemove": [erased]})).await;
    let removed = bob_ws
        .recv_where(|f| {
            f["fields"]["eventName"] == format!("{}/subscriptions-changed", bob.user_id())
                && f["fields"]["args"][0] == "removed"
        })
        .await;
    assert_eq!(removed["fields"]["args"][1]["rid"], main.as_str());
    failure(&admin.get("teams.info?teamName=gone").await, 400, "Team not found");
    for rid in [&main, &erased] {
        assert_error(
            &admin.get(&format!("channels.info?roomId={rid}")).await,
            400,
            Some("error-room-not-found"),
        );
    }
    assert!(admin.ok_get(&format!("channels.info?roomId={kept}")).await["channel"].get("teamId").is_none());

    // convertToChannel keeps the main room as a plain room.
    let t = team(&admin, "phase", 0, json!({})).await;
    let id = t["_id"].as_str().unwrap().to_owned();
    let main = t["roomId"].as_str().unwrap().to_owned();
    failure(&bob.post("teams.convertToChannel", json!({"teamId": id})).await, 403, "unauthorized");
    admin.ok_post("teams.convertToChannel", json!({"teamId": id})).await;
    let room = admin.ok_get(&format!("channels.info?roomId={main}")).await["channel"].clone();
    assert!(room.get("teamMain").is_none() && room.get("teamId").is_none(), "{room}");
    let messages = admin.ok_get(&format!("channels.messages?roomId={main}")).await;
    assert!(messages["messages"].as_array().unwrap().iter().any(|m| m["t"] == "user-converted-to-channel"));

    // channels.convertToTeam and back; groups.convertToTeam.
    let rid = admin.ok_post("channels.create", json!({"name": "club", "members": ["bob"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    failure(&bob.post("channels.convertToTeam", json!({"channelId": rid})).await, 403, "unauthorized");
    let converted =
        admin.ok_post("channels.convertToTeam", json!({"channelName": "club"})).await["team"].clone();
    assert_eq!((converted["roomId"].as_str(), converted["type"].as_i64()), (Some(rid.as_str()), Some(0)));
    assert_eq!(
        admin.ok_get(&format!("teams.members?teamId={}", converted["_id"].as_str().unwrap())).await["total"],
        2
    );
    assert_eq!(bob.ok_get("teams.list").await["total"], 1);
    assert_error(&admin.post("channels.convertToTeam", json!({"channelId": rid})).await, 400, None);
    let gid = admin.ok_post("groups.create", json!({"name": "cell"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group_team = admin.ok_post("groups.convertToTeam", json!({"roomId": gid})).await["team"].clone();
    assert_eq!(group_team["type"], 1);

    // teams.update renames the team and its room, and changes its type.
    failure(
        &bob.post("teams.update", json!({"teamId": converted["_id"], "data": {"name": "club2"}})).await,
        403,
        "unauthorized",
    );
    admin
        .ok_post("teams.update", json!({"teamId": converted["_id"], "data": {"name": "club2", "type": 1}}))
        .await;
    let info = admin.ok_get(&format!("teams.info?teamId={}", converted["_id"].as_str().unwrap())).await;
    assert_eq!(
        (info["teamInfo"]["name"].as_str(), info["teamInfo"]["type"].as_i64()),
        (Some("club2"), Some(1))
    );
    assert_eq!(admin.ok_get(&format!("groups.info?roomId={rid}")).await["group"]["name"], "club2");
}

#[tokio::test]
async fn autocomplete_finds_public_teams_and_the_callers_private_ones_by_prefix() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let alpha = team(&admin, "alpha-one", 0, json!({})).await;
    let secret = team(&admin, "alpha-two", 1, json!({"members": [bob.user_id()]})).await;
    team(&admin, "alpha-three", 1, json!({})).await;
    team(&admin, "beta", 0, json!({})).await;
    let found = bob.ok_get("teams.autocomplete?name=ALPHA").await;
    let teams = found["teams"].as_array().unwrap();
    let names: Vec<&str> = teams.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha-one", "alpha-two"]);
    assert_eq!(teams[0]["_id"], alpha["roomId"]);
    assert_eq!((teams[1]["teamId"].clone(), teams[1]["t"].clone()), (secret["_id"].clone(), json!("p")));
    let mut keys: Vec<&str> = teams[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["_id", "fname", "name", "t", "teamId"]);
    // Only a prefix matches; the name is required.
    assert_eq!(bob.ok_get("teams.autocomplete?name=one").await["teams"], json!([]));
    let refused = bob.get("teams.autocomplete").await;
    assert_eq!(
        (refused.0.as_u16(), refused.1["error"].as_str()),
        (400, Some("Match error: Missing key 'name'"))
    );
}
