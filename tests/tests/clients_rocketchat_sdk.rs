//! Real-client compatibility over DDP: drives the server with the npm package `@rocket.chat/sdk` 0.2.9
//! (what Hubot and most bots use; unmodified, its Git dependency `asteroid` resolved to the registry's
//! 0.6.1 through the npm `overrides` in `tests/clients/sdk/package.json`) through
//! `tests/clients/sdk/sdk_client.js`.
//!
//! The script connects as a bot user, logs in, joins `#general`, subscribes to `__my_messages__`,
//! listens with `reactToMessages` and `respondToMessages` and prints `READY`; this test then posts a
//! message as another user through REST, the bot must receive it (`RECEIVED <text>`) and answer with
//! `sendToRoom` (`SENT <id> <text>`), read back here through REST `channels.history`.
//!
//! The package is installed with `npm install` into `$CARGO_TARGET_DIR/client-node/sdk-0.2.9` (never into
//! the source tree; built in a temporary directory and renamed into place, so concurrent runs cannot
//! see half an install) and found through `NODE_PATH`. A missing `node`/`npm` or a failing install fails
//! the test: it never skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;
use apogee_tests::clients::{Script, blocking, ensure_npm};
use serde_json::{Value, json};

/// The package's directory in the source tree (only `package.json` is copied out of it).
const PACKAGE_DIR: &str = "clients/sdk";
const SCRIPT: &str = "clients/sdk/sdk_client.js";
const INSTALL_NAME: &str = "sdk-0.2.9";
/// Loads the SDK and checks the pinned versions (a stale install at the path is redone).
const INSTALL_CHECK: &str = "for (const [name, version] of [['@rocket.chat/sdk', '0.2.9'], ['asteroid', '0.6.1']]) { \
     const got = require(name + '/package.json').version; \
     if (got !== version) throw new Error(name + ' ' + got + ' installed, expected ' + version); } \
     require('@rocket.chat/sdk');";
/// Variables the SDK reads at first require besides the three this test sets.
const SDK_ENV: [&str; 8] = [
    "ROCKETCHAT_ROOM",
    "ROCKETCHAT_USE_SSL",
    "ROCKETCHAT_AUTH",
    "LISTEN_ON_ALL_PUBLIC",
    "RESPOND_TO_DM",
    "RESPOND_TO_LIVECHAT",
    "RESPOND_TO_EDITED",
    "INTEGRATION_ID",
];
/// For each line the script must print (it bounds each of its own steps by 20 to 60 s).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
const BOT: &str = "sdkbot";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_sdk_node_client() {
    let sdk = blocking(|| ensure_npm(INSTALL_NAME, PACKAGE_DIR, INSTALL_CHECK)).await;

    let server = TestServer::start().await;
    let admin = server.admin().await;
    admin
        .ok_post(
            "users.create",
            json!({"username": BOT, "email": format!("{BOT}@example.com"), "name": "SDK Bot", "password": "pw",
                   "verified": true, "roles": ["bot"]}),
        )
        .await;
    let alice = server.user("alice").await;
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    let incoming = format!("hello bot, alice over REST {suffix}");
    let outgoing = format!("hello alice, from @rocket.chat/sdk {suffix}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let mut cmd = Command::new("node");
    cmd.arg(&script).args(["general", "alice", incoming.as_str(), outgoing.as_str()]);
    for name in SDK_ENV {
        cmd.env_remove(name);
    }
    cmd.env("ROCKETCHAT_URL", &server.url)
        .env("ROCKETCHAT_USER", BOT)
        .env("ROCKETCHAT_PASSWORD", "pw")
        .env("NODE_PATH", sdk.join("node_modules"));
    let mut client = Script::spawn(cmd);

    // The bot is listening: another user posts through REST, reactToMessages/respondToMessages get it.
    client.expect_line("READY", LINE_TIMEOUT).await;
    alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": incoming})).await;
    let received = client.expect_line("RECEIVED", LINE_TIMEOUT).await;
    if received != incoming {
        client.fail::<()>(&format!("RECEIVED {received:?}, expected {incoming:?}")).await;
    }
    // The bot answered with sendToRoom.
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
    assert!(finished.ok(), "{}", finished.describe("sdk_client.js"));

    // The bot's message, read back through REST by the other user.
    let history = alice.ok_get("channels.history?roomId=GENERAL&count=100").await;
    let messages = history["messages"].as_array().unwrap();
    let found = messages
        .iter()
        .find(|m| m["_id"] == Value::String(sent_id.clone()))
        .unwrap_or_else(|| panic!("channels.history lacks the message {sent_id} sent by the SDK: {history}"));
    assert_eq!(found["msg"], Value::String(outgoing.clone()), "{found}");
    assert_eq!(found["rid"], "GENERAL", "{found}");
    assert_eq!(found["u"]["username"], BOT, "{found}");
    assert_eq!(
        found["bot"],
        json!({"i": "js.SDK"}),
        "the SDK's `bot` field is stored with the message: {found}"
    );
}
