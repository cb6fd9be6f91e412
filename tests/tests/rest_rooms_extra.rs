//! `rooms.favorite`, `rooms.saveNotification`, `rooms.nameExists`, `rooms.leave`,
//! `rooms.delete`, `rooms.isMember`.
#![allow(clippy::unwrap_used)]

use apogee_tests::{TestServer, assert_error};
use serde_json::{Value, json};

async fn channel(admin: &apogee_tests::Client, name: &str, members: &[&str]) -> String {
    let created = admin.ok_post("channels.create", json!({"name": name, "members": members})).await;
    created["channel"]["_id"].as_str().unwrap().to_owned()
}

fn subscription_of(subs: &Value, rid: &str) -> Value {
    subs["update"].as_array().unwrap().iter().find(|s| s["rid"] == rid).cloned().unwrap()
}

#[tokio::test]
async fn favorite_and_notification_preferences_land_on_the_subscription() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = channel(&admin, "fav", &[]).await;

    admin.ok_post("rooms.favorite", json!({"roomName": "fav", "favorite": true})).await;
    let sub = admin.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
    assert_eq!(sub["subscription"]["f"], true);
    admin.ok_post("rooms.favorite", json!({"roomId": rid, "favorite": false})).await;
    let sub = admin.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
    assert_ne!(sub["subscription"]["f"], true);

    let (status, body) = admin.post("rooms.favorite", json!({"roomId": rid})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("The 'favorite' param is required")));
    assert_error(
        &admin.post("rooms.favorite", json!({"roomId": "foo", "favorite": true})).await,
        400,
        Some("error-room-not-found"),
    );
    assert_error(
        &alice.post("rooms.favorite", json!({"roomId": rid, "favorite": true})).await,
        400,
        Some("error-invalid-subscription"),
    );

    let notifications = json!({
        "disableNotifications": "0",
        "emailNotifications": "nothing",
        "audioNotificationValue": "beep",
        "desktopNotifications": "nothing",
        "mobilePushNotifications": "mentions",
    });
    admin.ok_post("rooms.saveNotification", json!({"roomId": rid, "notifications": notifications})).await;
    let sub = subscription_of(&admin.ok_get("subscriptions.get").await, &rid);
    assert_eq!(sub["desktopNotifications"], "nothing");
    assert_eq!(sub["desktopPrefOrigin"], "subscription");
    assert_eq!(sub["mobilePushNotifications"], "mentions");
    assert_eq!(sub["emailNotifications"], "nothing");
    assert_eq!(sub["audioNotificationValue"], "beep");
    assert_eq!(sub["disableNotifications"], false);

    admin
        .ok_post(
            "rooms.saveNotification",
            json!({"roomId": rid, "notifications": {"desktopNotifications": "default"}}),
        )
        .await;
    let sub = admin.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].clone();
    assert!(sub.get("desktopNotifications").is_none() && sub.get("desktopPrefOrigin").is_none());
    assert_eq!(sub["mobilePushNotifications"], "mentions");

    let (status, body) = admin.post("rooms.saveNotification", json!({"notifications": {}})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("The 'roomId' param is required")));
    let (status, body) = admin.post("rooms.saveNotification", json!({"roomId": rid})).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("The 'notifications' param is required"))
    );
    assert_error(
        &admin.post("rooms.saveNotification", json!({"roomId": rid, "notifications": {"bogus": "1"}})).await,
        400,
        Some("error-invalid-settings"),
    );
    assert_error(
        &admin
            .post(
                "rooms.saveNotification",
                json!({"roomId": rid, "notifications": {"emailNotifications": "x"}}),
            )
            .await,
        400,
        Some("error-invalid-settings"),
    );
    assert_error(
        &alice
            .post("rooms.saveNotification", json!({"roomId": rid, "notifications": {"unreadAlert": "all"}}))
            .await,
        400,
        Some("error-invalid-subscription"),
    );
}

#[tokio::test]
async fn name_exists_and_is_member() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = channel(&admin, "here", &["alice"]).await;

    assert_eq!(admin.ok_get("rooms.nameExists?roomName=here").await["exists"], true);
    assert_eq!(admin.ok_get("rooms.nameExists?roomName=nowhere").await["exists"], false);
    assert_error(&admin.get("rooms.nameExists?roomId=foo").await, 400, Some("invalid-params"));
    assert_eq!(server.anon().get("rooms.nameExists").await.0, 401);

    let member = alice.ok_get(&format!("rooms.isMember?roomId={rid}&userId={}", alice.user_id())).await;
    assert_eq!(member["isMember"], true);
    let member = alice.ok_get(&format!("rooms.isMember?roomId={rid}&username=bob")).await;
    assert_eq!(member["isMember"], false);
    let (status, body) = alice.get(&format!("rooms.isMember?roomId={rid}&username=ghost")).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("error-user-not-found")));
    let (status, body) = alice.get(&format!("rooms.isMember?roomId=nope&userId={}", alice.user_id())).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (
            400,
            Some(
                "The required \"roomId\" or \"roomName\" param provided does not match any channel \
                 [error-room-not-found]"
            )
        )
    );
    assert_error(&alice.get("rooms.isMember?roomId=x").await, 400, Some("invalid-params"));

    let group = admin.ok_post("groups.create", json!({"name": "secret", "members": ["alice"]})).await;
    let gid = group["group"]["_id"].as_str().unwrap().to_owned();
    let (status, body) = bob.get(&format!("rooms.isMember?roomId={gid}&username=alice")).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("unauthorized")));
    assert_eq!(alice.ok_get(&format!("rooms.isMember?roomId={gid}&username=alice")).await["isMember"], true);
}

#[tokio::test]
async fn leave_and_delete() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = channel(&admin, "leavable", &["alice"]).await;

    assert_error(&alice.post("rooms.leave", json!({})).await, 400, Some("error-roomid-param-not-provided"));
    assert_error(
        &alice.post("rooms.leave", json!({"roomId": "nope"})).await,
        400,
        Some("error-room-not-found"),
    );
    assert_error(
        &admin.post("rooms.leave", json!({"roomId": rid})).await,
        400,
        Some("error-you-are-last-owner"),
    );
    alice.ok_post("rooms.leave", json!({"roomName": "leavable"})).await;
    let member = admin.ok_get(&format!("rooms.isMember?roomId={rid}&username=alice")).await;
    assert_eq!(member["isMember"], false);

    let (status, body) = admin.post("rooms.delete", json!({})).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("The 'roomId' param is required")));
    assert_error(
        &admin.post("rooms.delete", json!({"roomId": "invalid"})).await,
        400,
        Some("error-invalid-room"),
    );
    alice.ok_post("channels.join", json!({"roomId": rid})).await;
    assert_error(&alice.post("rooms.delete", json!({"roomId": rid})).await, 400, Some("error-not-allowed"));
    admin.ok_post("rooms.delete", json!({"roomId": rid})).await;
    assert_eq!(admin.ok_get("rooms.nameExists?roomName=leavable").await["exists"], false);
}

#[tokio::test]
async fn admin_rooms_and_autocomplete() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    channel(&admin, "alpha-one", &["alice"]).await;
    channel(&admin, "alpha-two", &[]).await;
    admin.ok_post("groups.create", json!({"name": "alpha-secret", "members": ["alice"]})).await;

    let all = admin.ok_get("rooms.adminRooms?filter=alpha").await;
    assert_eq!(
        (all["total"].as_u64(), all["count"].as_u64(), all["offset"].as_u64()),
        (Some(3), Some(3), Some(0))
    );
    let groups = admin.ok_get("rooms.adminRooms?filter=alpha&types[]=p").await;
    assert_eq!(groups["rooms"][0]["name"], "alpha-secret");
    assert_eq!(groups["total"], 1);
    let paged = admin.ok_get("rooms.adminRooms?filter=alpha&count=1&offset=1").await;
    assert_eq!((paged["count"].as_u64(), paged["total"].as_u64()), (Some(1), Some(3)));
    let (status, body) = alice.get("rooms.adminRooms").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("error-not-authorized")));

    let (status, body) = alice.get("rooms.autocomplete.channelAndPrivate").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("The 'selector' param is required")));
    let mine = alice.ok_get("rooms.autocomplete.channelAndPrivate?selector={\"name\":\"alpha\"}").await;
    let names: Vec<&str> =
        mine["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha-one", "alpha-secret"], "only the caller's rooms, by name");
    let everything = alice.ok_get("rooms.autocomplete.channelAndPrivate?selector={}").await;
    assert!(everything["items"].as_array().unwrap().len() >= 3, "general too");
    let paged = alice
        .ok_get("rooms.autocomplete.channelAndPrivate.withPagination?selector={\"name\":\"alpha\"}&count=1")
        .await;
    assert_eq!((paged["items"].as_array().unwrap().len(), paged["total"].as_u64()), (1, Some(2)));

    let admin_items = admin.ok_get("rooms.autocomplete.adminRooms?selector={\"name\":\"alpha\"}").await;
    assert_eq!(admin_items["items"].as_array().unwrap().len(), 3);
    assert_eq!(admin_items["items"][0]["encrypted"], false);
    assert_error(&alice.get("rooms.autocomplete.adminRooms?selector={}").await, 400, None);

    let teams = admin.ok_get("rooms.autocomplete.availableForTeams?name=alpha-t").await;
    let names: Vec<&str> =
        teams["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha-two"]);
    assert_eq!(
        alice.ok_get("rooms.autocomplete.availableForTeams").await["items"],
        json!([]),
        "owns nothing"
    );
}

#[tokio::test]
async fn save_room_settings_maps_onto_room_changes() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = channel(&admin, "settings", &["alice"]).await;

    let saved = admin
        .ok_post(
            "rooms.saveRoomSettings",
            json!({
                "rid": rid,
                "roomName": "renamed",
                "roomTopic": "T",
                "roomAnnouncement": "A",
                "roomDescription": "D",
                "roomType": "p",
                "readOnly": true,
                "default": true,
                "featured": true,
                "reactWhenReadOnly": true,
                "favorite": {"favorite": true, "defaultValue": true},
            }),
        )
        .await;
    assert_eq!(saved["rid"], rid.as_str());
    let room = admin.ok_get(&format!("rooms.info?roomId={rid}")).await["room"].clone();
    assert_eq!(
        (&room["name"], &room["topic"], &room["announcement"], &room["description"], &room["t"]),
        (&json!("renamed"), &json!("T"), &json!("A"), &json!("D"), &json!("p"))
    );
    assert_eq!((&room["ro"], &room["default"]), (&json!(true), &json!(true)));
    assert_eq!(
        (&room["featured"], &room["favorite"], &room["reactWhenReadOnly"]),
        (&json!(true), &json!(true), &json!(true))
    );
    admin
        .ok_post(
            "rooms.saveRoomSettings",
            json!({"rid": rid, "favorite": {"favorite": true, "defaultValue": false}}),
        )
        .await;
    let room = admin.ok_get(&format!("rooms.info?roomId={rid}")).await["room"].clone();
    assert!(room.get("favorite").is_none(), "only default rooms are marked favorite");
    let history = admin.ok_get(&format!("groups.history?roomId={rid}")).await;
    let before = history["messages"].as_array().unwrap().len();
    admin.ok_post("rooms.saveRoomSettings", json!({"rid": rid, "roomTopic": "T"})).await;
    let history = admin.ok_get(&format!("groups.history?roomId={rid}")).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), before, "unchanged settings write nothing");

    assert_error(
        &admin.post("rooms.saveRoomSettings", json!({"rid": rid, "bogus": 1})).await,
        400,
        Some("error-invalid-settings"),
    );
    assert_error(
        &admin.post("rooms.saveRoomSettings", json!({"rid": "nope", "roomTopic": "x"})).await,
        400,
        Some("error-invalid-room"),
    );
    assert_error(&admin.post("rooms.saveRoomSettings", json!({})).await, 400, Some("error-invalid-room"));
    let (status, body) = alice.post("rooms.saveRoomSettings", json!({"rid": rid, "roomTopic": "x"})).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("Editing room is not allowed [error-action-not-allowed]"))
    );
}

#[tokio::test]
async fn muted_users_cannot_post() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = channel(&admin, "quiet", &["alice"]).await;

    admin.ok_post("rooms.muteUser", json!({"roomId": rid, "username": "alice"})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(info["channel"]["muted"], json!(["alice"]));
    assert_error(
        &alice.post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "hi"}})).await,
        400,
        Some("error-user-muted"),
    );
    let history = admin.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert_eq!(history["messages"][0]["t"], "user-muted");
    assert_eq!(history["messages"][0]["msg"], "alice");

    admin.ok_post("rooms.unmuteUser", json!({"roomId": rid, "userId": alice.user_id()})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert!(info["channel"].get("muted").is_none_or(|m| m == &json!([])));
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "hi"}})).await;
    let history = admin.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert_eq!(history["messages"][1]["t"], "user-unmuted");

    // Read-only rooms keep an `unmuted` list of members who may post anyway.
    admin.ok_post("rooms.saveRoomSettings", json!({"rid": rid, "readOnly": true})).await;
    assert_eq!(alice.post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "x"}})).await.0, 400);
    admin.ok_post("rooms.unmuteUser", json!({"roomId": rid, "username": "alice"})).await;
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(info["channel"]["unmuted"], json!(["alice"]));
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "allowed"}})).await;

    assert_error(
        &alice.post("rooms.muteUser", json!({"roomId": rid, "username": "admin"})).await,
        400,
        Some("error-not-allowed"),
    );
    assert_error(
        &admin.post("rooms.muteUser", json!({"roomId": rid, "username": "bob"})).await,
        400,
        Some("error-user-not-in-room"),
    );
    assert_error(
        &admin.post("rooms.muteUser", json!({"roomId": rid, "username": "ghost"})).await,
        400,
        Some("error-invalid-user"),
    );
    assert_error(
        &admin.post("rooms.muteUser", json!({"roomId": "nope", "username": "bob"})).await,
        400,
        Some("error-invalid-room"),
    );
    assert_error(&admin.post("rooms.muteUser", json!({"roomId": rid})).await, 400, Some("invalid-params"));
    drop(bob);
}

#[tokio::test]
async fn room_settings_this_server_cannot_apply_are_refused() {
    let server = apogee_tests::TestServer::start().await;
    let admin = server.admin().await;
    let rid =
        admin.ok_post("channels.create", serde_json::json!({"name": "settings"})).await["channel"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let refused = admin
        .post(
            "rooms.saveRoomSettings",
            serde_json::json!({"rid": rid, "roomTopic": "t", "retentionEnabled": true}),
        )
        .await;
    apogee_tests::assert_error(&refused, 400, Some("error-invalid-settings"));
    let info = admin.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert!(info["channel"].get("topic").is_none(), "a refused request changes nothing");
}

#[tokio::test]
async fn room_attributes_set_one_at_a_time() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let rid = channel(&admin, "settable", &["bob"]).await;

    let ro = admin.ok_post("channels.setReadOnly", json!({"roomId": rid, "readOnly": true})).await;
    assert_eq!((ro["channel"]["_id"].as_str(), &ro["channel"]["ro"]), (Some(rid.as_str()), &json!(true)));
    let same = admin.post("channels.setReadOnly", json!({"roomId": rid, "readOnly": true})).await;
    assert_error(&same, 400, None);
    assert_eq!(same.1["error"], "The channel read only setting is the same as what it would be changed to.");
    assert_error(&admin.post("channels.setReadOnly", json!({"roomId": rid})).await, 400, None);
    // A plain member may not change the room; nothing changes.
    assert_error(
        &bob.post("channels.setReadOnly", json!({"roomId": rid, "readOnly": false})).await,
        403,
        None,
    );
    assert_eq!(admin.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["ro"], true);

    let joined = admin.ok_post("channels.setJoinCode", json!({"roomId": rid, "joinCode": "s3cret"})).await;
    assert_eq!(joined["channel"]["_id"], rid.as_str());
    assert_error(
        &admin.post("channels.setJoinCode", json!({"roomId": rid, "joinCode": " "})).await,
        400,
        None,
    );

    let default = admin.ok_post("channels.setDefault", json!({"roomId": rid, "default": "true"})).await;
    assert_eq!(default["channel"]["default"], true);
    let again = admin.post("channels.setDefault", json!({"roomId": rid, "default": true})).await;
    assert_error(&again, 400, Some("error-channels-setdefault-missing-default-param"));
    assert_error(
        &admin.post("channels.setDefault", json!({"roomId": rid})).await,
        400,
        Some("error-channels-setdefault-is-same"),
    );

    let fields = admin
        .ok_post("channels.setCustomFields", json!({"roomId": rid, "customFields": {"team": "blue"}}))
        .await;
    assert_eq!(fields["channel"]["customFields"], json!({"team": "blue"}));
    assert_error(
        &admin.post("channels.setCustomFields", json!({"roomId": rid, "customFields": "x"})).await,
        400,
        None,
    );

    let private = admin.ok_post("channels.setType", json!({"roomId": rid, "type": "p"})).await;
    assert_eq!(private["channel"]["t"], "p");
    // Now a private group: the groups family finds it, the channels family no longer does.
    let same = admin.post("groups.setType", json!({"roomId": rid, "type": "p"})).await;
    assert_eq!(same.1["error"], "The private group type is the same as what it would be changed to.");
    assert_error(
        &admin.post("groups.setType", json!({"roomId": rid, "type": "x"})).await,
        400,
        Some("error-invalid-room-type"),
    );
    let public = admin.ok_post("groups.setType", json!({"roomId": rid, "type": "c"})).await;
    assert_eq!(public["group"]["t"], "c");
    let ro = admin.ok_post("channels.setReadOnly", json!({"roomId": rid, "readOnly": false})).await;
    assert_eq!(ro["channel"]["ro"], false);
}
