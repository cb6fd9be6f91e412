//! `roles.addUserToRole`, `roles.removeUserFromRole`, `roles.getUsersInRole`, and the
//! `roles-change` event on `stream-notify-logged`.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{TestServer, assert_error};
use serde_json::json;

fn usernames(body: &serde_json::Value) -> Vec<String> {
    body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn admins_give_and_take_roles_and_everyone_hears_of_it() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-notify-logged", json!(["roles-change", false])).await["msg"], "ready");

    // bob cannot read role members yet; his cached login must not outlive the change below.
    let before = bob.get("roles.getUsersInRole?role=admin").await;
    assert_error(&before, 400, Some("error-not-allowed"));
    assert_eq!(before.1["error"], "Not allowed [error-not-allowed]");

    let added = admin.ok_post("roles.addUserToRole", json!({"roleId": "admin", "username": "bob"})).await;
    assert_eq!(
        (added["role"]["_id"].as_str(), added["role"]["scope"].as_str()),
        (Some("admin"), Some("Users"))
    );
    let event = ws.event("stream-notify-logged", "roles-change").await;
    assert_eq!(
        event["fields"]["args"],
        json!([{"type": "added", "_id": "admin", "u": {"_id": bob.user_id(), "username": "bob"}}])
    );
    let info = admin.ok_get("users.info?username=bob").await;
    assert!(info["user"]["roles"].as_array().unwrap().contains(&json!("admin")), "{info}");
    // At once, with the same token: the principal was evicted from the token cache.
    let admins = bob.ok_get("roles.getUsersInRole?role=admin").await;
    assert!(usernames(&admins).contains(&"bob".to_owned()), "{admins}");
    assert_eq!(admins["total"].as_u64(), Some(usernames(&admins).len() as u64));
    let first = &admins["users"][0];
    assert!(
        first.get("roles").is_none() && first.get("createdAt").is_some(),
        "Rocket.Chat's projection: {first}"
    );

    let again = admin.post("roles.addUserToRole", json!({"roleName": "admin", "username": "bob"})).await;
    assert_error(&again, 400, Some("error-user-already-in-role"));
    assert_eq!(again.1["error"], "User already in role [error-user-already-in-role]");

    let removed =
        admin.ok_post("roles.removeUserFromRole", json!({"roleId": "admin", "username": "bob"})).await;
    assert_eq!(removed["role"]["_id"], "admin");
    let event = ws.event("stream-notify-logged", "roles-change").await;
    assert_eq!(event["fields"]["args"][0]["type"], "removed");
    assert_error(&bob.get("roles.getUsersInRole?role=admin").await, 400, Some("error-not-allowed"));
    let not_in = admin.post("roles.removeUserFromRole", json!({"roleId": "admin", "username": "bob"})).await;
    assert_error(&not_in, 400, Some("error-user-not-in-role"));
}

#[tokio::test]
async fn role_changes_are_refused_as_rocket_chat_refuses_them() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    server.user("bob").await;

    let by_user = alice.post("roles.addUserToRole", json!({"roleId": "bot", "username": "bob"})).await;
    assert_error(&by_user, 400, Some("error-action-not-allowed"));
    assert_eq!(by_user.1["error"], "Accessing permissions is not allowed [error-action-not-allowed]");
    let unknown_role =
        admin.post("roles.addUserToRole", json!({"roleId": "wizard", "username": "bob"})).await;
    assert_eq!(
        (unknown_role.0.as_u16(), unknown_role.1["error"].as_str()),
        (400, Some("error-role-not-found"))
    );
    assert_eq!(unknown_role.1["errorType"], "Role not found");
    let unknown_user = admin.post("roles.addUserToRole", json!({"roleId": "bot", "username": "ghost"})).await;
    assert_error(&unknown_user, 400, Some("error-invalid-user"));
    let no_role = admin.post("roles.addUserToRole", json!({"username": "bob"})).await;
    assert_eq!(no_role.1["error"], "error-invalid-role-properties");
    let bad_body = admin.post("roles.addUserToRole", json!({"roleId": "bot"})).await;
    assert_error(&bad_body, 400, Some("error-invalid-role-properties"));
    let extra = admin.post("roles.addUserToRole", json!({"roleId": "bot", "username": "bob", "x": 1})).await;
    assert_error(&extra, 400, Some("error-invalid-role-properties"));

    let remove_by_user =
        alice.post("roles.removeUserFromRole", json!({"roleId": "user", "username": "bob"})).await;
    assert_error(&remove_by_user, 400, Some("error-not-allowed"));
    let no_such =
        admin.post("roles.removeUserFromRole", json!({"roleId": "user", "username": "ghost"})).await;
    assert_error(&no_such, 400, Some("error-invalid-user"));
    let bad_role =
        admin.post("roles.removeUserFromRole", json!({"roleId": "wizard", "username": "bob"})).await;
    assert_error(&bad_role, 400, Some("error-invalid-roleId"));
    let bad_remove_body = admin.post("roles.removeUserFromRole", json!({"username": 3})).await;
    assert_error(&bad_remove_body, 400, Some("error-invalid-role-properties"));

    // The last admin stays one.
    let me = admin.ok_get("me").await;
    let username = me["username"].as_str().unwrap();
    let admins = admin.ok_get("roles.getUsersInRole?role=admin").await;
    assert_eq!(admins["total"], 1, "{admins}");
    let last = admin.post("roles.removeUserFromRole", json!({"roleId": "admin", "username": username})).await;
    assert_error(&last, 400, Some("error-admin-required"));

    let no_param = admin.get("roles.getUsersInRole").await;
    assert_error(&no_param, 400, Some("error-param-not-provided"));
    let unknown = admin.get("roles.getUsersInRole?role=wizard").await;
    assert_error(&unknown, 400, Some("error-invalid-roleId"));
    let info = admin.ok_get("users.info?username=bob").await;
    assert_eq!(info["user"]["roles"], json!(["user"]), "nothing changed: {info}");
}

#[tokio::test]
async fn room_roles_are_given_in_their_room() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = admin.ok_post("channels.create", json!({"name": "ops", "members": ["alice"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = server.user("bob").await;
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-notify-logged", json!(["roles-change", false])).await["msg"], "ready");

    admin
        .ok_post("roles.addUserToRole", json!({"roleId": "moderator", "username": "alice", "roomId": rid}))
        .await;
    let event = ws.event("stream-notify-logged", "roles-change").await;
    assert_eq!(
        event["fields"]["args"],
        json!([{"type": "added", "_id": "moderator", "scope": rid,
                "u": {"_id": alice.user_id(), "username": "alice", "name": "alice Name"}}])
    );
    // The room-role routes announce it the same way.
    admin.ok_post("channels.addLeader", json!({"roomId": rid, "userId": alice.user_id()})).await;
    let event = ws.event("stream-notify-logged", "roles-change").await;
    let args = &event["fields"]["args"][0];
    assert_eq!((args["_id"].as_str(), args["scope"].as_str()), (Some("leader"), Some(rid.as_str())));
    let roles = admin.ok_get(&format!("channels.roles?roomId={rid}")).await;
    let alice_roles =
        roles["roles"].as_array().unwrap().iter().find(|r| r["u"]["username"] == "alice").unwrap();
    assert_eq!(alice_roles["roles"], json!(["moderator", "leader"]), "{roles}");
    let moderators = admin.ok_get(&format!("roles.getUsersInRole?role=moderator&roomId={rid}")).await;
    assert_eq!(usernames(&moderators), ["alice"]);
    let again = admin
        .post("roles.addUserToRole", json!({"roleId": "moderator", "username": "alice", "roomId": rid}))
        .await;
    assert_error(&again, 400, Some("error-user-already-in-role"));
    let outsider = admin
        .post("roles.addUserToRole", json!({"roleId": "moderator", "username": "bob", "roomId": rid}))
        .await;
    assert_error(&outsider, 400, Some("error-invalid-user"));
    assert_eq!(outsider.1["error"], "User is not part of given room [error-invalid-user]");
    let by_member = alice.get(&format!("roles.getUsersInRole?role=moderator&roomId={rid}")).await;
    assert_error(&by_member, 400, Some("error-not-allowed"));

    admin
        .ok_post(
            "roles.removeUserFromRole",
            json!({"roleId": "moderator", "username": "alice", "scope": rid}),
        )
        .await;
    let moderators = admin.ok_get(&format!("roles.getUsersInRole?role=moderator&roomId={rid}")).await;
    assert_eq!((moderators["total"].as_u64(), usernames(&moderators).len()), (Some(0), 0));
}
