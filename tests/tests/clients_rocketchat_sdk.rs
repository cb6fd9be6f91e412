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

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;
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
const NPM_TIMEOUT: Duration = Duration::from_secs(600);
/// For each line the script must print (it bounds each of its own steps by 20 to 60 s).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
const BOT: &str = "sdkbot";

/// What a finished (or killed) command printed.
struct Finished {
    status: Option<ExitStatus>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn ok(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    fn describe(&self, what: &str) -> String {
        let how = match (self.timed_out, self.status) {
            (true, _) => "timed out and was killed".to_owned(),
            (false, Some(status)) => status.to_string(),
            (false, None) => "was killed".to_owned(),
        };
        format!("{what}: {how}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Runs a command to completion (blocking), capturing its output; kills it after `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Finished {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let (done_tx, done_rx) = mpsc::channel();
    let reader = |mut pipe: Box<dyn Read + Send>, done: Option<mpsc::Sender<()>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            if let Some(done) = done {
                let _ = done.send(());
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()), Some(done_tx));
    let stderr = reader(Box::new(child.stderr.take().unwrap()), None);
    // stdout reaches EOF when the process exits (or closes it); otherwise give up at the deadline.
    let timed_out = matches!(done_rx.recv_timeout(timeout), Err(mpsc::RecvTimeoutError::Timeout));
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    Finished {
        status: Some(status),
        timed_out,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A client script running in the background; its stdout is read line by line as it comes.
struct Script {
    what: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Script {
    fn spawn(mut cmd: Command) -> Self {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let pipe = child.stdout.take().unwrap();
        let all = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        Self { what, child, lines, stdout, stderr: Some(stderr) }
    }

    /// Waits for the next line, which must be `word` alone or `word <rest>`; returns the rest.
    async fn expect_line(&mut self, word: &str, timeout: Duration) -> String {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(line)) => {
                if line == word {
                    return String::new();
                }
                match line.strip_prefix(word).and_then(|rest| rest.strip_prefix(' ')) {
                    Some(rest) => rest.to_owned(),
                    None => {
                        self.fail(&format!("expected a `{word}` line, the script printed {line:?}")).await
                    }
                }
            }
            Ok(None) => self.fail(&format!("the script ended before printing `{word}`")).await,
            Err(_) => self.fail(&format!("no `{word}` line within {timeout:?}")).await,
        }
    }

    /// Waits for the script to exit (killing it after `timeout`) and collects its output.
    async fn finish(&mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(None) => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
        };
        let stderr = self.stderr.take().map(|handle| blocking(move || handle.join().unwrap()));
        let stderr = match stderr {
            Some(stderr) => stderr.await,
            None => String::new(),
        };
        // The stdout reader ends with the process; give it a moment to store the last lines.
        for _ in 0..40 {
            if Arc::strong_count(&self.stdout) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let stdout = self.stdout.lock().unwrap().clone();
        Finished { status, timed_out, stdout, stderr }
    }

    /// Kills the script and panics with `why` and everything it printed.
    async fn fail<T>(&mut self, why: &str) -> T {
        let _ = self.child.kill();
        let finished = self.finish(Duration::from_secs(10)).await;
        panic!("{why}\n{}", finished.describe(&self.what));
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // A panic elsewhere in the test must not leave the client running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn install_is_usable(dir: &Path, package_json: &str) -> bool {
    if std::fs::read_to_string(dir.join("package.json")).ok().as_deref() != Some(package_json) {
        return false;
    }
    let mut cmd = Command::new("node");
    cmd.args(["-e", INSTALL_CHECK]).env("NODE_PATH", dir.join("node_modules")).current_dir(dir);
    run(cmd, Duration::from_secs(60)).ok()
}

/// Returns the directory whose `node_modules` holds the SDK, installing it if needed. Blocking.
fn ensure_sdk() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(PACKAGE_DIR).join("package.json");
    let package_json = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("reading {source:?}: {e}"));
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/apogee-target".to_owned());
    let root = PathBuf::from(target).join("client-node");
    let dir = root.join(INSTALL_NAME);
    if install_is_usable(&dir, &package_json) {
        return dir;
    }
    std::fs::create_dir_all(&root).unwrap();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let tmp = root.join(format!(".{INSTALL_NAME}.tmp-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("package.json"), &package_json).unwrap();

    let mut cmd = Command::new("npm");
    cmd.args(["install", "--no-audit", "--no-fund"]).current_dir(&tmp);
    let installed = run(cmd, NPM_TIMEOUT);
    if !installed.ok() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!("{}", installed.describe(&format!("npm install in {tmp:?} (is npm installed?)")));
    }
    if !install_is_usable(&tmp, &package_json) {
        let mut cmd = Command::new("node");
        cmd.args(["-e", INSTALL_CHECK]).env("NODE_PATH", tmp.join("node_modules")).current_dir(&tmp);
        let checked = run(cmd, Duration::from_secs(60));
        let _ = std::fs::remove_dir_all(&tmp);
        panic!("{}", checked.describe("npm install succeeded but the SDK does not load"));
    }

    // Publish atomically. A stale or broken install at the final path is moved aside first; if another
    // run published a working one meanwhile, rename fails (target not empty) and that one is used.
    if dir.exists() && !install_is_usable(&dir, &package_json) {
        let trash = root.join(format!(".{INSTALL_NAME}.broken-{}-{nanos}", std::process::id()));
        if std::fs::rename(&dir, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(install_is_usable(&dir, &package_json), "no working @rocket.chat/sdk install at {dir:?}");
    dir
}

/// Runs blocking work off the runtime's worker threads, re-raising its panic as is.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_sdk_node_client() {
    let sdk = blocking(ensure_sdk).await;

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
