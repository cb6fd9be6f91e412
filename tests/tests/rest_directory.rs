//! `directory`, `spotlight`, `shield.svg`, `pw.getPolicy*`, and the users' status and presence.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{TestServer, assert_error};
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v["_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn directory_lists_channels_groups_and_users() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let public =
        admin.ok_post("channels.create", json!({"name": "dir-public"})).await["channel"]["_id"].clone();
    let secret = admin.ok_post("groups.create", json!({"name": "dir-secret"})).await["group"]["_id"].clone();

    let found = admin.ok_get(r#"directory?query={"text":"dir-","type":"channels"}"#).await;
    assert_eq!(
        (found["total"].clone(), found["count"].clone(), found["offset"].clone()),
        (json!(2), json!(2), json!(0))
    );
    let first = &found["result"][0];
    assert_eq!(first["_id"], public);
    assert!(first["usersCount"].is_number() && first["ts"].is_string(), "{first}");
    assert_eq!(found["result"][1]["_id"], secret);
    let desc = admin.ok_get(r#"directory?query={"text":"dir-","type":"channels"}&sort={"name":-1}"#).await;
    assert_eq!(ids(&desc["result"]), vec![secret.as_str().unwrap(), public.as_str().unwrap()]);
    let paged = admin.ok_get(r#"directory?query={"text":"dir-","type":"channels"}&count=1&offset=1"#).await;
    assert_eq!((paged["count"].clone(), paged["total"].clone()), (json!(1), json!(2)));

    // A group is listed only for its members.
    let theirs = alice.ok_get(r#"directory?query={"text":"dir-","type":"channels"}"#).await;
    assert_eq!(ids(&theirs["result"]), vec![public.as_str().unwrap()]);

    // Users: e-mails only for those who may see them.
    let by_admin = admin.ok_get(r#"directory?query={"text":"alice","type":"users"}"#).await;
    assert_eq!(by_admin["result"][0]["username"], "alice");
    assert!(by_admin["result"][0]["emails"].is_array());
    assert!(by_admin["result"][0]["createdAt"].is_string());
    let by_alice = alice.ok_get(r#"directory?query={"text":"alice","type":"users"}"#).await;
    assert_eq!(by_alice["result"][0]["name"], "alice Name");
    assert!(by_alice["result"][0].get("emails").is_none());

    let teams = alice.ok_get(r#"directory?query={"text":"","type":"teams"}"#).await;
    assert_eq!(teams["result"], json!([]));

    assert_error(&admin.get(r#"directory?query={"text":"x","type":"invalid"}"#).await, 400, None);
    assert_error(
        &admin.get(r#"directory?query={"text":"x","type":"channels"}&sort={"name":1,"test":1}"#).await,
        400,
        None,
    );
    assert_error(&admin.get("directory?query=notjson").await, 400, Some("error-invalid-query"));
    assert_eq!(server.anon().get("directory").await.0.as_u16(), 401);
}

#[tokio::test]
async fn spotlight_finds_users_and_visible_rooms() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let open = alice.ok_post("channels.create", json!({"name": "spot.open"})).await["channel"]["_id"].clone();
    let hidden = alice.ok_post("groups.create", json!({"name": "spot.hidden"})).await["group"]["_id"].clone();

    assert_error(&bob.get("spotlight").await, 400, Some("invalid-params"));
    let users = bob.ok_get("spotlight?query=@alice").await;
    assert_eq!(users["rooms"], json!([]));
    let alice_found = &users["users"][0];
    assert_eq!(
        (&alice_found["username"], &alice_found["name"], &alice_found["status"]),
        (&json!("alice"), &json!("alice Name"), &json!("offline"))
    );

    // Bob is not a member of the channel but sees it; the group stays hidden from him.
    let rooms = bob.ok_get("spotlight?query=%23spot").await;
    assert_eq!(rooms["users"], json!([]));
    assert_eq!(ids(&rooms["rooms"]), vec![open.as_str().unwrap()]);
    assert_eq!(rooms["rooms"][0]["t"], "c");
    let mine = alice.ok_get("spotlight?query=spot").await;
    assert_eq!(ids(&mine["rooms"]), vec![hidden.as_str().unwrap(), open.as_str().unwrap()]);

    // Display names with special characters.
    admin.ok_post("settings/UI_Allow_room_names_with_special_chars", json!({"value": true})).await;
    let special = alice.ok_post("channels.create", json!({"name": "test ΓΔ λ"})).await["channel"].clone();
    let found = bob.ok_get("spotlight?query=%23test%20%CE%93%CE%94").await;
    assert_eq!(found["rooms"][0]["_id"], special["_id"]);
    assert_eq!(found["rooms"][0]["name"], special["name"]);
}

#[tokio::test]
async fn shield_is_an_svg_badge_when_enabled() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let _alice = server.user("alice").await;
    let _ws = Ddp::login(&server.url, admin.token()).await;
    let http = reqwest::Client::new();
    let url =
        format!("{}/api/v1/shield.svg?type=online&icon=true&channel=general&name=Rocket.Chat", server.url);
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml;charset=utf-8");
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("<svg") && body.contains("Rocket.Chat"), "{body}");
    let online = |svg: &str| {
        let end = svg.find(" Online<").unwrap();
        svg[..end].rsplit('>').next().unwrap().parse::<u64>().unwrap()
    };
    let before = online(&body);
    let _bob = Ddp::login(&server.url, server.user("bob").await.token()).await;
    let after = online(&http.get(&url).send().await.unwrap().text().await.unwrap());
    assert_eq!(after, before + 1);

    let channel = http
        .get(format!("{}/api/v1/shield.svg?type=channel&channel=general", server.url))
        .send()
        .await
        .unwrap();
    assert!(channel.text().await.unwrap().contains("#general"));

    admin.ok_post("settings/API_Enable_Shields", json!({"value": false})).await;
    assert_error(&server.anon().get(&url[server.url.len()..]).await, 400, Some("error-endpoint-disabled"));
}

#[tokio::test]
async fn password_policy_follows_the_settings() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let off = server.anon().ok_get("pw.getPolicy").await;
    assert_eq!((off["enabled"].clone(), off["policy"].clone()), (json!(false), json!([])));
    admin.ok_post("settings/Accounts_Password_Policy_Enabled", json!({"value": true})).await;
    let on = admin.ok_get("pw.getPolicy").await;
    assert_eq!(on["enabled"], true);
    assert_eq!(on["policy"][0], json!(["get-password-policy-minLength", {"minLength": 7}]));
    assert!(
        on["policy"]
            .as_array()
            .unwrap()
            .contains(&json!(["get-password-policy-mustContainAtLeastOneNumber"]))
    );

    assert_error(&server.anon().get("pw.getPolicyReset").await, 400, Some("invalid-params"));
    let unknown = server.anon().get("pw.getPolicyReset?token=123").await;
    assert_error(&unknown, 403, None);
    assert_eq!(unknown.1["error"], "unauthorized");
}

#[tokio::test]
async fn status_and_presence_over_rest() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut watch = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(watch.sub("stream-notify-logged", json!(["user-status", false])).await["msg"], "ready");

    alice.ok_post("users.setStatus", json!({"status": "busy", "message": "In a meeting"})).await;
    let event = watch.event("stream-notify-logged", "user-status").await;
    assert_eq!(event["fields"]["args"][0][1], "alice");
    assert_eq!(
        (event["fields"]["args"][0][2].clone(), event["fields"]["args"][0][3].clone()),
        (json!(3), json!("In a meeting"))
    );

    let own = alice.ok_get("users.getStatus").await;
    assert_eq!((own["_id"].as_str(), own["status"].as_str()), (Some(alice.user_id()), Some("busy")));
    let other = bob.ok_get("users.getStatus?username=alice").await;
    assert_eq!(other["status"], "busy");
    assert!(other.get("connectionStatus").is_none());
    assert_eq!(
        bob.ok_get(&format!("users.getPresence?userId={}", alice.user_id())).await["presence"],
        "busy"
    );
    assert_eq!(alice.ok_get("users.getPresence").await["presence"], "busy");

    let listed = bob.ok_get(&format!("users.presence?ids={},{}", alice.user_id(), admin.user_id())).await;
    assert_eq!(listed["full"], false);
    assert_eq!(ids(&listed["users"]), vec![alice.user_id()]);
    assert_eq!(listed["users"][0]["statusText"], "In a meeting");
    let all = bob.ok_get("users.presence").await;
    assert_eq!(
        (all["full"].clone(), ids(&all["users"]).contains(&alice.user_id().to_owned())),
        (json!(true), true)
    );

    // Only the text.
    alice.ok_post("users.setStatus", json!({"message": "Back soon"})).await;
    let info = bob.ok_get("users.info?username=alice").await;
    assert_eq!(
        (info["user"]["status"].clone(), info["user"]["statusText"].clone()),
        (json!("busy"), json!("Back soon"))
    );

    assert_error(
        &alice.post("users.setStatus", json!({"status": "sleepy"})).await,
        400,
        Some("error-invalid-status"),
    );
    // A Match error: its text, and no errorType (Meteor's Match.Error carries none).
    let refused = alice.post("users.setStatus", json!({})).await;
    assert_error(&refused, 400, None);
    assert_eq!(
        refused.1["error"],
        "Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation"
    );
    let refused = alice.post("users.setStatus", json!({"status": "away", "username": "bob"})).await;
    assert_error(&refused, 403, None);
    admin.ok_post("users.setStatus", json!({"status": "away", "username": "bob"})).await;
    assert_eq!(bob.ok_get("users.getStatus").await["status"], "away");
    assert_error(&bob.get("users.getStatus?username=nobody").await, 400, Some("error-invalid-user"));
}

#[tokio::test]
async fn directory_teams_lists_public_teams_and_the_callers_private_ones_with_their_room_counts() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let create =
        |name: &str, kind: u8, members: Vec<&str>| json!({"name": name, "type": kind, "members": members});
    let public = admin.ok_post("teams.create", create("pubteam", 0, vec![])).await["team"].clone();
    let mine =
        admin.ok_post("teams.create", create("privteam", 1, vec![alice.user_id()])).await["team"].clone();
    admin.ok_post("teams.create", create("hiddenteam", 1, vec![])).await;
    let rid = admin.ok_post("channels.create", json!({"name": "pub-room"})).await["channel"]["_id"].clone();
    admin.ok_post("teams.addRooms", json!({"teamId": public["_id"], "rooms": [rid]})).await;

    let teams = alice.ok_get(r#"directory?query={"text":"","type":"teams"}&sort={"name":1}"#).await;
    assert_eq!(teams["total"], 2);
    let result = teams["result"].as_array().unwrap();
    let shown: Vec<(&str, &str, u64)> = result
        .iter()
        .map(|t| {
            (t["name"].as_str().unwrap(), t["teamId"].as_str().unwrap(), t["roomsCount"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        shown,
        [("privteam", mine["_id"].as_str().unwrap(), 1), ("pubteam", public["_id"].as_str().unwrap(), 2)]
    );
    assert_eq!(
        (result[1]["_id"].clone(), result[1]["teamMain"].clone()),
        (public["roomId"].clone(), json!(true))
    );
    assert!(result[1]["usersCount"].is_number() && result[1]["ts"].is_string(), "{}", result[1]);
    let found = alice.ok_get(r#"directory?query={"text":"pub","type":"teams"}"#).await;
    assert_eq!((found["total"].clone(), found["result"][0]["name"].clone()), (json!(1), json!("pubteam")));
    let desc = alice.ok_get(r#"directory?query={"text":"","type":"teams"}&sort={"name":-1}"#).await;
    assert_eq!(desc["result"][0]["name"], "pubteam");
}
