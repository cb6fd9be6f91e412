//! Topology tests: distributed mode with every role a separate process (the `apogee` binary),
//! NATS of the test's own and the machine's Redis. What one client does through one gateway
//! must reach clients on another; killed processes must not lose acknowledged writes.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use apogee_tests::assert_error;
use apogee_tests::cluster::Cluster;
use apogee_tests::ddp::Ddp;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_apogee");

fn is_stream(f: &Value) -> bool {
    f["msg"] == "changed"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_typing_and_presence_cross_gateways() {
    let cluster = Cluster::start(BIN, 2).await;
    let alice = cluster.user(0, "alice").await;
    let bob = cluster.user(1, "bob").await;
    alice.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    bob.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;

    let mut alice_ws = Ddp::login(&cluster.gateway_url(0), alice.token()).await;
    assert_eq!(alice_ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    assert_eq!(
        alice_ws.sub("stream-notify-room", json!(["GENERAL/user-activity", false])).await["msg"],
        "ready"
    );
    assert_eq!(alice_ws.sub("stream-notify-logged", json!(["user-status", false])).await["msg"], "ready");

    // A message posted through gateway 1 reaches the socket on gateway 0.
    let sent = Instant::now();
    let posted =
        bob.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "across gateways"})).await;
    let event = alice_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-room-messages").await;
    let latency = sent.elapsed();
    assert_eq!(event["fields"]["args"][0]["_id"], posted["message"]["_id"]);
    assert_eq!(event["fields"]["args"][0]["msg"], "across gateways");
    eprintln!("post on gateway 1 -> event on gateway 0: {latency:?}");

    // `Messaging.SendMessage` has typed messages: a client-chosen id, unicode and what Rocket.Chat
    // keeps beside the text arrive whole, and a refusal comes back as Rocket.Chat words it.
    let attachment = json!({"title": "résumé 🚀", "text": "ünï", "fields": [{"short": true, "value": 1.5}]});
    let message =
        json!({"_id": "typedRpc0001", "rid": "GENERAL", "msg": "typed 👋", "attachments": [attachment]});
    let typed = bob.ok_post("chat.sendMessage", json!({ "message": message })).await;
    assert_eq!(typed["message"]["_id"], "typedRpc0001");
    assert_eq!(typed["message"]["attachments"], json!([attachment]));
    let event =
        alice_ws.recv_where(|f| is_stream(f) && f["fields"]["args"][0]["_id"] == "typedRpc0001").await;
    assert_eq!(event["fields"]["args"][0]["msg"], "typed 👋");
    assert_eq!(event["fields"]["args"][0]["attachments"], json!([attachment]));
    let again = json!({"message": {"_id": "typedRpc0001", "rid": "GENERAL", "msg": "again"}});
    assert_error(&bob.post("chat.sendMessage", again).await, 400, Some("error-duplicate-message"));

    // Typing on gateway 1 reaches gateway 0.
    let mut bob_ws = Ddp::login(&cluster.gateway_url(1), bob.token()).await;
    let typed =
        bob_ws.call("stream-notify-room", json!(["GENERAL/user-activity", "bob", ["user-typing"], {}])).await;
    assert!(typed.get("error").is_none(), "{typed}");
    let typing = alice_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-notify-room").await;
    assert_eq!(typing["fields"]["args"], json!(["bob", ["user-typing"]]));

    // Bob's status change on gateway 1 reaches the watcher on gateway 0.
    bob_ws.call("setUserStatus", json!(["busy", "Focus"])).await;
    let status = alice_ws
        .recv_where(|f| {
            is_stream(f)
                && f["collection"] == "stream-notify-logged"
                && f["fields"]["args"][0][1] == "bob"
                && f["fields"]["args"][0][2] == 3
        })
        .await;
    assert_eq!(status["fields"]["args"][0][3], "Focus");
}

/// NATS's count of messages it delivered to each gateway's connection, by connection name.
async fn deliveries_by_gateway(cluster: &Cluster) -> HashMap<String, u64> {
    cluster
        .nats_connections()
        .await
        .into_iter()
        .filter_map(|c| {
            let name = c["name"].as_str()?.to_owned();
            name.contains("gateway").then(|| (name, c["out_msgs"].as_u64().unwrap_or(0)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_interested_gateway_receives_a_rooms_events() {
    let cluster = Cluster::start(BIN, 4).await;
    let admin = cluster.admin(3).await;
    let carol = cluster.user(0, "carol").await;
    let room = admin.ok_post("groups.create", json!({"name": "quiet-room", "members": ["carol"]})).await;
    let rid = room["group"]["_id"].as_str().unwrap().to_owned();
    // Carol's only socket is on gateway 0; nobody of the room is connected elsewhere.
    let mut carol_ws = Ddp::login(&cluster.gateway_url(0), carol.token()).await;
    assert_eq!(carol_ws.sub("stream-room-messages", json!([rid, false])).await["msg"], "ready");
    // Let the presence change of the login settle before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = deliveries_by_gateway(&cluster).await;
    assert_eq!(before.len(), 4, "one NATS connection per gateway, named: {before:?}");
    const N: u64 = 20;
    for i in 0..N {
        // Posted over REST through gateway 3 (the admin has no socket anywhere).
        admin.ok_post("chat.postMessage", json!({"roomId": rid, "text": format!("m{i}")})).await;
    }
    let mut seen = 0;
    while seen < N {
        let f = carol_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-room-messages").await;
        assert_eq!(f["fields"]["args"][0]["rid"], rid.as_str());
        seen += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = deliveries_by_gateway(&cluster).await;
    let delta: HashMap<&str, u64> =
        after.iter().map(|(name, n)| (name.as_str(), n - before.get(name).copied().unwrap_or(0))).collect();
    eprintln!("NATS deliveries per gateway while posting {N} messages: {delta:?}");
    let interested: Vec<_> = delta.iter().filter(|(name, _)| name.ends_with("gateway0")).collect();
    assert_eq!(interested.len(), 1, "{delta:?}");
    // One room event per message (plus at most one sidebar event per message for carol's
    // subscription, which gateway 0 also follows); nothing for the others.
    assert!(*interested[0].1 >= N && *interested[0].1 <= 2 * N, "{delta:?}");
    for (name, n) in &delta {
        if !name.ends_with("gateway0") {
            assert_eq!(*n, 0, "{name} received room traffic nobody on it needs: {delta:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateways_users_go_offline_and_reconnect_elsewhere_without_loss() {
    let mut cluster = Cluster::start(BIN, 2).await;
    let dave = cluster.user(0, "dave").await;
    let watcher = cluster.user(1, "watcher").await;
    dave.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let mut dave_ws = Ddp::login(&cluster.gateway_url(0), dave.token()).await;
    assert_eq!(dave_ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    let online = watcher.ok_get("users.info?username=dave").await;
    assert_eq!(online["user"]["status"], "online");
    let first =
        watcher.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "before the crash"})).await;
    let got = dave_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-room-messages").await;
    let last_seen = got["fields"]["args"][0]["ts"]["$date"].as_i64().unwrap();
    assert_eq!(got["fields"]["args"][0]["_id"], first["message"]["_id"]);

    cluster.kill_gateway(0);
    let killed_at = Instant::now();
    // Messages posted while dave is disconnected.
    let mut missed = HashSet::new();
    for i in 0..5 {
        let m = watcher
            .ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": format!("missed {i}")}))
            .await;
        missed.insert(m["message"]["_id"].as_str().unwrap().to_owned());
    }
    // Presence notices the vanished gateway within its lease (3 s in tests, 30 s by default).
    loop {
        let info = watcher.ok_get("users.info?username=dave").await;
        if info["user"]["status"] == "offline" {
            break;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(60), "dave still {}", info["user"]["status"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("offline {:?} after the gateway was killed", killed_at.elapsed());

    // Dave's client reconnects to the other gateway, resumes its session, and catches up.
    let mut again = Ddp::login(&cluster.gateway_url(1), dave.token()).await;
    let caught = again.call("loadMissedMessages", json!(["GENERAL", {"$date": last_seen}])).await;
    let ids: HashSet<String> =
        caught["result"].as_array().unwrap().iter().map(|m| m["_id"].as_str().unwrap().to_owned()).collect();
    assert!(missed.is_subset(&ids), "missed {missed:?}, caught up {ids:?}");
    let back = watcher.ok_get("users.info?username=dave").await;
    assert_eq!(back["user"]["status"], "online");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_posts_survive_a_killed_messaging_role() {
    let mut cluster = Cluster::start(BIN, 1).await;
    let erin = cluster.user(0, "erin").await;
    erin.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let poster = {
        let erin = erin.clone();
        tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0);
            for i in 0..400 {
                let (status, body) = erin
                    .post("chat.postMessage", json!({"roomId": "GENERAL", "text": format!("n{i}")}))
                    .await;
                if status == 200 {
                    acked.push(body["message"]["_id"].as_str().unwrap().to_owned());
                } else {
                    // Never silence: a clear Rocket.Chat-style error.
                    assert_eq!(body["success"], false, "{status} {body}");
                    assert!(status == 503 || status == 500, "{status} {body}");
                    refused += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill_messaging();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart_messaging().await;
    let (acked, refused) = poster.await.unwrap();
    eprintln!("{} acknowledged, {refused} refused while messaging was down", acked.len());
    assert!(refused > 0, "the crash fell between posts: the test proved nothing");
    let mut lost = Vec::new();
    for id in &acked {
        let (status, _) = erin.get(&format!("chat.getMessage?msgId={id}")).await;
        if status != 200 {
            lost.push(id);
        }
    }
    assert!(lost.is_empty(), "{} of {} acknowledged messages lost: {lost:?}", lost.len(), acked.len());
    // And the system works again without restarting anything else.
    erin.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "after the restart"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_delivery_resumes_after_nats_comes_back() {
    let mut cluster = Cluster::start(BIN, 2).await;
    let frank = cluster.user(0, "frank").await;
    let grace = cluster.user(1, "grace").await;
    for u in [&frank, &grace] {
        u.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    }
    let mut frank_ws = Ddp::login(&cluster.gateway_url(0), frank.token()).await;
    assert_eq!(frank_ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");

    cluster.stop_nats();
    // Posting still persists (or fails clearly) while the bus is away.
    let (status, body) =
        grace.post("chat.postMessage", json!({"roomId": "GENERAL", "text": "while NATS is down"})).await;
    assert!(status == 200 || body["success"] == false, "{status} {body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_nats().await;
    cluster.wait_gateway_ready(0).await;
    cluster.wait_gateway_ready(1).await;

    // Live delivery resumes without restarting any role.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = grace
            .ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "after NATS is back"}))
            .await;
        let id = m["message"]["_id"].clone();
        if frank_ws
            .arrives_within(Duration::from_secs(2), |f| {
                is_stream(f)
                    && f["collection"] == "stream-room-messages"
                    && f["fields"]["args"][0]["_id"] == id
            })
            .await
        {
            break;
        }
        assert!(Instant::now() < deadline, "live delivery did not resume\n{}", cluster.logs());
    }
    if status == 200 {
        let history = frank.ok_get("channels.history?roomId=GENERAL&count=50").await;
        assert!(history["messages"].as_array().unwrap().iter().any(|m| m["_id"] == body["message"]["_id"]));
    }
}

/// Gateways cache validated tokens in Redis and messaging caches auth's settings: a logout, a
/// deactivation or a setting change made through one process holds on every other at once (the
/// caches are evicted by the change, not left to expire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logouts_deactivations_and_settings_hold_across_the_caches() {
    let cluster = Cluster::start(BIN, 2).await;
    let admin = cluster.admin(0).await;
    let alice = cluster.user(0, "alice").await;
    let bob = cluster.user(1, "bob").await;
    let (alice_0, alice_1) = (alice.clone(), alice.at(&cluster.gateway_url(1)));
    let (bob_0, bob_1) = (bob.at(&cluster.gateway_url(0)), bob.clone());
    // Both gateways validate (and so cache) both tokens.
    for client in [&alice_0, &alice_1, &bob_0, &bob_1] {
        assert_eq!(client.get("me").await.0, 200);
    }

    // Logged out through gateway 1, the token fails on gateway 0 at once.
    alice_1.ok_post("logout", json!({})).await;
    assert_eq!(alice_0.get("me").await.0, 401);
    assert_eq!(alice_1.get("me").await.0, 401);

    // Deactivated through gateway 0: bob's cached token fails on gateway 1 at once.
    admin.ok_post("users.setActiveStatus", json!({"userId": bob.user_id(), "activeStatus": false})).await;
    assert_eq!(bob_1.get("me").await.0, 401);
    assert_eq!(bob_0.get("me").await.0, 401);

    // Messaging reads Message_MaxAllowedSize on every post (and caches it); a change through the
    // admin must apply well within the cache's 10 s lifetime: the change event evicts it.
    let carol = cluster.user(1, "carol").await;
    carol.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let text = "twenty characters!!!";
    carol.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": text})).await;
    admin.ok_post("settings/Message_MaxAllowedSize", json!({"value": 10})).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, body) = carol.post("chat.postMessage", json!({"roomId": "GENERAL", "text": text})).await;
        if status == 400 {
            assert_eq!(body["errorType"], "error-message-size-exceeded", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the new limit did not reach messaging: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin.ok_post("settings/Message_MaxAllowedSize", json!({"value": 5000})).await;
}

/// A body no sniffer takes for anything but bytes, `len` long.
fn file_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_cross_gateways_through_the_files_role() {
    use reqwest::multipart::{Form, Part};
    use reqwest::{Method, StatusCode};
    let mut cluster = Cluster::start(BIN, 2).await;
    let hana = cluster.user(0, "hana").await;
    let ivan = cluster.user(1, "ivan").await;
    let judy = cluster.user(1, "judy").await;
    let room = hana.ok_post("groups.create", json!({"name": "shared-files", "members": ["ivan"]})).await;
    let rid = room["group"]["_id"].as_str().unwrap().to_owned();
    let mut ivan_ws = Ddp::login(&cluster.gateway_url(1), ivan.token()).await;
    assert_eq!(ivan_ws.sub("stream-room-messages", json!([rid, false])).await["msg"], "ready");

    // Upload 3 MB through gateway 0 (rooms.media + rooms.mediaConfirm).
    let data = file_bytes(3 * 1024 * 1024 + 11);
    let form = Form::new().part(
        "file",
        Part::bytes(data.clone()).file_name("data set.bin").mime_str("application/octet-stream").unwrap(),
    );
    let (status, body) = hana.post_multipart(&format!("rooms.media/{rid}"), form).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    let file_id = body["file"]["_id"].as_str().unwrap().to_owned();
    let url = format!("/file-upload/{file_id}/data%20set.bin");
    assert_eq!(body["file"]["url"], url.as_str());
    let confirmed =
        hana.ok_post(&format!("rooms.mediaConfirm/{rid}/{file_id}"), json!({"msg": "the numbers"})).await;
    assert_eq!(confirmed["message"]["file"]["_id"], file_id.as_str());
    assert_eq!(confirmed["message"]["file"]["size"], data.len());

    // The file message reaches the member's socket on gateway 1.
    let event = ivan_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-room-messages").await;
    let message = &event["fields"]["args"][0];
    assert_eq!(message["_id"], confirmed["message"]["_id"]);
    assert_eq!(message["msg"], "the numbers");
    assert_eq!(message["attachments"][0]["title_link"], url.as_str());

    // The member downloads it through gateway 1: whole, and a range in the middle.
    let resp = ivan.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], data.len().to_string().as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    let resp = ivan.request(Method::GET, &url).header("Range", "bytes=1000000-2000999").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], format!("bytes 1000000-2000999/{}", data.len()).as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[1_000_000..2_001_000]);
    // `groups.files` through gateway 1 lists it.
    let listed = ivan.ok_get(&format!("groups.files?roomId={rid}")).await;
    assert_eq!(listed["files"][0]["_id"], file_id.as_str());

    // A non-member of the private room is refused, on either gateway.
    assert_eq!(judy.request(Method::GET, &url).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let judy0 = cluster.anon(0).login("judy", "pw").await;
    assert_eq!(judy0.request(Method::GET, &url).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let form = Form::new().part("file", Part::bytes(b"nope".to_vec()).file_name("n.txt"));
    let (status, body) = judy.post_multipart(&format!("rooms.media/{rid}"), form).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // An avatar set through gateway 0 (files role → auth role) is announced on gateway 1.
    assert_eq!(ivan_ws.sub("stream-notify-logged", json!(["updateAvatar", false])).await["msg"], "ready");
    // A 4×4 red PNG.
    let png: Vec<u8> = vec![
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0, 0, 0,
        38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 71, 12, 196, 113, 0,
        174, 147, 15, 241, 208, 95, 35, 158, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
    ];
    let form = Form::new().part("image", Part::bytes(png).file_name("me.png").mime_str("image/png").unwrap());
    let (status, body) = hana.post_multipart("users.setAvatar", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = ivan_ws.recv_where(|f| is_stream(f) && f["fields"]["eventName"] == "updateAvatar").await;
    let etag = event["fields"]["args"][0]["etag"].as_str().unwrap().to_owned();
    assert_eq!(event["fields"]["args"][0]["username"], "hana");
    assert_eq!(ivan.ok_get("users.info?username=hana").await["user"]["avatarETag"], etag.as_str());
    let resp = ivan.request(Method::GET, "/avatar/hana").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");

    // The files role goes down: file routes answer 503, the gateways stay up and ready.
    cluster.kill_files();
    let form = Form::new().part("file", Part::bytes(b"later".to_vec()).file_name("later.txt"));
    let (status, body) = hana.post_multipart(&format!("rooms.media/{rid}"), form).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["errorType"], "error-service-unavailable", "{body}");
    let (status, body) = ivan.get(&format!("groups.files?roomId={rid}")).await;
    assert_eq!(
        (status, &body["errorType"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("error-service-unavailable"))
    );
    assert_eq!(
        ivan.request(Method::GET, &url).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    cluster.wait_gateway_ready(0).await;
    cluster.wait_gateway_ready(1).await;
    hana.ok_post("chat.postMessage", json!({"roomId": rid, "text": "chat goes on"})).await;

    // Back up: the same file again, without restarting any other role.
    cluster.restart_files().await;
    let resp = ivan.request(Method::GET, &url).header("Range", "bytes=-7").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[data.len() - 7..]);
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set on every role, one message's trace spans processes:
/// the gateway's HTTP span → its gRPC client span → the messaging role's server span → the bus
/// publish (NATS header) → the fan-out on the other gateway, all under the client's trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_trace_crosses_processes() {
    use apogee_tests::otlp::{Collector, Span};
    let collector = Collector::start().await;
    let cluster = Cluster::start_with_env(
        BIN,
        2,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let alice = cluster.user(0, "alice").await;
    let bob = cluster.user(1, "bob").await;
    alice.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    bob.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let mut alice_ws = Ddp::login(&cluster.gateway_url(0), alice.token()).await;
    assert_eq!(alice_ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let resp = bob
        .request(reqwest::Method::POST, "chat.postMessage")
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&json!({"roomId": "GENERAL", "text": "traced across"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    alice_ws.recv_where(|f| is_stream(f) && f["fields"]["args"][0]["msg"] == "traced across").await;

    let room_fanout = |s: &Span, http_pid: i64| {
        s.kind == 5
            && s.pid != http_pid
            && s.attr("messaging.destination.name").is_some_and(|d| d.starts_with("apogee.room.GENERAL."))
    };
    let spans = collector
        .wait_for("the message's spans from both gateways and messaging", |spans| {
            let t: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
            let Some(http) = t.iter().find(|s| s.kind == 2 && s.service == "apogee-gateway") else {
                return false;
            };
            t.iter().any(|s| room_fanout(s, http.pid))
                && t.iter().any(|s| s.service == "apogee-messaging" && s.kind == 4)
        })
        .await;
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let find = |id: &str| *trace.iter().find(|s| s.span_id == id).unwrap_or_else(|| panic!("no span {id}"));
    let http = trace.iter().find(|s| s.kind == 2 && s.service == "apogee-gateway").unwrap();
    assert_eq!(http.name, "POST /api/v1/chat.postMessage");
    assert_eq!(http.parent.as_deref(), Some("b7ad6b7169203331"));

    // Gateway 0's fan-out continues the messaging role's publish, which runs inside the served
    // RPC, whose parent is gateway 1's client span, inside the HTTP request.
    let fanout = trace.iter().find(|s| room_fanout(s, http.pid)).unwrap();
    assert_eq!(fanout.service, "apogee-gateway");
    let producer = find(fanout.parent.as_deref().unwrap());
    assert_eq!((producer.service.as_str(), producer.kind), ("apogee-messaging", 4));
    let mut up = producer;
    while up.kind != 2 {
        up = find(up.parent.as_deref().unwrap());
    }
    assert_eq!(up.service, "apogee-messaging", "the RPC's server span");
    assert_eq!(up.attr("rpc.system").as_deref(), Some("grpc"));
    let client = find(up.parent.as_deref().unwrap());
    assert_eq!((client.service.as_str(), client.kind, client.pid), ("apogee-gateway", 3, http.pid));
    let mut up = client;
    while up.span_id != http.span_id {
        up = find(up.parent.as_deref().unwrap());
    }
    let pids: HashSet<i64> = trace.iter().map(|s| s.pid).collect();
    assert!(pids.len() >= 3, "two gateways and messaging: {pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_role_changes_cross_the_roles() {
    let cluster = Cluster::start(BIN, 2).await;
    let admin = cluster.admin(0).await;
    let bob = cluster.user(1, "bob").await;
    bob.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let mut bob_ws = Ddp::login(&cluster.gateway_url(1), bob.token()).await;
    assert_eq!(bob_ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    assert_eq!(bob_ws.sub("stream-notify-logged", json!(["roles-change", false])).await["msg"], "ready");

    // Created through gateway 0 (auth over gRPC), called through gateway 1, heard on gateway 1.
    let body = json!({"type": "webhook-incoming", "name": "CI", "enabled": true, "username": "rocket.cat",
                      "scriptEnabled": false, "channel": "#general"});
    let created = admin.ok_post("integrations.create", body).await["integration"].clone();
    let url = format!(
        "{}/hooks/{}/{}",
        cluster.gateway_url(1),
        created["_id"].as_str().unwrap(),
        created["token"].as_str().unwrap()
    );
    let resp = reqwest::Client::new().post(&url).json(&json!({"text": "deployed"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let event = bob_ws
        .recv_where(|f| {
            is_stream(f)
                && f["collection"] == "stream-room-messages"
                && f["fields"]["args"][0]["msg"] == "deployed"
        })
        .await;
    assert_eq!(event["fields"]["args"][0]["bot"]["i"], created["_id"]);

    // bob's token is cached on gateway 1; a role given through gateway 0 applies there at once.
    assert_eq!(bob.get("roles.getUsersInRole?role=admin").await.0, 400);
    admin.ok_post("roles.addUserToRole", json!({"roleId": "admin", "username": "bob"})).await;
    bob.ok_get("roles.getUsersInRole?role=admin").await;
    let change = bob_ws.recv_where(|f| is_stream(f) && f["collection"] == "stream-notify-logged").await;
    assert_eq!(change["fields"]["args"][0]["u"]["username"], "bob");
}
