//! `idle`: the server's memory per idle DDP connection.
//!
//! Creates `--users` users (REST) and one channel holding them, reads the server's VmRSS, opens
//! `--sockets` DDP connections (socket i logs in as user i mod `--users` with `resume`, and with
//! `--subscribe` subscribes to the channel's `stream-room-messages`), lets them sit idle for
//! `--settle` seconds and reads VmRSS again: the difference over the socket count is the cost of
//! one connection. `--hold` keeps them open longer, answering the server's pings, to check that
//! idle sockets survive its heartbeat.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::ddp::{self, Counters};
use crate::{loopback_base, mib, read_rss};

/// Upper bounds so a run always ends.
const MAX_SOCKETS: usize = 100_000;
const MAX_WAIT_SECS: u64 = 3600;
/// Longest the whole open phase may take.
const OPEN_DEADLINE: Duration = Duration::from_secs(900);
/// Errors whose text is printed; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

#[derive(Args)]
pub(crate) struct IdleArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Server process id (VmRSS is read from /proc/<pid>/status).
    #[arg(long)]
    pid: u32,
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
}

pub(crate) fn main(args: IdleArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: IdleArgs) -> anyhow::Result<()> {
    if args.sockets == 0 || args.sockets > MAX_SOCKETS {
        bail!("--sockets must be 1..={MAX_SOCKETS}");
    }
    if args.users == 0 || args.connect_concurrency == 0 {
        bail!("--users and --connect-concurrency must be at least 1");
    }
    if args.settle > MAX_WAIT_SECS || args.hold > MAX_WAIT_SECS || args.timeout > MAX_WAIT_SECS {
        bail!("--settle, --hold and --timeout are at most {MAX_WAIT_SECS} s");
    }
    let base = loopback_base(&args.url)?;
    let url: Arc<str> = ddp::websocket_url(&base).into();

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
    let before = read_rss(args.pid)?;
    println!("server RSS before sockets: {} kB ({:.1} MiB)", before.rss_kb, mib(before.rss_kb));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let counters = Arc::new(Counters::default());
    let limit = Arc::new(Semaphore::new(args.connect_concurrency));
    let handshake_timeout = Duration::from_secs(args.timeout.max(1));
    let opening = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..args.sockets {
        let token = setup.tokens[i % setup.tokens.len()].clone();
        let room = args.subscribe.then(|| rid.clone());
        let (url, limit, ready, counters) = (url.clone(), limit.clone(), ready_tx.clone(), counters.clone());
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let opened = {
                let _permit = limit.acquire_owned().await;
                tokio::time::timeout(handshake_timeout, ddp::open(&url, &token, room.as_deref())).await
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
    drop(ready_tx);

    // Wait for every handshake to finish (bounded).
    let deadline = tokio::time::Instant::now() + OPEN_DEADLINE;
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut samples = Vec::new();
    while ok + failed < args.sockets {
        tokio::select! {
            got = ready_rx.recv() => match got {
                Some(Ok(())) => {
                    ok += 1;
                    if ok % 1000 == 0 {
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
    let open_secs = opening.elapsed().as_secs_f64();
    println!(
        "opened: {ok} ok, {failed} failed of {} in {open_secs:.2} s ({:.0} handshakes/s){}",
        args.sockets,
        ok as f64 / open_secs.max(1e-9),
        if args.subscribe { ", each subscribed to the channel" } else { "" }
    );
    for s in &samples {
        println!("  error: {s}");
    }

    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = read_rss(args.pid)?;
    let alive = ok as u64 - counters.dropped.load(Ordering::Relaxed);
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

    let mut held = None;
    if args.hold > 0 {
        println!("holding the sockets open for {} s (answering pings)...", args.hold);
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        let rss = read_rss(args.pid)?;
        let alive = ok as u64 - counters.dropped.load(Ordering::Relaxed);
        let delta = rss.rss_kb as i64 - before.rss_kb as i64;
        println!(
            "after holding: {alive} sockets alive, {} pings answered, {} frames received; RSS {} kB, delta {delta} kB = {:.0} bytes/connection",
            counters.pings.load(Ordering::Relaxed),
            counters.frames.load(Ordering::Relaxed),
            rss.rss_kb,
            per_conn(delta)
        );
        held = Some((rss.rss_kb, alive));
    }

    // Close everything (bounded), then see what the server gives back.
    let _ = stop_tx.send(true);
    let closing =
        tokio::time::timeout(Duration::from_secs(60), async { while tasks.join_next().await.is_some() {} })
            .await;
    if closing.is_err() {
        println!("some sockets did not close within 60 s; aborting them");
        tasks.abort_all();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = read_rss(args.pid).context("read RSS after closing")?;
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
            "rss_after_hold_kb": held.map(|h| h.0),
            "alive_after_hold": held.map(|h| h.1),
            "pings_answered": counters.pings.load(Ordering::Relaxed),
            "rss_after_close_kb": closed.rss_kb,
        });
        println!("{summary}");
    }
    if ok == 0 {
        bail!("no socket could log in");
    }
    Ok(())
}
