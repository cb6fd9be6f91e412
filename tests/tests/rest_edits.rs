//! Editing, deleting and reacting to messages over REST, and the events those send over DDP.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn edit_delete_react_with_permissions() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mid = alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "typo"}})).await
        ["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let edited =
        alice.ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": mid, "text": "fixed @bob"})).await;
    let m = &edited["message"];
    assert_eq!((m["msg"].as_str(), m["editedBy"]["username"].as_str()), (Some("fixed @bob"), Some("alice")));
    assert!(m["editedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m["mentions"][0]["username"], "bob", "mentions follow the new text");
    let not_yours =
        bob.post("chat.update", json!({"roomId": "GENERAL", "msgId": mid, "text": "mine now"})).await;
    assert_error(&not_yours, 400, Some("error-action-not-allowed"));
    let wrong_room =
        alice.post("chat.update", json!({"roomId": "elsewhere", "msgId": mid, "text": "x"})).await;
    assert_eq!(wrong_room.1["error"], "The room id provided does not match where the message is from.");
    let missing = alice.post("chat.update", json!({"roomId": "GENERAL", "msgId": "nope", "text": "x"})).await;
    assert_eq!(missing.1["error"], "No message found with the id of \"nope\".");
    assert_error(
        &alice.post("chat.update", json!({"roomId": "GENERAL", "msgId": mid})).await,
        400,
        Some("invalid-params"),
    );
    admin.ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": mid, "text": "moderated"})).await;

    bob.ok_post("chat.react", json!({"emoji": ":thumbsup:", "messageId": mid})).await;
    alice.ok_post("chat.react", json!({"reaction": "thumbsup", "messageId": mid})).await;
    let reacted = alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await;
    assert_eq!(reacted["message"]["reactions"], json!({":thumbsup:": {"usernames": ["bob", "alice"]}}));
    bob.ok_post("chat.react", json!({"emoji": ":thumbsup:", "messageId": mid})).await;
    bob.ok_post("chat.react", json!({"emoji": ":thumbsup:", "messageId": mid, "shouldReact": false})).await;
    let toggled = alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await;
    assert_eq!(toggled["message"]["reactions"], json!({":thumbsup:": {"usernames": ["alice"]}}));
    assert_error(
        &bob.post("chat.react", json!({"emoji": "not an emoji", "messageId": mid})).await,
        400,
        Some("error-not-allowed"),
    );
    assert_error(
        &bob.post("chat.react", json!({"emoji": "smile"})).await,
        400,
        Some("error-messageid-param-not-provided"),
    );

    assert_error(
        &bob.post("chat.delete", json!({"roomId": "GENERAL", "msgId": mid})).await,
        400,
        Some("error-action-not-allowed"),
    );
    let deleted = alice.ok_post("chat.delete", json!({"roomId": "GENERAL", "msgId": mid})).await;
    assert_eq!(deleted["_id"], mid.as_str());
    assert!(deleted["ts"].as_str().unwrap().parse::<i64>().is_ok(), "ts is epoch ms as a string");
    assert_eq!(deleted["message"]["u"]["username"], "alice");
    assert_error(
        &alice.get(&format!("chat.getMessage?msgId={mid}")).await,
        400,
        Some("error-invalid-message"),
    );
    let again = alice.post("chat.delete", json!({"roomId": "GENERAL", "msgId": mid})).await;
    assert_eq!(again.1["error"], format!("No message found with the id of \"{mid}\"."));
}

#[tokio::test]
async fn changes_reach_room_watchers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    assert_eq!(ws.sub("stream-notify-room", json!(["GENERAL/deleteMessage", false])).await["msg"], "ready");
    let mid = alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "v1"}})).await["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ws.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["msg"], "v1");
    let mut alice_ws = Ddp::login(&server.url, alice.token()).await;
    let update = alice_ws.call("updateMessage", json!([{"_id": mid, "rid": "GENERAL", "msg": "v2"}])).await;
    assert!(update.get("error").is_none(), "{update}");
    let edited = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(edited["fields"]["args"][0]["msg"], "v2");
    assert!(edited["fields"]["args"][0]["editedAt"]["$date"].is_i64());
    alice_ws.call("setReaction", json!([":tada:", mid])).await;
    let reacted = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(reacted["fields"]["args"][0]["reactions"], json!({":tada:": {"usernames": ["alice"]}}));
    let deleted = alice_ws.call("deleteMessage", json!([{"_id": mid}])).await;
    assert!(deleted.get("error").is_none(), "{deleted}");
    let gone = ws.event("stream-notify-room", "GENERAL/deleteMessage").await;
    assert_eq!(gone["fields"]["args"], json!([{"_id": mid}]));
}

#[tokio::test]
async fn reconnecting_clients_catch_up() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    let seen =
        alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "before"}})).await;
    let last = ws.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["ts"].clone();
    let seen_at = seen["message"]["_updatedAt"].as_str().unwrap().to_owned();
    drop(ws);
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;

    let mut ids = Vec::new();
    for text in ["missed 1", "missed 2", "missed 3"] {
        let sent =
            alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": text}})).await;
        ids.push(sent["message"]["_id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    alice
        .ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": ids[0], "text": "missed 1 (edited)"}))
        .await;
    alice.ok_post("chat.delete", json!({"roomId": "GENERAL", "msgId": ids[1]})).await;

    let mut ws = Ddp::login(&server.url, bob.token()).await;
    let missed = ws.call("loadMissedMessages", json!(["GENERAL", last])).await;
    let texts: Vec<&str> =
        missed["result"].as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap()).collect();
    assert_eq!(texts, ["missed 3", "missed 1 (edited)"]);

    let sync = bob.ok_get(&format!("chat.syncMessages?roomId=GENERAL&lastUpdate={seen_at}")).await;
    let updated: Vec<&str> =
        sync["result"]["updated"].as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap()).collect();
    assert_eq!(updated, ["missed 3", "missed 1 (edited)"], "newest first");
    assert_eq!(sync["result"]["deleted"][0]["_id"], ids[1].as_str());

    // Cursor mode: one message a page until the cursor runs out.
    let since: i64 = apogee_rc_millis(&seen_at);
    let mut next = Some(since.to_string());
    let mut paged = Vec::new();
    while let Some(cursor) = next {
        let page =
            bob.ok_get(&format!("chat.syncMessages?roomId=GENERAL&type=UPDATED&next={cursor}&count=1")).await;
        for m in page["result"]["updated"].as_array().unwrap() {
            paged.push(m["msg"].as_str().unwrap().to_owned());
        }
        next = page["result"]["cursor"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, ["missed 3", "missed 1 (edited)"], "by _updatedAt, oldest change first");
    let deleted = bob.ok_get(&format!("chat.syncMessages?roomId=GENERAL&type=DELETED&next={since}")).await;
    assert_eq!(deleted["result"]["deleted"][0]["_id"], ids[1].as_str());
    assert_error(
        &bob.get("chat.syncMessages?roomId=GENERAL").await,
        400,
        Some("error-lastUpdate-param-not-provided"),
    );
    assert_error(
        &bob.get("chat.syncMessages?roomId=GENERAL&lastUpdate=nope").await,
        400,
        Some("error-roomId-param-invalid"),
    );
    assert_error(
        &bob.get("chat.syncMessages?lastUpdate=2020-01-01").await,
        400,
        Some("error-roomId-param-not-provided"),
    );
}

/// Epoch milliseconds of an ISO date with milliseconds and `Z`.
fn apogee_rc_millis(iso: &str) -> i64 {
    let (date, time) = iso.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms.parse::<i64>().unwrap()
}
