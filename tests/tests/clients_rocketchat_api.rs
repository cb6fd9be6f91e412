//! Real-client compatibility: drives the server with the PyPI package `rocketchat-api` 3.7.1
//! (module `rocketchat_API`, unmodified) through `tests/clients/rocketchat_api_client.py`.
//!
//! The package is installed into a venv under `$CARGO_TARGET_DIR/client-venvs/` (shared by every run;
//! built in a temporary directory and renamed into place, so concurrent runs cannot see half a venv).
//! A missing `python3` or a failing `pip install` fails the test: it never skips.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;

const PACKAGE: &str = "rocketchat-api==3.7.1";
const VENV_NAME: &str = "rocketchat-api-3.7.1";
const SCRIPT: &str = "clients/rocketchat_api_client.py";
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a finished (or killed) command printed.
struct Finished {
    status: ExitStatus,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn ok(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    fn describe(&self, what: &str) -> String {
        let how =
            if self.timed_out { "timed out and was killed".to_owned() } else { self.status.to_string() };
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
    Finished { status, timed_out, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn python_can_import(venv: &Path) -> bool {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-B", "-c", "import rocketchat_API"]);
    venv.join("bin/python").exists() && run(cmd, Duration::from_secs(60)).ok()
}

/// Returns the venv with `rocketchat-api` installed, building it if needed. Blocking.
fn ensure_venv() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/apogee-target".to_owned());
    let root = PathBuf::from(target).join("client-venvs");
    let venv = root.join(VENV_NAME);
    if python_can_import(&venv) {
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
    cmd.args(["-m", "pip", "install", "--no-input", "--disable-pip-version-check", PACKAGE]);
    let installed = run(cmd, PIP_TIMEOUT);
    if !installed.ok() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!("{}", installed.describe(&format!("pip install {PACKAGE}")));
    }
    assert!(python_can_import(&tmp), "{PACKAGE} installed but `import rocketchat_API` fails in {tmp:?}");

    // Publish atomically. A broken venv left at the final path is moved aside first; if another run
    // published a working one meanwhile, rename fails (target not empty) and that one is used.
    if venv.exists() && !python_can_import(&venv) {
        let trash = root.join(format!(".{VENV_NAME}.broken-{}-{nanos}", std::process::id()));
        if std::fs::rename(&venv, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
    }
    if std::fs::rename(&tmp, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(python_can_import(&venv), "no working venv at {venv:?} after installing {PACKAGE}");
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
async fn rocketchat_api_python_client() {
    let venv = blocking(ensure_venv).await;

    let server = TestServer::start().await;
    server.user("alice").await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg("-B").arg(&script).args([server.url.as_str(), "alice", "pw"]);
    let finished = blocking(move || run(cmd, SCRIPT_TIMEOUT)).await;

    print!("{}", finished.stdout);
    eprint!("{}", finished.stderr);
    assert!(finished.ok(), "{}", finished.describe("rocketchat_api_client.py"));
}
