//! Pins, stars, mentions and search over REST (`chat.pinMessage` … `chat.search`).
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

async fn send(client: &Client, rid: &str, text: &str) -> String {
    client.ok_post("chat.sendMessage", json!({"message": {"rid": rid, "msg": text}})).await["message"]["_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn private_group(owner: &Client, name: &str) -> String {
    owner.ok_post("groups.create", json!({"name": name})).await["group"]["_id"].as_str().unwrap().to_owned()
}

fn ids(reply: &Value) -> Vec<&str> {
    reply["messages"].as_array().unwrap().iter().map(|m| m["_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn pin_and_unpin() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let admin_name = admin.ok_get("me").await["username"].as_str().unwrap().to_owned();
    // A quote of a quote, from links to messages of this server.
    let link = |id: &str| format!("{}/channel/general?msg={id}", server.url);
    let say = |text: String| {
        let alice = alice.clone();
        async move {
            alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": text}})).await["message"]
                ["_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let m0 = say("first".into()).await;
    let m1 = say(format!("quoted {}", link(&m0))).await;
    let mid = say(format!("pin me {}", link(&m1))).await;

    let refused = alice.post("chat.pinMessage", json!({"messageId": mid})).await;
    assert_error(&refused, 400, Some("not-authorized"));
    assert_eq!(refused.1["error"], "Not Authorized [not-authorized]");

    let mut ws = Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");
    let pinned = admin.ok_post("chat.pinMessage", json!({"messageId": mid})).await;
    let system = &pinned["message"];
    assert_eq!((system["t"].as_str(), system["msg"].as_str()), (Some("message_pinned"), Some("")));
    assert_eq!(
        (system["rid"].as_str(), system["u"]["username"].as_str()),
        (Some("GENERAL"), Some(admin_name.as_str()))
    );
    let attachment = &system["attachments"][0];
    assert_eq!(attachment["text"], format!("pin me {}", link(&m1)));
    assert_eq!(attachment["author_name"], "alice");
    assert_eq!(attachment["author_icon"], "/avatar/alice");
    assert!(attachment["ts"].as_str().unwrap().ends_with('Z'), "{attachment}");
    let quotes = attachment["attachments"].as_array().unwrap();
    assert_eq!(quotes.len(), 1, "{attachment}");
    assert_eq!(
        (&quotes[0]["message_link"], &quotes[0]["text"]),
        (&json!(link(&m1)), &json!(format!("quoted {}", link(&m0))))
    );
    assert_eq!(quotes[0]["attachments"][0]["message_link"], link(&m0), "{attachment}");
    let changed = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(changed["fields"]["args"][0]["_id"], mid.as_str());
    assert_eq!(changed["fields"]["args"][0]["pinned"], true);
    assert!(changed["fields"]["args"][0]["pinnedAt"]["$date"].is_i64(), "{changed}");
    let announced = ws.event("stream-room-messages", "GENERAL").await;
    assert_eq!(announced["fields"]["args"][0]["t"], "message_pinned");

    let m = &alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"];
    assert_eq!(m["pinned"], true);
    assert!(m["pinnedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m["pinnedBy"], json!({"_id": admin.user_id(), "username": admin_name}));
    let list = alice.ok_get("chat.getPinnedMessages?roomId=GENERAL").await;
    assert_eq!(ids(&list), [mid.as_str()]);
    assert_eq!(
        (list["count"].as_u64(), list["offset"].as_u64(), list["total"].as_u64()),
        (Some(1), Some(0), Some(1))
    );

    let missing = admin.post("chat.pinMessage", json!({"messageId": " "})).await;
    assert_error(&missing, 400, Some("error-messageid-param-not-provided"));
    assert_eq!(
        missing.1["error"],
        "The required \"messageId\" param is missing. [error-messageid-param-not-provided]"
    );
    let unknown = admin.post("chat.pinMessage", json!({"messageId": "nope"})).await;
    assert_error(&unknown, 400, Some("error-message-not-found"));
    assert_error(
        &admin.post("chat.unPinMessage", json!({})).await,
        400,
        Some("error-messageid-param-not-provided"),
    );
    assert_error(
        &admin.post("chat.unPinMessage", json!({"messageId": "nope"})).await,
        400,
        Some("error-message-not-found"),
    );

    // Room access: a private group's messages are "not found" for outsiders.
    let gid = private_group(&alice, "pins").await;
    let secret = send(&alice, &gid, "secret").await;
    let outsider = bob.post("chat.pinMessage", json!({"messageId": secret})).await;
    assert_error(&outsider, 400, Some("error-invalid-message"));
    assert_eq!(outsider.1["error"], "Message you are pinning was not found [error-invalid-message]");
    let outsider = bob.post("chat.unPinMessage", json!({"messageId": secret})).await;
    assert_eq!(outsider.1["error"], "Message you are unpinning was not found [error-invalid-message]");
    alice.ok_post("chat.pinMessage", json!({"messageId": secret})).await;
    let not_allowed = bob.get(&format!("chat.getPinnedMessages?roomId={gid}")).await;
    assert_error(&not_allowed, 400, Some("error-not-allowed"));
    assert_eq!(not_allowed.1["error"], "Not allowed [error-not-allowed]");
    assert_error(&bob.get("chat.getPinnedMessages?roomId=nowhere").await, 400, Some("error-not-allowed"));
    assert_error(&bob.get("chat.getPinnedMessages").await, 400, Some("error-roomId-param-not-provided"));
    assert_eq!(ids(&alice.ok_get(&format!("chat.getPinnedMessages?roomId={gid}")).await), [secret.as_str()]);

    admin.ok_post("settings/Message_AllowPinning", json!({"value": false})).await;
    let off = admin.post("chat.pinMessage", json!({"messageId": mid})).await;
    assert_error(&off, 400, Some("error-action-not-allowed"));
    assert_eq!(off.1["error"], "Message pinning not allowed [error-action-not-allowed]");
    assert_error(
        &admin.post("chat.unPinMessage", json!({"messageId": mid})).await,
        400,
        Some("error-action-not-allowed"),
    );
    admin.ok_post("settings/Message_AllowPinning", json!({"value": true})).await;

    let unpinned = admin.ok_post("chat.unPinMessage", json!({"messageId": mid})).await;
    assert_eq!(unpinned, json!({"success": true}));
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"];
    assert_eq!(
        (m["pinned"].as_bool(), m["pinnedBy"]["username"].as_str()),
        (Some(false), Some(admin_name.as_str()))
    );
    assert_eq!(alice.ok_get("chat.getPinnedMessages?roomId=GENERAL").await["total"], 0);

    admin.ok_post("permissions.update", json!({"permissions": [{"_id": "pin-message", "roles": []}]})).await;
    assert_error(
        &admin.post("chat.pinMessage", json!({"messageId": mid})).await,
        400,
        Some("not-authorized"),
    );
    assert_error(
        &alice.post("chat.pinMessage", json!({"messageId": secret})).await,
        400,
        Some("not-authorized"),
    );
}

#[tokio::test]
async fn star_and_unstar() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mid = send(&alice, "GENERAL", "star me").await;

    assert_eq!(bob.ok_post("chat.starMessage", json!({"messageId": mid})).await, json!({"success": true}));
    bob.ok_post("chat.starMessage", json!({"messageId": mid})).await;
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"];
    assert_eq!(m["starred"], json!([{"_id": bob.user_id()}]), "starring twice stars once");
    let room = alice.ok_get("channels.info?roomId=GENERAL").await;
    assert_eq!(room["channel"]["lastMessage"]["starred"], json!([{"_id": bob.user_id()}]), "{room}");
    let bobs = bob.ok_get("chat.getStarredMessages?roomId=GENERAL").await;
    assert_eq!(ids(&bobs), [mid.as_str()]);
    assert_eq!(
        (bobs["count"].as_u64(), bobs["offset"].as_u64(), bobs["total"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(
        alice.ok_get("chat.getStarredMessages?roomId=GENERAL").await["total"],
        0,
        "only the caller's stars"
    );

    bob.ok_post("chat.unStarMessage", json!({"messageId": mid})).await;
    let m = &alice.ok_get(&format!("chat.getMessage?msgId={mid}")).await["message"];
    assert_eq!(m["starred"], json!([]));
    assert_eq!(bob.ok_get("chat.getStarredMessages?roomId=GENERAL").await["total"], 0);

    let missing = bob.post("chat.starMessage", json!({})).await;
    assert_error(&missing, 400, Some("error-messageid-param-not-provided"));
    assert_eq!(
        missing.1["error"],
        "The required \"messageId\" param is required. [error-messageid-param-not-provided]"
    );
    assert_error(
        &bob.post("chat.unStarMessage", json!({"messageId": ""})).await,
        400,
        Some("error-messageid-param-not-provided"),
    );
    assert_error(
        &bob.post("chat.starMessage", json!({"messageId": "nope"})).await,
        400,
        Some("error-message-not-found"),
    );
    assert_error(
        &bob.post("chat.unStarMessage", json!({"messageId": "nope"})).await,
        400,
        Some("error-message-not-found"),
    );

    // Outside the room: nothing happens, and the list is refused.
    let gid = private_group(&alice, "stars").await;
    let secret = send(&alice, &gid, "secret").await;
    bob.ok_post("chat.starMessage", json!({"messageId": secret})).await;
    assert!(
        alice.ok_get(&format!("chat.getMessage?msgId={secret}")).await["message"].get("starred").is_none()
    );
    let refused = bob.get(&format!("chat.getStarredMessages?roomId={gid}")).await;
    assert_error(&refused, 400, None);
    assert_eq!(refused.1["error"], "error-not-allowed");
    assert_error(&bob.get("chat.getStarredMessages").await, 400, Some("error-invalid-params"));

    admin.ok_post("settings/Message_AllowStarring", json!({"value": false})).await;
    let off = bob.post("chat.starMessage", json!({"messageId": mid})).await;
    assert_error(&off, 400, Some("error-action-not-allowed"));
    assert_eq!(off.1["error"], "Message starring not allowed [error-action-not-allowed]");
    assert_error(
        &bob.post("chat.unStarMessage", json!({"messageId": mid})).await,
        400,
        Some("error-action-not-allowed"),
    );
}

#[tokio::test]
async fn mentioned_messages() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    send(&alice, "GENERAL", "no mention").await;
    let first = send(&alice, "GENERAL", "hi @bob").await;
    let second = send(&alice, "GENERAL", "@bob again").await;
    let list = bob.ok_get("chat.getMentionedMessages?roomId=GENERAL").await;
    assert_eq!(ids(&list), [second.as_str(), first.as_str()], "newest first");
    assert_eq!((list["count"].as_u64(), list["total"].as_u64()), (Some(2), Some(2)));
    let paged = bob.ok_get("chat.getMentionedMessages?roomId=GENERAL&count=1&offset=1").await;
    assert_eq!(ids(&paged), [first.as_str()]);
    assert_eq!(
        (paged["count"].as_u64(), paged["offset"].as_u64(), paged["total"].as_u64()),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(alice.ok_get("chat.getMentionedMessages?roomId=GENERAL").await["total"], 0);

    let missing = bob.get("chat.getMentionedMessages").await;
    assert_error(&missing, 400, Some("error-invalid-params"));
    assert_eq!(missing.1["error"], "The required \"roomId\" query param is missing. [error-invalid-params]");
    let gid = private_group(&alice, "mentions").await;
    let refused = bob.get(&format!("chat.getMentionedMessages?roomId={gid}")).await;
    assert_error(&refused, 400, None);
    assert_eq!(refused.1["error"], "error-not-allowed");
    assert_eq!(
        bob.get("chat.getMentionedMessages?roomId=invalid-room").await.1["error"],
        "error-not-allowed"
    );
}

#[tokio::test]
async fn search_in_a_room() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let gid = private_group(&alice, "searchable").await;
    let hello = send(&alice, &gid, "Hello World").await;
    let again = send(&alice, &gid, "say hello again").await;
    let cjk = send(&alice, &gid, "日本語のテキスト").await;
    let percent = send(&alice, &gid, "100% done").await;
    send(&alice, "GENERAL", "hello from general").await;

    let search = |q: &str| format!("chat.search?roomId={gid}&searchText={}", urlencode(q));
    let found = alice.ok_get(&search("HELLO")).await;
    assert_eq!(
        ids(&found),
        [again.as_str(), hello.as_str()],
        "case-insensitive, newest first, this room only"
    );
    assert!(found.get("total").is_none() && found.get("count").is_none(), "{found}");
    assert_eq!(ids(&alice.ok_get(&search("テキ")).await), [cjk.as_str()]);
    assert_eq!(ids(&alice.ok_get(&search("本語のテキ")).await), [cjk.as_str()]);
    assert_eq!(ids(&alice.ok_get(&search("0%")).await), [percent.as_str()]);
    assert_eq!(ids(&alice.ok_get(&search("\"")).await), Vec::<&str>::new());
    assert_eq!(ids(&alice.ok_get(&format!("{}&count=1&offset=1", search("hello"))).await), [hello.as_str()]);

    alice.ok_post("chat.update", json!({"roomId": gid, "msgId": hello, "text": "Goodbye World"})).await;
    assert_eq!(ids(&alice.ok_get(&search("hello")).await), [again.as_str()]);
    assert_eq!(ids(&alice.ok_get(&search("goodbye")).await), [hello.as_str()]);
    alice.ok_post("chat.delete", json!({"roomId": gid, "msgId": again})).await;
    assert_eq!(ids(&alice.ok_get(&search("hello")).await), Vec::<&str>::new());

    let refused = bob.get(&search("world")).await;
    assert_error(&refused, 400, Some("error-not-allowed"));
    assert_error(&bob.get("chat.search?roomId=nowhere&searchText=x").await, 400, Some("error-not-allowed"));
    let no_room = alice.get("chat.search?searchText=x").await;
    assert_error(&no_room, 400, Some("error-roomId-param-not-provided"));
    assert_eq!(
        no_room.1["error"],
        "The required \"roomId\" query param is missing. [error-roomId-param-not-provided]"
    );
    let no_text = alice.get(&format!("chat.search?roomId={gid}")).await;
    assert_error(&no_text, 400, Some("error-searchText-param-not-provided"));
    assert_eq!(
        no_text.1["error"],
        "The required \"searchText\" query param is missing. [error-searchText-param-not-provided]"
    );
    // Public channels are searchable by anyone who may view them.
    assert_eq!(
        bob.ok_get("chat.search?roomId=GENERAL&searchText=general").await["messages"][0]["msg"],
        "hello from general"
    );
}

/// Today (UTC) and yesterday as `dd/mm/yyyy`, the date form Rocket.Chat's search operators take.
fn search_dates() -> (String, String) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let date = |days: i64| {
        // Civil date of a day number (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{day:02}/{month:02}/{year}")
    };
    let today = i64::try_from(now / 86_400).unwrap();
    (date(today), date(today - 1))
}

#[tokio::test]
async fn search_operators() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let gid = private_group(&alice, "operators").await;
    alice.ok_post("groups.invite", json!({"roomId": gid, "username": "bob"})).await;
    let plain = send(&alice, &gid, "alpha plain").await;
    let from_bob = send(&bob, &gid, "alpha from bob @alice").await;
    let link = send(&alice, &gid, "alpha https://example.com/x").await;
    let pinned = send(&alice, &gid, "beta pinned").await;
    alice.ok_post("chat.pinMessage", json!({"messageId": pinned})).await;
    bob.ok_post("chat.starMessage", json!({"messageId": plain})).await;

    let search = |q: &str| format!("chat.search?roomId={gid}&searchText={}", urlencode(q));
    let found = |client: &Client, q: &str| {
        let url = search(q);
        let client = client.clone();
        async move { ids(&client.ok_get(&url).await).into_iter().map(str::to_owned).collect::<Vec<_>>() }
    };
    let (today, yesterday) = search_dates();
    let table: Vec<(&Client, String, Vec<&str>)> = vec![
        (&alice, "from:bob".into(), vec![&from_bob]),
        (&alice, "FROM:BO alpha".into(), vec![&from_bob]),
        (&bob, "from:me".into(), vec![&from_bob]),
        (&alice, "mention:alice".into(), vec![&from_bob]),
        (&bob, "has:star".into(), vec![&plain]),
        (&alice, "has:star".into(), vec![]),
        (&alice, "is:pinned".into(), vec![&pinned]),
        (&alice, "has:pin beta".into(), vec![&pinned]),
        (&alice, "has:url".into(), vec![&link]),
        (&alice, "has:link alpha".into(), vec![&link]),
        (&alice, "alpha".into(), vec![&link, &from_bob, &plain]),
        (&alice, "alpha order:asc".into(), vec![&plain, &from_bob, &link]),
        (&alice, "alpha sort:desc".into(), vec![&link, &from_bob, &plain]),
        (&alice, "order:asc".into(), vec![]),
        (&alice, format!("alpha on:{today}"), vec![&link, &from_bob, &plain]),
        (&alice, format!("alpha before:{today}"), vec![]),
        (&alice, format!("alpha after:{today}"), vec![]),
        (&alice, format!("alpha after:{yesterday} order:asc"), vec![&plain, &from_bob, &link]),
        (&alice, format!("alpha on:{yesterday}"), vec![]),
        (&alice, "/^alpha (plain|from)/".into(), vec![&from_bob, &plain]),
        (&alice, "/^ALPHA P/i".into(), vec![&plain]),
        (&alice, "/^ALPHA P/".into(), vec![]),
    ];
    for (client, q, expected) in &table {
        assert_eq!(found(client, q).await, *expected, "{q}");
    }
    let invalid = alice.get(&search("/(/")).await;
    assert_error(&invalid, 400, None);
    assert!(invalid.1["error"].as_str().unwrap().starts_with("Regular expression is invalid"), "{invalid:?}");

    // Rocket.Chat's setting that makes every text a regular expression.
    assert_eq!(found(&alice, "alp.a p").await, Vec::<String>::new());
    admin.ok_post("settings/Message_AlwaysSearchRegExp", json!({"value": true})).await;
    assert_eq!(found(&alice, "alp.a p").await, std::slice::from_ref(&plain));

    // The DDP method takes the same operators.
    let mut ws = Ddp::login(&server.url, bob.token()).await;
    let reply = ws.call("messageSearch", json!(["from:bob alpha", gid, 10, 0])).await;
    let docs = reply["result"]["message"]["docs"].as_array().unwrap();
    assert_eq!(docs.iter().map(|m| m["_id"].as_str().unwrap()).collect::<Vec<_>>(), [from_bob.as_str()]);
    let empty = ws.call("messageSearch", json!(["sort:asc", gid, 10, 0])).await;
    assert_eq!(empty["result"], json!({"message": {"docs": []}}));
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
