//! Helpers for the real-client tests (`tests/tests/clients_*.rs`): running a client program to
//! completion ([`run`]) or in the background, line by line ([`Script`]), and installing the pinned
//! client packages once per target directory ([`ensure_venv`], [`ensure_npm`]).
//!
//! Installs live under `$CARGO_TARGET_DIR` (shared by every run, never in the source tree). Each is
//! built in a temporary directory and renamed into place, so concurrent runs cannot see half an install.
//! A missing `python3`/`node`/`npm` or a failing install panics: the tests fail, they never skip.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `pip install` or `npm install` (and creating a venv) may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long checking an install (importing or requiring the package) may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished (or killed) command printed.
pub struct Finished {
    /// `None` if the process could not be waited for after it was killed.
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Exited on its own, successfully.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// A failure message naming the command (`what`), how it ended and everything it printed.
    pub fn describe(&self, what: &str) -> String {
        let how = match (self.timed_out, self.status) {
            (true, _) => "timed out and was killed".to_owned(),
            (false, Some(status)) => status.to_string(),
            (false, None) => "was killed".to_owned(),
        };
        format!("{what}: {how}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Runs a command to completion (blocking), capturing its output; kills it after `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Finished {
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

/// Runs blocking work off the runtime's worker threads, re-raising its panic as is.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A client script running in the background; its stdout is read line by line as it comes.
/// Dropping it kills the script if it is still running.
pub struct Script {
    what: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Script {
    /// Starts `cmd` with stdin closed and stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> Self {
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
    /// Anything else (another line, the script ending, no line within `timeout`) is [`Self::fail`].
    pub async fn expect_line(&mut self, word: &str, timeout: Duration) -> String {
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
    pub async fn finish(&mut self, timeout: Duration) -> Finished {
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
    pub async fn fail<T>(&mut self, why: &str) -> T {
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

/// Whether the venv's python exists and runs `check` (Python source) successfully.
fn venv_is_usable(venv: &Path, check: &str) -> bool {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-B", "-c", check]);
    venv.join("bin/python").exists() && run(cmd, CHECK_TIMEOUT).ok()
}

/// Returns `$CARGO_TARGET_DIR/client-venvs/<name>`, a venv with the pinned `packages` installed,
/// building it if it is missing or `check` (Python source, e.g. an import that also asserts the
/// versions, so a stale venv at the path is rebuilt) fails in it. Blocking; panics on any failure.
pub fn ensure_venv(name: &str, packages: &[&str], check: &str) -> PathBuf {
    let list = packages.join(" ");
    ensure_install(
        "client-venvs",
        name,
        |venv| venv_is_usable(venv, check),
        |tmp| {
            let mut cmd = Command::new("python3");
            cmd.arg("-m").arg("venv").arg(tmp);
            let created = run(cmd, INSTALL_TIMEOUT);
            assert!(
                created.ok(),
                "{}",
                created.describe("python3 -m venv (is python3 with venv installed?)")
            );
            let mut cmd = Command::new(tmp.join("bin/python"));
            cmd.args(["-m", "pip", "install", "--no-input", "--disable-pip-version-check"]).args(packages);
            let installed = run(cmd, INSTALL_TIMEOUT);
            assert!(installed.ok(), "{}", installed.describe(&format!("pip install {list}")));
            assert!(venv_is_usable(tmp, check), "{list} installed but `{check}` fails in {tmp:?}");
        },
    )
    .unwrap_or_else(|venv| panic!("no working venv at {venv:?} after installing {list}"))
}

/// Runs `check` (JavaScript source) with `node` in the install `dir`, its `node_modules` on `NODE_PATH`.
fn npm_check(dir: &Path, check: &str) -> Finished {
    let mut cmd = Command::new("node");
    cmd.args(["-e", check]).env("NODE_PATH", dir.join("node_modules")).current_dir(dir);
    run(cmd, CHECK_TIMEOUT)
}

/// Whether `dir` was installed from this very `package.json` and `check` succeeds in it.
fn npm_is_usable(dir: &Path, package_json: &str, check: &str) -> bool {
    if std::fs::read_to_string(dir.join("package.json")).ok().as_deref() != Some(package_json) {
        return false;
    }
    npm_check(dir, check).ok()
}

/// Returns `$CARGO_TARGET_DIR/client-node/<name>`, where `npm install` ran on a copy of the
/// `package.json` in `package_dir` (relative to `tests/`; only that file is copied, with its
/// `package-lock.json` if there is one, and then `npm ci` installs), so its
/// `node_modules` is ready for `NODE_PATH`. Installs again if it is missing, was made from another
/// `package.json`, or `check` (JavaScript source, e.g. a `require` that also checks the versions) fails
/// in it. Blocking; panics on any failure.
pub fn ensure_npm(name: &str, package_dir: &str, check: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(package_dir).join("package.json");
    let package_json = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("reading {source:?}: {e}"));
    ensure_install(
        "client-node",
        name,
        |dir| npm_is_usable(dir, &package_json, check),
        |tmp| {
            std::fs::create_dir_all(tmp).unwrap();
            std::fs::write(tmp.join("package.json"), &package_json).unwrap();
            // With a lock file next to it, install exactly what it pins.
            let lock = source.with_file_name("package-lock.json");
            let mut cmd = Command::new("npm");
            if lock.exists() {
                std::fs::copy(&lock, tmp.join("package-lock.json")).unwrap();
                cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(tmp);
            } else {
                cmd.args(["install", "--no-audit", "--no-fund"]).current_dir(tmp);
            }
            let installed = run(cmd, INSTALL_TIMEOUT);
            assert!(
                installed.ok(),
                "{}",
                installed.describe(&format!("npm install in {tmp:?} (is npm installed?)"))
            );
            if !npm_is_usable(tmp, &package_json, check) {
                let checked = npm_check(tmp, check);
                panic!(
                    "{}",
                    checked.describe("npm install succeeded but the installed packages do not load")
                );
            }
        },
    )
    .unwrap_or_else(|dir| panic!("no working install of {package_dir}/package.json at {dir:?}"))
}

/// Removes the temporary build directory however [`ensure_install`] ends (a failed build panics).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Returns `$CARGO_TARGET_DIR/<kind>/<name>` once `is_usable` holds for it (or `Err` with that path if
/// it still does not after building), doing nothing if it already does. Otherwise `build` fills a
/// fresh temporary directory next to it (panicking on failure), which is then renamed into place.
/// Blocking.
fn ensure_install(
    kind: &str,
    name: &str,
    is_usable: impl Fn(&Path) -> bool,
    build: impl FnOnce(&Path),
) -> Result<PathBuf, PathBuf> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/apogee-target".to_owned());
    let root = PathBuf::from(target).join(kind);
    let dir = root.join(name);
    if is_usable(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).unwrap();
    // Unique per process and attempt, so concurrent runs build side by side.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let tmp = RemoveOnDrop(root.join(format!(".{name}.tmp-{}-{nanos}", std::process::id())));
    build(&tmp.0);

    // Publish atomically. A stale or broken install left at the final path is moved aside first; if
    // another run published a working one meanwhile, rename fails (target not empty) and that one is
    // used (the temporary directory is removed on drop either way).
    if dir.exists() && !is_usable(&dir) {
        let trash = root.join(format!(".{name}.broken-{}-{nanos}", std::process::id()));
        if std::fs::rename(&dir, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
    }
    let _ = std::fs::rename(&tmp.0, &dir);
    if is_usable(&dir) { Ok(dir) } else { Err(dir) }
}
