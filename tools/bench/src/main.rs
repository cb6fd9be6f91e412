//! `apogee-bench`: drives a local Apogee (or any Rocket.Chat-compatible) server through the
//! Rocket.Chat REST API and DDP, and reports throughput, latency and completeness.
//!
//! Scenarios: `idle`, `fanout`, `chat-mix`, `reconnect-storm` (DDP), `post`, `upload` and `search` (REST), plus
//! `startup` and `rss`. The newer scenarios (`chat-mix`, `reconnect-storm`) write a JSON report
//! and an SVG chart beside their summary (see `report.rs`).
//!
//! `post` logs in as the `TEST_MODE` admin, creates users and one channel holding all of them,
//! then has concurrent clients (one user each) call `chat.postMessage` until a message count or
//! a duration is reached, and prints throughput and latency percentiles. `rss` prints a
//! process's resident set size from `/proc/<pid>/status`. `startup` times `apogee serve` from
//! spawn to its first answer.
//!
//! Only loopback targets are accepted: this tool is for measuring a server on this machine.

mod chat_mix;
mod ddp;
mod fanout;
mod idle;
mod report;
mod search;
mod startup;
mod storm;
mod upload;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The `TEST_MODE` admin: username and password.
const TEST_ADMIN: &str = "rocketchat.internal.admin.test";
/// Password of the users a run creates.
const USER_PASSWORD: &str = "apogee-bench-pw";
/// Longest run `--duration` may ask for, so a run always ends by itself.
const MAX_DURATION_SECS: u64 = 3600;
/// Setup requests (user creation, logins) in flight at once.
const SETUP_CONCURRENCY: usize = 8;
/// Errors whose text is printed; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

#[derive(Parser)]
#[command(
    name = "apogee-bench",
    version,
    about = "Load generator for a local Apogee or Rocket.Chat-compatible server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post messages into one channel from concurrent clients and report throughput and latency.
    Post(PostArgs),
    /// Print a process's resident memory (VmRSS and VmHWM from /proc/<pid>/status).
    Rss {
        /// Process id of the server.
        #[arg(long)]
        pid: u32,
    },
    /// Time `apogee serve` from spawn to a first `/api/info` answer (fresh and existing data dir).
    Startup(startup::StartupArgs),
    /// Open many idle DDP connections and report the server's memory per connection.
    Idle(idle::IdleArgs),
    /// (Internal) one worker process of `idle --workers N`.
    #[command(hide = true)]
    IdleWorker(idle::WorkerArgs),
    /// Deliver one room's messages to many subscribed DDP sockets and report latency.
    Fanout(fanout::FanoutArgs),
    /// Users doing a realistic mix (send, typing, open room, read, set status) with live sockets.
    ChatMix(chat_mix::ChatMixArgs),
    /// Drop and reconnect K subscribed clients at once under traffic; check nothing is lost.
    ReconnectStorm(storm::StormArgs),
    /// Users uploading files into a room; throughput, latency, server RSS; every file checked back.
    Upload(upload::UploadArgs),
    /// Seed a channel with many messages, then time `chat.search` queries of several kinds.
    Search(search::SearchArgs),
}

#[derive(Args)]
struct PostArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Concurrent clients, each posting as its own user.
    #[arg(long, short = 'c', default_value_t = 1)]
    clients: usize,
    /// Users to create and put in the channel [default: --clients]. Client i posts as user i mod N.
    #[arg(long, short = 'u')]
    users: Option<usize>,
    /// Total messages to post (across all clients).
    #[arg(long, short = 'n', default_value_t = 10_000)]
    messages: u64,
    /// Stop after this many seconds even if --messages is not reached (at most 3600).
    #[arg(long, short = 'd')]
    duration: Option<u64>,
    /// Message text length in bytes (plain ASCII, no mentions).
    #[arg(long, default_value_t = 64)]
    text_size: usize,
    /// Per-request timeout in seconds; a timed-out request counts as an error.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Server process id: print its VmRSS before and after the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Also print the summary as one JSON line.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Rss { pid } => {
            let rss = read_rss(pid)?;
            println!(
                "pid {pid}: VmRSS {} kB ({:.1} MiB), VmHWM {} kB",
                rss.rss_kb,
                mib(rss.rss_kb),
                rss.hwm_kb
            );
            Ok(())
        }
        Command::Startup(args) => startup::run(args),
        Command::Idle(args) => idle::main(args),
        Command::IdleWorker(args) => idle::worker(args),
        Command::Fanout(args) => fanout::main(args),
        Command::ChatMix(args) => chat_mix::main(args),
        Command::ReconnectStorm(args) => storm::main(args),
        Command::Upload(args) => upload::main(args),
        Command::Search(args) => search::main(args),
        Command::Post(args) => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(post(args))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

struct Rss {
    rss_kb: u64,
    hwm_kb: u64,
}

fn read_rss(pid: u32) -> anyhow::Result<Rss> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("{name} not in {path}"))?;
        let kb = line.trim_start_matches(':').trim().trim_end_matches("kB").trim();
        kb.parse::<u64>().with_context(|| format!("parse {name}: {kb:?}"))
    };
    Ok(Rss { rss_kb: field("VmRSS")?, hwm_kb: field("VmHWM")? })
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`, assuming Linux's
/// usual 100 clock ticks per second.
fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // Fields after the command name (which may hold spaces) start with the state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).context("malformed stat");
    Ok(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// REST client

/// A REST client for one base URL, optionally authenticated.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: Arc<str>,
    /// `(user id, token)`.
    auth: Option<(Arc<str>, Arc<str>)>,
}

impl Api {
    fn with_auth(&self, user_id: &str, token: &str) -> Api {
        Api { http: self.http.clone(), base: self.base.clone(), auth: Some((user_id.into(), token.into())) }
    }

    /// POSTs `body` to `/api/v1/<endpoint>` and returns the JSON reply if it succeeded.
    async fn post(&self, endpoint: &str, body: &Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}/api/v1/{endpoint}", self.base)).json(body);
        if let Some((uid, token)) = &self.auth {
            req = req.header("X-User-Id", &**uid).header("X-Auth-Token", &**token);
        }
        let resp = req.send().await.with_context(|| format!("{endpoint}: request failed"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("{endpoint}: reading reply"))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let success = value.get("success").and_then(Value::as_bool).unwrap_or(false)
            || value.get("status").and_then(Value::as_str) == Some("success");
        if !status.is_success() || !success {
            bail!(
                "{endpoint}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>()
            );
        }
        Ok(value)
    }

    /// GETs `/api/v1/<path_and_query>` and returns the JSON reply if it succeeded.
    async fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}/api/v1/{path_and_query}", self.base));
        if let Some((uid, token)) = &self.auth {
            req = req.header("X-User-Id", &**uid).header("X-Auth-Token", &**token);
        }
        let resp = req.send().await.with_context(|| format!("{path_and_query}: request failed"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("{path_and_query}: reading reply"))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() || value.get("success").and_then(Value::as_bool) != Some(true) {
            bail!(
                "{path_and_query}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>()
            );
        }
        Ok(value)
    }

    /// Logs in and returns a client authenticated as that user.
    async fn login(&self, user: &str, password: &str) -> anyhow::Result<Api> {
        let reply = self.post("login", &json!({ "user": user, "password": password })).await?;
        let data = &reply["data"];
        let (Some(uid), Some(token)) = (data["userId"].as_str(), data["authToken"].as_str()) else {
            bail!("login {user}: no userId/authToken in reply: {reply}");
        };
        Ok(self.with_auth(uid, token))
    }
}

/// Refuses anything but a loopback `http://` URL and returns it without a trailing slash.
fn loopback_base(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid --url {url:?}"))?;
    if parsed.scheme() != "http" {
        bail!("--url must be http:// (got {url})");
    }
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("--url must point at this machine (127.0.0.1, ::1 or localhost), got {url}");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

// ---------------------------------------------------------------------------------------------
// post

async fn post(args: PostArgs) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let users = args.users.unwrap_or(args.clients).max(1);
    let duration = match args.duration {
        Some(s) if s > MAX_DURATION_SECS => bail!("--duration is at most {MAX_DURATION_SECS} s"),
        Some(0) => bail!("--duration must be at least 1 s"),
        Some(s) => Some(Duration::from_secs(s)),
        None => None,
    };
    let base = loopback_base(&args.url)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .pool_max_idle_per_host(args.clients.max(SETUP_CONCURRENCY))
        .tcp_nodelay(true)
        .build()?;
    let anon = Api { http, base: base.into(), auth: None };

    if let Some(pid) = args.pid {
        let rss = read_rss(pid)?;
        println!("server RSS before: {} kB ({:.1} MiB)", rss.rss_kb, mib(rss.rss_kb));
    }

    // Setup: admin, users, logins, the channel.
    let setup_started = Instant::now();
    let prefix = run_prefix();
    let admin = anon
        .login(TEST_ADMIN, TEST_ADMIN)
        .await
        .context("log in as the TEST_MODE admin (is TEST_MODE=true?)")?;
    let names: Vec<String> = (0..users).map(|i| format!("{prefix}-u{i}")).collect();
    let clients: Vec<Api> = create_and_login(&admin, &anon, &names).await?;
    let channel = admin
        .post("channels.create", &json!({ "name": format!("{prefix}-room"), "members": names }))
        .await
        .context("create the channel")?;
    let rid = channel["channel"]["_id"].as_str().context("channels.create: no channel._id")?.to_owned();
    println!(
        "setup: prefix {prefix}, {users} users, channel {rid}, {:.2} s",
        setup_started.elapsed().as_secs_f64()
    );

    // The run.
    let budget = Arc::new(AtomicU64::new(0));
    let text_size = args.text_size;
    let total = args.messages;
    let server_cpu0 = args.pid.map(|p| cpu_time(&p.to_string())).transpose()?;
    let own_cpu0 = cpu_time("self")?;
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut tasks = JoinSet::new();
    for c in 0..args.clients {
        let api = clients[c % clients.len()].clone();
        let (budget, rid, prefix) = (budget.clone(), rid.clone(), prefix.clone());
        tasks.spawn(async move {
            let mut out = ClientResult::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = budget.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let body = json!({ "roomId": &rid, "text": message_text(&prefix, c, n, text_size) });
                let sent = Instant::now();
                match api.post("chat.postMessage", &body).await {
                    Ok(_) => out.latencies.push(sent.elapsed()),
                    Err(e) => {
                        out.errors += 1;
                        if out.samples.len() < ERRORS_SHOWN {
                            out.samples.push(format!("{e:#}"));
                        }
                    }
                }
            }
            out
        });
    }
    let mut all = ClientResult::default();
    while let Some(joined) = tasks.join_next().await {
        let mut r = joined.context("client task panicked")?;
        all.latencies.append(&mut r.latencies);
        all.errors += r.errors;
        all.samples.extend(r.samples.into_iter().take(ERRORS_SHOWN.saturating_sub(all.samples.len())));
    }
    let elapsed = started.elapsed();
    let own_cpu = cpu_time("self")?.saturating_sub(own_cpu0);
    let server_cpu = match (args.pid, server_cpu0) {
        (Some(p), Some(before)) => Some(cpu_time(&p.to_string())?.saturating_sub(before)),
        _ => None,
    };

    let summary = Summary::new(args.clients, users, all.latencies, all.errors, elapsed);
    summary.print();
    let per_msg = |cpu: Duration| cpu.as_secs_f64() * 1e6 / summary.ok.max(1) as f64;
    let cores = |cpu: Duration| cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
    if let Some(cpu) = server_cpu {
        println!(
            "server CPU:  {:.2} s ({:.2} cores, {:.0} us/msg)",
            cpu.as_secs_f64(),
            cores(cpu),
            per_msg(cpu)
        );
    }
    println!(
        "bench CPU:   {:.2} s ({:.2} cores, {:.0} us/msg)",
        own_cpu.as_secs_f64(),
        cores(own_cpu),
        per_msg(own_cpu)
    );
    for s in &all.samples {
        println!("  error: {s}");
    }
    let rss_after = match args.pid {
        Some(pid) => {
            let rss = read_rss(pid)?;
            println!(
                "server RSS after: {} kB ({:.1} MiB), peak (VmHWM) {} kB ({:.1} MiB)",
                rss.rss_kb,
                mib(rss.rss_kb),
                rss.hwm_kb,
                mib(rss.hwm_kb)
            );
            Some(rss.rss_kb)
        }
        None => None,
    };
    if args.json {
        let mut line = summary.to_json(rss_after);
        line["server_cpu_s"] = json!(server_cpu.map(|c| c.as_secs_f64()));
        line["bench_cpu_s"] = json!(own_cpu.as_secs_f64());
        println!("{line}");
    }
    if summary.ok == 0 && summary.errors > 0 {
        bail!("every request failed");
    }
    Ok(())
}

/// Creates the users (as the admin) and logs each in, a few at a time.
async fn create_and_login(admin: &Api, anon: &Api, names: &[String]) -> anyhow::Result<Vec<Api>> {
    let limit = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let (admin, anon, name, limit) = (admin.clone(), anon.clone(), name.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let body = json!({
                "username": name,
                "email": format!("{name}@bench.invalid"),
                "name": format!("Bench {name}"),
                "password": USER_PASSWORD,
                "verified": true,
                // Keep the run's users out of #general so runs do not grow it.
                "joinDefaultChannels": false,
            });
            admin.post("users.create", &body).await.with_context(|| format!("create user {name}"))?;
            let api = anon.login(&name, USER_PASSWORD).await.with_context(|| format!("log in as {name}"))?;
            anyhow::Ok((i, api))
        });
    }
    let mut out: Vec<Option<Api>> = vec![None; names.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, api) = joined.context("setup task panicked")??;
        out[i] = Some(api);
    }
    out.into_iter().map(|a| a.context("user missing after setup")).collect()
}

/// A prefix unique to this run: `lg` + seconds since the epoch and the pid, in hex.
fn run_prefix() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("lg{secs:x}{:x}", std::process::id())
}

/// Plain text of exactly `size` bytes (at least the header), no `@` or `#` so no mention lookups.
fn message_text(prefix: &str, client: usize, n: u64, size: usize) -> String {
    let mut text = format!("{prefix} c{client} m{n} ");
    const FILL: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    while text.len() < size {
        let take = (size - text.len()).min(FILL.len());
        text.push_str(&FILL[..take]);
    }
    text
}

#[derive(Default)]
struct ClientResult {
    latencies: Vec<Duration>,
    errors: u64,
    samples: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Results

struct Summary {
    clients: usize,
    users: usize,
    ok: u64,
    errors: u64,
    elapsed: Duration,
    /// p50, p90, p99, max, mean; milliseconds.
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Summary {
    fn new(
        clients: usize,
        users: usize,
        mut latencies: Vec<Duration>,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |p: f64| percentile(&latencies, p).map_or(0.0, ms);
        let mean = if latencies.is_empty() {
            0.0
        } else {
            latencies.iter().map(|d| ms(*d)).sum::<f64>() / latencies.len() as f64
        };
        Summary {
            clients,
            users,
            ok: latencies.len() as u64,
            errors,
            elapsed,
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            max: latencies.last().copied().map_or(0.0, ms),
            mean,
        }
    }

    fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    fn print(&self) {
        println!("clients:     {} ({} users)", self.clients, self.users);
        println!("messages:    {}", self.ok);
        println!("errors:      {}", self.errors);
        println!("elapsed:     {:.3} s", self.elapsed.as_secs_f64());
        println!("throughput:  {:.1} msg/s", self.rate());
        println!(
            "latency ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (mean {:.2})",
            self.p50, self.p90, self.p99, self.max, self.mean
        );
    }

    fn to_json(&self, rss_after_kb: Option<u64>) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "clients": self.clients,
            "users": self.users,
            "messages": self.ok,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed.as_secs_f64()),
            "msg_per_s": round(self.rate()),
            "p50_ms": round(self.p50),
            "p90_ms": round(self.p90),
            "p99_ms": round(self.p99),
            "max_ms": round(self.max),
            "mean_ms": round(self.mean),
            "server_rss_after_kb": rss_after_kb,
        })
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v[..1], 99.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn only_loopback_urls() {
        assert!(loopback_base("http://127.0.0.1:3000/").is_ok());
        assert!(loopback_base("http://localhost:3300").is_ok());
        assert!(loopback_base("http://[::1]:3300").is_ok());
        assert!(loopback_base("http://10.0.0.1:3000").is_err());
        assert!(loopback_base("http://example.com").is_err());
        assert!(loopback_base("https://127.0.0.1").is_err());
    }

    #[test]
    fn message_text_has_the_asked_size() {
        assert_eq!(message_text("lgabc", 3, 17, 64).len(), 64);
        assert_eq!(message_text("lgabc", 3, 17, 1000).len(), 1000);
        assert!(!message_text("lgabc", 0, 0, 500).contains(['@', '#']));
    }
}
