//! `reconnect-storm`: N subscribed clients while a sender posts at a steady rate; K of them drop
//! their sockets at once, stay away for a moment, and reconnect at once (connect, resume login,
//! subscribe), then catch up with `loadMissedMessages` from the last message they saw. The run
//! checks that every client ends with every message (live or caught up) and lists what is
//! missing.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Mutex as AsyncMutex, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::ddp::{self, Sources, Ws, unix_micros};
use crate::fanout::{K_MARK, T_MARK, TS_MARK, message_text, number_after};
use crate::report::{Actions, MISSING_LISTED, Recorder, Report, ServerSampler};
use crate::{Api, loopback_base};

const MAX_CLIENTS: usize = 20_000;
const MAX_SECS: u64 = 3600;

#[derive(Args, Clone)]
pub(crate) struct StormArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Subscribed clients (each its own user).
    #[arg(long, short = 'n', default_value_t = 200)]
    pub clients: usize,
    /// Clients that drop and reconnect at once [default: all of them].
    #[arg(long, short = 'k')]
    pub storm: Option<usize>,
    /// Messages per second the sender posts for the whole run.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of steady traffic before the storm.
    #[arg(long, default_value_t = 3)]
    pub before: u64,
    /// Seconds the dropped clients stay away.
    #[arg(long, default_value_t = 2)]
    pub offline: u64,
    /// Seconds of traffic after the reconnections.
    #[arg(long, default_value_t = 3)]
    pub after: u64,
    /// Seconds to wait for stragglers once the sender stops.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// Loopback source addresses to spread sockets over (127.0.0.1 … 127.0.0.N); 0 = kernel's choice.
    #[arg(long, default_value_t = 0)]
    pub sources: u8,
    /// Initial handshakes in flight at once (the storm itself reconnects everyone at once).
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Server process id: sample its RSS and CPU from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Report path without extension: `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "apogee-bench-reconnect-storm")]
    pub out: PathBuf,
}

pub(crate) fn main(args: StormArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    ks: HashSet<u64>,
    duplicates: u64,
    recovered: u64,
    /// Server `ts` (ms) of the newest message seen: where catching up starts.
    last_ts_ms: u64,
}

impl Seen {
    /// Records message `k`; `true` when it is new.
    fn add(&mut self, k: u64, ts_ms: u64) -> bool {
        self.last_ts_ms = self.last_ts_ms.max(ts_ms);
        if self.ks.insert(k) {
            true
        } else {
            self.duplicates += 1;
            false
        }
    }
}

struct Shared {
    url: String,
    rid: String,
    prefix: String,
    recorder: Recorder,
    actions: Actions,
    /// Distinct (client, message) pairs seen, over all clients.
    distinct: AtomicU64,
    offline: Duration,
}

pub(crate) async fn run(args: StormArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.clients > MAX_CLIENTS {
        bail!("--clients must be 1..={MAX_CLIENTS}");
    }
    let storm = args.storm.unwrap_or(args.clients);
    if storm > args.clients {
        bail!("--storm cannot exceed --clients");
    }
    if !(0.1..=1000.0).contains(&args.rate) {
        bail!("--rate must be 0.1..=1000 messages per second");
    }
    if [args.before, args.offline, args.after, args.drain].iter().any(|s| *s > MAX_SECS) {
        bail!("--before, --offline, --after and --drain are at most {MAX_SECS} s");
    }
    let base = loopback_base(&args.url)?;
    let sources = Sources::loopback(args.sources, 1);

    let setup_started = Instant::now();
    let setup = ddp::setup(&base, args.clients + 1, 1).await?;
    println!(
        "setup: prefix {}, {} clients + 1 sender, {:.2} s",
        setup.prefix,
        args.clients,
        setup_started.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let shared = Arc::new(Shared {
        url: ddp::websocket_url(&base),
        rid: setup.rooms[0].clone(),
        prefix: setup.prefix.clone(),
        recorder: Recorder::new(start),
        actions: Actions::default(),
        distinct: AtomicU64::new(0),
        offline: Duration::from_secs(args.offline),
    });
    let sampler = args.pid.map(|pid| ServerSampler::start(pid, start));

    // Open every client.
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let opening = Instant::now();
    let mut opens = JoinSet::new();
    for i in 0..args.clients {
        let (shared, limit, token, source) =
            (shared.clone(), limit.clone(), setup.tokens[i].clone(), sources.pick(i));
        opens.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let opened = open(&shared, &token, source).await;
            (i, opened)
        });
    }
    let mut sockets: Vec<Option<Ws>> = (0..args.clients).map(|_| None).collect();
    let mut failures = Vec::new();
    while let Some(joined) = opens.join_next().await {
        match joined {
            Ok((i, Ok(ws))) => sockets[i] = Some(ws),
            Ok((_, Err(e))) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let open_took = opening.elapsed();
    let opened = sockets.iter().filter(|s| s.is_some()).count();
    println!("clients: {opened} of {} subscribed in {:.2} s", args.clients, open_took.as_secs_f64());
    for e in failures.iter().take(5) {
        println!("  error: {e}");
    }
    if opened < args.clients {
        bail!("{} clients could not connect", args.clients - opened);
    }

    // Clients run until told to stop; the first `storm` of them also answer the storm.
    let (storm_tx, storm_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let reconnects = Arc::new(AsyncMutex::new(Vec::<Result<Duration, String>>::new()));
    let mut clients = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let Some(ws) = ws else { continue };
        let (shared, token, reconnects) = (shared.clone(), setup.tokens[i].clone(), reconnects.clone());
        let storm_rx = (i < storm).then(|| storm_rx.clone());
        let stop_rx = stop_rx.clone();
        let source = sources.pick(i);
        clients.spawn(async move {
            let seen = client(ws, &shared, &token, source, storm_rx, stop_rx, &reconnects).await;
            (i, seen)
        });
    }

    // The sender, for the whole run.
    let sender = setup.clients[args.clients].clone();
    let (sender_stop_tx, sender_stop_rx) = watch::channel(false);
    let sending = tokio::spawn(send_steadily(sender, shared.clone(), args.rate, sender_stop_rx));

    tokio::time::sleep(Duration::from_secs(args.before)).await;
    println!("storm: dropping {storm} clients at {:.1} s", start.elapsed().as_secs_f64());
    let storm_at = Instant::now();
    let _ = storm_tx.send(true);
    tokio::time::sleep(shared.offline).await;
    // Wait for the reconnections (bounded), then let traffic run on.
    let reconnect_deadline = Instant::now() + Duration::from_secs(120);
    while reconnects.lock().await.len() < storm && Instant::now() < reconnect_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let storm_took = storm_at.elapsed().saturating_sub(shared.offline);
    let (reconnected, reconnect_errors): (Vec<_>, Vec<_>) =
        reconnects.lock().await.drain(..).partition(|r| r.is_ok());
    println!(
        "storm: {} of {storm} reconnected and caught up within {:.2} s of coming back",
        reconnected.len(),
        storm_took.as_secs_f64()
    );
    for e in reconnect_errors.iter().take(5) {
        if let Err(e) = e {
            println!("  reconnect error: {e}");
        }
    }
    tokio::time::sleep(Duration::from_secs(args.after)).await;
    let _ = sender_stop_tx.send(true);
    let sent: Vec<(u64, String)> = sending.await.unwrap_or_default();
    let target = sent.len() as u64 * args.clients as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
    while shared.distinct.load(Ordering::Relaxed) < target && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut per_client: Vec<(usize, Seen)> = Vec::with_capacity(args.clients);
    while let Some(joined) = clients.join_next().await {
        if let Ok(got) = joined {
            per_client.push(got);
        }
    }
    per_client.sort_by_key(|(i, _)| *i);

    let server = match (sampler, args.pid) {
        (Some(s), Some(pid)) => Some((pid, s.finish().await)),
        _ => None,
    };
    let mut report = Report::new(
        "reconnect-storm",
        json!({
            "clients": args.clients, "storm": storm, "rate": args.rate, "before_s": args.before,
            "offline_s": args.offline, "after_s": args.after, "sources": args.sources,
        }),
        &shared.recorder,
        &shared.actions,
    );
    report.connections = (args.clients as u64, opened as u64, open_took);
    report.sent = sent.len() as u64;
    report.expected = target;
    report.server = server;
    let mut missing = 0u64;
    let mut recovered = 0u64;
    for (i, seen) in &per_client {
        report.received += sent.iter().filter(|(k, _)| seen.ks.contains(k)).count() as u64;
        report.duplicates += seen.duplicates;
        recovered += seen.recovered;
        for (k, id) in &sent {
            if !seen.ks.contains(k) {
                missing += 1;
                if report.missing.len() < MISSING_LISTED {
                    report.missing.push(format!("client {i}: message {id} (#{k})"));
                }
            }
        }
    }
    report.missing_count = missing;
    let reconnect_rate = reconnected.len() as f64 / storm_took.as_secs_f64().max(1e-9);
    report.extra = json!({
        "reconnected": reconnected.len(),
        "reconnect_errors": reconnect_errors.len(),
        "storm_recovery_s": (storm_took.as_secs_f64() * 1000.0).round() / 1000.0,
        "reconnect_per_s": reconnect_rate.round(),
        "recovered_by_load_missed": recovered,
    });
    report.print();
    println!(
        "storm:          {} reconnected ({:.0}/s), {} messages recovered by loadMissedMessages",
        reconnected.len(),
        reconnect_rate,
        recovered
    );
    report.write(&args.out)?;
    if missing > 0 {
        bail!("{missing} deliveries missing after the storm");
    }
    Ok(())
}

async fn open(shared: &Shared, token: &str, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let started = Instant::now();
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        ddp::open_from(&shared.url, token, Some(&shared.rid), source),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out")));
    shared.actions.record("connect+login", started.elapsed(), opened.is_ok());
    opened
}

/// A client's life: record deliveries; on the storm, drop the socket, come back, catch up.
async fn client(
    mut ws: Ws,
    shared: &Shared,
    token: &str,
    source: Option<IpAddr>,
    mut storm: Option<watch::Receiver<bool>>,
    mut stop: watch::Receiver<bool>,
    reconnects: &AsyncMutex<Vec<Result<Duration, String>>>,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        let storm_signal = async {
            match storm.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            fired = storm_signal => {
                storm = None;
                if !fired {
                    continue;
                }
                // Gone without a goodbye, like a client losing its network.
                drop(ws);
                tokio::time::sleep(shared.offline).await;
                let back = Instant::now();
                match reconnect(shared, token, source, &mut seen).await {
                    Ok(new_ws) => {
                        ws = new_ws;
                        reconnects.lock().await.push(Ok(back.elapsed()));
                    }
                    Err(e) => {
                        reconnects.lock().await.push(Err(format!("{e:#}")));
                        return seen;
                    }
                }
            }
            next = ws.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if ddp::is_ping(text) {
                        if ddp::send(&mut ws, &json!({"msg": "pong"})).await.is_err() {
                            break;
                        }
                    } else {
                        live(shared, &mut seen, text);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    ddp::close(ws).await;
    seen
}

/// A live frame: a delivery of one of our messages, timed.
fn live(shared: &Shared, seen: &mut Seen, text: &str) {
    let received = unix_micros();
    if !text.contains(r#""collection":"stream-room-messages""#) || !text.contains(&shared.prefix) {
        return;
    }
    let (Some(k), Some(sent_us)) = (number_after(text, K_MARK), number_after(text, T_MARK)) else { return };
    if seen.add(k, number_after(text, TS_MARK).unwrap_or(0)) {
        shared.distinct.fetch_add(1, Ordering::Relaxed);
        shared.recorder.delivery(received.saturating_sub(sent_us));
    }
}

/// Reconnects and asks for what was missed since the last message seen.
async fn reconnect(
    shared: &Shared,
    token: &str,
    source: Option<IpAddr>,
    seen: &mut Seen,
) -> anyhow::Result<Ws> {
    let mut ws = open(shared, token, source).await?;
    // One millisecond early: messages sharing the last one's timestamp are not skipped (the
    // duplicates are dropped here).
    let since = seen.last_ts_ms.saturating_sub(1);
    let started = Instant::now();
    ddp::send(
        &mut ws,
        &json!({"msg": "method", "id": "missed", "method": "loadMissedMessages", "params": [shared.rid, {"$date": since}]}),
    )
    .await?;
    // Live events keep arriving while the answer is on its way.
    let result = loop {
        let text = match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => bail!("read: {e}"),
            Ok(None) => bail!("socket ended"),
            Err(_) => bail!("loadMissedMessages timed out"),
        };
        if ddp::is_ping(text.as_str()) {
            ddp::send(&mut ws, &json!({"msg": "pong"})).await?;
            continue;
        }
        if text.contains(r#""id":"missed""#) && text.contains(r#""msg":"result""#) {
            break serde_json::from_str::<Value>(text.as_str())?;
        }
        live(shared, seen, text.as_str());
    };
    let ok = result.get("error").is_none();
    shared.actions.record("loadMissed", started.elapsed(), ok);
    if !ok {
        bail!("loadMissedMessages failed: {}", result["error"]);
    }
    for m in result["result"].as_array().into_iter().flatten() {
        let text = m["msg"].as_str().unwrap_or_default();
        if !text.starts_with(&shared.prefix) {
            continue;
        }
        let Some(k) = number_after(text, K_MARK) else { continue };
        let ts = m["ts"]["$date"].as_u64().unwrap_or(0);
        if seen.add(k, ts) {
            seen.recovered += 1;
            shared.distinct.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(ws)
}

/// Posts at `rate` until stopped; returns `(k, message id)` of every acknowledged post.
async fn send_steadily(
    api: Api,
    shared: Arc<Shared>,
    rate: f64,
    mut stop: watch::Receiver<bool>,
) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0.. {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let sent_us = unix_micros();
        let text = message_text(&shared.prefix, k, sent_us, 64);
        let started = Instant::now();
        let reply = api.post("chat.postMessage", &json!({"roomId": shared.rid, "text": text})).await;
        shared.actions.record("send", started.elapsed(), reply.is_ok());
        if let Ok(reply) = reply
            && let Some(id) = reply["message"]["_id"].as_str()
        {
            out.push((k, id.to_owned()));
        }
    }
    out
}
