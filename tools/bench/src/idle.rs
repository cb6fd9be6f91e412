//! `idle`: the server's memory per idle DDP connection.
//!
//! Creates `--users` users (REST) and one channel holding them, reads the server's VmRSS, opens
//! `--sockets` DDP connections (socket i logs in as user i mod `--users` with `resume`, and with
//! `--subscribe` subscribes to the channel's `stream-room-messages`), lets them sit idle for
//! `--settle` seconds and reads VmRSS again: the difference over the socket count is the cost of
//! one connection. `--hold` keeps them open longer, answering the server's pings, to check that
//! idle sockets survive its heartbeat.
//!
//! With `--gateways` the sockets are spread over several gateways of one cluster (socket i goes
//! to gateway i mod G) and `--pid` names every gateway process: the RSS reported is their sum.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::ddp::{self, Counters, Sources};
use crate::{Rss, loopback_base, mib, read_rss};

/// Upper bounds so a run always ends.
const MAX_SOCKETS: usize = 100_000;
const MAX_WAIT_SECS: u64 = 3600;
/// Longest the whole open phase may take.
const OPEN_DEADLINE: Duration = Duration::from_secs(900);
/// Errors whose text is printed; the rest are only counted.
const ERRORS_SHOWN: usize = 5;
const MAX_WORKERS: usize = 64;

#[derive(Args)]
pub(crate) struct IdleArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Server process id (VmRSS is read from /proc/<pid>/status); with `--gateways`, every
    /// gateway's, comma-separated: their RSS is summed.
    #[arg(long, value_delimiter = ',', required = true)]
    pid: Vec<u32>,
    /// Gateways to spread the sockets over (loopback URLs, comma-separated); default: `--url`.
    /// Users and the channel are set up through `--url`.
    #[arg(long, value_delimiter = ',')]
    gateways: Vec<String>,
    /// DDP connections to open.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    sockets: usize,
    /// Users to create; socket i logs in as user i mod N.
    #[arg(long, short = 'u', default_value_t = 100)]
    users: usize,
    /// Also subscribe every socket to the channel's stream-room-messages.
    #[arg(long)]
    subscribe: bool,
    /// Handshakes (connect + login + sub) in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Seconds to wait, all sockets open and idle, before reading VmRSS.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// Seconds to keep the sockets open afterwards (answering pings), then read VmRSS again.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Per-socket handshake timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Also print the summary as one JSON line.
    #[arg(long)]
    json: bool,
    /// Loopback source addresses per process (127.0.0.x): each gives ~28k client ports.
    #[arg(long, default_value_t = 0)]
    sources: u8,
    /// Cooperating worker processes holding the sockets (each process may open at most 20,000
    /// files here); 1 = this process holds them.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

/// `idle-worker`: started by `idle --workers N`; holds a slice of the sockets and reports on
/// stdout (`ready <ok> <failed>`, then `done <alive> <pings>` once stdin closes).
#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// JSON file written by the parent: `{"urls", "rid", "tokens"}`.
    #[arg(long)]
    setup: std::path::PathBuf,
    /// First socket index (inclusive) and last (exclusive) this worker opens.
    #[arg(long)]
    from: usize,
    #[arg(long)]
    to: usize,
    #[arg(long)]
    subscribe: bool,
    #[arg(long, default_value_t = 0)]
    sources: u8,
    /// Last octet of this worker's first source address.
    #[arg(long, default_value_t = 1)]
    source_first: u8,
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

pub(crate) fn main(args: IdleArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: IdleArgs) -> anyhow::Result<()> {
    if args.sockets == 0 || args.sockets > MAX_SOCKETS {
        bail!("--sockets must be 1..={MAX_SOCKETS}");
    }
    if args.workers == 0 || args.workers > MAX_WORKERS {
        bail!("--workers must be 1..={MAX_WORKERS}");
    }
    if args.workers * usize::from(args.sources) > 250 {
        bail!("--workers × --sources must be at most 250 (127.0.0.1 … 127.0.0.250)");
    }
    if args.users == 0 || args.connect_concurrency == 0 {
        bail!("--users and --connect-concurrency must be at least 1");
    }
    if args.settle > MAX_WAIT_SECS || args.hold > MAX_WAIT_SECS || args.timeout > MAX_WAIT_SECS {
        bail!("--settle, --hold and --timeout are at most {MAX_WAIT_SECS} s");
    }
    let base = loopback_base(&args.url)?;
    let urls: Vec<String> = if args.gateways.is_empty() {
        vec![ddp::websocket_url(&base)]
    } else {
        args.gateways
            .iter()
            .map(|g| loopback_base(g).map(|b| ddp::websocket_url(&b)))
            .collect::<Result<_, _>>()?
    };
    let urls: Arc<[Arc<str>]> = urls.into_iter().map(Arc::from).collect();

    let setup_started = Instant::now();
    let setup = ddp::setup(&base, args.users, 1).await?;
    let rid: Arc<str> = setup.rooms[0].as_str().into();
    println!(
        "setup: prefix {}, {} users, channel {rid}, {:.2} s",
        setup.prefix,
        args.users,
        setup_started.elapsed().as_secs_f64()
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = read_rss_sum(&args.pid)?;
    println!("server RSS before sockets: {} kB ({:.1} MiB)", before.rss_kb, mib(before.rss_kb));

    let opening = Instant::now();
    let mut held = if args.workers > 1 {
        Held::Workers(spawn_workers(&args, &urls, &rid, &setup.tokens)?)
    } else {
        let sockets = Sockets::open(
            urls.clone(),
            0,
            (0..args.sockets).map(|i| setup.tokens[i % setup.tokens.len()].clone()).collect(),
            args.subscribe.then(|| rid.clone()),
            Sources::loopback(args.sources, 1),
            args.connect_concurrency,
            Duration::from_secs(args.timeout.max(1)),
        );
        Held::Local(sockets)
    };
    let (ok, failed, samples) = held.wait_ready(opening).await;
    let open_secs = opening.elapsed().as_secs_f64();
    println!(
        "opened: {ok} ok, {failed} failed of {} in {open_secs:.2} s ({:.0} handshakes/s){}{}",
        args.sockets,
        ok as f64 / open_secs.max(1e-9),
        if args.subscribe { ", each subscribed to the channel" } else { "" },
        if args.workers > 1 { format!(", over {} worker processes", args.workers) } else { String::new() }
    );
    if urls.len() > 1 {
        println!("  spread over {} gateways", urls.len());
    }
    for s in &samples {
        println!("  error: {s}");
    }

    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = read_rss_sum(&args.pid)?;
    let alive = ok as u64 - held.dropped();
    let delta_kb = after.rss_kb as i64 - before.rss_kb as i64;
    let per_conn = |delta_kb: i64| if alive > 0 { delta_kb as f64 * 1024.0 / alive as f64 } else { 0.0 };
    println!(
        "server RSS after {}s idle: {} kB ({:.1} MiB), peak {} kB; delta {delta_kb} kB over {alive} live sockets = {:.0} bytes/connection",
        args.settle,
        after.rss_kb,
        mib(after.rss_kb),
        after.hwm_kb,
        per_conn(delta_kb)
    );

    let mut held_rss = None;
    if args.hold > 0 {
        println!("holding the sockets open for {} s (answering pings)...", args.hold);
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        let rss = read_rss_sum(&args.pid)?;
        let alive = ok as u64 - held.dropped();
        let delta = rss.rss_kb as i64 - before.rss_kb as i64;
        println!(
            "after holding: {alive} sockets alive; RSS {} kB, delta {delta} kB = {:.0} bytes/connection",
            rss.rss_kb,
            per_conn(delta)
        );
        held_rss = Some((rss.rss_kb, alive));
    }

    // Close everything (bounded), then see what the server gives back.
    let pings = held.close().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = read_rss_sum(&args.pid).context("read RSS after closing")?;
    println!("server RSS 3 s after closing every socket: {} kB", closed.rss_kb);

    if args.json {
        let summary = json!({
            "sockets": args.sockets,
            "users": args.users,
            "subscribed": args.subscribe,
            "opened": ok,
            "failed": failed,
            "open_s": (open_secs * 1000.0).round() / 1000.0,
            "rss_before_kb": before.rss_kb,
            "rss_after_kb": after.rss_kb,
            "bytes_per_connection": per_conn(delta_kb).round(),
            "rss_after_hold_kb": held_rss.map(|h| h.0),
            "alive_after_hold": held_rss.map(|h| h.1),
            "pings_answered": pings,
            "workers": args.workers,
            "sources": args.sources,
            "gateways": urls.len(),
            "processes_measured": args.pid.len(),
            "rss_after_close_kb": closed.rss_kb,
        });
        println!("{summary}");
    }
    if ok == 0 {
        bail!("no socket could log in");
    }
    Ok(())
}

/// Sockets held by this process.
struct Sockets {
    tasks: JoinSet<()>,
    ready: mpsc::UnboundedReceiver<Result<(), String>>,
    stop: watch::Sender<bool>,
    counters: Arc<Counters>,
    total: usize,
}

impl Sockets {
    /// Starts opening one socket per token (`room`: subscribe each to it).
    /// Socket `first + k` (its index in the whole run) goes to `urls[(first + k) % len]`.
    fn open(
        urls: Arc<[Arc<str>]>,
        first: usize,
        tokens: Vec<Arc<str>>,
        room: Option<Arc<str>>,
        sources: Sources,
        concurrency: usize,
        handshake_timeout: Duration,
    ) -> Sockets {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = mpsc::unbounded_channel::<Result<(), String>>();
        let counters = Arc::new(Counters::default());
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let total = tokens.len();
        for (i, token) in tokens.into_iter().enumerate() {
            let url = urls[(first + i) % urls.len()].clone();
            let (limit, ready, counters, room) =
                (limit.clone(), ready_tx.clone(), counters.clone(), room.clone());
            let mut stop = stop_rx.clone();
            let source = sources.pick(i);
            tasks.spawn(async move {
                let opened = {
                    let _permit = limit.acquire_owned().await;
                    tokio::time::timeout(
                        handshake_timeout,
                        ddp::open_from(&url, &token, room.as_deref(), source),
                    )
                    .await
                };
                let mut ws = match opened {
                    Ok(Ok(ws)) => ws,
                    Ok(Err(e)) => {
                        let _ = ready.send(Err(format!("{e:#}")));
                        return;
                    }
                    Err(_) => {
                        let _ = ready.send(Err("handshake timed out".to_owned()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                drop(ready);
                let _ = ddp::hold(&mut ws, &mut stop, &counters, |_, _| {}).await;
                ddp::close(ws).await;
            });
        }
        Sockets { tasks, ready, stop, counters, total }
    }

    /// Waits (bounded) for every handshake; returns (ok, failed, a few errors).
    async fn wait_ready(&mut self, opening: Instant, progress: bool) -> (usize, usize, Vec<String>) {
        let deadline = tokio::time::Instant::now() + OPEN_DEADLINE;
        let (mut ok, mut failed) = (0usize, 0usize);
        let mut samples = Vec::new();
        while ok + failed < self.total {
            tokio::select! {
                got = self.ready.recv() => match got {
                    Some(Ok(())) => {
                        ok += 1;
                        if progress && ok % 1000 == 0 {
                            println!("  {ok} sockets logged in ({:.1} s)", opening.elapsed().as_secs_f64());
                        }
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        if samples.len() < ERRORS_SHOWN {
                            samples.push(e);
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => {
                    println!("open phase deadline reached");
                    break;
                }
            }
        }
        (ok, failed, samples)
    }

    /// Closes every socket (bounded); returns the pings answered.
    async fn close(mut self) -> u64 {
        let _ = self.stop.send(true);
        let tasks = &mut self.tasks;
        let closing = tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if closing.is_err() {
            println!("some sockets did not close within 60 s; aborting them");
            self.tasks.abort_all();
        }
        self.counters.pings.load(Ordering::Relaxed)
    }
}

/// Worker processes, each holding a slice of the sockets.
struct Workers {
    children: Vec<std::process::Child>,
    lines: std::sync::mpsc::Receiver<(usize, String)>,
    _setup: tempfile::NamedTempFile,
    dropped: Vec<u64>,
}

enum Held {
    Local(Sockets),
    Workers(Workers),
}

impl Held {
    async fn wait_ready(&mut self, opening: Instant) -> (usize, usize, Vec<String>) {
        match self {
            Held::Local(s) => s.wait_ready(opening, true).await,
            Held::Workers(w) => {
                let (mut ok, mut failed, mut reported) = (0, 0, 0);
                let mut samples = Vec::new();
                while reported < w.children.len() {
                    let Some((i, line)) = next_line(&w.lines).await else { break };
                    let mut parts = line.split_whitespace();
                    match parts.next() {
                        Some("ready") => {
                            let a: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                            let b: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                            ok += a;
                            failed += b;
                            reported += 1;
                            println!(
                                "  worker {i}: {a} sockets ({b} failed), {:.1} s",
                                opening.elapsed().as_secs_f64()
                            );
                        }
                        Some("error") if samples.len() < ERRORS_SHOWN => {
                            samples.push(format!("worker {i}: {line}"))
                        }
                        _ => {}
                    }
                }
                (ok, failed, samples)
            }
        }
    }

    fn dropped(&self) -> u64 {
        match self {
            Held::Local(s) => s.counters.dropped.load(Ordering::Relaxed),
            // Workers report drops only at the end; while held, trust the ready count.
            Held::Workers(w) => w.dropped.iter().sum(),
        }
    }

    async fn close(self) -> u64 {
        match self {
            Held::Local(s) => s.close().await,
            Held::Workers(mut w) => {
                // Closing a worker's stdin tells it to close its sockets and report.
                for child in &mut w.children {
                    drop(child.stdin.take());
                }
                let mut pings = 0;
                let mut done = 0;
                while done < w.children.len() {
                    let Some((_, line)) = next_line(&w.lines).await else { break };
                    if let Some(rest) = line.strip_prefix("done ") {
                        let mut parts = rest.split_whitespace();
                        let _alive: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                        pings += parts.next().and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
                        done += 1;
                    }
                }
                for child in &mut w.children {
                    let _ = child.wait();
                }
                pings
            }
        }
    }
}

/// The next line any worker printed (waiting off the runtime's threads).
async fn next_line(lines: &std::sync::mpsc::Receiver<(usize, String)>) -> Option<(usize, String)> {
    loop {
        match lines.try_recv() {
            Ok(line) => return Some(line),
            Err(std::sync::mpsc::TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
        }
    }
}

fn spawn_workers(
    args: &IdleArgs,
    urls: &[Arc<str>],
    rid: &str,
    tokens: &[Arc<str>],
) -> anyhow::Result<Workers> {
    use std::io::BufRead;
    let mut setup = tempfile::NamedTempFile::new()?;
    let tokens: Vec<&str> = tokens.iter().map(|t| &**t).collect();
    let urls: Vec<&str> = urls.iter().map(|u| &**u).collect();
    serde_json::to_writer(&mut setup, &json!({ "urls": urls, "rid": rid, "tokens": tokens }))?;
    let exe = std::env::current_exe().context("find own executable")?;
    let (tx, lines) = std::sync::mpsc::channel();
    let mut children = Vec::with_capacity(args.workers);
    let per = args.sockets.div_ceil(args.workers);
    for w in 0..args.workers {
        let (from, to) = (w * per, ((w + 1) * per).min(args.sockets));
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("idle-worker")
            .arg("--setup")
            .arg(setup.path())
            .args(["--from", &from.to_string(), "--to", &to.to_string()])
            .args(["--sources", &args.sources.to_string()])
            .args(["--source-first", &(1 + w * usize::from(args.sources)).to_string()])
            .args(["--connect-concurrency", &args.connect_concurrency.to_string()])
            .args(["--timeout", &args.timeout.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        if args.subscribe {
            cmd.arg("--subscribe");
        }
        let mut child = cmd.spawn().context("start a worker")?;
        let out = child.stdout.take().context("worker stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((w, line)).is_err() {
                    break;
                }
            }
        });
        children.push(child);
    }
    Ok(Workers { children, lines, _setup: setup, dropped: Vec::new() })
}

/// The worker side of `idle --workers`.
pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let setup: serde_json::Value = serde_json::from_slice(&std::fs::read(&args.setup)?)?;
    let urls: Arc<[Arc<str>]> = setup["urls"]
        .as_array()
        .context("setup: urls")?
        .iter()
        .filter_map(|u| u.as_str().map(Arc::from))
        .collect();
    let rid: Arc<str> = setup["rid"].as_str().context("setup: rid")?.into();
    let all: Vec<Arc<str>> = setup["tokens"]
        .as_array()
        .context("setup: tokens")?
        .iter()
        .filter_map(|t| t.as_str().map(Arc::from))
        .collect();
    if all.is_empty() || urls.is_empty() || args.from > args.to {
        bail!("worker: empty token or URL list, or bad range");
    }
    let tokens: Vec<Arc<str>> = (args.from..args.to).map(|i| all[i % all.len()].clone()).collect();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        let mut sockets = Sockets::open(
            urls,
            args.from,
            tokens,
            args.subscribe.then_some(rid),
            Sources::loopback(args.sources, args.source_first),
            args.connect_concurrency,
            Duration::from_secs(args.timeout.max(1)),
        );
        let (ok, failed, samples) = sockets.wait_ready(Instant::now(), false).await;
        for s in samples {
            println!("error {s}");
        }
        println!("ready {ok} {failed}");
        // Hold until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        })
        .await;
        let dropped = sockets.counters.dropped.load(Ordering::Relaxed);
        let pings = sockets.close().await;
        println!("done {} {pings}", ok as u64 - dropped);
        anyhow::Ok(())
    })
}

/// The summed VmRSS and VmHWM of several processes (one gateway's, or every gateway's).
fn read_rss_sum(pids: &[u32]) -> anyhow::Result<Rss> {
    let mut sum = Rss { rss_kb: 0, hwm_kb: 0 };
    for &pid in pids {
        let rss = read_rss(pid)?;
        sum.rss_kb += rss.rss_kb;
        sum.hwm_kb += rss.hwm_kb;
    }
    Ok(sum)
}
