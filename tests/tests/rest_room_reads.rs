//! `channels.online` / `groups.online`, `channels.anonymousread`, `im.messages.others`,
//! `channels.getAllUserMentionsByChannel`: success and refusal.
#![allow(clippy::unwrap_used)]

use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

fn failure(resp: &(reqwest::StatusCode, Value), status: u16, error: &str) {
    assert_eq!(resp.0.as_u16(), status, "{}", resp.1);
    assert_eq!(
        (resp.1["success"].as_bool(), resp.1["error"].as_str()),
        (Some(false), Some(error)),
        "{}",
        resp.1
    );
}

async fn create(client: &Client, family: &str, name: &str, members: &[&str]) -> String {
    let key = if family == "channels" { "channel" } else { "group" };
    let created =
        client.ok_post(&format!("{family}.create"), json!({"name": name, "members": members})).await;
    created[key]["_id"].as_str().unwrap().to_owned()
}

fn online_query(rid: &str) -> String {
    format!("query={}", urlencode(&json!({"_id": rid}).to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn online_lists_members_not_offline_to_those_who_may_see_the_room() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    alice.ok_post("users.setStatus", json!({"status": "online", "message": ""})).await;
    bob.ok_post("users.setStatus", json!({"status": "away", "message": ""})).await;
    let rid = create(&admin, "channels", "lobby", &["alice", "bob", "carol"]).await;

    let names = |body: &Value| -> Vec<String> {
        body["online"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let body = alice.ok_get(&format!("channels.online?{}", online_query(&rid))).await;
    let mut seen = names(&body);
    seen.sort();
    assert_eq!(seen, ["alice", "bob"], "carol never came online: {body}");
    assert_eq!(body["online"][0].as_object().unwrap().len(), 2, "only _id and username: {body}");
    // A public channel: someone outside it sees the same list.
    let dave = server.user("dave").await;
    let by_name = format!("query={}", urlencode(&json!({"name": "lobby"}).to_string()));
    assert_eq!(names(&dave.ok_get(&format!("channels.online?{by_name}")).await).len(), 2);

    failure(&alice.get("channels.online").await, 400, "Invalid query");
    failure(&alice.get("channels.online?query=%7B%7D").await, 400, "Invalid query");
    failure(
        &alice.get(&format!("channels.online?{}", online_query("nope"))).await,
        400,
        "Channel does not exists",
    );
    assert_error(&alice.get("channels.online?query=nojson").await, 400, Some("error-invalid-query"));

    // A private group: outsiders are refused; the channel route does not see it.
    let gid = create(&alice, "groups", "secret", &["bob"]).await;
    assert_eq!(names(&bob.ok_get(&format!("groups.online?{}", online_query(&gid))).await).len(), 2);
    assert_error(
        &carol.get(&format!("groups.online?{}", online_query(&gid))).await,
        400,
        Some("error-not-allowed"),
    );
    failure(
        &alice.get(&format!("channels.online?{}", online_query(&gid))).await,
        400,
        "Channel does not exists",
    );
    failure(&alice.get(&format!("groups.online?{}", online_query(&rid))).await, 400, "Group does not exists");
    let _ = carol;
}

#[tokio::test]
async fn anonymous_read_needs_the_setting_and_a_public_channel() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rid = create(&admin, "channels", "open-house", &[]).await;
    admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": "first"})).await;
    admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": "second"})).await;
    let anon = server.anon();

    let (status, body) = anon.get(&format!("channels.anonymousread?roomId={rid}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorType"], "error-not-allowed");
    assert_eq!(body["error"], "Enable \"Allow Anonymous Read\" [error-not-allowed]");

    admin.ok_post("settings/Accounts_AllowAnonymousRead", json!({"value": true})).await;
    let body = anon.ok_get(&format!("channels.anonymousread?roomId={rid}")).await;
    let texts: Vec<&str> =
        body["messages"].as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap()).collect();
    assert_eq!(texts, ["second", "first"], "newest first: {body}");
    assert_eq!((body["count"].as_u64(), body["total"].as_u64()), (Some(2), Some(2)));
    let body = anon.ok_get("channels.anonymousread?roomName=open-house&count=1&offset=1").await;
    assert_eq!(body["messages"][0]["msg"], "first");
    assert_eq!(
        (body["count"].as_u64(), body["offset"].as_u64(), body["total"].as_u64()),
        (Some(1), Some(1), Some(2))
    );

    assert_error(&anon.get("channels.anonymousread?roomId=nope").await, 400, Some("error-room-not-found"));
    let gid = create(&admin, "groups", "closed", &[]).await;
    assert_error(
        &anon.get(&format!("channels.anonymousread?roomId={gid}")).await,
        400,
        Some("error-room-not-found"),
    );
}

#[tokio::test]
async fn messages_others_lets_room_administrators_read_any_direct_messages() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let dm = alice.ok_post("im.create", json!({"username": "bob"})).await["room"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.ok_post("chat.postMessage", json!({"roomId": dm, "text": "psst"})).await;
    let path = format!("im.messages.others?roomId={dm}");

    assert_error(&admin.get(&path).await, 400, Some("error-endpoint-disabled"));
    admin.ok_post("settings/API_Enable_Direct_Message_History_EndPoint", json!({"value": true})).await;
    failure(&alice.get(&path).await, 403, "unauthorized");
    let body = admin.ok_get(&path).await;
    assert_eq!(body["messages"][0]["msg"], "psst", "{body}");
    assert_eq!(
        (body["count"].as_u64(), body["offset"].as_u64(), body["total"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(admin.ok_get(&format!("dm.messages.others?roomId={dm}")).await["total"], 1);

    assert_error(&admin.get("im.messages.others").await, 400, Some("error-roomid-param-not-provided"));
    let (_, body) = admin.get("im.messages.others?roomId=GENERAL").await;
    assert_eq!(body["error"], "No direct message room found by the id of: GENERAL [error-room-not-found]");
}

#[tokio::test]
async fn mentions_by_channel_are_the_callers_oldest_first() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = create(&admin, "channels", "talk", &["alice", "bob"]).await;
    for text in ["@bob one", "no mention", "@bob two", "@alice three"] {
        alice.ok_post("chat.postMessage", json!({"roomId": rid, "text": text})).await;
    }
    let texts = |body: &Value| -> Vec<String> {
        body["mentions"].as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap().to_owned()).collect()
    };
    let body = bob.ok_get(&format!("channels.getAllUserMentionsByChannel?roomId={rid}")).await;
    assert_eq!(texts(&body), ["@bob one", "@bob two"]);
    assert_eq!(
        (body["count"].as_u64(), body["offset"].as_u64(), body["total"].as_u64()),
        (Some(2), Some(0), Some(2))
    );
    let paged = format!("channels.getAllUserMentionsByChannel?roomId={rid}&count=1&offset=1");
    let body = bob.ok_get(&paged).await;
    assert_eq!((texts(&body), body["total"].as_u64()), (vec!["@bob two".to_owned()], Some(2)));
    let newest = format!("channels.getAllUserMentionsByChannel?roomId={rid}&sort=%7B%22ts%22%3A-1%7D");
    assert_eq!(texts(&bob.ok_get(&newest).await), ["@bob two", "@bob one"]);

    let gid = create(&alice, "groups", "private-talk", &[]).await;
    let (status, body) = bob.get(&format!("channels.getAllUserMentionsByChannel?roomId={gid}")).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("Invalid room [error-invalid-room]")));
    assert_error(&bob.get("channels.getAllUserMentionsByChannel").await, 400, Some("invalid-params"));
}
