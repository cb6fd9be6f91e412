//! Rocket.Chat behaviours its own API tests (rooms.ts, users.ts) check: `rooms.cleanHistory`,
//! `rooms.info` with team, parent and `fields`, `rooms.images`, `users.getUsernameSuggestion`,
//! `users.setAvatar` naming the user after the image, `users.info` rooms, `users.setStatus`.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use apogee_tests::ddp::Ddp;
use apogee_tests::{ADMIN, Client, TestServer, assert_error};
use reqwest::multipart::{Form, Part};
use serde_json::json;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 99]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn image_part(name: &str) -> Part {
    Part::bytes(png()).file_name(name.to_owned()).mime_str("image/png").unwrap()
}

async fn send(client: &Client, rid: &str, text: &str) -> String {
    let sent = client.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": text}})).await;
    sent["message"]["_id"].as_str().unwrap().to_owned()
}

async fn texts(client: &Client, rid: &str) -> Vec<String> {
    let history = client.ok_get(&format!("channels.history?roomId={rid}&count=100")).await;
    let mut texts: Vec<String> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["t"].is_null())
        .map(|m| m["msg"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

const ALL_TIME: (&str, &str) = ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.000Z");

#[tokio::test]
async fn clean_history_removes_the_window_with_its_filters_and_refuses_who_may_not() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = admin.ok_post("channels.create", json!({"name": "prune", "members": ["alice"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&admin, &rid, "one").await;
    let pinned = send(&admin, &rid, "two").await;
    send(&alice, &rid, "three").await;
    admin.ok_post("chat.pinMessage", json!({"messageId": pinned})).await;

    // Only alice's message goes.
    let body = admin
        .ok_post(
            "rooms.cleanHistory",
            json!({"roomId": rid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1, "users": ["alice"]}),
        )
        .await;
    assert_eq!((body["_id"].as_str(), body["count"].as_u64()), (Some(rid.as_str()), Some(1)));
    assert_eq!(texts(&admin, &rid).await, ["one", "two"]);

    // A window in the past removes nothing.
    let body = admin
        .ok_post(
            "rooms.cleanHistory",
            json!({"roomId": rid, "oldest": "2016-08-30T13:42:25.304Z", "latest": "2016-12-09T13:42:25.304Z"}),
        )
        .await;
    assert_eq!(body["count"], 0);

    // Pinned messages can be kept; the pin's system message is not counted among the texts.
    admin
        .ok_post(
            "rooms.cleanHistory",
            json!({"roomId": rid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1, "excludePinned": true}),
        )
        .await;
    assert_eq!(texts(&admin, &rid).await, ["two"]);

    // Refusals: no permission (alice is a member), no access, bad bodies; nothing changes.
    let window = json!({"roomId": rid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1});
    let refused = alice.post("rooms.cleanHistory", window.clone()).await;
    assert_error(&refused, 400, Some("error-not-allowed"));
    let gid = admin.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .ok_post(
            "permissions.update",
            json!({"permissions": [{"_id": "clean-channel-history", "roles": ["admin", "user"]}]}),
        )
        .await;
    let refused = alice
        .post("rooms.cleanHistory", json!({"roomId": gid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1}))
        .await;
    assert_error(&refused, 400, Some("error-not-allowed"));
    assert_eq!(refused.1["error"], "User does not have access to the room [error-not-allowed]");
    assert_error(
        &admin.post("rooms.cleanHistory", json!({"roomId": rid, "latest": ALL_TIME.1})).await,
        400,
        Some("invalid-params"),
    );
    assert_error(
        &admin
            .post(
                "rooms.cleanHistory",
                json!({"roomId": rid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1, "x": 1}),
            )
            .await,
        400,
        Some("invalid-params"),
    );
    assert_error(
        &admin
            .post("rooms.cleanHistory", json!({"roomId": "nope", "oldest": ALL_TIME.0, "latest": ALL_TIME.1}))
            .await,
        400,
        Some("error-room-not-found"),
    );
    assert_eq!(texts(&admin, &rid).await, ["two"]);

    // Alice, now allowed, clears everything (placeholders of deleted messages are not counted).
    let body = alice.ok_post("rooms.cleanHistory", window).await;
    assert!(body["count"].as_u64().unwrap() >= 1);
    assert!(texts(&admin, &rid).await.is_empty());
}

#[tokio::test]
async fn rooms_info_shows_the_team_and_the_parent_and_honours_fields() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let team = admin.ok_post("teams.create", json!({"name": "crew", "type": 1})).await["team"].clone();
    let main = team["roomId"].as_str().unwrap().to_owned();
    let rid = admin.ok_post("channels.create", json!({"name": "inside"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.ok_post("teams.addRooms", json!({"teamId": team["_id"], "rooms": [rid]})).await;
    let discussion =
        admin.ok_post("rooms.createDiscussion", json!({"prid": rid, "t_name": "talk"})).await["discussion"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();

    let info = admin.ok_get(&format!("rooms.info?roomId={rid}")).await;
    assert_eq!(info["team"]["_id"], team["_id"]);
    assert_eq!(info["team"]["roomId"], main.as_str());
    assert_eq!(info["parent"]["_id"], main.as_str());

    let info = admin.ok_get(&format!("rooms.info?roomId={main}")).await;
    assert_eq!(info["team"]["name"], "crew");
    assert!(info.get("parent").is_none());

    let info = admin.ok_get(&format!("rooms.info?roomId={discussion}")).await;
    assert_eq!(info["parent"]["_id"], rid.as_str());
    assert!(info.get("team").is_none());

    let info = admin.ok_get(&format!("rooms.info?roomId={rid}&fields=%7B%22name%22%3A1%7D")).await;
    let keys: Vec<&String> = info["room"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["_id", "name"]);

    let general = admin.ok_get("rooms.info?roomId=GENERAL").await;
    assert!(general.get("team").is_none() && general.get("parent").is_none());
    assert_error(
        &admin.get(&format!("rooms.info?roomId={rid}&fields=nope")).await,
        400,
        Some("error-invalid-fields"),
    );
}

#[tokio::test]
async fn rooms_images_lists_the_images_of_a_room_its_members_see() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let gid = admin.ok_post("groups.create", json!({"name": "pics"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = admin.ok_get(&format!("rooms.images?roomId={gid}")).await;
    assert_eq!(empty["files"], json!([]));

    let mut ids = Vec::new();
    for name in ["a.png", "b.png"] {
        let (status, body) = admin
            .post_multipart(&format!("rooms.upload/{gid}"), Form::new().part("file", image_part(name)))
            .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["message"]["file"]["_id"].as_str().unwrap().to_owned());
    }
    let text = Part::bytes(b"notes".to_vec()).file_name("n.txt").mime_str("text/plain").unwrap();
    admin.post_multipart(&format!("rooms.upload/{gid}"), Form::new().part("file", text)).await;

    let all = admin.ok_get(&format!("rooms.images?roomId={gid}")).await;
    let listed: Vec<&str> =
        all["files"].as_array().unwrap().iter().map(|f| f["_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(all["total"], 2);
    let from = admin.ok_get(&format!("rooms.images?roomId={gid}&startingFromId={}", ids[0])).await;
    assert_eq!(from["files"].as_array().unwrap().len(), 1);
    assert_eq!(from["files"][0]["_id"], ids[0].as_str());

    assert_error(&alice.get(&format!("rooms.images?roomId={gid}")).await, 403, None);
    assert_error(&admin.get("rooms.images?roomId=nope").await, 403, None);
    assert_error(&admin.get("rooms.images").await, 400, Some("invalid-params"));
    assert_eq!(server.anon().get(&format!("rooms.images?roomId={gid}")).await.0, 401);
}

#[tokio::test]
async fn username_suggestion_is_a_free_name_made_from_the_users_name() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    admin
        .ok_post(
            "users.create",
            json!({"username": "jsmith1", "email": "js@example.com", "name": "John Smith", "password": "pw"}),
        )
        .await;
    let john = server.anon().login("jsmith1", "pw").await;
    assert_eq!(john.ok_get("users.getUsernameSuggestion").await["result"], "john.smith");
    admin
        .ok_post(
            "users.create",
            json!({"username": "john.smith", "email": "j2@example.com", "name": "Other", "password": "pw"}),
        )
        .await;
    assert_eq!(john.ok_get("users.getUsernameSuggestion").await["result"], "jsmith");
    assert_eq!(server.anon().get("users.getUsernameSuggestion").await.0, 401);
}

#[tokio::test]
async fn set_avatar_reads_the_user_named_after_the_image() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let avatar_type = |who: &'static str| {
        let admin = admin.clone();
        async move {
            let resp = admin.request(reqwest::Method::GET, &format!("/avatar/{who}")).send().await.unwrap();
            resp.headers()["content-type"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(avatar_type("alice").await, "image/svg+xml");

    // Alice may not change the admin's avatar, though the form names the admin after the image.
    let form = Form::new().part("image", image_part("a.png")).text("userId", admin.user_id().to_owned());
    let refused = alice.post_multipart("users.setAvatar", form).await;
    assert_eq!(refused.1["success"], false, "{}", refused.1);
    assert_eq!(avatar_type("alice").await, "image/svg+xml");

    // The admin sets alice's avatar, naming her after the image.
    let form = Form::new().part("image", image_part("a.png")).text("userId", alice.user_id().to_owned());
    let (status, body) = admin.post_multipart("users.setAvatar", form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(avatar_type("alice").await, "image/png");
}

#[tokio::test]
async fn users_info_rooms_and_services_users_list_rule_and_set_status_needs_a_field() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let info = alice.ok_get("users.info?username=alice&fields=%7B%22userRooms%22%3A1%7D").await;
    let rooms = info["user"]["rooms"].as_array().unwrap();
    assert!(rooms.iter().any(|r| r["rid"] == "GENERAL" && r.get("unread").is_some()));
    // Another user's rooms need `view-other-user-channels`: the rest of the answer stands.
    let info = alice
        .ok_get(&format!("users.info?userId={}&fields=%7B%22userRooms%22%3A1%7D", admin.user_id()))
        .await;
    assert!(info["user"].get("rooms").is_none());
    let info = admin.ok_get("users.info?username=alice").await;
    assert!(info["user"].get("rooms").is_none());

    // Oneself sees one's services: a password is set, and the login tokens by hash.
    let me = alice.ok_get(&format!("users.info?userId={}", alice.user_id())).await;
    assert_eq!(me["user"]["services"]["password"], true);
    assert!(!me["user"]["services"]["resume"]["loginTokens"].as_array().unwrap().is_empty());
    let other = alice.ok_get(&format!("users.info?userId={}", admin.user_id())).await;
    assert!(other["user"].get("services").is_none());

    // `users.list` under API_Apply_permission_view-outside-room_on_users-list.
    alice.ok_get("users.list").await;
    admin
        .ok_post("settings/API_Apply_permission_view-outside-room_on_users-list", json!({"value": true}))
        .await;
    admin.ok_get("users.list").await;
    admin
        .ok_post(
            "permissions.update",
            json!({"permissions": [{"_id": "view-outside-room", "roles": ["admin"]}]}),
        )
        .await;
    assert_error(&alice.get("users.list").await, 403, None);

    let (status, body) = alice.post("users.setStatus", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation");
    alice.ok_post("users.setStatus", json!({"message": "away for lunch"})).await;
}

#[tokio::test]
async fn discussions_take_any_display_name_and_are_private_inside_a_private_team() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = admin.ok_post("channels.create", json!({"name": "open"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let discussion =
        admin.ok_post("rooms.createDiscussion", json!({"prid": rid, "t_name": "talk"})).await["discussion"]
            .clone();
    assert_eq!(discussion["t"], "c");
    let did = discussion["_id"].as_str().unwrap().to_owned();
    let name = discussion["name"].clone();

    // A discussion's new name is its display name only, spaces and all.
    admin.ok_post("rooms.saveRoomSettings", json!({"rid": did, "roomName": "talk with spaces"})).await;
    let info = admin.ok_get(&format!("rooms.info?roomId={did}")).await;
    assert_eq!((&info["room"]["fname"], &info["room"]["name"]), (&json!("talk with spaces"), &name));
    let sub = admin.ok_get(&format!("subscriptions.getOne?roomId={did}")).await;
    assert_eq!(sub["subscription"]["fname"], "talk with spaces");
    // A channel's name is still checked.
    assert_error(
        &admin.post("rooms.saveRoomSettings", json!({"rid": rid, "roomName": "with spaces"})).await,
        400,
        Some("error-invalid-room-name"),
    );

    // Under a public channel of a private team, the discussion is private.
    let team = admin.ok_post("teams.create", json!({"name": "hidden", "type": 1})).await["team"].clone();
    admin.ok_post("teams.addRooms", json!({"teamId": team["_id"], "rooms": [rid]})).await;
    let inner = admin.ok_post("rooms.createDiscussion", json!({"prid": rid, "t_name": "inner"})).await;
    assert_eq!(inner["discussion"]["t"], "p");
}

#[tokio::test]
async fn clean_history_files_only_keeps_the_messages_and_drops_their_files() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = admin.ok_post("channels.create", json!({"name": "pics"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = admin
        .post_multipart(&format!("rooms.upload/{rid}"), Form::new().part("file", image_part("p.png")))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let file_id = body["message"]["file"]["_id"].as_str().unwrap().to_owned();
    let url = format!("/file-upload/{file_id}/p.png");
    assert_eq!(admin.request(reqwest::Method::GET, &url).send().await.unwrap().status(), 200);

    let window = json!({"roomId": rid, "oldest": ALL_TIME.0, "latest": ALL_TIME.1, "filesOnly": true});
    assert_eq!(admin.ok_post("rooms.cleanHistory", window).await["count"], 1);
    let kept = admin.ok_get(&format!("channels.history?roomId={rid}")).await;
    let message = kept["messages"].as_array().unwrap().iter().find(|m| m["t"].is_null()).unwrap().clone();
    assert!(message.get("file").is_none(), "{message}");
    // The bytes and the record go too (the files service follows the pruning on the bus, the
    // bytes first and the record after them, so wait for both).
    let mut gone = false;
    for _ in 0..50 {
        if admin.request(reqwest::Method::GET, &url).send().await.unwrap().status() == 404
            && admin.ok_get(&format!("rooms.images?roomId={rid}")).await["total"] == 0
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the pruned file is still served or listed");
}

async fn member_names(client: &Client, family: &str, rid: &str) -> Vec<String> {
    let body = client.ok_get(&format!("{family}.members?roomId={rid}&count=100")).await;
    let mut names: Vec<String> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn add_all_subscribes_every_user_as_rocket_chat_does_and_refuses_what_it_refuses() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    admin.ok_post("users.setActiveStatus", json!({"userId": bob.user_id(), "activeStatus": false})).await;
    let rid = admin.ok_post("channels.create", json!({"name": "everyone"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = alice.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    let event = format!("{uid}/subscriptions-changed");
    assert_eq!(ws.sub("stream-notify-user", json!([event, false])).await["msg"], "ready");

    // Without `add-all-to-room`: the method's 403, as a number, and nothing changes.
    let refused = alice.post("channels.addAll", json!({"roomId": rid})).await;
    assert_eq!(refused.0, 400);
    assert_eq!(
        (refused.1["error"].as_str(), refused.1["errorType"].clone()),
        (Some("Access to Method Forbidden [403]"), json!(403))
    );
    assert_eq!(refused.1["details"]["method"], "addAllToRoom");
    // Bad bodies: the schema of `channels.addAll`, the method's `check` for `groups.addAll`.
    assert_error(&admin.post("channels.addAll", json!({})).await, 400, Some("invalid-params"));
    let both = admin.post("channels.addAll", json!({"roomId": rid, "roomName": "everyone"})).await;
    assert_error(&both, 400, Some("invalid-params"));
    let bad = admin.post("channels.addAll", json!({"roomId": rid, "activeUsersOnly": "yes"})).await;
    assert_eq!(
        bad.1["error"],
        "must be boolean\n must have required property 'roomName'\n must match exactly one schema in oneOf [invalid-params]"
    );
    let unknown = admin.post("channels.addAll", json!({"roomId": "nope"})).await;
    assert_error(&unknown, 400, Some("error-room-not-found"));
    assert_eq!(member_names(&admin, "channels", &rid).await, [ADMIN]);

    // Active users only: every active user, rocket.cat included; bob stays out.
    let body =
        admin.ok_post("channels.addAll", json!({"roomName": "everyone", "activeUsersOnly": true})).await;
    assert_eq!(
        (body["channel"]["_id"].as_str(), body["channel"]["t"].as_str()),
        (Some(rid.as_str()), Some("c"))
    );
    assert_eq!(body["channel"]["usersCount"], 3);
    assert_eq!(member_names(&admin, "channels", &rid).await, ["alice", "rocket.cat", ADMIN]);
    let inserted = ws.event("stream-notify-user", &event).await;
    assert_eq!(inserted["fields"]["args"][0], "inserted");
    let sub = &inserted["fields"]["args"][1];
    assert_eq!(
        (sub["rid"].as_str(), sub["alert"].clone(), sub["open"].clone()),
        (Some(rid.as_str()), json!(true), json!(true))
    );
    // Each added user announced their own join.
    let history = admin.ok_get(&format!("channels.history?roomId={rid}&count=50")).await;
    let mut joined: Vec<(String, String)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["t"] == "uj")
        .map(|m| (m["msg"].as_str().unwrap().to_owned(), m["u"]["username"].as_str().unwrap().to_owned()))
        .collect();
    joined.sort();
    assert_eq!(
        joined,
        [("alice".to_owned(), "alice".to_owned()), ("rocket.cat".into(), "rocket.cat".into())]
    );

    // Without the flag the inactive join too; members already there are left alone.
    admin.ok_post("channels.addAll", json!({"roomId": rid})).await;
    assert_eq!(member_names(&admin, "channels", &rid).await, ["alice", "bob", "rocket.cat", ADMIN]);

    // groups.addAll: `group` in the answer, the `API_User_Limit` refusal, the method's `check`.
    let gid = admin.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let typed = admin.post("groups.addAll", json!({"roomId": gid, "activeUsersOnly": "true"})).await;
    assert_eq!(
        (typed.0.as_u16(), typed.1["error"].as_str()),
        (400, Some("Match error: Expected boolean, got string"))
    );
    admin.ok_post("settings/API_User_Limit", json!({"value": 3})).await;
    let limited = admin.post("groups.addAll", json!({"roomId": gid})).await;
    assert_error(&limited, 400, Some("error-user-limit-exceeded"));
    assert_eq!(limited.1["error"], "User Limit Exceeded [error-user-limit-exceeded]");
    assert_eq!(member_names(&admin, "groups", &gid).await, [ADMIN]);
    let body = admin.ok_post("groups.addAll", json!({"roomId": gid, "activeUsersOnly": true})).await;
    assert_eq!(
        (body["group"]["_id"].as_str(), body["group"]["usersCount"].clone()),
        (Some(gid.as_str()), json!(3))
    );
    assert_eq!(member_names(&admin, "groups", &gid).await, ["alice", "rocket.cat", ADMIN]);
    // The added user may now read the group, and over DDP too.
    alice.ok_get(&format!("groups.info?roomId={gid}")).await;
    let rid2 = admin.ok_post("channels.create", json!({"name": "by-ddp"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut admin_ws = Ddp::login(&server.url, admin.token()).await;
    let answer = admin_ws.call("addAllUserToRoom", json!([rid2, true])).await;
    assert_eq!(answer["result"], true, "{answer}");
    assert_eq!(member_names(&admin, "channels", &rid2).await, ["alice", "rocket.cat", ADMIN]);
}

fn id_of(body: serde_json::Value, key: &str) -> String {
    body[key]["_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_renamed_user_is_renamed_in_rooms_subscriptions_messages_and_dm_names() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let rid = id_of(
        alice.ok_post("channels.create", json!({"name": "renames", "members": ["bob"]})).await,
        "channel",
    );
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "hello"}})).await;
    bob.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "hi @alice and @ALICE"}})).await;
    admin.ok_post("rooms.muteUser", json!({"roomId": rid, "userId": alice.user_id()})).await;
    let dm = id_of(bob.ok_post("im.create", json!({"username": "alice"})).await, "room");
    let group = id_of(carol.ok_post("im.create", json!({"usernames": "alice,bob"})).await, "room");
    let carols_view = carol.ok_get(&format!("subscriptions.getOne?roomId={group}")).await;
    assert_eq!(carols_view["subscription"]["fname"], "alice Name, bob Name");
    let bob_id = bob.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    let event = format!("{bob_id}/subscriptions-changed");
    assert_eq!(ws.sub("stream-notify-user", json!([event, false])).await["msg"], "ready");

    // A taken username is refused and nothing is rewritten.
    let refused =
        admin.post("users.update", json!({"userId": alice.user_id(), "data": {"username": "bob"}})).await;
    assert_eq!(refused.0, 400, "{}", refused.1);
    let bobs_view = bob.ok_get(&format!("subscriptions.getOne?roomId={dm}")).await;
    assert_eq!(bobs_view["subscription"]["name"], "alice");

    admin
        .ok_post(
            "users.update",
            json!({"userId": alice.user_id(), "data": {"username": "alicia", "name": "Alicia A"}}),
        )
        .await;
    // The other party's view of the DM, announced to them.
    let changed = ws
        .recv_where(|f| {
            f["fields"]["eventName"] == event.as_str() && f["fields"]["args"][1]["rid"] == dm.as_str()
        })
        .await;
    assert_eq!(changed["fields"]["args"][0], "updated");
    assert_eq!(
        (changed["fields"]["args"][1]["name"].as_str(), changed["fields"]["args"][1]["fname"].as_str()),
        (Some("alicia"), Some("Alicia A"))
    );
    let bobs_view = bob.ok_get(&format!("subscriptions.getOne?roomId={dm}")).await;
    assert_eq!(
        (bobs_view["subscription"]["name"].as_str(), bobs_view["subscription"]["fname"].as_str()),
        (Some("alicia"), Some("Alicia A"))
    );
    let room = bob.ok_get(&format!("rooms.info?roomId={dm}")).await;
    let mut usernames: Vec<String> = serde_json::from_value(room["room"]["usernames"].clone()).unwrap();
    usernames.sort();
    assert_eq!(usernames, ["alicia", "bob"]);
    // Every view of the group DM is composed again, by display name.
    let carols_view = carol.ok_get(&format!("subscriptions.getOne?roomId={group}")).await;
    assert_eq!(
        (carols_view["subscription"]["name"].as_str(), carols_view["subscription"]["fname"].as_str()),
        (Some("alicia,bob"), Some("Alicia A, bob Name"))
    );
    let bobs_group = bob.ok_get(&format!("subscriptions.getOne?roomId={group}")).await;
    assert_eq!(bobs_group["subscription"]["fname"], "Alicia A, carol Name");
    // Her messages, the mentions of her, the room she created and is muted in, her own subscription.
    let history = bob.ok_get(&format!("channels.history?roomId={rid}&count=50")).await;
    let messages = history["messages"].as_array().unwrap();
    let hello = messages.iter().find(|m| m["msg"] == "hello").unwrap();
    assert_eq!(hello["u"]["username"], "alicia");
    let mention = messages.iter().find(|m| m["u"]["username"] == "bob" && m["t"].is_null()).unwrap();
    assert_eq!(
        (mention["msg"].as_str(), mention["mentions"][0]["username"].as_str()),
        (Some("hi @alicia and @alicia"), Some("alicia"))
    );
    let info = bob.ok_get(&format!("channels.info?roomId={rid}")).await;
    assert_eq!(
        (info["channel"]["u"]["username"].as_str(), info["channel"]["muted"].clone()),
        (Some("alicia"), json!(["alicia"]))
    );
    let own = alice.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
    assert_eq!(own["subscription"]["u"]["username"], "alicia");

    // A new name alone renames her in the other party's view only.
    alice.ok_post("users.updateOwnBasicInfo", json!({"data": {"name": "Ally"}})).await;
    let bobs_view = bob.ok_get(&format!("subscriptions.getOne?roomId={dm}")).await;
    assert_eq!(
        (bobs_view["subscription"]["name"].as_str(), bobs_view["subscription"]["fname"].as_str()),
        (Some("alicia"), Some("Ally"))
    );
    let carols_view = carol.ok_get(&format!("subscriptions.getOne?roomId={group}")).await;
    assert_eq!(carols_view["subscription"]["fname"], "Ally, bob Name");
}

#[tokio::test]
async fn users_presence_from_a_recent_date_lists_the_others_changed_since() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let info = admin.ok_get(&format!("users.info?userId={}", bob.user_id())).await;
    let since = info["user"]["_updatedAt"].as_str().unwrap().to_owned();
    // Bob changed at `since` (offline, and listed all the same); the caller never is.
    let body = admin.ok_get(&format!("users.presence?from={since}")).await;
    assert_eq!(body["full"], false);
    let names: Vec<&str> =
        body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob"]);
    let body = bob.ok_get(&format!("users.presence?from={since}")).await;
    assert_eq!((body["full"].clone(), body["users"].clone()), (json!(false), json!([])));
    // Older than ten minutes, or not a date: the full list of users not offline.
    for from in ["2020-01-01T00:00:00.000Z", "someday"] {
        let body = admin.ok_get(&format!("users.presence?from={from}")).await;
        assert_eq!(body["full"], true);
        let names: Vec<&str> =
            body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert!(names.contains(&"rocket.cat") && !names.contains(&"bob"), "{body}");
    }
}

#[tokio::test]
async fn custom_fields_are_checked_against_the_setting_and_a_bad_one_changes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let meta = json!({"code": {"type": "text", "required": true, "minLength": 2, "maxLength": 5},
                      "team": {"type": "select", "options": ["red", "blue"]}});
    admin.ok_post("settings/Accounts_CustomFields", json!({"value": meta.to_string()})).await;
    let create = |username: &str, fields: serde_json::Value| {
        json!({"username": username, "email": format!("{username}@example.com"), "name": username,
               "password": "pw", "customFields": fields})
    };
    for (fields, error) in [
        (
            json!({"code": " ", "team": "red"}),
            "Field code is required [error-user-registration-custom-field]",
        ),
        (
            json!({"code": "1", "team": "red"}),
            "Min length of field code 2 [error-user-registration-custom-field]",
        ),
        (
            json!({"code": "123456", "team": "red"}),
            "Max length of field code 5 [error-user-registration-custom-field]",
        ),
        (
            json!({"code": "123", "team": "green"}),
            "Value for field team is invalid [error-user-registration-custom-field]",
        ),
    ] {
        let refused = admin.post("users.create", create("carl", fields)).await;
        assert_error(&refused, 400, Some("error-user-registration-custom-field"));
        assert_eq!(refused.1["error"], error);
    }
    assert_error(&admin.get("users.info?username=carl").await, 400, Some("error-invalid-user"));
    let made = admin.ok_post("users.create", create("carl", json!({"code": " 123 ", "team": "blue"}))).await;
    assert_eq!(made["user"]["customFields"]["team"], "blue");

    // Updates are checked too, and a refused one leaves the user as they were.
    let refused = admin
        .post(
            "users.update",
            json!({"userId": alice.user_id(), "data": {"name": "Al", "customFields": {"code": "1"}}}),
        )
        .await;
    assert_error(&refused, 400, Some("error-user-registration-custom-field"));
    let refused = alice
        .post(
            "users.updateOwnBasicInfo",
            json!({"data": {"name": "Al"}, "customFields": {"code": "toolong"}}),
        )
        .await;
    assert_error(&refused, 400, Some("error-user-registration-custom-field"));
    assert_eq!(alice.ok_get("me").await["name"], "alice Name");
    // An unreadable setting refuses every given field.
    admin.ok_post("settings/Accounts_CustomFields", json!({"value": "{oops"})).await;
    assert_error(
        &admin.post("users.create", create("dana", json!({"code": "12"}))).await,
        400,
        Some("error-invalid-customfield-json"),
    );
}

#[tokio::test]
async fn a_default_team_brings_its_auto_join_rooms_to_new_users_and_rocket_cat_has_an_avatar() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let team = admin.ok_post("teams.create", json!({"name": "crew", "type": 0})).await["team"].clone();
    let team_room = team["roomId"].as_str().unwrap().to_owned();
    // `extraData.teamId` creates the room inside the team; one naming no team is dropped.
    let inner = admin
        .ok_post("groups.create", json!({"name": "crew-inner", "extraData": {"teamId": team["_id"]}}))
        .await;
    assert_eq!(inner["group"]["teamId"], team["_id"]);
    let gid = id_of(inner, "group");
    let stray =
        admin.ok_post("groups.create", json!({"name": "stray", "extraData": {"teamId": "nope"}})).await;
    assert!(stray["group"].get("teamId").is_none(), "{stray}");
    // Someone outside the team cannot put a room in it.
    let outsider = server.user("outsider").await;
    let refused = outsider
        .post("channels.create", json!({"name": "intruder", "extraData": {"teamId": team["_id"]}}))
        .await;
    assert_error(&refused, 403, None);
    assert_eq!(admin.ok_get("rooms.nameExists?roomName=intruder").await["exists"], false);
    let other = id_of(admin.ok_post("groups.create", json!({"name": "crew-other"})).await, "group");
    admin.ok_post("teams.addRooms", json!({"teamId": team["_id"], "rooms": [other]})).await;
    admin.ok_post("teams.updateRoom", json!({"roomId": gid, "isDefault": true})).await;
    // Not a default team yet: its auto-join rooms stay out.
    let before = server.user("bea").await;
    assert!(before.ok_get(&format!("subscriptions.getOne?roomId={gid}")).await["subscription"].is_null());
    admin.ok_post("channels.setDefault", json!({"roomId": team_room, "default": true})).await;
    let dave = server.user("dave").await;
    for rid in [&team_room, &gid] {
        let sub = dave.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
        assert_eq!(sub["subscription"]["rid"], rid.as_str());
    }
    assert!(dave.ok_get(&format!("subscriptions.getOne?roomId={other}")).await["subscription"].is_null());

    // rocket.cat starts with a stored avatar, as Rocket.Chat's does.
    let body = admin.ok_get("users.presence").await;
    let cat =
        body["users"].as_array().unwrap().iter().find(|u| u["username"] == "rocket.cat").unwrap().clone();
    let mut keys: Vec<&str> = cat.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["_id", "avatarETag", "name", "status", "username", "utcOffset"]);
}

#[tokio::test]
async fn a_team_rooms_side_panel_is_saved_and_validated() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let team = admin.ok_post("teams.create", json!({"name": "panel", "type": 0})).await["team"].clone();
    let rid = team["roomId"].as_str().unwrap().to_owned();
    let items = json!({"items": ["channels", "discussions"]});
    let saved = admin.ok_post("rooms.saveRoomSettings", json!({"rid": rid, "sidepanel": items})).await;
    assert_eq!(saved["rid"], rid.as_str());
    assert_eq!(admin.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["sidepanel"], items);
    // Unknown, duplicated or too many items, or none: refused, and the panel stays.
    for bad in [
        json!({"items": ["wrong"]}),
        json!({"items": ["channels", "channels"]}),
        json!({"items": ["channels", "discussions", "extra"]}),
        json!({"items": []}),
        json!({}),
    ] {
        let refused = admin.post("rooms.saveRoomSettings", json!({"rid": rid, "sidepanel": bad})).await;
        assert_error(&refused, 400, Some("error-invalid-sidepanel"));
    }
    assert_eq!(admin.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["sidepanel"], items);
    // Only a team's main room has one.
    let other = id_of(admin.ok_post("channels.create", json!({"name": "plain"})).await, "channel");
    let refused = admin.post("rooms.saveRoomSettings", json!({"rid": other, "sidepanel": items})).await;
    assert_error(&refused, 400, Some("error-action-not-allowed"));
    assert_eq!(refused.1["error"], "Invalid room [error-action-not-allowed]");
    // `null` takes it away.
    admin.ok_post("rooms.saveRoomSettings", json!({"rid": rid, "sidepanel": null})).await;
    assert!(admin.ok_get(&format!("channels.info?roomId={rid}")).await["channel"].get("sidepanel").is_none());
}
