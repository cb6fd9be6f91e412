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
