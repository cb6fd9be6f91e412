//! `channels.*`, `groups.*`, `im.*`: shapes, membership, privacy and system messages.
#![allow(clippy::unwrap_used)]

use apogee_tests::{TestServer, assert_error};
use serde_json::{Value, json};

fn types(messages: &Value) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["t"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn channel_lifecycle_has_rocket_chat_shapes() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let created =
        admin.ok_post("channels.create", json!({"name": "dev", "members": ["alice", "ghost"]})).await;
    let channel = &created["channel"];
    assert_eq!(
        (channel["name"].as_str(), channel["t"].as_str(), channel["msgs"].as_u64()),
        (Some("dev"), Some("c"), Some(0))
    );
    assert_eq!(channel["usersCount"], 2, "creator and alice; unknown members are ignored");
    assert_eq!(channel["u"]["username"], "rocketchat.internal.admin.test");
    assert_eq!((channel["ro"].clone(), channel["default"].clone()), (json!(false), json!(false)));
    assert!(channel["ts"].as_str().unwrap().ends_with('Z'));
    let rid = channel["_id"].as_str().unwrap().to_owned();

    assert_error(
        &admin.post("channels.create", json!({"name": "dev"})).await,
        400,
        Some("error-duplicate-channel-name"),
    );
    assert_error(
        &admin.post("channels.create", json!({"name": "general"})).await,
        400,
        Some("error-duplicate-channel-name"),
    );
    assert_error(
        &admin.post("channels.create", json!({"name": "bad name!"})).await,
        400,
        Some("error-invalid-room-name"),
    );
    let (status, body) = admin.post("channels.create", json!({})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("Param \"name\" is required")));

    let info = alice.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(info["channel"]["_id"], rid.as_str());
    let by_name = alice.ok_get("channels.info?roomName=dev").await;
    assert_eq!(by_name["channel"]["_id"], rid.as_str());
    assert_error(&alice.get("channels.info?roomName=nope").await, 400, Some("error-room-not-found"));
    assert_error(&alice.get("channels.info").await, 400, Some("error-room-param-not-provided"));

    let topic = admin.ok_post("channels.setTopic", json!({"roomId": rid, "topic": "Deploys"})).await;
    assert_eq!(topic["topic"], "Deploys");
    admin.ok_post("channels.setDescription", json!({"roomId": rid, "description": "d"})).await;
    admin.ok_post("channels.setAnnouncement", json!({"roomId": rid, "announcement": "a"})).await;
    let purpose = admin.ok_post("channels.setPurpose", json!({"roomId": rid, "purpose": "p"})).await;
    assert_eq!(purpose["purpose"], "p");
    let (status, _) = alice.post("channels.setTopic", json!({"roomId": rid, "topic": "mine"})).await;
    assert_eq!(status, 403, "edit-room is for owners and moderators");

    let renamed = admin.ok_post("channels.rename", json!({"roomId": rid, "name": "dev-team"})).await;
    assert_eq!(renamed["channel"]["name"], "dev-team");

    let history = alice.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert_eq!(
        types(&history["messages"]),
        [
            "r",
            "room_changed_description",
            "room_changed_announcement",
            "room_changed_description",
            "room_changed_topic"
        ],
        "newest first"
    );
    assert_eq!(history["messages"][4]["msg"], "Deploys");
    let info = alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"].clone();
    assert_eq!(
        (info["topic"].as_str(), info["description"].as_str(), info["announcement"].as_str()),
        (Some("Deploys"), Some("p"), Some("a"))
    );

    admin.ok_post("channels.archive", json!({"roomId": rid})).await;
    assert_error(
        &admin.post("channels.archive", json!({"roomId": rid})).await,
        400,
        Some("error-room-archived"),
    );
    let sent = alice.post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "hi"}})).await;
    assert_error(&sent, 400, Some("error-room-archived"));
    admin.ok_post("channels.unarchive", json!({"roomId": rid})).await;
    assert_error(
        &admin.post("channels.unarchive", json!({"roomId": rid})).await,
        400,
        Some("error-room-not-archived"),
    );

    assert_error(
        &alice.post("channels.delete", json!({"roomId": rid})).await,
        400,
        Some("error-not-allowed"),
    );
    admin.ok_post("channels.delete", json!({"roomId": rid})).await;
    assert_error(&admin.get(&format!("channels.info?roomId={rid}")).await, 400, Some("error-room-not-found"));
}

#[tokio::test]
async fn join_leave_invite_kick_write_system_messages() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = admin.ok_post("channels.create", json!({"name": "ops"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let joined = alice.ok_post("channels.join", json!({"roomId": rid})).await;
    assert_eq!(joined["channel"]["usersCount"], 2);
    alice.ok_post("channels.join", json!({"roomId": rid})).await;
    let left = alice.ok_post("channels.leave", json!({"roomId": rid})).await;
    assert_eq!(left["channel"]["usersCount"], 1);
    assert_error(
        &alice.post("channels.leave", json!({"roomId": rid})).await,
        400,
        Some("error-user-not-in-room"),
    );

    let (status, _) = bob.post("channels.invite", json!({"roomId": rid, "username": "alice"})).await;
    assert_eq!(status, 400, "bob is no member and may not add users");
    let invited = admin.ok_post("channels.invite", json!({"roomId": rid, "username": "bob"})).await;
    assert_eq!(invited["channel"]["usersCount"], 2);
    assert_error(
        &admin.post("channels.invite", json!({"roomId": rid, "username": "ghost"})).await,
        400,
        Some("error-invalid-user"),
    );
    admin.ok_post("channels.kick", json!({"roomId": rid, "userId": bob.user_id()})).await;
    // `kick-user-from-any-c-room` would waive the membership check (and kick again).
    let no_kick_any = json!({"permissions": [{"_id": "kick-user-from-any-c-room", "roles": []}]});
    admin.ok_post("permissions.update", no_kick_any).await;
    assert_error(
        &admin.post("channels.kick", json!({"roomId": rid, "userId": bob.user_id()})).await,
        400,
        Some("error-user-not-in-room"),
    );

    let history = admin.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert_eq!(types(&history["messages"]), ["ru", "au", "ul", "uj"]);
    let kick = &history["messages"][0];
    assert_eq!(
        (kick["msg"].as_str(), kick["u"]["username"].as_str()),
        (Some("bob"), Some("rocketchat.internal.admin.test"))
    );

    let members = admin.ok_get(&format!("channels.members?roomId={rid}")).await;
    assert_eq!((members["total"].as_u64(), members["count"].as_u64()), (Some(1), Some(1)));
    let member = &members["members"][0];
    for key in ["_id", "username", "name", "status", "utcOffset"] {
        assert!(member.get(key).is_some(), "{key} in {member}");
    }
}

#[tokio::test]
async fn last_owner_cannot_leave_a_room_with_members() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user("alice").await;
    let rid = admin.ok_post("groups.create", json!({"name": "owners", "members": ["alice"]})).await["group"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &admin.post("groups.leave", json!({"roomId": rid})).await,
        400,
        Some("error-you-are-last-owner"),
    );
}

#[tokio::test]
async fn private_groups_are_invisible_to_non_members() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mallory = server.user("mallory").await;
    let group = alice.ok_post("groups.create", json!({"name": "secret"})).await;
    assert_eq!(group["group"]["t"], "p");
    let rid = group["group"]["_id"].as_str().unwrap().to_owned();
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "classified"}})).await;

    for path in [
        format!("groups.info?roomId={rid}"),
        format!("groups.history?roomId={rid}"),
        format!("groups.members?roomId={rid}"),
        format!("groups.messages?roomId={rid}"),
        "groups.info?roomName=secret".to_owned(),
    ] {
        assert_error(&mallory.get(&path).await, 400, Some("error-room-not-found"));
    }
    let posted = mallory.post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "let me in"}})).await;
    assert_eq!(posted.0, 400, "{}", posted.1);
    let (_, history) = (200, alice.ok_get(&format!("groups.history?roomId={rid}")).await);
    assert_eq!(history["messages"].as_array().unwrap().len(), 1, "mallory's message was not stored");
    assert_error(
        &mallory
            .get(&format!("chat.getMessage?msgId={}", history["messages"][0]["_id"].as_str().unwrap()))
            .await,
        400,
        Some("error-not-allowed"),
    );
    // A channel id used with the groups family is not found, and the reverse.
    assert_error(&alice.get("groups.info?roomId=GENERAL").await, 400, Some("error-room-not-found"));
    assert_error(&alice.get(&format!("channels.info?roomId={rid}")).await, 400, Some("error-room-not-found"));
    let listed = mallory.ok_get("groups.list").await;
    assert_eq!(listed["total"], 0);
    let listed = alice.ok_get("groups.list").await;
    assert_eq!((listed["groups"][0]["name"].as_str(), listed["total"].as_u64()), (Some("secret"), Some(1)));
    let (status, _) = alice.get("groups.listAll").await;
    assert_eq!(status, 403, "listAll needs view-room-administration");
}

#[tokio::test]
async fn lists_paginate_with_exact_totals() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for i in 0..7 {
        admin.ok_post("channels.create", json!({"name": format!("room-{i}")})).await;
    }
    let page = admin.ok_get("channels.list?offset=2&count=3").await;
    assert_eq!(
        (page["count"].as_u64(), page["offset"].as_u64(), page["total"].as_u64()),
        (Some(3), Some(2), Some(8))
    );
    let names: Vec<&str> =
        page["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["room-1", "room-2", "room-3"], "general, room-0 .. by name");
    let all = admin.ok_get("channels.list?count=0").await;
    assert_eq!(all["count"], 8, "count=0 means all");
    let clamped = admin.ok_get("channels.list?count=1000").await;
    assert_eq!(clamped["count"], 8);
    let joined = admin.ok_get("channels.list.joined").await;
    assert_eq!(joined["total"], 8, "the creator is in every room, and in #general");
    assert_error(&admin.get("channels.list?sort={\"name\":2}").await, 400, Some("error-invalid-sort"));
    assert_error(&admin.get("channels.list?offset=abc").await, 400, Some("invalid-params"));
}

#[tokio::test]
async fn direct_messages_use_both_user_ids() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let created = alice.ok_post("im.create", json!({"username": "bob"})).await;
    let room = &created["room"];
    let mut ids = [alice.user_id().to_owned(), bob.user_id().to_owned()];
    ids.sort();
    assert_eq!(room["rid"], ids.concat());
    assert_eq!(room["_id"], ids.concat());
    assert_eq!(room["t"], "d");
    assert_eq!(room["usernames"], json!(["alice", "bob"]));
    let again = bob.ok_post("dm.create", json!({"username": "alice"})).await;
    assert_eq!(again["room"]["_id"], room["_id"], "the same DM from either side");
    let rid = room["_id"].as_str().unwrap().to_owned();
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "psst"}})).await;
    let history = bob.ok_get(&format!("im.history?roomId={rid}")).await;
    assert_eq!(history["messages"][0]["msg"], "psst");
    let list = bob.ok_get("im.list").await;
    assert_eq!((list["ims"][0]["_id"].as_str(), list["total"].as_u64()), (Some(rid.as_str()), Some(1)));
    let sub = bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
    assert_eq!(
        (sub["subscription"]["name"].as_str(), sub["subscription"]["unread"].as_u64()),
        (Some("alice"), Some(1))
    );
    let mallory = server.user("mallory").await;
    assert_eq!(
        mallory.get(&format!("im.history?roomId={rid}")).await.0,
        403,
        "DMs of others are unauthorized"
    );
    assert_eq!(mallory.post("im.open", json!({"roomId": rid})).await.0, 403);
    assert_error(
        &alice.post("im.create", json!({"username": "ghost"})).await,
        400,
        Some("error-invalid-user"),
    );
    bob.ok_post("im.close", json!({"roomId": rid})).await;
    assert_eq!(bob.post("im.close", json!({"roomId": rid})).await.0, 400, "already closed");
    bob.ok_post("im.open", json!({"roomId": rid})).await;
    bob.ok_post("im.open", json!({"roomId": rid})).await; // opening an open DM is fine
    assert_eq!(
        alice.post("im.open", json!({"roomId": "gone"})).await.0,
        403,
        "a missing DM is not the caller's"
    );
    let members = alice.ok_get(&format!("im.members?roomId={rid}")).await;
    assert_eq!(members["total"], 2);
    let filtered = alice.ok_get(&format!("im.members?roomId={rid}&filter=BO")).await;
    assert_eq!(
        (filtered["total"].as_u64(), filtered["members"][0]["username"].as_str()),
        (Some(1), Some("bob"))
    );
    let online = alice.ok_get(&format!("im.members?roomId={rid}&status[]=online")).await;
    assert_eq!(online["total"], 0, "nobody is online without a realtime connection");
}

#[tokio::test]
async fn history_windows_and_unreads() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid =
        admin.ok_post("channels.create", json!({"name": "h", "members": ["alice"]})).await["channel"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut stamps = Vec::new();
    for i in 0..5 {
        let m =
            admin.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": format!("m{i}")}})).await;
        stamps.push(m["message"]["ts"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let texts = |v: &Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["msg"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let window = alice
        .ok_get(&format!("channels.history?roomId={rid}&latest={}&oldest={}", stamps[3], stamps[1]))
        .await;
    assert_eq!(texts(&window), ["m2"]);
    let inclusive = alice
        .ok_get(&format!(
            "channels.history?roomId={rid}&latest={}&oldest={}&inclusive=true",
            stamps[3], stamps[1]
        ))
        .await;
    assert_eq!(texts(&inclusive), ["m3", "m2", "m1"]);
    let paged = alice.ok_get(&format!("channels.history?roomId={rid}&count=2&offset=1")).await;
    assert_eq!(texts(&paged), ["m3", "m2"]);
    let unreads = alice.ok_get(&format!("channels.history?roomId={rid}&count=2&unreads=true")).await;
    assert_eq!(unreads["unreadNotLoaded"], 3);
    assert_error(
        &alice.get(&format!("channels.history?roomId={rid}&latest=yesterday")).await,
        400,
        Some("error-invalid-date"),
    );
    let messages = alice.ok_get(&format!("channels.messages?roomId={rid}&count=2")).await;
    assert_eq!((messages["count"].as_u64(), messages["total"].as_u64()), (Some(2), Some(5)));
    let counters = alice.ok_get(&format!("channels.counters?roomId={rid}")).await;
    assert_eq!(
        (
            counters["joined"].clone(),
            counters["unreads"].clone(),
            counters["msgs"].clone(),
            counters["members"].clone()
        ),
        (json!(true), json!(5), json!(5), json!(2))
    );
    let outsider = server.user("outsider").await;
    let counters = outsider.ok_get(&format!("channels.counters?roomId={rid}")).await;
    assert_eq!((counters["joined"].clone(), counters["unreads"].clone()), (json!(false), Value::Null));
    // groups.history keeps 6.14's quirks: count defaults to 20 and is not clamped.
    let gid = admin.ok_post("groups.create", json!({"name": "g"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..25 {
        admin.ok_post("chat.sendMessage", json!({"message": {"rid": gid, "msg": format!("g{i}")}})).await;
    }
    assert_eq!(
        admin.ok_get(&format!("groups.history?roomId={gid}")).await["messages"].as_array().unwrap().len(),
        20
    );
}

#[tokio::test]
async fn room_roles_owners_moderators_leaders() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = alice.ok_post("channels.create", json!({"name": "ranks", "members": ["bob"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.ok_post("channels.addModerator", json!({"roomId": rid, "userId": bob.user_id()})).await;
    assert_error(
        &alice.post("channels.addModerator", json!({"roomId": rid, "userId": bob.user_id()})).await,
        400,
        Some("error-user-already-moderator"),
    );
    let moderators = alice.ok_get(&format!("channels.moderators?roomId={rid}")).await;
    assert_eq!(
        moderators["moderators"],
        json!([{"_id": bob.user_id(), "username": "bob", "name": "bob Name"}])
    );
    assert_error(
        &bob.post("channels.addOwner", json!({"roomId": rid, "userId": bob.user_id()})).await,
        400,
        Some("error-not-allowed"),
    );
    alice.ok_post("channels.addOwner", json!({"roomId": rid, "userId": bob.user_id()})).await;
    alice.ok_post("channels.addLeader", json!({"roomId": rid, "userId": bob.user_id()})).await;
    let roles = alice.ok_get(&format!("channels.roles?roomId={rid}")).await;
    let bobs =
        roles["roles"].as_array().unwrap().iter().find(|r| r["u"]["username"] == "bob").unwrap().clone();
    assert_eq!(bobs["roles"], json!(["moderator", "owner", "leader"]));
    alice.ok_post("channels.removeOwner", json!({"roomId": rid, "userId": alice.user_id()})).await;
    assert_error(
        &bob.post("channels.removeOwner", json!({"roomId": rid, "userId": bob.user_id()})).await,
        400,
        Some("error-remove-last-owner"),
    );
    assert_error(
        &bob.post("channels.removeLeader", json!({"roomId": rid, "userId": alice.user_id()})).await,
        400,
        Some("error-user-not-leader"),
    );
    assert_error(
        &admin
            .post("channels.addOwner", json!({"roomId": rid, "username": "rocketchat.internal.admin.test"}))
            .await,
        400,
        Some("error-user-not-in-room"),
    );
    let history = alice.ok_get(&format!("channels.history?roomId={rid}&count=1")).await;
    let last = &history["messages"][0];
    assert_eq!(
        (last["t"].as_str(), last["msg"].as_str(), last["role"].as_str()),
        (Some("subscription-role-removed"), Some("alice"), Some("owner"))
    );
}
