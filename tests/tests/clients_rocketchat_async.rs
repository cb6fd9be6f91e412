//! Real-client compatibility over DDP: drives the server with the PyPI package `rocketchat-async` 4.3.0
//! (with `websockets` 10.4, both unmodified) through `tests/clients/rocketchat_async_client.py`.
//!
//! The script logs in over `/websocket`, checks `rooms/get`, subscribes to a room's messages and to
//! rooms-changed and prints `READY`; this test then posts a message as another user through REST, the
//! script must receive it and its rooms-changed event (`RECEIVED <text>`), react to it, send one with
//! the library (`SENT <id> <text>`) and send a typing event. The sent message and the reaction are read
//! back here through REST `channels.history`.
//!
//! The packages are installed into a venv under `$CARGO_TARGET_DIR/client-venvs/` (shared by every run;
//! built in a temporary directory and renamed into place, so concurrent runs cannot see half a venv).
//! A missing `python3` or a failing `pip install` fails the test: it never skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;
use apogee_tests::clients::{Script, blocking, ensure_venv};
use serde_json::{Value, json};

const PACKAGES: [&str; 2] = ["rocketchat-async==4.3.0", "websockets==10.4"];
const VENV_NAME: &str = "rocketchat-async-4.3.0-websockets-10.4";
/// Imports the library and checks the pinned versions (a stale venv at the path is rebuilt).
const VENV_CHECK: &str = "import importlib.metadata as m, rocketchat_async, websockets; \
     assert m.version('rocketchat-async') == '4.3.0' and m.version('websockets') == '10.4'";
const SCRIPT: &str = "clients/rocketchat_async_client.py";
/// For each line the script must print (it bounds each of its own steps by 20 to 60 s).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_async_python_client() {
    let venv = blocking(|| ensure_venv(VENV_NAME, &PACKAGES, VENV_CHECK)).await;

    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    let name = format!("rcasync-{suffix}");
    let created = alice.ok_post("channels.create", json!({"name": name, "members": ["bob"]})).await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_owned();
    let incoming = format!("hello from bob over REST {suffix}");
    let outgoing = format!("hello from rocketchat-async {suffix}");
    let ws_url = format!("{}/websocket", server.url.replacen("http://", "ws://", 1));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg("-B").arg(&script).args([
        ws_url.as_str(),
        "alice",
        "pw",
        alice.user_id(),
        rid.as_str(),
        bob.user_id(),
        incoming.as_str(),
        outgoing.as_str(),
    ]);
    let mut client = Script::spawn(cmd);

    // (a) Subscribed: another user posts through REST, the library's callback must get it.
    client.expect_line("READY", LINE_TIMEOUT).await;
    bob.ok_post("chat.postMessage", json!({"roomId": rid, "text": incoming})).await;
    let received = client.expect_line("RECEIVED", LINE_TIMEOUT).await;
    if received != incoming {
        client.fail::<()>(&format!("RECEIVED {received:?}, expected {incoming:?}")).await;
    }
    // (b) The library sent a message (with an id it chose); (c) and (d) are checked by the script.
    let sent = client.expect_line("SENT", LINE_TIMEOUT).await;
    let (sent_id, sent_text) = match sent.split_once(' ') {
        Some((id, text)) => (id.to_owned(), text.to_owned()),
        None => client.fail(&format!("malformed SENT line: {sent:?}")).await,
    };
    if sent_text != outgoing {
        client.fail::<()>(&format!("SENT {sent_text:?}, expected {outgoing:?}")).await;
    }
    client.expect_line("OK", LINE_TIMEOUT).await;
    let finished = client.finish(EXIT_TIMEOUT).await;
    print!("{}", finished.stdout);
    eprint!("{}", finished.stderr);
    assert!(finished.ok(), "{}", finished.describe("rocketchat_async_client.py"));

    // The message the library sent, read back through REST by the other user.
    let history = bob.ok_get(&format!("channels.history?roomId={rid}&count=100")).await;
    let messages = history["messages"].as_array().unwrap();
    let found = messages.iter().find(|m| m["_id"] == Value::String(sent_id.clone())).unwrap_or_else(|| {
        panic!("channels.history lacks the message {sent_id} sent by rocketchat-async: {history}")
    });
    assert_eq!(found["msg"], Value::String(outgoing.clone()), "{found}");
    assert_eq!(found["rid"], Value::String(rid.clone()), "{found}");
    assert_eq!(found["u"]["username"], "alice", "{found}");
    assert_eq!(found["u"]["_id"], Value::String(alice.user_id().to_owned()), "{found}");
    // And the REST-posted message the script received is there too, from bob, with alice's reaction.
    let bobs = messages
        .iter()
        .find(|m| m["msg"] == Value::String(incoming.clone()) && m["u"]["username"] == "bob")
        .unwrap_or_else(|| panic!("channels.history lacks bob's message: {history}"));
    assert_eq!(
        bobs["reactions"][":thumbsup:"]["usernames"],
        json!(["alice"]),
        "the library's setReaction: {bobs}"
    );
}
