//! A real S3-compatible server for tests: `moto` in server mode, from PyPI, in a venv under the
//! target directory (built once, like the client venvs). Each [`Moto`] is its own process on a
//! free port, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{blocking, ensure_venv};

const PACKAGE: &str = "moto[server]==5.2.5";
const CHECK: &str = "import importlib.metadata as m, moto.server; assert m.version('moto') == '5.2.5'";

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Moto {
    /// Starts a fresh server and waits until it answers.
    pub async fn start() -> Self {
        let venv = blocking(|| ensure_venv("moto", &[PACKAGE], CHECK)).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Through the venv's python: the venv was built under a temporary name and moved, so
        // its console scripts point at an interpreter path that no longer exists.
        let child = Command::new(venv.join("bin/python"))
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if http.get(format!("{}/moto-api/", moto.endpoint)).send().await.is_ok() {
                return moto;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "moto_server did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
