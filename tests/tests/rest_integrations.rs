//! Incoming webhooks: `integrations.create|update|remove|get|list|history`,
//! `channels.getIntegrations` / `groups.getIntegrations`, and posting through `/hooks/:id/:token`.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

fn incoming(name: &str, channel: &str) -> Value {
    json!({
        "type": "webhook-incoming", "name": name, "enabled": true, "username": "rocket.cat",
        "scriptEnabled": false, "channel": channel, "alias": "CI", "emoji": ":robot:",
    })
}

async fn put(client: &Client, path: &str, body: Value) -> (u16, Value) {
    let resp = client
        .request(reqwest::Method::PUT, path)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn set_permission(admin: &Client, id: &str, roles: &[&str]) {
    admin.ok_post("permissions.update", json!({"permissions": [{"_id": id, "roles": roles}]})).await;
}

async fn hook(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Lets the clock move, so records made one after the other sort by creation time.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

async fn last_message(client: &Client, rid: &str) -> Value {
    client.ok_get(&format!("channels.history?roomId={rid}&count=1")).await["messages"][0].clone()
}

#[tokio::test]
async fn admins_create_read_update_and_remove_incoming_webhooks() {
    let server = TestServer::start().await;
    let admin = server.admin().await;

    let created = admin.ok_post("integrations.create", incoming("Deploys", "#general")).await;
    let integration = &created["integration"];
    let id = integration["_id"].as_str().unwrap().to_owned();
    assert_eq!(integration["type"], "webhook-incoming");
    assert_eq!(integration["channel"], json!(["#general"]));
    assert_eq!(integration["username"], "rocket.cat");
    assert_eq!(integration["userId"], "rocket.cat");
    assert_eq!(integration["overrideDestinationChannelEnabled"], false, "defaults to false");
    assert_eq!(integration["scriptEnabled"], false);
    assert_eq!(integration["_createdBy"]["_id"], admin.user_id());
    assert_eq!(integration["token"].as_str().unwrap().len(), 48);
    assert!(integration["_createdAt"].as_str().unwrap().ends_with('Z'), "{integration}");
    let bot = admin.ok_get("users.info?username=rocket.cat").await;
    assert!(bot["user"]["roles"].as_array().unwrap().contains(&json!("bot")), "{bot}");

    let got = admin.ok_get(&format!("integrations.get?integrationId={id}")).await;
    assert_eq!(got["integration"], *integration);
    let listed = admin.ok_get("integrations.list").await;
    assert_eq!((listed["total"].as_u64(), listed["items"].as_u64()), (Some(1), Some(1)), "{listed}");
    assert_eq!(listed["integrations"][0]["_id"], id.as_str());
    assert_eq!(listed["offset"], 0);

    let update = json!({
        "type": "webhook-incoming", "integrationId": id, "name": "Deploys 2", "enabled": false,
        "scriptEnabled": true, "channel": "#general, @rocket.cat", "alias": "CD", "overrideDestinationChannelEnabled": true,
    });
    let (status, updated) = put(&admin, "integrations.update", update).await;
    assert_eq!(status, 200, "{updated}");
    let after = &updated["integration"];
    assert_eq!((after["name"].as_str(), after["alias"].as_str()), (Some("Deploys 2"), Some("CD")));
    assert_eq!(after["channel"], json!(["#general", "@rocket.cat"]));
    assert_eq!((after["enabled"].as_bool(), after["scriptEnabled"].as_bool()), (Some(false), Some(true)));
    assert_eq!(after["overrideDestinationChannelEnabled"], true);
    assert_eq!(after["token"], integration["token"], "the token stays");
    assert_eq!(after["_updatedBy"]["_id"], admin.user_id());
    assert!(after.get("emoji").is_none(), "an update sets every field, emoji unset: {after}");
    let reread = admin.ok_get(&format!("integrations.get?integrationId={id}")).await;
    assert_eq!(reread["integration"], *after);

    let removed =
        admin.ok_post("integrations.remove", json!({"type": "webhook-incoming", "integrationId": id})).await;
    assert_eq!(removed["integration"]["name"], "Deploys 2");
    assert_eq!(admin.ok_get("integrations.list").await["total"], 0);
    let again =
        admin.post("integrations.remove", json!({"type": "webhook-incoming", "integrationId": id})).await;
    assert_error(&again, 400, None);
    assert_eq!(again.1["error"], "No integration found.");
    let gone = admin.get(&format!("integrations.get?integrationId={id}")).await;
    assert_eq!((gone.0.as_u16(), gone.1["error"].as_str()), (400, Some("The integration does not exists.")));
}

#[tokio::test]
async fn bad_integrations_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    admin.ok_post("channels.create", json!({"name": "ops"})).await;

    let not_allowed = alice.post("integrations.create", incoming("x", "#general")).await;
    assert_error(&not_allowed, 400, Some("not_authorized"));
    assert_eq!(not_allowed.1["error"], "Unauthorized [not_authorized]");

    let cases = [
        (json!({"type": "webhook-incoming-invalid"}), None, "Invalid integration type."),
        (json!({"type": "webhook-outgoing", "event": "sendMessage"}), None, "Invalid integration type."),
        (json!({"channel": " "}), Some("error-invalid-channel"), "Invalid channel [error-invalid-channel]"),
        (
            json!({"channel": "#general, ops"}),
            Some("error-invalid-channel-start-with-chars"),
            "Invalid channel. Start with @ or # [error-invalid-channel-start-with-chars]",
        ),
        (
            json!({"username": " "}),
            Some("error-invalid-username"),
            "Invalid username [error-invalid-username]",
        ),
        (json!({"username": "ghost"}), Some("error-invalid-user"), "Invalid user [error-invalid-user]"),
        (json!({"channel": "#nowhere"}), Some("error-invalid-room"), "Invalid room [error-invalid-room]"),
        (json!({"script": "class Script {}"}), None, "integration-scripts-disabled"),
    ];
    for (change, error_type, error) in cases {
        let mut body = incoming("bad", "#general");
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let resp = admin.post("integrations.create", body.clone()).await;
        assert_error(&resp, 400, error_type);
        assert_eq!(resp.1["error"], error, "{body}");
    }
    let mut missing = incoming("bad", "#general");
    missing.as_object_mut().unwrap().remove("name");
    let resp = admin.post("integrations.create", missing).await;
    assert_error(&resp, 400, Some("invalid-params"));
    assert!(resp.1["error"].as_str().unwrap().contains("must have required property 'name'"), "{}", resp.1);
    let mut extra = incoming("bad", "#general");
    extra["unknown"] = json!(1);
    assert_error(&admin.post("integrations.create", extra).await, 400, Some("invalid-params"));

    // With only one of the two permissions a target must be a room the creator is in.
    set_permission(&admin, "manage-incoming-integrations", &["admin", "user"]).await;
    let outsider = alice.post("integrations.create", incoming("x", "#ops")).await;
    assert_error(&outsider, 400, Some("error-invalid-channel"));
    assert_eq!(outsider.1["error"], "Invalid Channel [error-invalid-channel]");
    alice.ok_post("integrations.create", incoming("mine", "#general")).await;

    let listed = admin.ok_get("integrations.list").await;
    assert_eq!(listed["total"], 1, "only the accepted one: {listed}");
}

#[tokio::test]
async fn permissions_decide_which_integrations_one_sees_and_changes() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    set_permission(&admin, "manage-own-incoming-integrations", &["admin", "user"]).await;
    let theirs =
        admin.ok_post("integrations.create", incoming("admin's", "#general")).await["integration"].clone();
    tick().await;
    let mine =
        alice.ok_post("integrations.create", incoming("alice's", "#general")).await["integration"].clone();
    let (theirs_id, mine_id) = (theirs["_id"].as_str().unwrap(), mine["_id"].as_str().unwrap());

    let listed = alice.ok_get("integrations.list").await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["integrations"][0]["_id"], mine_id);
    let all = admin.ok_get("integrations.list").await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["integrations"][0]["_id"], mine_id, "newest first");

    alice.ok_get(&format!("integrations.get?integrationId={mine_id}")).await;
    let other = alice.get(&format!("integrations.get?integrationId={theirs_id}")).await;
    assert_eq!((other.0.as_u16(), other.1["error"].as_str()), (400, Some("not-authorized")));
    let by_creator =
        admin.get(&format!("integrations.get?integrationId={theirs_id}&createdBy={}", alice.user_id())).await;
    assert_eq!(by_creator.1["error"], "The integration does not exists.");
    let no_id = admin.get("integrations.get").await;
    assert_error(&no_id, 400, Some("invalid-params"));
    assert_eq!(no_id.1["error"], "must have required property 'integrationId' [invalid-params]");

    let update = |id: &str| {
        json!({"type": "webhook-incoming", "integrationId": id, "name": "renamed", "enabled": true,
               "scriptEnabled": false, "channel": "#general"})
    };
    let (status, refused) = put(&alice, "integrations.update", update(theirs_id)).await;
    assert_eq!(
        (status, refused["errorType"].as_str()),
        (400, Some("error-invalid-integration")),
        "{refused}"
    );
    let (status, _) = put(&alice, "integrations.update", update(mine_id)).await;
    assert_eq!(status, 200);
    let (status, unknown) = put(&admin, "integrations.update", update("nope")).await;
    assert_eq!((status, unknown["error"].as_str()), (400, Some("No integration found.")));

    let remove = |id: &str| json!({"type": "webhook-incoming", "integrationId": id});
    let refused = alice.post("integrations.remove", remove(theirs_id)).await;
    assert_error(&refused, 400, Some("error-invalid-integration"));
    let bad_type =
        admin.post("integrations.remove", json!({"type": "invalid-type", "integrationId": theirs_id})).await;
    assert_error(&bad_type, 400, Some("invalid-params"));
    assert!(bad_type.1["error"].as_str().unwrap().contains("must match exactly one schema in oneOf"));
    alice.ok_post("integrations.remove", remove(mine_id)).await;

    // Without any integration permission: 403 `unauthorized`, and nothing changes.
    set_permission(&admin, "manage-own-incoming-integrations", &["admin"]).await;
    let list = alice.get("integrations.list").await;
    assert_error(&list, 403, None);
    assert_eq!(list.1["error"], "unauthorized");
    assert_error(&alice.post("integrations.remove", remove(theirs_id)).await, 403, None);
    let history = alice.get(&format!("integrations.history?id={theirs_id}")).await;
    assert_eq!((history.0.as_u16(), history.1["error"].as_str()), (403, Some("unauthorized")));
    let history = admin.ok_get(&format!("integrations.history?id={theirs_id}")).await;
    assert_eq!((history["total"].as_u64(), history["history"].clone()), (Some(0), json!([])));
    assert_eq!(admin.ok_get("integrations.list").await["total"], 1);
}

#[tokio::test]
async fn rooms_list_the_integrations_that_post_into_them() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let ops = admin.ok_post("groups.create", json!({"name": "ops"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let general =
        admin.ok_post("integrations.create", incoming("g", "#general")).await["integration"].clone();
    tick().await;
    admin.ok_post("integrations.create", incoming("o", "#ops, #general")).await;

    let in_general = admin.ok_get("channels.getIntegrations?roomName=general").await;
    assert_eq!(
        (in_general["total"].as_u64(), in_general["count"].as_u64()),
        (Some(2), Some(2)),
        "{in_general}"
    );
    assert_eq!(in_general["integrations"][0]["_id"], general["_id"], "oldest first");
    let in_ops = admin.ok_get(&format!("groups.getIntegrations?roomId={ops}")).await;
    assert_eq!(in_ops["total"], 1);
    assert_eq!(in_ops["integrations"][0]["name"], "o");

    let refused = alice.get("channels.getIntegrations?roomId=GENERAL").await;
    assert_error(&refused, 403, None);
    assert_eq!(refused.1["error"], "unauthorized");
}

#[tokio::test]
async fn webhooks_post_as_their_user_into_their_rooms() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let created =
        admin.ok_post("integrations.create", incoming("CI", "#general")).await["integration"].clone();
    let (id, token) = (created["_id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let url = format!("/hooks/{id}/{token}");

    let mut ws = Ddp::login(&server.url, alice.token()).await;
    let ready =
        ws.sub("stream-room-messages", json!(["GENERAL", {"useCollection": false, "args": []}])).await;
    assert_eq!(ready["msg"], "ready", "{ready}");

    let attachments = json!([{"title": "build", "msg": " passed ", "color": "#00ff00"}]);
    let (status, body) =
        hook(&server, &url, json!({"text": " build 42 passed ", "attachments": attachments})).await;
    assert_eq!((status, body.clone()), (200, json!({"success": true})), "{body}");
    // The bot first joins #general (a system message), then posts.
    let event = ws
        .recv_where(|f| f["collection"] == "stream-room-messages" && f["fields"]["args"][0]["t"].is_null())
        .await;
    let message = &event["fields"]["args"][0];
    assert_eq!(message["msg"], "build 42 passed");
    assert_eq!(message["u"]["username"], "rocket.cat");
    assert_eq!(message["bot"], json!({"i": id}));
    assert_eq!((message["alias"].as_str(), message["emoji"].as_str()), (Some("CI"), Some(":robot:")));
    assert_eq!(message["attachments"][0]["text"], "passed", "Slack's msg becomes text");
    assert!(message["attachments"][0].get("msg").is_none());
    assert_eq!(last_message(&alice, "GENERAL").await["msg"], "build 42 passed");

    // Slack's form convention; the call's avatar wins over the integration's emoji.
    let form =
        "payload=%7B%22text%22%3A%22from%20a%20form%22%2C%22icon_url%22%3A%22https%3A%2F%2Fx%2Fa.png%22%7D";
    let resp = reqwest::Client::new()
        .post(format!("{}{url}", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let posted = last_message(&alice, "GENERAL").await;
    assert_eq!(
        (posted["msg"].as_str(), posted["avatar"].as_str()),
        (Some("from a form"), Some("https://x/a.png"))
    );
    assert!(posted.get("emoji").is_none(), "{posted}");

    // The form with the user id in the path works the same; an empty call posts nothing.
    let (status, _) =
        hook(&server, &format!("/hooks/{id}/{}/{token}", alice.user_id()), json!({"text": "third"})).await;
    assert_eq!(status, 200);
    assert_eq!(hook(&server, &url, json!({})).await, (200, json!({"success": true})));
    assert_eq!(last_message(&alice, "GENERAL").await["msg"], "third");

    // A call may not pick its room unless the integration allows it.
    let (status, body) = hook(&server, &url, json!({"text": "elsewhere", "channel": "#ops"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("overriding destination channel is disabled for this integration"))
    );
    let (status, _) = hook(&server, &url, json!({"text": "elsewhere", "roomId": "GENERAL"})).await;
    assert_eq!(status, 400);
    assert_eq!(last_message(&alice, "GENERAL").await["msg"], "third");
}

#[tokio::test]
async fn webhooks_refuse_wrong_tokens_disabled_integrations_and_bad_targets() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user("alice").await;
    admin.ok_post("channels.create", json!({"name": "ops"})).await;
    let created =
        admin.ok_post("integrations.create", incoming("CI", "#general")).await["integration"].clone();
    let (id, token) =
        (created["_id"].as_str().unwrap().to_owned(), created["token"].as_str().unwrap().to_owned());

    let wrong = json!({"success": false, "error": "Invalid integration id or token provided."});
    assert_eq!(hook(&server, &format!("/hooks/{id}/nope"), json!({"text": "x"})).await, (404, wrong.clone()));
    assert_eq!(hook(&server, &format!("/hooks/nope/{token}"), json!({"text": "x"})).await, (404, wrong));
    let (status, body) = reqwest_form(&server, &format!("/hooks/{id}/{token}"), "payload=%7Bnot-json").await;
    assert_eq!((status, body["success"].clone()), (400, json!(false)), "{body}");

    let update = |enabled: bool, overrides: bool| {
        json!({"type": "webhook-incoming", "integrationId": id, "name": "CI", "enabled": enabled,
               "scriptEnabled": false, "channel": "#general", "overrideDestinationChannelEnabled": overrides})
    };
    assert_eq!(put(&admin, "integrations.update", update(false, false)).await.0, 200);
    let (status, _) = hook(&server, &format!("/hooks/{id}/{token}"), json!({"text": "while disabled"})).await;
    assert_eq!(status, 503);

    // Allowed to choose: a bare room name (the bot joins the channel), `@user` (a DM).
    assert_eq!(put(&admin, "integrations.update", update(true, true)).await.0, 200);
    let (status, body) =
        hook(&server, &format!("/hooks/{id}/{token}"), json!({"text": "to ops", "channel": ["ops"]})).await;
    assert_eq!(status, 200, "{body}");
    let ops = admin.ok_get("channels.info?roomName=ops").await["channel"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(last_message(&admin, &ops).await["msg"], "to ops");
    let (status, _) =
        hook(&server, &format!("/hooks/{id}/{token}"), json!({"text": "psst", "channel": "@alice"})).await;
    assert_eq!(status, 200);
    let (status, body) =
        hook(&server, &format!("/hooks/{id}/{token}"), json!({"text": "x", "channel": "#nowhere"})).await;
    assert_eq!((status, body["success"].clone()), (400, json!(false)), "{body}");
    assert!(body.get("errorType").is_none(), "the bare error code, as Rocket.Chat: {body}");
    let general = admin.ok_get("channels.history?roomId=GENERAL&count=5").await;
    assert!(general["messages"].as_array().unwrap().iter().all(|m| m["msg"] != "while disabled"));
}

async fn reqwest_form(server: &TestServer, path: &str, body: &'static str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
