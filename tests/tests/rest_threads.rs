//! Threads over REST and DDP (`tmid` replies, `chat.getThreadsList` … `chat.unfollowMessage`,
//! `tunread`), and `chat.getDeletedMessages`, `chat.ignoreUser`, `chat.reportMessage`.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

async fn send(client: &Client, rid: &str, text: &str, tmid: Option<&str>) -> String {
    let mut message = json!({"rid": rid, "msg": text});
    if let Some(tmid) = tmid {
        message["tmid"] = json!(tmid);
    }
    client.ok_post("chat.sendMessage", json!({ "message": message })).await["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn channel(owner: &Client, name: &str, members: &[&str]) -> String {
    owner.ok_post("channels.create", json!({"name": name, "members": members})).await["channel"]["_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sub(client: &Client, rid: &str) -> Value {
    client.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].clone()
}

fn ids<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list[key].as_array().unwrap().iter().map(|m| m["_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_reply_updates_its_root_and_its_followers_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let rid = channel(&alice, "threads", &["bob", "carol"]).await;
    let root = send(&alice, &rid, "a question", None).await;
    carol.ok_post("subscriptions.read", json!({"rid": rid})).await;

    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!([rid, false])).await["msg"], "ready");
    let reply = send(&bob, &rid, "an answer", Some(&root)).await;

    let added = ws.event("stream-room-messages", &rid).await;
    assert_eq!(added["fields"]["args"][0]["_id"], reply.as_str());
    assert_eq!(added["fields"]["args"][0]["tmid"], root.as_str());
    let changed = ws.event("stream-room-messages", &rid).await;
    let live_root = &changed["fields"]["args"][0];
    assert_eq!((live_root["_id"].as_str(), live_root["tcount"].as_u64()), (Some(root.as_str()), Some(1)));
    assert!(live_root["tlm"]["$date"].is_i64(), "{live_root}");

    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["tcount"], 1);
    assert!(m["tlm"].as_str().unwrap().ends_with('Z'), "{m}");
    assert_eq!(m["replies"], json!([alice.user_id(), bob.user_id()]));

    // The root's author follows: the thread is unread for her; the reply is not room-unread.
    let a = sub(&alice, &rid).await;
    assert_eq!(a["tunread"], json!([root]));
    assert!(a.get("tunreadUser").is_none(), "{a}");
    let c = sub(&carol, &rid).await;
    assert!(c.get("tunread").is_none(), "carol does not follow: {c}");
    assert_eq!(c["unread"], 0, "a thread reply is not room-unread: {c}");

    // Shown in the room, a reply counts as unread there.
    bob.ok_post(
        "chat.sendMessage",
        json!({"message": {"rid": rid, "msg": "also here", "tmid": root, "tshow": true}}),
    )
    .await;
    assert_eq!(sub(&carol, &rid).await["unread"], 1);

    // A mention in a thread makes the mentioned user follow, with a user-mention thread unread.
    send(&bob, &rid, "@carol what do you think?", Some(&reply)).await;
    let c = sub(&carol, &rid).await;
    assert_eq!((c["tunread"].clone(), c["tunreadUser"].clone()), (json!([root]), json!([root])));
    assert_eq!(c["userMentions"], 0, "thread mentions are counted per thread: {c}");
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["tcount"], 3, "a reply to a reply joins the root's thread");
    assert_eq!(m["replies"], json!([alice.user_id(), bob.user_id(), carol.user_id()]));

    // subscriptions.read clears threads only when asked to.
    alice.ok_post("subscriptions.read", json!({"rid": rid, "readThreads": false})).await;
    assert_eq!(sub(&alice, &rid).await["tunread"], json!([root]));
    alice.ok_post("subscriptions.read", json!({"rid": rid, "readThreads": true})).await;
    assert!(sub(&alice, &rid).await.get("tunread").is_none());
    let bad = alice.post("subscriptions.read", json!({"rid": rid, "readThreads": "yes"})).await;
    assert_error(&bad, 400, Some("invalid-params"));

    // Deleting a reply lowers the count.
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": reply})).await;
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["tcount"], 2);
}

#[tokio::test]
async fn thread_listings_syncs_and_follows() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let rid = channel(&alice, "listings", &["bob", "carol"]).await;
    let first = send(&alice, &rid, "first topic", None).await;
    let second = send(&bob, &rid, "second topic", None).await;
    send(&alice, &rid, "not a thread", None).await;
    let since = "2000-01-01T00:00:00.000Z";
    let r1 = send(&bob, &rid, "reply one", Some(&first)).await;
    send(&carol, &rid, "reply two", Some(&second)).await;

    // All threads, latest reply first, with totals and paging.
    let all = alice.ok_get(&format!("chat.getThreadsList?rid={rid}")).await;
    assert_eq!(ids(&all, "threads"), [second.as_str(), first.as_str()]);
    assert_eq!(
        (all["count"].as_u64(), all["offset"].as_u64(), all["total"].as_u64()),
        (Some(2), Some(0), Some(2))
    );
    let paged = alice.ok_get(&format!("chat.getThreadsList?rid={rid}&count=1&offset=1")).await;
    assert_eq!((ids(&paged, "threads"), paged["total"].as_u64()), (vec![first.as_str()], Some(2)));
    let text = alice.ok_get(&format!("chat.getThreadsList?rid={rid}&text=SECOND")).await;
    assert_eq!(ids(&text, "threads"), [second.as_str()]);
    let following = alice.ok_get(&format!("chat.getThreadsList?rid={rid}&type=following")).await;
    assert_eq!(ids(&following, "threads"), [first.as_str()]);
    let unread = bob.ok_get(&format!("chat.getThreadsList?rid={rid}&type=unread")).await;
    assert_eq!(ids(&unread, "threads"), [second.as_str()]);

    let replies = alice.ok_get(&format!("chat.getThreadMessages?tmid={first}")).await;
    assert_eq!(ids(&replies, "messages"), [r1.as_str()]);
    assert_eq!(replies["total"], 1);

    // Following: carol follows the first thread, is told about the next reply, then unfollows.
    carol.ok_post("chat.followMessage", json!({"mid": r1})).await;
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={first}")).await["message"];
    assert!(m["replies"].as_array().unwrap().contains(&json!(carol.user_id())), "{m}");
    let r3 = send(&bob, &rid, "reply three", Some(&first)).await;
    assert_eq!(sub(&carol, &rid).await["tunread"], json!([first]));
    carol.ok_post("chat.unfollowMessage", json!({"mid": first})).await;
    assert!(sub(&carol, &rid).await.get("tunread").is_none(), "unfollowing reads the thread");
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={first}")).await["message"];
    assert!(!m["replies"].as_array().unwrap().contains(&json!(carol.user_id())), "{m}");

    // Syncs: changes after a date, and removals.
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": r3})).await;
    let synced = alice.ok_get(&format!("chat.syncThreadMessages?tmid={first}&updatedSince={since}")).await;
    assert_eq!(ids(&synced["messages"], "update"), [r1.as_str()]);
    assert_eq!(ids(&synced["messages"], "remove"), [r3.as_str()]);
    let synced = alice.ok_get(&format!("chat.syncThreadsList?rid={rid}&updatedSince={since}")).await;
    let mut roots = ids(&synced["threads"], "update");
    roots.sort();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(roots, expected);
    assert_eq!(synced["threads"]["remove"], json!([]));
    // A thread's root is never removed: Rocket.Chat leaves a `t: rm` placeholder (and keeps
    // the text as a hidden copy), whatever Message_ShowDeletedStatus says.
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": second})).await;
    let synced = alice.ok_get(&format!("chat.syncThreadsList?rid={rid}&updatedSince={since}")).await;
    assert_eq!(synced["threads"]["remove"], json!([]));
    let placeholder = &alice.ok_get(&format!("chat.getMessage?msgId={second}")).await["message"];
    assert_eq!((placeholder["t"].as_str(), placeholder["msg"].as_str()), (Some("rm"), Some("")));
}

#[tokio::test]
async fn thread_routes_refuse_bad_input() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let gid = alice.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = send(&alice, &gid, "private root", None).await;
    send(&alice, &gid, "private reply", Some(&root)).await;

    assert_error(&bob.get(&format!("chat.getThreadsList?rid={gid}")).await, 400, Some("error-not-allowed"));
    assert_error(
        &bob.get(&format!("chat.getThreadMessages?tmid={root}")).await,
        400,
        Some("error-not-allowed"),
    );
    assert_error(
        &bob.get(&format!("chat.syncThreadMessages?tmid={root}&updatedSince=2020-01-01T00:00:00Z")).await,
        400,
        Some("error-not-allowed"),
    );
    assert_error(&bob.post("chat.followMessage", json!({"mid": root})).await, 400, Some("error-not-allowed"));
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["replies"], json!([alice.user_id()]), "a refused follow changes nothing");

    assert_error(&bob.get("chat.getThreadsList").await, 400, Some("invalid-params"));
    assert_error(&bob.get("chat.getThreadMessages").await, 400, Some("error-invalid-params"));
    assert_error(&bob.get("chat.getThreadMessages?tmid=nope").await, 400, Some("error-invalid-message"));
    assert_error(
        &alice.get(&format!("chat.syncThreadsList?rid={gid}")).await,
        400,
        Some("error-updatedSince-param-invalid"),
    );
    assert_error(
        &alice.get(&format!("chat.syncThreadsList?rid={gid}&updatedSince=yesterday")).await,
        400,
        Some("error-updatedSince-param-invalid"),
    );
    assert_error(
        &alice.get("chat.syncThreadsList?updatedSince=2020-01-01").await,
        400,
        Some("error-room-id-param-not-provided"),
    );
    assert_error(
        &alice.post("chat.followMessage", json!({})).await,
        400,
        Some("The required \"mid\" body param is missing."),
    );
    assert_error(
        &alice.post("chat.followMessage", json!({"mid": "nope"})).await,
        400,
        Some("error-invalid-message"),
    );

    admin.ok_post("settings/Threads_enabled", json!({"value": false})).await;
    let off = alice.get(&format!("chat.getThreadsList?rid={gid}")).await;
    assert_error(&off, 400, Some("error-not-allowed"));
    assert_eq!(off.1["error"], "Threads Disabled [error-not-allowed]");
}

#[tokio::test]
async fn ddp_thread_pin_star_and_search_methods() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = channel(&alice, "ddp-threads", &["bob"]).await;
    let root = send(&alice, &rid, "root of it all", None).await;
    let r1 = send(&bob, &rid, "first reply", Some(&root)).await;
    let r2 = send(&bob, &rid, "second reply", Some(&root)).await;
    assert_eq!(sub(&alice, &rid).await["tunread"], json!([root]));

    let mut ws = Ddp::login(&server.url, alice.token()).await;
    let list = ws.call("getThreadsList", json!([{"rid": rid}])).await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1);
    assert_eq!(list["result"][0]["_id"], root.as_str());
    let too_many = ws.call("getThreadsList", json!([{"rid": rid, "limit": 101}])).await;
    assert_eq!(too_many["error"]["error"], "error-not-allowed");

    let thread = ws.call("getThreadMessages", json!([{"tmid": root}])).await;
    let got: Vec<&str> =
        thread["result"].as_array().unwrap().iter().map(|m| m["_id"].as_str().unwrap()).collect();
    assert_eq!(got, [root.as_str(), r2.as_str(), r1.as_str()], "root, then replies newest first");
    assert!(sub(&alice, &rid).await.get("tunread").is_none(), "reading the thread clears it");

    let mut bob_ws = Ddp::login(&server.url, bob.token()).await;
    assert!(bob_ws.call("unfollowMessage", json!([{"mid": root}])).await.get("error").is_none());
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["replies"], json!([alice.user_id()]));
    assert!(bob_ws.call("followMessage", json!([{"mid": r1}])).await.get("error").is_none());
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={root}")).await["message"];
    assert_eq!(m["replies"], json!([alice.user_id(), bob.user_id()]));
    let refused = bob_ws.call("followMessage", json!([{"mid": "nope"}])).await;
    assert_eq!(refused["error"]["error"], "error-invalid-message");

    // Pins and stars: the same rules as REST.
    let refused = bob_ws.call("pinMessage", json!([{"_id": root, "rid": rid}])).await;
    assert!(refused.get("error").is_some(), "{refused}");
    // The room's owner may pin.
    let pinned = ws.call("pinMessage", json!([{"_id": root, "rid": rid}])).await;
    assert_eq!(pinned["result"]["t"], "message_pinned");
    let list = alice.ok_get(&format!("chat.getPinnedMessages?roomId={rid}")).await;
    assert_eq!(ids(&list, "messages"), [root.as_str()]);
    assert_eq!(ws.call("unpinMessage", json!([{"_id": root, "rid": rid}])).await["result"], true);
    assert_eq!(alice.ok_get(&format!("chat.getPinnedMessages?roomId={rid}")).await["total"], 0);

    assert_eq!(
        ws.call("starMessage", json!([{"_id": r1, "rid": rid, "starred": true}])).await["result"],
        true
    );
    let starred = alice.ok_get(&format!("chat.getStarredMessages?roomId={rid}")).await;
    assert_eq!(ids(&starred, "messages"), [r1.as_str()]);
    let bad = ws.call("starMessage", json!([{"_id": r1}])).await;
    assert!(bad.get("error").is_some(), "{bad}");

    let found = ws.call("messageSearch", json!(["reply", rid, 10, 0])).await;
    let docs: Vec<&str> = found["result"]["message"]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["_id"].as_str().unwrap())
        .collect();
    assert_eq!(docs, [r2.as_str(), r1.as_str()]);
    let gid = admin.ok_post("groups.create", json!({"name": "hidden"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ws.call("messageSearch", json!(["reply", gid])).await["result"], false);
    assert_eq!(ws.call("messageSearch", json!(["reply"])).await["result"], json!({"message": {"docs": []}}));
}

#[tokio::test]
async fn deleted_messages_ignore_and_report() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = channel(&alice, "moderated", &["bob"]).await;
    let since = "2000-01-01T00:00:00.000Z";
    let keep = send(&alice, &rid, "stays", None).await;
    let gone = send(&alice, &rid, "goes", None).await;
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": gone})).await;

    let deleted = alice.ok_get(&format!("chat.getDeletedMessages?roomId={rid}&since={since}")).await;
    assert_eq!(deleted["messages"], json!([{"_id": gone}]));
    assert_eq!((deleted["count"].as_u64(), deleted["total"].as_u64()), (Some(1), Some(1)));
    let later =
        alice.ok_get(&format!("chat.getDeletedMessages?roomId={rid}&since=2999-01-01T00:00:00Z")).await;
    assert_eq!(later["total"], 0);
    assert_error(
        &alice.get(&format!("chat.getDeletedMessages?roomId={rid}")).await,
        400,
        Some("The required \"since\" query param is missing."),
    );
    assert_error(
        &alice.get(&format!("chat.getDeletedMessages?roomId={rid}&since=nope")).await,
        400,
        Some("The \"since\" query parameter must be a valid date."),
    );
    assert_error(
        &alice.get("chat.getDeletedMessages?since=2020-01-01").await,
        400,
        Some("The required \"roomId\" query param is missing."),
    );

    // Ignoring: stored on the caller's subscription, both users must be in the room.
    alice.ok_get(&format!("chat.ignoreUser?rid={rid}&userId={}", bob.user_id())).await;
    assert_eq!(sub(&alice, &rid).await["ignored"], json!([bob.user_id()]));
    alice.ok_get(&format!("chat.ignoreUser?rid={rid}&userId={}&ignore=false", bob.user_id())).await;
    assert!(sub(&alice, &rid).await.get("ignored").is_none());
    assert_error(
        &alice.get(&format!("chat.ignoreUser?rid={rid}&userId=nobody")).await,
        400,
        Some("error-invalid-subscription"),
    );
    assert_error(
        &alice.get(&format!("chat.ignoreUser?userId={}", bob.user_id())).await,
        400,
        Some("error-room-id-param-not-provided"),
    );
    assert_error(
        &alice.get(&format!("chat.ignoreUser?rid={rid}")).await,
        400,
        Some("error-user-id-param-not-provided"),
    );

    // Reports: stored; refused for messages one cannot read, as if they did not exist.
    bob.ok_post("chat.reportMessage", json!({"messageId": keep, "description": "rude"})).await;
    let gid = alice.ok_post("groups.create", json!({"name": "closed"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hidden = send(&alice, &gid, "hidden", None).await;
    let refused = bob.post("chat.reportMessage", json!({"messageId": hidden, "description": "x"})).await;
    assert_error(&refused, 400, None);
    assert_eq!(refused.1["error"], "error-invalid-message_id");
    let blank = bob.post("chat.reportMessage", json!({"messageId": keep, "description": "  "})).await;
    assert_eq!(blank.1["error"], "error-invalid-description");
    assert_error(
        &bob.post("chat.reportMessage", json!({"messageId": keep})).await,
        400,
        Some("invalid-params"),
    );
}

#[tokio::test]
async fn show_deleted_status_keeps_a_placeholder() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let rid = channel(&alice, "placeholders", &[]).await;
    let mid = send(&alice, &rid, "regret", None).await;
    admin.ok_post("settings/Message_ShowDeletedStatus", json!({"value": true})).await;
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": mid})).await;
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"];
    assert_eq!((m["t"].as_str(), m["msg"].as_str()), (Some("rm"), Some("")));
    assert_eq!(m["editedBy"]["_id"], alice.user_id());
    let deleted = alice.ok_get(&format!("chat.getDeletedMessages?roomId={rid}&since=2000-01-01")).await;
    assert_eq!(deleted["total"], 0, "nothing was removed");
    let found = alice.ok_get(&format!("chat.search?roomId={rid}&searchText=regret")).await;
    assert_eq!(found["messages"], json!([]));
}

#[tokio::test]
async fn subscriptions_unread_from_a_message_or_the_room() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = channel(&alice, "unreads", &["bob"]).await;
    let empty = bob.post("subscriptions.unread", json!({"roomId": rid})).await;
    assert_error(&empty, 400, Some("error-no-message-for-unread"));

    let first = send(&alice, &rid, "one", None).await;
    send(&alice, &rid, "two", None).await;
    send(&alice, &rid, "three", None).await;
    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    assert_eq!(sub(&bob, &rid).await["unread"], 0);

    bob.ok_post("subscriptions.unread", json!({"firstUnreadMessage": {"_id": first}})).await;
    let s = sub(&bob, &rid).await;
    assert_eq!((s["unread"].as_u64(), s["alert"].as_bool()), (Some(3), Some(true)));
    bob.ok_post("subscriptions.read", json!({"rid": rid})).await;
    bob.ok_post("subscriptions.unread", json!({"roomId": rid})).await;
    assert_eq!(sub(&bob, &rid).await["unread"], 1, "the newest message is unread again");

    // One's own message cannot be the first unread; bad shapes are refused.
    let own = alice.post("subscriptions.unread", json!({"firstUnreadMessage": {"_id": first}})).await;
    assert_error(&own, 400, Some("error-action-not-allowed"));
    assert_error(
        &bob.post("subscriptions.unread", json!({"roomId": 12345})).await,
        400,
        Some("invalid-params"),
    );
    assert_error(&bob.post("subscriptions.unread", json!({})).await, 400, Some("invalid-params"));
    assert_eq!(sub(&alice, &rid).await["unread"], 0, "a refused call changes nothing");
}
