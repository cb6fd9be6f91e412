//! Posting and reading messages, unread counts and subscriptions.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

/// What people wrote in a history, newest first (system messages such as `uj` left out).
fn said(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("t").is_none())
        .map(|m| m["msg"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn post_message_targets_and_shape() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let posted = alice
        .ok_post("chat.postMessage", json!({"channel": "#general", "text": "hello @bob #general"}))
        .await;
    assert!(posted["ts"].is_number(), "Slack-style epoch ms: {posted}");
    assert_eq!(posted["channel"], "#general");
    let m = &posted["message"];
    assert_eq!(
        (m["rid"].as_str(), m["msg"].as_str(), m["u"]["username"].as_str()),
        (Some("GENERAL"), Some("hello @bob #general"), Some("alice"))
    );
    assert_eq!(m["groupable"], false);
    assert_eq!(m["channels"], json!([{"_id": "GENERAL", "name": "general"}]));
    assert_eq!(m["mentions"], json!([]), "bob does not exist");
    assert!(m["ts"].as_str().unwrap().ends_with('Z') && m["_updatedAt"].is_string());

    let bob = server.user("bob").await;
    let dm = alice.ok_post("chat.postMessage", json!({"channel": "@bob", "text": "hi @bob"})).await;
    assert_eq!(dm["message"]["mentions"][0]["username"], "bob");
    let by_id = alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "msg": "by id"})).await;
    assert_eq!(by_id["channel"], "GENERAL");
    // `#<room id>` and `@<user id>` name the same rooms as `#name` and `@username`.
    let general =
        alice.ok_get("channels.info?roomName=general").await["channel"]["_id"].as_str().unwrap().to_owned();
    let hash_id =
        alice.ok_post("chat.postMessage", json!({"channel": format!("#{general}"), "text": "x"})).await;
    assert_eq!(hash_id["message"]["rid"], general.as_str());
    let at_id = alice
        .ok_post("chat.postMessage", json!({"channel": format!("@{}", bob.user_id()), "text": "x"}))
        .await;
    assert_eq!(at_id["message"]["rid"], dm["message"]["rid"]);
    assert_error(
        &alice.post("chat.postMessage", json!({"channel": "#nope", "text": "x"})).await,
        400,
        Some("invalid-channel"),
    );
    assert_error(
        &alice.post("chat.postMessage", json!({"channel": "nope", "text": "x"})).await,
        400,
        Some("invalid-channel"),
    );
    assert_error(&alice.post("chat.postMessage", json!({"text": "x"})).await, 400, Some("invalid-channel"));
    assert_eq!(alice.post("chat.postMessage", json!({"text": "x"})).await.1["error"], "[invalid-channel]");

    let joined = admin.ok_post("channels.create", json!({"name": "auto"})).await;
    let newcomer =
        alice.ok_post("chat.postMessage", json!({"channel": "#auto", "text": "joins on post"})).await;
    assert_eq!(newcomer["message"]["rid"], joined["channel"]["_id"]);
}

#[tokio::test]
async fn send_message_honours_client_ids_and_refuses_bad_input() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let sent = alice
        .ok_post(
            "chat.sendMessage",
            json!({"message": {"_id": "abc123def456", "rid": "GENERAL", "msg": "mine"}}),
        )
        .await;
    assert_eq!(sent["message"]["_id"], "abc123def456");
    let dup = alice
        .post(
            "chat.sendMessage",
            json!({"message": {"_id": "abc123def456", "rid": "GENERAL", "msg": "again"}}),
        )
        .await;
    assert_error(&dup, 400, Some("error-duplicate-message"));
    let fetched = alice.ok_get("chat.getMessage?msgId=abc123def456").await;
    assert_eq!(fetched["message"]["msg"], "mine", "the duplicate changed nothing");

    let long = "x".repeat(5001);
    assert_error(
        &alice.post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": long}})).await,
        400,
        Some("error-message-size-exceeded"),
    );
    assert_error(&alice.post("chat.sendMessage", json!({})).await, 400, Some("error-invalid-params"));
    let no_room = alice.post("chat.sendMessage", json!({"message": {"msg": "no room"}})).await;
    assert_error(&no_room, 400, None);
    assert_eq!(no_room.1["error"], "The 'rid' property on the message object is missing.");
    assert_error(
        &alice.post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": 5}})).await,
        400,
        Some("invalid-params"),
    );
    assert_error(
        &alice.post("chat.sendMessage", json!({"message": {"rid": "nowhere", "msg": "x"}})).await,
        400,
        Some("error-room-not-found"),
    );
    let impersonate = alice
        .post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "x", "alias": "CEO"}}))
        .await;
    assert_eq!(impersonate.1["error"], "Not enough permission");
    assert_eq!(impersonate.1["errorType"], "error-action-not-allowed");
    let admin = server.admin().await;
    let as_admin = admin
        .post(
            "chat.sendMessage",
            json!({"message": {"rid": "GENERAL", "msg": "x", "avatar": "http://x/y.png"}}),
        )
        .await;
    assert_eq!(as_admin.0, 400, "admin does not bypass message-impersonate");
    let (status, body) = alice.post_raw("chat.sendMessage", "{\"message\": ").await;
    assert_error(&(status, body), 400, Some("error-invalid-json"));
    assert_error(&alice.get("chat.getMessage?msgId=missing").await, 400, Some("error-invalid-message"));

    let history = alice.ok_get("channels.history?roomId=GENERAL").await;
    assert_eq!(said(&history), ["mine"], "no refused message was stored");
}

#[tokio::test]
async fn threads_attach_to_their_root() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let root = alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "root"}})).await
        ["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = alice
        .ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "r1", "tmid": root}}))
        .await;
    let reply_id = reply["message"]["_id"].as_str().unwrap().to_owned();
    let nested = alice
        .ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "r2", "tmid": reply_id}}))
        .await;
    assert_eq!(nested["message"]["tmid"], root.as_str(), "a reply to a reply joins the root's thread");
    let history = alice.ok_get("channels.history?roomId=GENERAL").await;
    assert_eq!(said(&history), ["root"], "thread replies stay out of the channel");
    let with_threads = alice.ok_get("channels.history?roomId=GENERAL&showThreadMessages=true").await;
    assert_eq!(said(&with_threads), ["r2", "r1", "root"]);
    assert_error(
        &alice
            .post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "x", "tshow": true}}))
            .await,
        400,
        Some("invalid-params"),
    );
}

#[tokio::test]
async fn unread_counts_mentions_and_read() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = admin
        .ok_post(
            "channels.create",
            json!({"name": "team", "members": ["alice", "bob"]}),
        )
        .await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = bob.ok_get("subscriptions.get").await;
    let since = before["update"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["_updatedAt"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "one"}})).await;
    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "two @bob"}})).await;
    let sub = bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].clone();
    assert_eq!(
        (sub["unread"].clone(), sub["alert"].clone(), sub["userMentions"].clone()),
        (json!(2), json!(true), json!(1))
    );
    for key in ["_id", "rid", "u", "t", "name", "fname", "ts", "_updatedAt", "open", "ls"] {
        assert!(sub.get(key).is_some(), "{key} in {sub}");
    }
    let own = alice.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].clone();
    assert_eq!(own["unread"], 0, "own messages are read");

    let changed = bob.ok_get(&format!("subscriptions.get?updatedSince={since}")).await;
    let rids: Vec<&str> =
        changed["update"].as_array().unwrap().iter().map(|s| s["rid"].as_str().unwrap()).collect();
    assert_eq!(rids, [rid.as_str()], "only the room with news");
    assert_eq!(changed["remove"], json!([]));

    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    let sub = bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].clone();
    assert_eq!(
        (sub["unread"].clone(), sub["alert"].clone(), sub["userMentions"].clone()),
        (json!(0), json!(false), json!(0))
    );
    assert_error(&bob.post("subscriptions.read", json!({})).await, 400, Some("invalid-params"));
    assert_error(&bob.post("subscriptions.read", json!({"rid": "nowhere"})).await, 400, None);
    let unknown = bob.post("subscriptions.read", json!({"rid": "nowhere"})).await;
    assert_eq!(unknown.1["error"], "error-invalid-subscription");
    // A number is read as the string it spells, as Rocket.Chat's validator coerces it.
    let numeric = bob.post("subscriptions.read", json!({"rid": 12345})).await;
    assert_eq!((numeric.0.as_u16(), &numeric.1["error"]), (400, &json!("error-invalid-subscription")));
    assert_error(
        &bob.post("subscriptions.read", json!({"rid": {"a": 1}})).await,
        400,
        Some("invalid-params"),
    );
    assert_error(
        &bob.post("subscriptions.read", json!({"rid": rid, "roomId": "other"})).await,
        400,
        Some("invalid-params"),
    );

    bob.ok_post("channels.leave", json!({"roomId": rid})).await;
    let changed = bob.ok_get(&format!("subscriptions.get?updatedSince={since}")).await;
    assert_eq!(changed["remove"][0]["_id"], sub["_id"], "{changed}");
    assert!(changed["remove"][0]["_deletedAt"].is_string());
    assert_error(
        &bob.get("subscriptions.get?updatedSince=garbage").await,
        400,
        Some("error-roomId-param-invalid"),
    );
    assert_error(&bob.get("subscriptions.get?foo=1").await, 400, Some("invalid-params"));
    let null = bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await;
    assert_eq!(null["subscription"], Value::Null);
}

#[tokio::test]
async fn rooms_get_and_info() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let all = alice.ok_get("rooms.get").await;
    let ids: Vec<&str> =
        all["update"].as_array().unwrap().iter().map(|r| r["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["GENERAL"], "new users are in the default channel");
    assert_eq!(all["remove"], json!([]));
    let stamp = all["update"][0]["_updatedAt"].as_str().unwrap().to_owned();
    let none = alice.ok_get(&format!("rooms.get?updatedSince={stamp}")).await;
    assert_eq!(none["update"], json!([]));
    alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "news"})).await;
    let changed = alice.ok_get(&format!("rooms.get?updatedSince={stamp}")).await;
    assert_eq!(changed["update"][0]["lastMessage"]["msg"], "news");
    let info = alice.ok_get("rooms.info?roomName=general").await;
    assert_eq!(
        (info["room"]["_id"].as_str(), info["room"]["default"].as_bool()),
        (Some("GENERAL"), Some(true))
    );
    assert_error(
        &alice.get("rooms.get?updatedSince=nope").await,
        400,
        Some("error-updatedSince-param-invalid"),
    );
}

#[tokio::test]
async fn public_channels_take_posts_from_readers_who_have_not_joined() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = admin.ok_post("channels.create", json!({"name": "open"})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "drive-by"}})).await;
    assert_eq!(sent["message"]["rid"], rid.as_str());
    assert_eq!(
        alice.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"],
        Value::Null,
        "posting does not join"
    );
}

/// `@all` / `@here`: every member's `groupMentions` and `alert`, derived from the room's
/// messages (no member is written), over REST, the DDP method and the sidebar events; read and
/// unread reset and restore them; a thread-only `@all` marks the thread instead.
#[tokio::test]
async fn group_mentions_are_derived_for_every_member() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let rid = admin
        .ok_post("channels.create", json!({"name": "crew", "members": ["alice", "bob", "carol"]}))
        .await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = bob.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    let changed = format!("{bob_id}/subscriptions-changed");
    assert_eq!(ws.sub("stream-notify-user", json!([changed, false])).await["msg"], "ready");
    let get_one = |client: &Client| {
        let path = format!("subscriptions.getOne?roomId={rid}");
        let client = client.clone();
        async move { client.ok_get(&path).await["subscription"].clone() }
    };

    let all =
        alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "@all standup"}})).await;
    let all_id = all["message"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(all["message"]["mentions"], json!([{"_id": "all", "username": "all"}]));
    let event = sub_changed(&mut ws, &changed, &rid).await;
    assert_eq!(event["fields"]["args"][0], "updated");
    assert_eq!(counts(&event["fields"]["args"][1]), (json!(1), json!(1), json!(0), json!(true)));
    assert_eq!(counts(&get_one(&bob).await), (json!(1), json!(1), json!(0), json!(true)));

    alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "@here and @carol"}})).await;
    let event = sub_changed(&mut ws, &changed, &rid).await;
    assert_eq!(counts(&event["fields"]["args"][1]), (json!(2), json!(2), json!(0), json!(true)));
    assert_eq!(counts(&get_one(&bob).await), (json!(2), json!(2), json!(0), json!(true)));
    // Named by the second message: a user mention there, not a group one.
    assert_eq!(counts(&get_one(&carol).await), (json!(2), json!(1), json!(1), json!(true)));
    assert_eq!(get_one(&alice).await["groupMentions"], 0, "the sender's own");
    let listed = bob.ok_get("subscriptions.get").await;
    let sub = listed["update"].as_array().unwrap().iter().find(|s| s["rid"] == rid.as_str()).unwrap();
    assert_eq!(counts(sub), (json!(2), json!(2), json!(0), json!(true)));
    let over_ddp = ws.call("subscriptions/get", json!([])).await;
    let sub = over_ddp["result"].as_array().unwrap().iter().find(|s| s["rid"] == rid.as_str()).unwrap();
    assert_eq!(counts(sub), (json!(2), json!(2), json!(0), json!(true)));

    // Refused: a post to a room alice cannot read, and unread from one's own message.
    let secret = admin.ok_post("groups.create", json!({"name": "secret", "members": ["bob"]})).await["group"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused =
        alice.post("chat.sendMessage", json!({"message": {"rid": secret, "msg": "@all psst"}})).await;
    assert!(refused.0.is_client_error() && refused.1["success"] == false, "{refused:?}");
    let secret_sub =
        bob.ok_get(&format!("subscriptions.getOne?roomId={secret}")).await["subscription"].clone();
    assert_eq!(counts(&secret_sub), (json!(0), json!(0), json!(0), json!(false)));
    assert_error(
        &alice.post("subscriptions.unread", json!({"firstUnreadMessage": {"_id": all_id}})).await,
        400,
        Some("error-action-not-allowed"),
    );
    assert_eq!(get_one(&alice).await["groupMentions"], 0);
    // Without `mention-all` (changed at run time), `@all` is refused and nothing is posted;
    // `@here` has its own permission.
    admin
        .ok_post("permissions.update", json!({"permissions": [{"_id": "mention-all", "roles": ["admin"]}]}))
        .await;
    let refused = alice.post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "@all again"}})).await;
    assert_error(&refused, 400, Some("error-action-not-allowed"));
    assert_eq!(refused.1["error"], "Notify all in this room not allowed [error-action-not-allowed]");
    let over_ddp = Ddp::login(&server.url, alice.token())
        .await
        .call("sendMessage", json!([{"rid": rid, "msg": "@all via ddp"}]))
        .await;
    assert_eq!(over_ddp["error"]["error"], "error-action-not-allowed", "{over_ddp}");
    // Nor can an edit add it.
    let plain =
        alice.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "plain"}})).await["message"]
            ["_id"]
            .clone();
    // Bob's sidebar hears of "plain" (one more unread).
    let event = sub_changed(&mut ws, &changed, &rid).await;
    assert_eq!(counts(&event["fields"]["args"][1]), (json!(3), json!(2), json!(0), json!(true)));
    let edited =
        alice.post("chat.update", json!({"roomId": rid, "msgId": plain, "text": "@all plain"})).await;
    assert_error(&edited, 400, Some("error-action-not-allowed"));
    let kept = alice.ok_get(&format!("chat.getMessage?msgId={}", plain.as_str().unwrap())).await;
    assert_eq!(kept["message"]["msg"], "plain");
    let last =
        admin.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["lastMessage"]["msg"].clone();
    assert_eq!(last, "plain", "nothing else was posted");
    // "plain" is one more unread, and the refused edit added no group mention.
    assert_eq!(counts(&get_one(&bob).await), (json!(3), json!(2), json!(0), json!(true)));
    admin.ok_post("permissions.update", json!({"permissions": [{"_id": "mention-all", "roles": ["admin", "owner", "moderator", "user"]}]})).await;

    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    let event = sub_changed(&mut ws, &changed, &rid).await;
    assert_eq!(counts(&event["fields"]["args"][1]), (json!(0), json!(0), json!(0), json!(false)));
    assert_eq!(counts(&get_one(&bob).await), (json!(0), json!(0), json!(0), json!(false)));

    // Unread from the `@all` message: both group mentions are back.
    bob.ok_post("subscriptions.unread", json!({"firstUnreadMessage": {"_id": all_id}})).await;
    let event = sub_changed(&mut ws, &changed, &rid).await;
    // Three unread since it: the `@all`, the `@here` and "plain".
    assert_eq!(counts(&event["fields"]["args"][1]), (json!(3), json!(2), json!(0), json!(true)));
    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    sub_changed(&mut ws, &changed, &rid).await;

    // A thread-only `@all`: the followers' `tunreadGroup`, not anyone's room counts.
    let root = bob.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "a plan"}})).await["message"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sub_changed(&mut ws, &changed, &rid).await;
    alice
        .ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "@all see this", "tmid": root}}))
        .await;
    let event = sub_changed(&mut ws, &changed, &rid).await;
    let sub = &event["fields"]["args"][1];
    assert_eq!((sub["tunreadGroup"].clone(), sub["groupMentions"].clone()), (json!([root]), json!(0)));
    let sub = get_one(&bob).await;
    assert_eq!((sub["tunreadGroup"].clone(), sub["groupMentions"].clone()), (json!([root]), json!(0)));
    assert_eq!(get_one(&carol).await["groupMentions"], 1, "carol's earlier one only");
}

/// Counts a subscription shows: `(unread, groupMentions, userMentions, alert)`.
fn counts(sub: &Value) -> (Value, Value, Value, Value) {
    (sub["unread"].clone(), sub["groupMentions"].clone(), sub["userMentions"].clone(), sub["alert"].clone())
}

/// The next `subscriptions-changed` event about room `rid`.
async fn sub_changed(ws: &mut Ddp, event_name: &str, rid: &str) -> Value {
    ws.recv_where(|f| {
        f["msg"] == "changed"
            && f["fields"]["eventName"] == event_name
            && f["fields"]["args"][1]["rid"] == rid
    })
    .await
}
