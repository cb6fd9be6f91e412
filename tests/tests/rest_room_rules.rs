//! Room rules as Rocket.Chat applies them: who may kick (`removeUserFromRoom`), join codes,
//! direct-message lookups (`invalid-channel`), the user's notification preferences on new
//! subscriptions (`saveUserPreferences`), reactions and pins in `lastMessage`, `channels.convertToTeam`'s
//! body and `teamMain` in spotlight.
#![allow(clippy::unwrap_used)]

use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

async fn permission(admin: &Client, id: &str, roles: &[&str]) {
    admin.ok_post("permissions.update", json!({"permissions": [{"_id": id, "roles": roles}]})).await;
}

async fn method(client: &Client, name: &str, params: Value) -> Value {
    let message = json!({"msg": "method", "id": "1", "method": name, "params": params}).to_string();
    let body = client.ok_post(&format!("method.call/{name}"), json!({"message": message})).await;
    serde_json::from_str(body["message"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn kicks_need_remove_user_and_kick_any_waives_access_and_membership() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let owner = server.user("owner").await;
    let moderator = server.user("mod").await;
    let member = server.user("member").await;
    let gid =
        owner.ok_post("groups.create", json!({"name": "kickers", "members": ["mod"]})).await["group"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    owner.ok_post("groups.addModerator", json!({"roomId": gid, "userId": moderator.user_id()})).await;
    let kick = |who: &str| json!({"roomId": gid, "userId": who});

    // The admin holds `remove-user` but is not in the group and lacks the kick-any permission.
    owner.ok_post("groups.invite", json!({"roomId": gid, "userId": member.user_id()})).await;
    assert_error(&admin.post("groups.kick", kick(member.user_id())).await, 400, Some("error-room-not-found"));
    // A moderator may; the answer is `success` alone.
    let kicked = moderator.ok_post("groups.kick", kick(member.user_id())).await;
    assert!(kicked.get("group").is_none(), "{kicked}");
    // Without kick-any, the target must be a member.
    assert_error(
        &owner.post("groups.kick", kick(member.user_id())).await,
        400,
        Some("error-user-not-in-room"),
    );

    // With it, neither access nor membership is needed; the last owner still stays.
    permission(&admin, "kick-user-from-any-p-room", &["admin"]).await;
    let removed_before =
        |h: &serde_json::Value| h["messages"].as_array().unwrap().iter().filter(|m| m["t"] == "ru").count();
    let before = removed_before(&owner.ok_get(&format!("groups.history?roomId={gid}")).await);
    admin.ok_post("groups.kick", kick(member.user_id())).await;
    // Kicking someone who is not (or no longer) in the room changes nothing and says nothing.
    admin.ok_post("groups.kick", kick(member.user_id())).await;
    let after = removed_before(&owner.ok_get(&format!("groups.history?roomId={gid}")).await);
    assert_eq!(after, before, "no 'removed' message for a user who was not there");
    assert_error(
        &admin.post("groups.kick", kick(owner.user_id())).await,
        400,
        Some("error-you-are-last-owner"),
    );

    // `remove-user` is needed whatever else the caller holds.
    permission(&admin, "remove-user", &["admin", "moderator"]).await;
    owner.ok_post("groups.invite", json!({"roomId": gid, "userId": member.user_id()})).await;
    assert_error(&owner.post("groups.kick", kick(member.user_id())).await, 400, Some("error-not-allowed"));
    moderator.ok_post("groups.kick", kick(member.user_id())).await;
    assert_error(
        &admin.post("groups.kick", json!({"roomId": "nope", "userId": member.user_id()})).await,
        400,
        Some("error-room-not-found"),
    );
}

#[tokio::test]
async fn join_codes_are_required_then_checked() {
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let guest = server.user("guest").await;
    let rid = owner.ok_post("channels.create", json!({"name": "coded"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner.ok_post("channels.setJoinCode", json!({"roomId": rid, "joinCode": "123"})).await;

    let (status, body) = guest.post("channels.join", json!({"roomId": rid})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("Code required [error-code-required]")));
    let (status, body) = guest.post("channels.join", json!({"roomId": rid, "joinCode": "321"})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("Invalid code [error-code-invalid]")));
    let joined = guest.ok_post("channels.join", json!({"roomId": rid, "joinCode": "123"})).await;
    assert_eq!(joined["channel"]["usersCount"], 2);
}

#[tokio::test]
async fn direct_message_routes_call_unknown_ids_invalid_channel() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let dm = alice.ok_post("im.create", json!({"username": "bob"})).await["room"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(alice.ok_get(&format!("im.files?roomId={dm}")).await["files"].is_array());
    for path in ["im.files?roomId=invalid", "im.history?roomId=invalid", "im.members?roomId=GENERAL"] {
        let resp = alice.get(path).await;
        assert_error(&resp, 400, Some("invalid-channel"));
        assert_eq!(resp.1["error"], "[invalid-channel]");
    }
}

#[tokio::test]
async fn new_subscriptions_take_the_users_notification_preferences() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let saved = method(
        &alice,
        "saveUserPreferences",
        json!([{"emailNotificationMode": "nothing", "desktopNotifications": "default"}]),
    )
    .await;
    assert_eq!(saved["result"], true, "{saved}");
    let refused = method(&alice, "saveUserPreferences", json!([{"emailNotificationMode": 3}])).await;
    assert_eq!(refused["error"]["reason"], "Match failed", "{refused}");
    assert_eq!(alice.ok_get("users.getPreferences").await["preferences"]["emailNotificationMode"], "nothing");

    let dm = alice.ok_post("im.create", json!({"usernames": "alice,bob"})).await["room"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub = alice.ok_get(&format!("subscriptions.getOne?roomId={dm}")).await["subscription"].clone();
    assert_eq!(
        (sub["emailNotifications"].as_str(), sub["emailPrefOrigin"].as_str()),
        (Some("nothing"), Some("user")),
        "{sub}"
    );
    assert!(sub.get("desktopNotifications").is_none(), "`default` is not copied: {sub}");
    let bobs = server.anon().login("bob", "pw").await;
    let theirs = bobs.ok_get(&format!("subscriptions.getOne?roomId={dm}")).await["subscription"].clone();
    assert!(theirs.get("emailNotifications").is_none(), "{theirs}");
}

#[tokio::test]
async fn reactions_reach_the_rooms_last_message() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = admin.ok_post("channels.create", json!({"name": "reacting"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mid = admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": "hi"})).await["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.ok_post("chat.react", json!({"messageId": mid, "emoji": ":squid:"})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(
        info["channel"]["lastMessage"]["reactions"][":squid:"]["usernames"],
        json!(["rocketchat.internal.admin.test"])
    );
    // Pinning posts a system message that is counted but does not become the last message.
    admin.ok_post("chat.pinMessage", json!({"messageId": mid})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    let last = &info["channel"]["lastMessage"];
    assert_eq!((last["_id"].as_str(), last["pinned"].as_bool()), (Some(mid.as_str()), Some(true)), "{info}");
    assert!(last["pinnedAt"].is_string() && last["pinnedBy"].is_object(), "{info}");
    assert_eq!(last["reactions"][":squid:"]["usernames"], json!(["rocketchat.internal.admin.test"]));
    assert_eq!(info["channel"]["msgs"], 2);
    let history = admin.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert_eq!(history["messages"][0]["t"], "message_pinned");
    admin.ok_post("chat.react", json!({"messageId": mid, "emoji": ":squid:"})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert!(
        info["channel"]["lastMessage"].get("reactions").is_none_or(|r| r.as_object().unwrap().is_empty())
    );
}

#[tokio::test]
async fn convert_to_team_takes_exactly_one_of_id_and_name() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = admin.ok_post("channels.create", json!({"name": "to-team"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for body in
        [json!({"channelId": rid, "channelName": "to-team"}), json!({}), json!({"channelId": rid, "x": 1})]
    {
        let resp = admin.post("channels.convertToTeam", body).await;
        assert_error(&resp, 400, Some("invalid-params"));
        assert!(resp.1["error"].as_str().unwrap().contains("must match exactly one schema in oneOf"));
    }
    admin.ok_post("channels.convertToTeam", json!({"channelId": rid})).await;
}

#[tokio::test]
async fn spotlight_marks_team_main_rooms() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    alice.ok_post("teams.create", json!({"name": "spotted-team", "type": 0})).await;
    let found = admin.ok_get("spotlight?query=spotted-team").await;
    let room = &found["rooms"][0];
    assert_eq!(
        (room["name"].as_str(), room["teamMain"].as_bool()),
        (Some("spotted-team"), Some(true)),
        "{found}"
    );
    admin.ok_post("channels.create", json!({"name": "spotted-plain"})).await;
    let plain = admin.ok_get("spotlight?query=spotted-plain").await;
    assert!(plain["rooms"][0].get("teamMain").is_none(), "{plain}");
}

async fn upload(client: &Client, rid: &str, name: &str) -> String {
    use reqwest::multipart::{Form, Part};
    let form = Form::new().part("file", Part::bytes(b"some text".to_vec()).file_name(name.to_owned()));
    let (status, body) = client.post_multipart(&format!("rooms.upload/{rid}"), form).await;
    assert_eq!(status, 200, "{body}");
    body["message"]["_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_deleted_messages_files_are_gone_when_the_deletion_is_answered() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = admin.ok_post("groups.create", json!({"name": "filing"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed =
        |body: Value| body["files"].as_array().unwrap().iter().map(|f| f["name"].clone()).collect::<Vec<_>>();
    upload(&admin, &rid, "kept.txt").await;
    let mid = upload(&admin, &rid, "dropped.txt").await;
    admin.ok_post("chat.delete", json!({"roomId": rid, "msgId": mid})).await;
    assert_eq!(listed(admin.ok_get(&format!("groups.files?roomId={rid}")).await), [json!("kept.txt")]);

    // Shown as deleted, the message stays as a placeholder; its files go all the same.
    admin.ok_post("settings/Message_ShowDeletedStatus", json!({"value": true})).await;
    let mid = upload(&admin, &rid, "placeholder.txt").await;
    admin.ok_post("chat.delete", json!({"roomId": rid, "msgId": mid})).await;
    assert_eq!(listed(admin.ok_get(&format!("groups.files?roomId={rid}")).await), [json!("kept.txt")]);
    let history = admin.ok_get(&format!("groups.history?roomId={rid}")).await;
    assert_eq!(history["messages"][0]["t"], "rm");

    // A refused deletion leaves the files alone.
    let bob = server.user("bob").await;
    admin.ok_post("groups.invite", json!({"roomId": rid, "username": "bob"})).await;
    let kept = admin.ok_get(&format!("groups.history?roomId={rid}")).await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["file"]["name"] == "kept.txt")
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &bob.post("chat.delete", json!({"roomId": rid, "msgId": kept})).await,
        400,
        Some("error-action-not-allowed"),
    );
    assert_eq!(admin.ok_get(&format!("groups.files?roomId={rid}")).await["total"], 1);
}
