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

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;
use serde_json::{Value, json};

const PACKAGES: [&str; 2] = ["rocketchat-async==4.3.0", "websockets==10.4"];
const VENV_NAME: &str = "rocketchat-async-4.3.0-websockets-10.4";
/// Imports the library and checks the pinned versions (a stale venv at the path is rebuilt).
const VENV_CHECK: &str = "import importlib.metadata as m, rocketchat_async, websockets; \
     assert m.version('rocketchat-async') == '4.3.0' and m.version('websockets') == '10.4'";
const SCRIPT: &str = "clients/rocketchat_async_client.py";
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
/// For each line the script must print (it bounds each of its own steps by 20 to 60 s).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

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

fn venv_is_usable(venv: &Path) -> bool {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-B", "-c", VENV_CHECK]);
    venv.join("bin/python").exists() && run(cmd, Duration::from_secs(60)).ok()
}

/// Returns the venv with the pinned packages installed, building it if needed. Blocking.
fn ensure_venv() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/apogee-target".to_owned());
    let root = PathBuf::from(target).join("client-venvs");
    let venv = root.join(VENV_NAME);
    if venv_is_usable(&venv) {
        return venv;
    }
    std::fs::create_dir_all(&root).unwrap();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let tmp = root.join(format!(".{VENV_NAME}.tmp-{}-{nanos}", std::process::id()));

    let mut cmd = Command::new("python3");
    cmd.arg("-m").arg("venv").arg(&tmp);
    let created = run(cmd, PIP_TIMEOUT);
    assert!(created.ok(), "{}", created.describe("python3 -m venv (is python3 with venv installed?)"));
    let mut cmd = Command::new(tmp.join("bin/python"));
    cmd.args(["-m", "pip", "install", "--no-input", "--disable-pip-version-check"]).args(PACKAGES);
    let installed = run(cmd, PIP_TIMEOUT);
    if !installed.ok() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!("{}", installed.describe(&format!("pip install {}", PACKAGES.join(" "))));
    }
    assert!(venv_is_usable(&tmp), "{PACKAGES:?} installed but `{VENV_CHECK}` fails in {tmp:?}");

    // Publish atomically. A broken venv left at the final path is moved aside first; if another run
    // published a working one meanwhile, rename fails (target not empty) and that one is used.
    if venv.exists() && !venv_is_usable(&venv) {
        let trash = root.join(format!(".{VENV_NAME}.broken-{}-{nanos}", std::process::id()));
        if std::fs::rename(&venv, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
    }
    if std::fs::rename(&tmp, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(venv_is_usable(&venv), "no working venv at {venv:?} after installing {PACKAGES:?}");
    venv
}

/// Runs blocking work off the runtime's worker threads, re-raising its panic as is.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_async_python_client() {
    let venv = blocking(ensure_venv).await;

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
