//! DDP over `/websocket`: handshake, ping/pong, malformed frames, login forms, methods, and the
//! REST tunnels.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{ADMIN, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn handshake_accepts_every_meteor_version() {
    let server = TestServer::start().await;
    for version in ["1", "pre2", "pre1"] {
        let mut ddp = Ddp::open(&server.url).await;
        ddp.send(json!({"msg": "connect", "version": version, "support": [version]})).await;
        let connected = ddp.recv().await;
        assert_eq!(connected["msg"], "connected", "{version}: {connected}");
        assert!(connected["session"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let mut ddp = Ddp::open(&server.url).await;
    ddp.send(json!({"msg": "connect", "version": "2", "support": ["2"]})).await;
    assert_eq!(ddp.recv().await, json!({"msg": "failed", "version": "1"}));
    let mut ddp = Ddp::open(&server.url).await;
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["pre2", "1"]})).await;
    assert_eq!(ddp.recv().await, json!({"msg": "failed", "version": "pre2"}), "the best common version wins");
}

#[tokio::test]
async fn frames_before_connect_and_malformed_frames_get_error_frames() {
    let server = TestServer::start().await;
    let mut ddp = Ddp::open(&server.url).await;
    ddp.send(json!({"msg": "method", "id": "1", "method": "rooms/get", "params": []})).await;
    let early = ddp.recv().await;
    assert_eq!(early["reason"], "Must connect first", "{early}");
    ddp.send(json!({"msg": "ping", "id": "p1"})).await;
    assert_eq!(
        ddp.recv().await,
        json!({"msg": "pong", "id": "p1"}),
        "pings are answered even before connect"
    );
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]})).await;
    assert_eq!(ddp.recv().await["msg"], "connected");
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]})).await;
    assert_eq!(ddp.recv().await["reason"], "Already connected");
    ddp.send_text("{not json".into()).await;
    assert_eq!(ddp.recv().await, json!({"msg": "error", "reason": "Parse error"}));
    ddp.send(json!({"msg": "dance"})).await;
    assert_eq!(
        ddp.recv().await,
        json!({"msg": "error", "reason": "Bad request", "offendingMessage": {"msg": "dance"}})
    );
    ddp.send(json!({"msg": "method", "id": 1, "method": "x"})).await;
    assert_eq!(ddp.recv().await["reason"], "Malformed method invocation");
    ddp.send(json!({"msg": "sub", "name": "x"})).await;
    assert_eq!(ddp.recv().await["reason"], "Malformed subscription");
    ddp.send(json!({"msg": "ping"})).await;
    assert_eq!(ddp.recv().await, json!({"msg": "pong"}), "the socket survives bad frames");
    let unknown = ddp.call("no-such-method", json!([])).await;
    assert_eq!(unknown["error"]["error"], 404);
    assert_eq!(unknown["error"]["reason"], "Method 'no-such-method' not found");
}

#[tokio::test]
async fn frames_are_processed_in_order_without_waiting_for_connected() {
    let server = TestServer::start().await;
    let mut ddp = Ddp::open(&server.url).await;
    // rocketchat-async sends `login` right behind `connect`.
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]})).await;
    ddp.send(json!({"msg": "method", "id": "1", "method": "login",
                    "params": [{"user": {"username": ADMIN}, "password": ADMIN}]}))
        .await;
    ddp.send(json!({"msg": "method", "id": "2", "method": "rooms/get", "params": []})).await;
    assert_eq!(ddp.recv().await["msg"], "connected");
    let login = ddp.recv().await;
    assert_eq!((login["msg"].as_str(), login["id"].as_str()), (Some("result"), Some("1")), "{login}");
    assert_eq!(login["result"]["id"], ADMIN);
    assert_eq!(login["result"]["type"], "password");
    assert!(login["result"]["tokenExpires"]["$date"].is_i64());
    assert_eq!(ddp.recv().await, json!({"msg": "updated", "methods": ["1"]}));
    let rooms = ddp.recv().await;
    assert_eq!(rooms["id"], "2");
    assert_eq!(rooms["result"][0]["_id"], "GENERAL", "rooms/get without a date is a bare array");
}

fn sha256_hex(text: &str) -> String {
    // The digest form of `rocket.chat`'s test password, computed by Python's hashlib once.
    match text {
        "pw" => "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4".into(),
        other => panic!("no digest for {other}"),
    }
}

#[tokio::test]
async fn login_forms_and_failures() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut ddp = Ddp::connect(&server.url).await;
    let digest = ddp
        .call("login", json!([{"user": {"username": "alice"}, "password": {"digest": sha256_hex("pw"), "algorithm": "sha-256"}}]))
        .await;
    assert_eq!(digest["result"]["id"], alice.user_id(), "{digest}");
    let mut ddp = Ddp::connect(&server.url).await;
    let plain = ddp.call("login", json!([{"user": {"email": "alice@example.com"}, "password": "pw"}])).await;
    assert_eq!(plain["result"]["id"], alice.user_id(), "{plain}");
    let mut ddp = Ddp::connect(&server.url).await;
    let resume = ddp.call("login", json!([{"resume": alice.token()}])).await;
    assert_eq!(
        (resume["result"]["token"].as_str(), resume["result"]["type"].as_str()),
        (Some(alice.token()), Some("resume"))
    );
    let wrong = ddp.call("login", json!([{"user": {"username": "alice"}, "password": "nope"}])).await;
    assert_eq!(
        (wrong["error"]["error"].clone(), wrong["error"]["reason"].clone()),
        (json!(403), json!("Incorrect password"))
    );
    let nobody = ddp.call("login", json!([{"user": {"username": "nobody"}, "password": "x"}])).await;
    assert_eq!(nobody["error"]["reason"], "User not found");
    let stale = ddp.call("login", json!([{"resume": "nope"}])).await;
    assert_eq!(stale["error"]["reason"], "You've been logged out by the server. Please log in again.");
    assert_eq!(stale["error"]["errorType"], "Meteor.Error");
}

#[tokio::test]
async fn methods_need_a_login_and_logout_ends_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut ddp = Ddp::connect(&server.url).await;
    let anon = ddp.call("sendMessage", json!([{"rid": "GENERAL", "msg": "hi"}])).await;
    assert_eq!(anon["error"]["error"], "error-invalid-user");
    assert_eq!(ddp.call("rooms/get", json!([])).await["result"], json!([]), "anonymous: no rooms");
    let mut ddp = Ddp::login(&server.url, alice.token()).await;
    let sent = ddp.call("sendMessage", json!([{"_id": "0123456789ab", "rid": "GENERAL", "msg": "hi"}])).await;
    assert_eq!(sent["result"]["_id"], "0123456789ab");
    assert!(sent["result"]["ts"]["$date"].is_i64(), "EJSON dates over DDP: {sent}");
    let logout = ddp.call("logout", json!([])).await;
    assert!(logout.get("result").is_none() && logout.get("error").is_none(), "{logout}");
    let after = ddp.call("sendMessage", json!([{"rid": "GENERAL", "msg": "again"}])).await;
    assert_eq!(after["error"]["error"], "error-invalid-user");
    let (status, _) = alice.get("me").await;
    assert_eq!(status, 401, "logout revoked the token");
}

#[tokio::test]
async fn room_and_history_methods() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user("bob").await;
    let mut ddp = Ddp::login(&server.url, admin.token()).await;
    let created = ddp.call("createChannel", json!(["ddp-room", ["bob"], false, {}, {}])).await;
    let rid = created["result"]["rid"].as_str().unwrap().to_owned();
    assert_eq!(created["result"]["name"], "ddp-room");
    assert_eq!(ddp.call("getRoomIdByNameOrId", json!(["ddp-room"])).await["result"], rid.as_str());
    assert_eq!(ddp.call("getRoomIdByNameOrId", json!([rid])).await["result"], rid.as_str());
    assert_eq!(ddp.call("getRoomNameById", json!([rid])).await["result"], "ddp-room");
    let by_type = ddp.call("getRoomByTypeAndName", json!(["c", "ddp-room"])).await;
    assert_eq!(by_type["result"]["_id"], rid.as_str());
    let mut stamps = Vec::new();
    for i in 0..3 {
        let sent = ddp.call("sendMessage", json!([{"rid": rid, "msg": format!("m{i}")}])).await;
        stamps.push(sent["result"]["ts"].clone());
        // Distinct timestamps, so the windows below are unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let history = ddp.call("loadHistory", json!([rid, null, 2, null])).await;
    let texts = |v: &Value| {
        v.as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(texts(&history["result"]["messages"]), ["m2", "m1"]);
    let missed = ddp.call("loadMissedMessages", json!([rid, stamps[0]])).await;
    assert_eq!(texts(&missed["result"]), ["m2", "m1"]);
    let next = ddp.call("loadNextMessages", json!([rid, stamps[0], 1])).await;
    assert_eq!(texts(&next["result"]["messages"]), ["m1"]);
    let dm = ddp.call("createDirectMessage", json!(["bob"])).await;
    assert_eq!(dm["result"]["t"], "d");
    assert!(dm["result"]["rid"].as_str().unwrap().contains(ADMIN));
    let users = ddp.call("getUsersOfRoom", json!([rid, true, {"limit": 10, "skip": 0}, ""])).await;
    assert_eq!(users["result"]["total"], 2);
    let roles = ddp.call("getRoomRoles", json!([rid])).await;
    assert_eq!(roles["result"][0]["roles"], json!(["owner"]));
    assert_eq!(ddp.call("license:getModules", json!([])).await["result"], json!([]));
    let subs = ddp.call("subscriptions/get", json!([{"$date": 0}])).await;
    assert!(subs["result"]["update"].as_array().unwrap().len() >= 3, "{subs}");
    let settings = ddp.call("public-settings/get", json!([])).await;
    assert!(settings["result"].as_array().unwrap().iter().any(|s| s["_id"] == "Site_Url"));
    ddp.call("readMessages", json!([rid])).await;
    let denied = ddp.call("loadHistory", json!(["nope", null, 2, null])).await;
    assert_eq!(denied["error"]["error"], "error-room-not-found");
}

#[tokio::test]
async fn method_call_tunnels_run_the_same_methods() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let message = json!({"msg": "method", "id": "7", "method": "rooms/get", "params": []}).to_string();
    let body = alice.ok_post("method.call/rooms%2Fget", json!({"message": message})).await;
    let inner: Value = serde_json::from_str(body["message"].as_str().unwrap()).unwrap();
    assert_eq!((inner["msg"].as_str(), inner["id"].as_str()), (Some("result"), Some("7")));
    assert_eq!(inner["result"][0]["_id"], "GENERAL");
    assert!(inner["result"][0]["ts"]["$date"].is_i64(), "EJSON inside the string");
    let failing = json!({"msg": "method", "id": "8", "method": "joinRoom", "params": ["nope"]}).to_string();
    let body = alice.ok_post("method.call/joinRoom", json!({"message": failing})).await;
    let inner: Value = serde_json::from_str(body["message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["error"]["error"], "error-room-not-found", "errors travel inside a 200");
    let anon = json!({"msg": "method", "id": "9", "method": "public-settings/get", "params": []}).to_string();
    let body = server.anon().ok_post("method.callAnon/public-settings%2Fget", json!({"message": anon})).await;
    assert!(body["message"].as_str().unwrap().contains("Site_Url"));
    let (status, _) = server.anon().post("method.call/rooms%2Fget", json!({"message": message})).await;
    assert_eq!(status, 401);
    let seeded = json!({"msg": "method", "id": "1", "method": "rooms/get", "params": [], "randomSeed": "x"})
        .to_string();
    assert_eq!(alice.post("method.call/rooms%2Fget", json!({"message": seeded})).await.0, 400);
    assert_eq!(alice.post("method.call/x", json!({"message": message, "extra": 1})).await.0, 400);
}

#[tokio::test]
async fn silent_sockets_are_pinged_then_closed() {
    let server = TestServer::start_with(&[("TEST_MODE", "true"), ("APOGEE_DDP_IDLE_SECS", "1")]).await;
    let mut ddp = Ddp::connect(&server.url).await;
    assert_eq!(ddp.recv_raw().await, json!({"msg": "ping"}), "after a silence the server pings");
    assert_eq!(ddp.recv_raw().await, json!({"closed": 4000}), "and closes a socket that stays silent");
    let mut ddp = Ddp::connect(&server.url).await;
    assert_eq!(ddp.recv_raw().await, json!({"msg": "ping"}));
    ddp.send(json!({"msg": "pong"})).await;
    assert_eq!(ddp.recv_raw().await, json!({"msg": "ping"}), "an answer keeps the socket open");
}

#[tokio::test]
async fn shutdown_asks_sockets_to_reconnect() {
    let server = TestServer::start().await;
    let mut ddp = Ddp::connect(&server.url).await;
    server.shutdown();
    assert_eq!(ddp.recv_raw().await, json!({"closed": 1012}));
}
