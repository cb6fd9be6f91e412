//! Rocket.Chat behaviours its own API tests (rooms.ts, users.ts) check: `rooms.cleanHistory`,
//! `rooms.info` with team, parent and `fields`, `rooms.images`, `users.getUsernameSuggestion`,
//! `users.setAvatar` naming the user after the image, `users.info` rooms, `users.setStatus`.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use apogee_tests::{Client, TestServer, assert_error};
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
