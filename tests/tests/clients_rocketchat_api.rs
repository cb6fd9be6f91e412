//! Real-client compatibility: drives the server with the PyPI package `rocketchat-api` 3.7.1
//! (module `rocketchat_API`, unmodified) through `tests/clients/rocketchat_api_client.py`.
//!
//! The package is installed into a venv under `$CARGO_TARGET_DIR/client-venvs/` (shared by every run;
//! built in a temporary directory and renamed into place, so concurrent runs cannot see half a venv).
//! A missing `python3` or a failing `pip install` fails the test: it never skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use apogee_tests::TestServer;
use apogee_tests::clients::{blocking, ensure_venv, run};

const PACKAGE: &str = "rocketchat-api==3.7.1";
const VENV_NAME: &str = "rocketchat-api-3.7.1";
const VENV_CHECK: &str = "import rocketchat_API";
const SCRIPT: &str = "clients/rocketchat_api_client.py";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_api_python_client() {
    let venv = blocking(|| ensure_venv(VENV_NAME, &[PACKAGE], VENV_CHECK)).await;

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
