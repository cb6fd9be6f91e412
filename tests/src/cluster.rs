//! The topology harness: distributed mode as separate processes on loopback — a NATS server of
//! its own (so a test may stop it), the auth, messaging, presence and files roles and several gateways —
//! against the machine's Redis under a key prefix of the test's own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{ADMIN, Client};

/// How long a role may take to become ready (cold debug binaries on a loaded 2-core machine).
const READY_WAIT: Duration = Duration::from_secs(60);

/// A free loopback port (released before the child binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc {
    name: String,
    child: Option<Child>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    health: String,
}

/// A running distributed topology.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    nats: Option<Child>,
    pub nats_port: u16,
    pub nats_monitor_port: u16,
    auth: Proc,
    messaging: Proc,
    presence: Proc,
    files: Proc,
    gateways: Vec<Proc>,
    pub gateway_ports: Vec<u16>,
}

fn spawn(bin: &Path, dir: &Path, proc: &mut Proc) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.log", proc.name)))
        .unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(&proc.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(proc.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    proc.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("start {} ({}): {e}", proc.name, bin.display())));
}

fn kill(proc: &mut Proc) {
    if let Some(mut child) = proc.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends SIGTERM and waits for the process to exit.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

async fn wait_ready(url: &str, what: &str, logs: impl Fn() -> String) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + READY_WAIT;
    loop {
        if let Ok(resp) = http.get(url).timeout(Duration::from_secs(2)).send().await
            && resp.status().is_success()
        {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} not ready at {url}\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Cluster {
    /// Starts NATS, auth, messaging, presence, files and `gateways` gateways, and waits until each
    /// reports ready. `bin` is the `apogee` binary.
    pub async fn start(bin: &str, gateways: usize) -> Self {
        Self::start_with_env(bin, gateways, &[]).await
    }

    /// [`start`](Self::start), with `extra` set in every role's environment.
    pub async fn start_with_env(bin: &str, gateways: usize, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (nats_port, nats_monitor_port) = (free_port(), free_port());
        let (auth_grpc, messaging_grpc, files_grpc) = (free_port(), free_port(), free_port());
        let prefix = format!("apogee-test-{}:", crate::random_suffix());
        let common = |data: &str, node: &str| -> Vec<(String, String)> {
            [
                ("TEST_MODE", "true".to_owned()),
                ("APOGEE_NATS_URL", format!("nats://127.0.0.1:{nats_port}")),
                (
                    "APOGEE_REDIS_URL",
                    std::env::var("APOGEE_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()),
                ),
                ("APOGEE_REDIS_PREFIX", prefix.clone()),
                // Short presence leases so a killed gateway's users go offline quickly in tests.
                ("APOGEE_PRESENCE_TTL_SECS", "3".to_owned()),
                ("APOGEE_AUTH_ADDRS", format!("http://127.0.0.1:{auth_grpc}")),
                ("APOGEE_MESSAGING_ADDRS", format!("http://127.0.0.1:{messaging_grpc}")),
                ("APOGEE_FILES_ADDRS", format!("http://127.0.0.1:{files_grpc}")),
                ("APOGEE_CLUSTER_TOKEN", "topology-test".to_owned()),
                ("APOGEE_RPC_TIMEOUT_MS", "5000".to_owned()),
                ("APOGEE_SHUTDOWN_GRACE_SECS", "5".to_owned()),
                ("APOGEE_DATA_DIR", dir.path().join(data).display().to_string()),
                ("APOGEE_NODE_ID", node.to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .collect()
        };
        let service = |name: &str, grpc: Option<u16>| {
            let health = free_port();
            let mut env = common(name, name);
            env.push(("APOGEE_HEALTH_LISTEN".into(), format!("127.0.0.1:{health}")));
            if let Some(port) = grpc {
                env.push(("APOGEE_GRPC_LISTEN".into(), format!("127.0.0.1:{port}")));
            }
            Proc {
                name: name.to_owned(),
                child: None,
                env,
                args: vec![name.to_owned()],
                health: format!("http://127.0.0.1:{health}/readyz"),
            }
        };
        let auth = service("auth", Some(auth_grpc));
        let messaging = service("messaging", Some(messaging_grpc));
        let presence = service("presence", None);
        let files = service("files", Some(files_grpc));
        let mut gateway_ports = Vec::new();
        let gateways = (0..gateways)
            .map(|i| {
                let port = free_port();
                gateway_ports.push(port);
                let name = format!("gateway{i}");
                let mut env = common("gateway", &name);
                env.push(("PORT".into(), port.to_string()));
                env.push(("APOGEE_HOST".into(), "127.0.0.1".into()));
                env.push(("ROOT_URL".into(), format!("http://127.0.0.1:{port}")));
                Proc {
                    name,
                    child: None,
                    env,
                    args: vec!["gateway".into()],
                    health: format!("http://127.0.0.1:{port}/readyz"),
                }
            })
            .collect();
        let mut cluster = Cluster {
            dir,
            bin: PathBuf::from(bin),
            nats: None,
            nats_port,
            nats_monitor_port,
            auth,
            messaging,
            presence,
            files,
            gateways,
            gateway_ports,
        };
        cluster.start_nats().await;
        spawn(&cluster.bin, cluster.dir.path(), &mut cluster.auth);
        spawn(&cluster.bin, cluster.dir.path(), &mut cluster.messaging);
        spawn(&cluster.bin, cluster.dir.path(), &mut cluster.presence);
        spawn(&cluster.bin, cluster.dir.path(), &mut cluster.files);
        for i in 0..cluster.gateways.len() {
            spawn(&cluster.bin, cluster.dir.path(), &mut cluster.gateways[i]);
        }
        for proc in [&cluster.auth, &cluster.messaging, &cluster.presence, &cluster.files]
            .into_iter()
            .chain(&cluster.gateways)
        {
            wait_ready(&proc.health, &proc.name, || cluster.logs()).await;
        }
        cluster
    }

    /// Every role's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<&str> = vec!["nats", "auth", "messaging", "presence", "files"];
        names.extend(self.gateways.iter().map(|g| g.name.as_str()));
        for name in names {
            let text =
                std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("----- {name}.log (last lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn gateway_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.gateway_ports[i])
    }

    /// An unauthenticated REST client of gateway `i`.
    pub fn anon(&self, i: usize) -> Client {
        Client { base: self.gateway_url(i), http: reqwest::Client::new(), auth: None }
    }

    /// The `TEST_MODE` admin, logged in through gateway `i`.
    pub async fn admin(&self, i: usize) -> Client {
        self.anon(i).login(ADMIN, ADMIN).await
    }

    /// Creates `username` (password `pw`) and logs in through gateway `i`.
    pub async fn user(&self, i: usize, username: &str) -> Client {
        let admin = self.admin(i).await;
        let body = serde_json::json!({"username": username, "email": format!("{username}@example.com"),
            "name": format!("{username} Name"), "password": "pw", "verified": true});
        let (status, reply) = admin.post("users.create", body).await;
        assert_eq!(status, 200, "{reply}");
        self.anon(i).login(username, "pw").await
    }

    /// Kills gateway `i` with SIGKILL: no goodbye to anybody.
    pub fn kill_gateway(&mut self, i: usize) {
        kill(&mut self.gateways[i]);
    }

    /// Kills the messaging role with SIGKILL.
    pub fn kill_messaging(&mut self) {
        kill(&mut self.messaging);
    }

    /// Starts the messaging role again on the same addresses and store.
    pub async fn restart_messaging(&mut self) {
        spawn(&self.bin, self.dir.path(), &mut self.messaging);
        wait_ready(&self.messaging.health, "messaging", || self.logs()).await;
    }

    /// Kills the files role with SIGKILL.
    pub fn kill_files(&mut self) {
        kill(&mut self.files);
    }

    /// Starts the files role again on the same addresses, store and blob directory.
    pub async fn restart_files(&mut self) {
        spawn(&self.bin, self.dir.path(), &mut self.files);
        wait_ready(&self.files.health, "files", || self.logs()).await;
    }

    /// Stops the NATS server (SIGTERM; JetStream data stays on disk).
    pub fn stop_nats(&mut self) {
        if let Some(mut nats) = self.nats.take() {
            terminate(&mut nats);
        }
    }

    /// Starts the NATS server on its port, with JetStream.
    pub async fn start_nats(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .unwrap();
        let store = self.dir.path().join("nats-js");
        let child = Command::new(nats_server())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.nats_port.to_string(),
                "-m",
                &self.nats_monitor_port.to_string(),
            ])
            .arg("-js")
            .arg("-sd")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.nats = Some(child);
        wait_ready(&format!("http://127.0.0.1:{}/healthz", self.nats_monitor_port), "nats", || self.logs())
            .await;
    }

    /// NATS's view of its client connections (`/connz?subs=1`), for counting deliveries.
    pub async fn nats_connections(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/connz?subs=1&limit=1000", self.nats_monitor_port);
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        body["connections"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `/readyz` of gateway `i` answers 200 (after a dependency came back).
    pub async fn wait_gateway_ready(&self, i: usize) {
        wait_ready(&self.gateways[i].health, &self.gateways[i].name, || self.logs()).await;
    }
}

/// The `nats-server` binary: `NATS_SERVER_BIN`, else Debian's path, else `PATH`.
pub fn nats_server() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
        if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".into()
        } else {
            "nats-server".into()
        }
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for g in &mut self.gateways {
            kill(g);
        }
        kill(&mut self.files);
        kill(&mut self.presence);
        kill(&mut self.messaging);
        kill(&mut self.auth);
        if let Some(mut nats) = self.nats.take() {
            let _ = nats.kill();
            let _ = nats.wait();
        }
    }
}
