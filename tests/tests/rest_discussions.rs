//! Discussions: `rooms.createDiscussion` (and the DDP method), `rooms.getDiscussions`,
//! `chat.getDiscussions`, with `prid`, the `discussion-created` message and its counters.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn create_list_and_count_discussions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let rid = alice.ok_post("channels.create", json!({"name": "parent", "members": ["bob"]})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pmid = bob.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": "let us talk"}})).await
        ["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!([rid, false])).await["msg"], "ready");
    let created = alice
        .ok_post(
            "rooms.createDiscussion",
            json!({"prid": rid, "pmid": pmid, "t_name": "Side talk", "reply": "first words", "users": ["carol", ""]}),
        )
        .await;
    let d = &created["discussion"];
    let drid = d["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (d["prid"].as_str(), d["fname"].as_str(), d["t"].as_str()),
        (Some(rid.as_str()), Some("Side talk"), Some("c"))
    );
    assert_eq!(d["rid"], drid.as_str());
    assert_eq!(d["topic"], "parent");
    assert_eq!(d["description"], "let us talk");

    // The parent room announces it.
    let announced = ws.event("stream-room-messages", &rid).await;
    let m = &announced["fields"]["args"][0];
    assert_eq!(
        (m["t"].as_str(), m["msg"].as_str(), m["drid"].as_str()),
        (Some("discussion-created"), Some("Side talk"), Some(drid.as_str()))
    );
    // The first reply counts on it.
    let counted = ws.event("stream-room-messages", &rid).await;
    assert_eq!(counted["fields"]["args"][0]["dcount"], 1);
    assert!(counted["fields"]["args"][0]["dlm"]["$date"].is_i64(), "{counted}");

    // Members: the creator (owner), the author of the message, the invited users.
    let members = alice.ok_get(&format!("channels.members?roomId={drid}")).await;
    let mut names: Vec<&str> =
        members["members"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let history = carol.ok_get(&format!("channels.history?roomId={drid}")).await;
    assert_eq!(history["messages"][0]["msg"], "first words");

    let listed = bob.ok_get(&format!("rooms.getDiscussions?roomId={rid}")).await;
    assert_eq!(
        (listed["total"].as_u64(), listed["discussions"][0]["_id"].as_str()),
        (Some(1), Some(drid.as_str()))
    );
    let by_name = bob.ok_get("rooms.getDiscussions?roomName=parent").await;
    assert_eq!(by_name["total"], 1);
    let msgs = bob.ok_get(&format!("chat.getDiscussions?roomId={rid}&text=side")).await;
    assert_eq!(
        (msgs["total"].as_u64(), msgs["messages"][0]["drid"].as_str()),
        (Some(1), Some(drid.as_str()))
    );
    assert_eq!(msgs["messages"][0]["dcount"], 1);
    assert_eq!(bob.ok_get(&format!("chat.getDiscussions?roomId={rid}&text=nothing")).await["total"], 0);

    // Posting in the discussion keeps the parent's message current.
    carol.ok_post("chat.sendMessage", json!({"message": {"rid": drid, "msg": "me too"}})).await;
    let msgs = bob.ok_get(&format!("chat.getDiscussions?roomId={rid}")).await;
    assert_eq!(msgs["messages"][0]["dcount"], 2);

    // Over DDP, a private parent gives a private discussion.
    let gid =
        alice.ok_post("groups.create", json!({"name": "closed", "members": ["bob"]})).await["group"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let made = ws.call("createDiscussion", json!([{"prid": gid, "t_name": "Private side"}])).await;
    assert_eq!(
        (made["result"]["t"].as_str(), made["result"]["prid"].as_str()),
        (Some("p"), Some(gid.as_str()))
    );
    let nested = ws.call("createDiscussion", json!([{"prid": drid, "t_name": "deeper"}])).await;
    assert_eq!(nested["error"]["error"], "error-nested-discussion");
}

#[tokio::test]
async fn discussion_refusals_change_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let gid = alice.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        alice.post("rooms.createDiscussion", json!({})).await.1["error"],
        "Body parameter \"prid\" is required."
    );
    assert_eq!(
        alice.post("rooms.createDiscussion", json!({"prid": gid})).await.1["error"],
        "Body parameter \"t_name\" is required."
    );
    let bad_users =
        alice.post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x", "users": "bob"})).await;
    assert_eq!(bad_users.1["error"], "Body parameter \"users\" must be an array.");
    assert_error(
        &alice.post("rooms.createDiscussion", json!({"prid": "nope", "t_name": "x"})).await,
        400,
        Some("error-invalid-room"),
    );
    assert_error(
        &alice.post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x", "pmid": "nope"})).await,
        400,
        Some("error-invalid-message"),
    );
    assert_error(
        &bob.post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x"})).await,
        400,
        Some("error-not-allowed"),
    );
    let encrypted = alice
        .post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x", "encrypted": true, "reply": "hi"}))
        .await;
    assert_error(&encrypted, 400, Some("error-invalid-arguments"));

    admin.ok_post("settings/Discussion_enabled", json!({"value": false})).await;
    assert_error(
        &alice.post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x"})).await,
        400,
        Some("error-action-not-allowed"),
    );
    admin.ok_post("settings/Discussion_enabled", json!({"value": true})).await;
    admin.ok_post("permissions.update", json!({"permissions": [{"_id": "start-discussion", "roles": []}, {"_id": "start-discussion-other-user", "roles": []}]})).await;
    assert_error(
        &alice.post("rooms.createDiscussion", json!({"prid": gid, "t_name": "x"})).await,
        400,
        Some("error-action-not-allowed"),
    );

    assert_eq!(
        alice.ok_get(&format!("rooms.getDiscussions?roomId={gid}")).await["total"],
        0,
        "nothing was created"
    );
    let hidden = bob.get(&format!("rooms.getDiscussions?roomId={gid}")).await;
    assert_error(&hidden, 400, Some("not-allowed"));
    assert_eq!(hidden.1["error"], "Not Allowed");
    assert_error(&bob.get("rooms.getDiscussions").await, 400, Some("error-roomid-param-not-provided"));
    assert_error(&bob.get("chat.getDiscussions").await, 400, Some("error-invalid-params"));
    let denied = bob.get(&format!("chat.getDiscussions?roomId={gid}")).await;
    assert_eq!(denied.1["error"], "error-not-allowed");
}
