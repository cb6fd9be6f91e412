//! Streams over DDP: room messages, `__my_messages__`, the sidebar events, typing, presence,
//! and refused subscriptions.
#![allow(clippy::unwrap_used)]

use apogee_tests::TestServer;
use apogee_tests::ddp::Ddp;
use serde_json::{Value, json};

fn is_stream(frame: &Value) -> bool {
    frame["msg"] == "changed"
}

#[tokio::test]
async fn room_messages_reach_every_watcher_including_the_sender() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut bob_ws = Ddp::login(&server.url, bob.token()).await;
    let mut alice_ws = Ddp::login(&server.url, alice.token()).await;
    for ws in [&mut bob_ws, &mut alice_ws] {
        let ready =
            ws.sub("stream-room-messages", json!(["GENERAL", {"useCollection": false, "args": []}])).await;
        assert_eq!(ready["msg"], "ready", "{ready}");
    }
    alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "hello over REST"})).await;
    for ws in [&mut bob_ws, &mut alice_ws] {
        let event = ws.event("stream-room-messages", "GENERAL").await;
        assert_eq!(event["id"], "id");
        let message = &event["fields"]["args"][0];
        assert_eq!(
            (message["msg"].as_str(), message["u"]["username"].as_str()),
            (Some("hello over REST"), Some("alice"))
        );
        assert!(message["ts"]["$date"].is_i64());
    }
    // A DDP post reaches the REST reader too.
    bob_ws.call("sendMessage", json!([{"rid": "GENERAL", "msg": "hello over DDP"}])).await;
    let history = alice.ok_get("channels.history?roomId=GENERAL&count=1").await;
    assert_eq!(history["messages"][0]["msg"], "hello over DDP");
}

#[tokio::test]
async fn my_messages_with_use_collection_sends_added_then_meta() {
    let server = TestServer::start().await;
    let bot = server.user("bot").await;
    let alice = server.user("alice").await;
    let mut ws = Ddp::login(&server.url, bot.token()).await;
    ws.send(json!({"msg": "sub", "id": "my", "name": "stream-room-messages", "params": ["__my_messages__", true]})).await;
    assert_eq!(
        ws.recv().await,
        json!({"msg": "added", "collection": "stream-room-messages", "id": "id", "fields": {"eventName": "__my_messages__"}})
    );
    assert_eq!(ws.recv().await, json!({"msg": "ready", "subs": ["my"]}));
    alice.ok_post("chat.postMessage", json!({"channel": "#general", "text": "ping bot"})).await;
    let event = ws.event("stream-room-messages", "__my_messages__").await;
    assert_eq!(event["fields"]["args"][0]["msg"], "ping bot");
    assert_eq!(
        event["fields"]["args"][1],
        json!({"roomParticipant": true, "roomType": "c", "roomName": "general"})
    );
}

#[tokio::test]
async fn subscriptions_are_refused_to_those_who_may_not_read() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mallory = server.user("mallory").await;
    let gid = alice.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = Ddp::login(&server.url, mallory.token()).await;
    let not_allowed = json!({"isClientSafe": true, "error": "not-allowed", "message": "[not-allowed]", "errorType": "Meteor.Error"});
    let refused = ws.sub("stream-room-messages", json!([gid, false])).await;
    assert_eq!((refused["msg"].clone(), refused["error"].clone()), (json!("nosub"), not_allowed.clone()));
    let refused = ws.sub("stream-notify-room", json!([format!("{gid}/user-activity"), false])).await;
    assert_eq!(refused["error"], not_allowed);
    let refused =
        ws.sub("stream-notify-user", json!([format!("{}/rooms-changed", alice.user_id()), false])).await;
    assert_eq!(refused["error"], not_allowed, "another user's stream");
    let refused = ws.sub("stream-room-messages", json!(["", false])).await;
    assert_eq!(refused["error"]["error"], "invalid-event-name");
    let unknown = ws.sub("no-such-publication", json!([])).await;
    assert_eq!(unknown["error"]["error"], 404);
    let mut anon = Ddp::connect(&server.url).await;
    assert_eq!(anon.sub("stream-room-messages", json!(["GENERAL", false])).await["error"], not_allowed);
    // Meteor publications clients subscribe to on connect are simply ready.
    assert_eq!(anon.sub("meteor.loginServiceConfiguration", json!([])).await["msg"], "ready");
    ws.send(json!({"msg": "unsub", "id": "unknown"})).await;
    assert_eq!(ws.recv_where(|f| f["msg"] == "nosub").await, json!({"msg": "nosub", "id": "unknown"}));
}

#[tokio::test]
async fn typing_reaches_others_but_not_the_writer() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut alice_ws = Ddp::login(&server.url, alice.token()).await;
    let mut bob_ws = Ddp::login(&server.url, bob.token()).await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        assert_eq!(
            ws.sub("stream-notify-room", json!(["GENERAL/user-activity", false])).await["msg"],
            "ready"
        );
        assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    }
    // A write under someone else's name is dropped silently.
    let forged = alice_ws
        .call("stream-notify-room", json!(["GENERAL/user-activity", "bob", ["user-typing"], {}]))
        .await;
    assert!(forged.get("error").is_none());
    let typed = alice_ws
        .call("stream-notify-room", json!(["GENERAL/user-activity", "alice", ["user-typing"], {}]))
        .await;
    assert!(typed.get("error").is_none(), "{typed}");
    let event = bob_ws.recv_where(is_stream).await;
    assert_eq!(event["collection"], "stream-notify-room");
    assert_eq!(event["fields"]["eventName"], "GENERAL/user-activity");
    assert_eq!(event["fields"]["args"], json!(["alice", ["user-typing"]]), "only alice's own write: {event}");
    alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "after typing"})).await;
    let first = alice_ws.recv_where(is_stream).await;
    assert_eq!(first["collection"], "stream-room-messages", "the writer never got its own typing: {first}");
}

#[tokio::test]
async fn sidebar_events_follow_membership_and_unread() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.user("bob").await;
    let uid = bob.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    for event in ["subscriptions-changed", "rooms-changed"] {
        assert_eq!(
            ws.sub("stream-notify-user", json!([format!("{uid}/{event}"), false])).await["msg"],
            "ready"
        );
    }
    let rid = admin.ok_post("channels.create", json!({"name": "news", "members": ["bob"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inserted = ws.event("stream-notify-user", &format!("{uid}/subscriptions-changed")).await;
    assert_eq!(inserted["fields"]["args"][0], "inserted");
    assert_eq!(inserted["fields"]["args"][1]["rid"], rid.as_str());
    let room = ws.event("stream-notify-user", &format!("{uid}/rooms-changed")).await;
    assert_eq!(
        (room["fields"]["args"][0].as_str(), room["fields"]["args"][1]["_id"].as_str()),
        (Some("inserted"), Some(rid.as_str()))
    );

    admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": "first"})).await;
    let changed = ws.event("stream-notify-user", &format!("{uid}/subscriptions-changed")).await;
    assert_eq!(changed["fields"]["args"][0], "updated");
    assert_eq!(
        (changed["fields"]["args"][1]["unread"].clone(), changed["fields"]["args"][1]["alert"].clone()),
        (json!(1), json!(true))
    );
    let room = ws.event("stream-notify-user", &format!("{uid}/rooms-changed")).await;
    assert_eq!(room["fields"]["args"][1]["lastMessage"]["msg"], "first");

    admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": "hey @bob"})).await;
    let mentioned = ws.event("stream-notify-user", &format!("{uid}/subscriptions-changed")).await;
    assert_eq!(
        (
            mentioned["fields"]["args"][1]["unread"].clone(),
            mentioned["fields"]["args"][1]["userMentions"].clone()
        ),
        (json!(2), json!(1))
    );

    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    let read = ws.event("stream-notify-user", &format!("{uid}/subscriptions-changed")).await;
    assert_eq!(read["fields"]["args"][1]["unread"], 0);

    admin.ok_post("channels.kick", json!({"roomId": rid, "username": "bob"})).await;
    let removed = ws.event("stream-notify-user", &format!("{uid}/subscriptions-changed")).await;
    assert_eq!(removed["fields"]["args"][0], "removed");
    let rooms_changed = format!("{uid}/rooms-changed");
    let room = ws
        .recv_where(|f| {
            f["fields"]["eventName"] == rooms_changed.as_str() && f["fields"]["args"][0] == "removed"
        })
        .await;
    assert_eq!(room["fields"]["args"], json!(["removed", {"_id": rid}]));
}

#[tokio::test]
async fn presence_follows_sockets() {
    let server = TestServer::start().await;
    let watcher = server.user("watcher").await;
    let alice = server.user("alice").await;
    let mut watch = Ddp::login(&server.url, watcher.token()).await;
    assert_eq!(watch.sub("stream-notify-logged", json!(["user-status", false])).await["msg"], "ready");
    assert_eq!(
        watch.sub("stream-user-presence", json!(["", {"added": [alice.user_id()]}])).await["msg"],
        "ready"
    );
    let mut alice_ws = Ddp::login(&server.url, alice.token()).await;
    let status = watch.event("stream-notify-logged", "user-status").await;
    let args = &status["fields"]["args"][0];
    assert_eq!(
        (args[0].as_str(), args[1].as_str(), args[2].as_u64()),
        (Some(alice.user_id()), Some("alice"), Some(1))
    );
    let presence = watch.recv_where(|f| f["collection"] == "stream-user-presence").await;
    assert_eq!(presence["id"], alice.user_id());
    assert_eq!(presence["fields"]["args"], json!([["alice", 1, ""]]));
    assert_eq!(alice.ok_get("users.info?username=alice").await["user"]["status"], "online");

    alice_ws.call("setUserStatus", json!(["busy", "In a meeting"])).await;
    let busy = watch.event("stream-notify-logged", "user-status").await;
    assert_eq!(
        (busy["fields"]["args"][0][2].clone(), busy["fields"]["args"][0][3].clone()),
        (json!(3), json!("In a meeting"))
    );
    drop(alice_ws);
    let offline = watch
        .recv_where(|f| f["fields"]["eventName"] == "user-status" && f["fields"]["args"][0][2] == 0)
        .await;
    assert_eq!(offline["fields"]["args"][0][1], "alice");
    // The chosen status comes back with the next connection.
    let _again = Ddp::login(&server.url, alice.token()).await;
    let back = watch
        .recv_where(|f| f["fields"]["eventName"] == "user-status" && f["fields"]["args"][0][2] != 0)
        .await;
    assert_eq!(back["fields"]["args"][0][2], 3);
}

#[tokio::test]
async fn notifications_settings_and_permissions_are_pushed() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let uid = bob.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(
        ws.sub("stream-notify-user", json!([format!("{uid}/notification"), false])).await["msg"],
        "ready"
    );
    assert_eq!(ws.sub("stream-notify-logged", json!(["permissions-changed", false])).await["msg"], "ready");
    let mut anon = Ddp::connect(&server.url).await;
    assert_eq!(
        anon.sub("stream-notify-all", json!(["public-settings-changed", false])).await["msg"],
        "ready"
    );

    alice.ok_post("chat.postMessage", json!({"channel": "#general", "text": "hey @bob"})).await;
    let note = ws.event("stream-notify-user", &format!("{uid}/notification")).await;
    let n = &note["fields"]["args"][0];
    assert_eq!((n["title"].as_str(), n["text"].as_str()), (Some("#general"), Some("alice: hey @bob")));
    assert_eq!(
        (n["payload"]["rid"].as_str(), n["payload"]["sender"]["username"].as_str()),
        (Some("GENERAL"), Some("alice"))
    );
    alice.ok_post("chat.postMessage", json!({"channel": "@bob", "text": "psst"})).await;
    let dm = ws.event("stream-notify-user", &format!("{uid}/notification")).await;
    assert_eq!(
        (dm["fields"]["args"][0]["title"].as_str(), dm["fields"]["args"][0]["payload"]["type"].as_str()),
        (Some("alice"), Some("d"))
    );

    admin.ok_post("settings/Site_Name", json!({"value": "Acme"})).await;
    let setting = anon.event("stream-notify-all", "public-settings-changed").await;
    assert_eq!(setting["fields"]["args"], json!(["updated", {"_id": "Site_Name", "value": "Acme"}]));
    admin
        .ok_post("permissions.update", json!({"permissions": [{"_id": "create-c", "roles": ["admin"]}]}))
        .await;
    let permission = ws.event("stream-notify-logged", "permissions-changed").await;
    assert_eq!(permission["fields"]["args"][1]["_id"], "create-c");
    assert_eq!(permission["fields"]["args"][1]["roles"], json!(["admin"]));
}

#[tokio::test]
async fn binary_frames_close_the_socket() {
    let server = TestServer::start().await;
    let mut ws = Ddp::connect(&server.url).await;
    ws.send_binary().await;
    assert_eq!(ws.recv().await, json!({"closed": 1007}));
}

#[tokio::test]
async fn my_messages_subscribed_before_the_resume_login_starts_after_it() {
    let server = TestServer::start().await;
    let bot = server.user("bot").await;
    let alice = server.user("alice").await;
    let mut ws = Ddp::connect(&server.url).await;
    // Asteroid re-subscribes on reconnect before its resume login lands.
    assert_eq!(ws.sub("stream-room-messages", json!(["__my_messages__", false])).await["msg"], "ready");
    let login = ws.call("login", json!([{"resume": bot.token()}])).await;
    assert!(login.get("error").is_none(), "{login}");
    alice.ok_post("chat.postMessage", json!({"channel": "#general", "text": "after reconnect"})).await;
    let event = ws.event("stream-room-messages", "__my_messages__").await;
    assert_eq!(event["fields"]["args"][0]["msg"], "after reconnect");
}

#[tokio::test]
async fn refused_posts_are_explained_by_rocket_cat() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = admin
        .ok_post("channels.create", json!({"name": "quiet", "members": ["alice"], "readOnly": true}))
        .await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = alice.user_id().to_owned();
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-notify-user", json!([format!("{uid}/message"), false])).await["msg"], "ready");
    let refused = ws.call("sendMessage", json!([{"rid": rid, "msg": "hello?"}])).await;
    assert_eq!(refused["error"]["error"], "error-not-allowed");
    let note = ws.event("stream-notify-user", &format!("{uid}/message")).await;
    let m = &note["fields"]["args"][0];
    assert_eq!(
        (m["u"]["username"].as_str(), m["private"].as_bool(), m["rid"].as_str()),
        (Some("rocket.cat"), Some(true), Some(rid.as_str()))
    );
}
