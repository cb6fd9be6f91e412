//! What the server does to a message's content on send and edit, as Rocket.Chat's settings say:
//! edit history (`Message_KeepHistory`), custom fields (`Message_CustomFields*`), the bad-words
//! filter, and the `urls` it finds.
#![allow(clippy::unwrap_used)]

use apogee_store::{MessageStore, SqliteStore};
use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

async fn send(client: &Client, rid: &str, text: &str) -> String {
    client.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": text}})).await["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn texts(messages: &Value) -> Vec<&str> {
    messages.as_array().unwrap().iter().map(|m| m["msg"].as_str().unwrap()).collect()
}

/// The server's store, opened beside it (WAL lets a second connection read what it committed).
fn store(server: &TestServer) -> SqliteStore {
    SqliteStore::open(&server.data_dir().join("apogee.db")).unwrap()
}

#[tokio::test]
async fn keep_history_hides_earlier_versions() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let gid = alice.ok_post("groups.create", json!({"name": "history"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mid = send(&alice, &gid, "first draft").await;
    let start = alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"]["_updatedAt"]
        .as_str()
        .unwrap()
        .to_owned();

    // Off (the default): an edit keeps nothing.
    alice.ok_post("chat.update", json!({"roomId": gid, "msgId": mid, "text": "second draft"})).await;
    assert!(store(&server).hidden_messages(&mid).await.unwrap().is_empty());

    admin.ok_post("settings/Message_KeepHistory", json!({"value": true})).await;
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!([gid, false])).await["msg"], "ready");
    alice.ok_post("chat.update", json!({"roomId": gid, "msgId": mid, "text": "final text"})).await;
    let event = ws.event("stream-room-messages", &gid).await;
    assert_eq!(
        (event["fields"]["args"][0]["_id"].as_str(), event["fields"]["args"][0]["msg"].as_str()),
        (Some(mid.as_str()), Some("final text"))
    );
    // The same text again is no edit at all, so nothing more is kept.
    alice.ok_post("chat.update", json!({"roomId": gid, "msgId": mid, "text": "final text"})).await;

    let kept = store(&server).hidden_messages(&mid).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let copy = &kept[0];
    assert_ne!(copy.id, mid);
    assert_eq!((copy.msg.as_str(), copy.rid.as_str()), ("second draft", gid.as_str()));
    assert_eq!((copy.extra["_hidden"].clone(), copy.extra["parent"].clone()), (json!(true), json!(mid)));
    assert_eq!(copy.edited_by.as_ref().unwrap().username, "alice");

    // No read of the room shows the copy.
    let history = alice.ok_get(&format!("groups.history?roomId={gid}")).await;
    assert_eq!(texts(&history["messages"]), ["final text"]);
    let found = alice.ok_get(&format!("chat.search?roomId={gid}&searchText=draft")).await;
    assert_eq!(texts(&found["messages"]), Vec::<&str>::new());
    let sync = alice.ok_get(&format!("chat.syncMessages?roomId={gid}&lastUpdate={start}")).await;
    assert_eq!(texts(&sync["result"]["updated"]), ["final text"]);
    let copy_id = copy.id.clone();

    // Deleting with history kept and no deleted status: the message is hidden, not destroyed.
    assert_eq!(
        ws.sub("stream-notify-room", json!([format!("{gid}/deleteMessage"), false])).await["msg"],
        "ready"
    );
    alice.ok_post("chat.delete", json!({"roomId": gid, "msgId": mid})).await;
    let gone = ws.event("stream-notify-room", &format!("{gid}/deleteMessage")).await;
    assert_eq!(gone["fields"]["args"], json!([{"_id": mid}]));
    let history = alice.ok_get(&format!("groups.history?roomId={gid}")).await;
    assert_eq!(texts(&history["messages"]), Vec::<&str>::new());
    let kept = store(&server).hidden_messages(&mid).await.unwrap();
    // Both were stamped by the same edit, so their order is not asserted.
    let mut hidden: Vec<(&str, &str)> = kept.iter().map(|m| (m.id.as_str(), m.msg.as_str())).collect();
    hidden.sort_by_key(|(_, text)| *text);
    assert_eq!(hidden, [(mid.as_str(), "final text"), (copy_id.as_str(), "second draft")]);

    // With the deleted status shown, the placeholder stays and the last version is kept.
    admin.ok_post("settings/Message_ShowDeletedStatus", json!({"value": true})).await;
    let other = send(&alice, &gid, "to be removed").await;
    alice.ok_post("chat.delete", json!({"roomId": gid, "msgId": other})).await;
    let placeholder = alice.ok_get(&format!("chat.getMessage?msgId={other}")).await;
    assert_eq!(placeholder["message"]["t"], "rm");
    let kept = store(&server).hidden_messages(&other).await.unwrap();
    assert_eq!(
        texts(&json!(kept.iter().map(|m| json!({"msg": m.msg})).collect::<Vec<_>>())),
        ["to be removed"]
    );
    assert_eq!(kept[0].extra["parent"], json!(other));
}

#[tokio::test]
async fn custom_fields_follow_the_settings() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let mid = send(&alice, "GENERAL", "plain").await;
    let send_with =
        |fields: Value| json!({"message": {"rid": "GENERAL", "msg": "with fields", "customFields": fields}});

    // Disabled (the default): refused everywhere, nothing stored.
    for refused in [
        alice.post("chat.sendMessage", send_with(json!({"field1": "value1"}))).await,
        alice
            .post(
                "chat.postMessage",
                json!({"roomId": "GENERAL", "msg": "x", "customFields": {"field1": "v"}}),
            )
            .await,
        alice
            .post(
                "chat.update",
                json!({"roomId": "GENERAL", "msgId": mid, "text": "changed", "customFields": {"f": 1}}),
            )
            .await,
    ] {
        assert_error(&refused, 400, None);
        assert_eq!(refused.1["error"], "Custom fields not enabled");
    }
    assert_eq!(alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"]["msg"], "plain");
    let not_object = alice
        .post("chat.update", json!({"roomId": "GENERAL", "msgId": mid, "text": "x", "customFields": "low"}))
        .await;
    assert_error(&not_object, 400, Some("invalid-params"));

    admin.ok_post("settings/Message_CustomFields_Enabled", json!({"value": true})).await;
    let schema = json!({"properties": {"priority": {"type": "string", "nullable": false, "enum": ["low", "medium", "high"]}}, "required": ["priority"]});
    admin.ok_post("settings/Message_CustomFields", json!({"value": schema.to_string()})).await;
    for fields in [json!({}), json!({"priority": "urgent"}), json!({"priority": "low", "other": 1})] {
        let refused = alice.post("chat.sendMessage", send_with(fields)).await;
        assert_error(&refused, 400, None);
        assert_eq!(refused.1["error"], "Invalid custom fields");
    }
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    let sent = alice.ok_post("chat.sendMessage", send_with(json!({"priority": "low"}))).await;
    assert_eq!(sent["message"]["customFields"], json!({"priority": "low"}));
    let event = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(event["fields"]["args"][0]["customFields"], json!({"priority": "low"}));
    let posted = alice
        .ok_post(
            "chat.postMessage",
            json!({"roomId": "GENERAL", "msg": "x", "customFields": {"priority": "high"}}),
        )
        .await;
    assert_eq!(posted["message"]["customFields"], json!({"priority": "high"}));
    assert_eq!(
        ws.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["customFields"]["priority"],
        "high"
    );

    let sent_id = sent["message"]["_id"].as_str().unwrap();
    let refused = alice
        .post(
            "chat.update",
            json!({"roomId": "GENERAL", "msgId": sent_id, "text": "with fields", "customFields": {}}),
        )
        .await;
    assert_eq!(refused.1["error"], "Invalid custom fields");
    // Same text but new custom fields is an edit; the fields reach the room's watchers.
    let updated = alice
        .ok_post(
            "chat.update",
            json!({"roomId": "GENERAL", "msgId": sent_id, "text": "with fields", "customFields": {"priority": "medium"}}),
        )
        .await;
    assert_eq!(updated["message"]["customFields"], json!({"priority": "medium"}));
    let event = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(event["fields"]["args"][0]["customFields"], json!({"priority": "medium"}));
    // An edit without custom fields keeps them.
    let kept = alice
        .ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": sent_id, "text": "new text"}))
        .await;
    assert_eq!(kept["message"]["customFields"], json!({"priority": "medium"}));
    let via_ddp = ws
        .call("updateMessage", json!([{"_id": sent_id, "rid": "GENERAL", "msg": "new text", "customFields": {"priority": "nope"}}]))
        .await;
    assert_eq!(via_ddp["error"]["reason"], "Invalid custom fields", "{via_ddp}");
}

#[tokio::test]
async fn bad_words_are_masked_on_send_and_edit() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let untouched = send(&alice, "GENERAL", "you Bitch").await;
    assert_eq!(
        alice.ok_get(&format!("chat.getMessage?msgId={untouched}")).await["message"]["msg"],
        "you Bitch"
    );

    admin.ok_post("settings/Message_AllowBadWordsFilter", json!({"value": true})).await;
    admin.ok_post("settings/Message_BadWordsFilterList", json!({"value": "darn, heck_it"})).await;
    admin.ok_post("settings/Message_BadWordsWhitelist", json!({"value": "hell"})).await;
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    let sent = alice
        .ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "Darn it, HECK_IT! what the hell, damn, bitchy bitch"}}))
        .await;
    // `hell` is on the default list but whitelisted; `heck_it` loses its underscore.
    let masked = "**** it, ******! what the hell, ****, bitchy *****";
    assert_eq!(sent["message"]["msg"], masked);
    assert_eq!(ws.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["msg"], masked);
    let id = sent["message"]["_id"].as_str().unwrap();
    let edited =
        alice.ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": id, "text": "oh darn"})).await;
    assert_eq!(edited["message"]["msg"], "oh ****");
    assert_eq!(ws.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["msg"], "oh ****");
    let found = alice.ok_get("chat.search?roomId=GENERAL&searchText=darn").await;
    assert_eq!(texts(&found["messages"]), Vec::<&str>::new(), "the stored text is the masked one");
}

#[tokio::test]
async fn urls_are_listed_on_send_and_edit() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let sent = alice
        .ok_post(
            "chat.sendMessage",
            json!({"message": {"rid": "GENERAL", "msg": "see https://example.com/a and `http://in.code`"}}),
        )
        .await;
    assert_eq!(sent["message"]["urls"], json!([{"url": "https://example.com/a", "meta": {}}]));
    let id = sent["message"]["_id"].as_str().unwrap();
    let edited =
        alice.ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": id, "text": "no link now"})).await;
    assert!(edited["message"].get("urls").is_none(), "{edited}");
    let unparsed = alice
        .ok_post(
            "chat.sendMessage",
            json!({"message": {"rid": "GENERAL", "msg": "https://x.io", "parseUrls": false}}),
        )
        .await;
    assert!(unparsed["message"].get("urls").is_none(), "{unparsed}");
}

/// Links to messages of this server (`Site_Url` + `?msg=<id>`) become quote attachments on send
/// and on edit, rebuilt each time (a quote attachment the client sent, or an earlier link's, is
/// dropped), only for rooms the sender may read, with the quote chain trimmed to
/// `Message_QuoteChainLimit`.
#[tokio::test]
async fn links_to_messages_become_quote_attachments() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let link = |id: &str| format!("{}/channel/general?msg={id}", server.url);
    let first = send(&admin, "GENERAL", "the original").await;
    let mut ws = Ddp::login(&server.url, alice.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");

    let quoting = alice
        .ok_post(
            "chat.sendMessage",
            json!({"message": {"rid": "GENERAL", "msg": format!("see {}", link(&first))}}),
        )
        .await["message"]
        .clone();
    let quote = &quoting["attachments"][0];
    assert_eq!(quoting["attachments"].as_array().unwrap().len(), 1, "{quoting}");
    assert_eq!(
        (&quote["text"], &quote["message_link"], &quote["author_name"], &quote["attachments"]),
        (&json!("the original"), &json!(link(&first)), &json!("rocketchat.internal.admin.test"), &json!([]))
    );
    assert_eq!(quote["author_icon"], "/avatar/rocketchat.internal.admin.test");
    assert!(quote["ts"].is_string(), "{quote}");
    assert_eq!(quoting["urls"][0]["ignoreParse"], true);
    let event = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(event["fields"]["args"][0]["attachments"][0]["message_link"], link(&first));
    let quoting_id = quoting["_id"].as_str().unwrap().to_owned();

    // A quote of a quote keeps one level at the default chain limit of 2.
    let chained = alice
        .ok_post(
            "chat.sendMessage",
            json!({"message": {"rid": "GENERAL", "msg": format!("{} and {}", link(&quoting_id), link(&first))}}),
        )
        .await["message"]
        .clone();
    let quotes = chained["attachments"].as_array().unwrap();
    assert_eq!(quotes.len(), 2, "{chained}");
    assert_eq!(quotes[0]["message_link"], link(&quoting_id));
    assert_eq!(quotes[0]["attachments"][0]["message_link"], link(&first));
    assert!(quotes[0]["attachments"][0].get("attachments").is_none(), "trimmed: {chained}");
    assert_eq!(quotes[1]["message_link"], link(&first));

    // Editing rebuilds them: another link replaces the quote, no link leaves none.
    let edited = alice
        .ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": quoting_id, "text": format!("now {}", link(chained["_id"].as_str().unwrap()))}))
        .await["message"]
        .clone();
    assert_eq!(edited["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(edited["attachments"][0]["message_link"], link(chained["_id"].as_str().unwrap()));
    let event = ws.event("stream-room-messages", "GENERAL").await;
    let event = if event["fields"]["args"][0]["_id"] == quoting_id.as_str() {
        event
    } else {
        ws.event("stream-room-messages", "GENERAL").await
    };
    assert_eq!(event["fields"]["args"][0]["attachments"].as_array().map(Vec::len), Some(1));
    let erased = alice
        .ok_post("chat.update", json!({"roomId": "GENERAL", "msgId": quoting_id, "text": "no links"}))
        .await["message"]
        .clone();
    assert_eq!(erased["attachments"], json!([]));
    assert!(erased.get("urls").is_none(), "{erased}");

    // No quote of a room the sender cannot read, of a message that does not exist, or of
    // another site; a quote attachment the client sent is dropped, other attachments stay.
    let secret = admin.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hidden = send(&admin, &secret, "for admins").await;
    let text = format!("{} {} https://elsewhere.example/x?msg={first}", link(&hidden), link("nope"));
    let plain = alice
        .ok_post(
            "chat.postMessage",
            json!({"roomId": "GENERAL", "text": text, "attachments": [
                {"text": "forged", "message_link": "https://google.com"},
                {"title": "kept", "text": "a card"},
            ]}),
        )
        .await["message"]
        .clone();
    assert_eq!(plain["attachments"], json!([{"title": "kept", "text": "a card"}]), "{plain}");
    assert!(plain["urls"].as_array().unwrap().iter().all(|u| u.get("ignoreParse").is_none()));
    // Refused edits change nothing.
    assert_error(
        &server
            .user("bob")
            .await
            .post("chat.update", json!({"roomId": "GENERAL", "msgId": quoting_id, "text": link(&first)}))
            .await,
        400,
        Some("error-action-not-allowed"),
    );
    let stored = alice.ok_get(&format!("chat.getMessage?msgId={quoting_id}")).await["message"].clone();
    assert_eq!((stored["msg"].clone(), stored["attachments"].clone()), (json!("no links"), json!([])));
}
