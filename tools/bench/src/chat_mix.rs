//! `chat-mix`: users doing what people do in a chat client, each with a live DDP socket.
//!
//! Users are split into rooms of `--room-size` members. Every user keeps one socket subscribed to
//! its room's `stream-room-messages` and, every `--think` seconds on average, does one action
//! drawn from a fixed profile close to Rocket.Chat's own load tester: send a message (40%),
//! typing (20%, a DDP `stream-notify-room` call), open the room (15%, the history a client loads),
//! mark it read (15%), set a status (10%). Every REST call's latency is recorded per action;
//! every message is timed from send to each member's socket, and checked for on every member.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;
use tokio::sync::{Mutex as AsyncMutex, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::ddp::{self, Sources, Ws, unix_micros};
use crate::fanout::{K_MARK, T_MARK, message_text, number_after};
use crate::report::{Actions, MISSING_LISTED, Recorder, Report, ServerSampler};
use crate::{Api, loopback_base};

const MAX_USERS: usize = 20_000;
const MAX_SECS: u64 = 3600;

/// The action profile: (name, weight).
const PROFILE: [(&str, u32); 5] =
    [("send", 40), ("typing", 20), ("open-room", 15), ("read", 15), ("set-status", 10)];

#[derive(Args, Clone)]
pub(crate) struct ChatMixArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Simulated users, each with one socket.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub users: usize,
    /// Members per room.
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// Mean seconds between one user's actions.
    #[arg(long, default_value_t = 2.0)]
    pub think: f64,
    /// Seconds of activity.
    #[arg(long, short = 'd', default_value_t = 20)]
    pub duration: u64,
    /// Seconds to wait for outstanding deliveries after the last action.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// Loopback source addresses to spread sockets over (127.0.0.1 … 127.0.0.N); 0 = kernel's choice.
    #[arg(long, default_value_t = 0)]
    pub sources: u8,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Server process id: sample its RSS and CPU from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Report path without extension: `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "apogee-bench-chat-mix")]
    pub out: PathBuf,
}

pub(crate) fn main(args: ChatMixArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

struct Shared {
    prefix: String,
    recorder: Recorder,
    actions: Actions,
    next_k: AtomicU64,
    /// Deliveries of our messages seen so far, over all sockets.
    delivered: AtomicU64,
    /// `(k, room index, message id)` of every acknowledged send.
    sent: AsyncMutex<Vec<(u64, usize, String)>>,
}

pub(crate) async fn run(args: ChatMixArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.users > MAX_USERS {
        bail!("--users must be 1..={MAX_USERS}");
    }
    if args.room_size == 0 || args.room_size > args.users {
        bail!("--room-size must be 1..=--users");
    }
    if !(0.01..=600.0).contains(&args.think) {
        bail!("--think must be 0.01..=600 s");
    }
    if args.duration == 0 || args.duration > MAX_SECS || args.drain > MAX_SECS {
        bail!("--duration must be 1..={MAX_SECS} s and --drain at most {MAX_SECS} s");
    }
    let base = loopback_base(&args.url)?;
    let url = ddp::websocket_url(&base);
    let sources = Sources::loopback(args.sources, 1);

    // Users, then rooms of `room_size` consecutive users (the last room may be smaller).
    let setup_started = Instant::now();
    let setup = ddp::setup(&base, args.users, 0).await?;
    let mut rooms: Vec<String> = Vec::new();
    for (r, members) in setup.names.chunks(args.room_size).enumerate() {
        let body = json!({ "name": format!("{}-mix{r}", setup.prefix), "members": members });
        let reply = setup.admin.post("channels.create", &body).await.context("create a room")?;
        rooms.push(reply["channel"]["_id"].as_str().context("channels.create: no channel._id")?.to_owned());
    }
    let room_of = |u: usize| u / args.room_size;
    println!(
        "setup: prefix {}, {} users in {} rooms of {}, {:.2} s",
        setup.prefix,
        args.users,
        rooms.len(),
        args.room_size,
        setup_started.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let shared = Arc::new(Shared {
        prefix: setup.prefix.clone(),
        recorder: Recorder::new(start),
        actions: Actions::default(),
        next_k: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        sent: AsyncMutex::new(Vec::new()),
    });
    let sampler = args.pid.map(|pid| ServerSampler::start(pid, start));

    // Sockets.
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let opening = Instant::now();
    let mut opens = JoinSet::new();
    for u in 0..args.users {
        let (url, token, rid, limit, shared) =
            (url.clone(), setup.tokens[u].clone(), rooms[room_of(u)].clone(), limit.clone(), shared.clone());
        let source = sources.pick(u);
        opens.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = Instant::now();
            let opened = tokio::time::timeout(
                Duration::from_secs(60),
                ddp::open_from(&url, &token, Some(&rid), source),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out")));
            shared.actions.record("connect+login", started.elapsed(), opened.is_ok());
            (u, opened)
        });
    }
    let mut sockets: Vec<Option<Ws>> = (0..args.users).map(|_| None).collect();
    let mut failures = Vec::new();
    while let Some(joined) = opens.join_next().await {
        match joined {
            Ok((u, Ok(ws))) => sockets[u] = Some(ws),
            Ok((_, Err(e))) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let open_took = opening.elapsed();
    let opened = sockets.iter().filter(|s| s.is_some()).count();
    println!("sockets: {opened} of {} subscribed in {:.2} s", args.users, open_took.as_secs_f64());
    for e in failures.iter().take(5) {
        println!("  error: {e}");
    }
    if opened < args.users {
        bail!("{} users could not connect", args.users - opened);
    }

    // Each user: a socket task (deliveries, pongs, typing calls) and an action task.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (act_stop_tx, act_stop_rx) = watch::channel(false);
    let mut socket_tasks = JoinSet::new();
    let mut action_tasks = JoinSet::new();
    for (u, ws) in sockets.into_iter().enumerate() {
        let Some(ws) = ws else { continue };
        let (typing_tx, typing_rx) = mpsc::channel::<serde_json::Value>(8);
        let shared2 = shared.clone();
        let stop = stop_rx.clone();
        socket_tasks.spawn(async move { (u, socket(ws, &shared2, typing_rx, stop).await) });
        let user = User {
            api: setup.clients[u].clone(),
            username: setup.names[u].clone(),
            room: room_of(u),
            rid: rooms[room_of(u)].clone(),
        };
        let (shared, stop, think) = (shared.clone(), act_stop_rx.clone(), args.think);
        action_tasks.spawn(async move { act(user, &shared, typing_tx, think, stop).await });
    }
    println!("running {} users for {} s (think {} s)...", args.users, args.duration, args.think);
    let progress_every = Duration::from_secs(5);
    let until = Instant::now() + Duration::from_secs(args.duration);
    while Instant::now() < until {
        tokio::time::sleep(progress_every.min(until.saturating_duration_since(Instant::now()))).await;
        println!(
            "  {:.0} s: {} sent, {} delivered",
            start.elapsed().as_secs_f64(),
            shared.sent.lock().await.len(),
            shared.delivered.load(Ordering::Relaxed)
        );
    }
    let _ = act_stop_tx.send(true);
    while action_tasks.join_next().await.is_some() {}

    let sent = std::mem::take(&mut *shared.sent.lock().await);
    let members = |room: usize| room * args.room_size..((room + 1) * args.room_size).min(args.users);
    let target: u64 = sent.iter().map(|(_, r, _)| members(*r).len() as u64).sum();
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
    while shared.delivered.load(Ordering::Relaxed) < target && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut seen: HashMap<usize, (HashSet<u64>, u64)> = HashMap::new();
    while let Some(joined) = socket_tasks.join_next().await {
        if let Ok((u, got)) = joined {
            seen.insert(u, got);
        }
    }

    let server = match (sampler, args.pid) {
        (Some(s), Some(pid)) => Some((pid, s.finish().await)),
        _ => None,
    };
    let mut report = Report::new(
        "chat-mix",
        json!({
            "users": args.users, "room_size": args.room_size, "rooms": rooms.len(), "think_s": args.think,
            "duration_s": args.duration, "sources": args.sources,
            "profile": PROFILE.iter().map(|(n, w)| json!({"action": n, "weight": w})).collect::<Vec<_>>(),
        }),
        &shared.recorder,
        &shared.actions,
    );
    report.connections = (args.users as u64, opened as u64, open_took);
    report.sent = sent.len() as u64;
    report.expected = target;
    report.server = server;
    let mut missing = 0u64;
    for (k, room, id) in &sent {
        for u in members(*room) {
            let (ks, _) = seen.get(&u).map(|(k, d)| (Some(k), *d)).unwrap_or((None, 0));
            if ks.is_some_and(|ks| ks.contains(k)) {
                report.received += 1;
            } else {
                missing += 1;
                if report.missing.len() < MISSING_LISTED {
                    report.missing.push(format!("user {u}: message {id} (#{k})"));
                }
            }
        }
    }
    report.duplicates = seen.values().map(|(_, d)| *d).sum();
    report.missing_count = missing;
    report.print();
    report.write(&args.out)?;
    if missing > 0 {
        bail!("{missing} deliveries missing");
    }
    Ok(())
}

struct User {
    api: Api,
    username: String,
    room: usize,
    rid: String,
}

/// One user's actions until stopped.
async fn act(
    user: User,
    shared: &Shared,
    typing: mpsc::Sender<serde_json::Value>,
    think: f64,
    mut stop: watch::Receiver<bool>,
) {
    let total: u32 = PROFILE.iter().map(|(_, w)| w).sum();
    // Users start spread over one think time, so the first second is not a burst.
    let mut wait = Duration::from_secs_f64(rand::rng().random_range(0.0..think));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let (pick, jitter) = {
            let mut rng = rand::rng();
            (rng.random_range(0..total), rng.random_range(0.5..1.5))
        };
        wait = Duration::from_secs_f64(think * jitter);
        let mut acc = 0;
        let action = PROFILE
            .iter()
            .find(|(_, w)| {
                acc += w;
                pick < acc
            })
            .map_or("send", |(name, _)| *name);
        n += 1;
        let started = Instant::now();
        let ok = match action {
            "send" => {
                let k = shared.next_k.fetch_add(1, Ordering::Relaxed);
                let text = message_text(&shared.prefix, k, unix_micros(), 64);
                let body = json!({"message": {"rid": user.rid, "msg": text}});
                match user.api.post("chat.sendMessage", &body).await {
                    Ok(reply) => {
                        if let Some(id) = reply["message"]["_id"].as_str() {
                            shared.sent.lock().await.push((k, user.room, id.to_owned()));
                        }
                        true
                    }
                    Err(_) => false,
                }
            }
            "typing" => {
                // The socket task writes the call and times its answer.
                let params =
                    json!([format!("{}/user-activity", user.rid), user.username, ["user-typing"], {}]);
                let frame = json!({"msg": "method", "id": format!("t{n}"), "method": "stream-notify-room", "params": params});
                let _ = typing.send(frame).await;
                continue;
            }
            "open-room" => {
                user.api.get(&format!("channels.history?roomId={}&count=20", user.rid)).await.is_ok()
            }
            "read" => user.api.post("subscriptions.read", &json!({"rid": user.rid})).await.is_ok(),
            _ => {
                let status = if n.is_multiple_of(2) { "away" } else { "online" };
                let body = json!({"status": status, "message": format!("bench {n}")});
                user.api.post("users.setStatus", &body).await.is_ok()
            }
        };
        let took = started.elapsed();
        shared.actions.record(action, took, ok);
        shared.actions.record("rest (all)", took, ok);
    }
}

/// Reads the socket until stopped: times deliveries of our messages, answers pings, writes typing
/// calls and times their results. Returns the messages seen and the duplicates.
async fn socket(
    mut ws: Ws,
    shared: &Shared,
    mut typing: mpsc::Receiver<serde_json::Value>,
    mut stop: watch::Receiver<bool>,
) -> (HashSet<u64>, u64) {
    let mut ks = HashSet::new();
    let mut duplicates = 0;
    let mut calls: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(frame) = typing.recv() => {
                if let Some(id) = frame["id"].as_str() {
                    calls.insert(id.to_owned(), Instant::now());
                }
                if ddp::send(&mut ws, &frame).await.is_err() {
                    break;
                }
            }
            next = ws.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    let received = unix_micros();
                    let text = text.as_str();
                    if ddp::is_ping(text) {
                        if ddp::send(&mut ws, &json!({"msg": "pong"})).await.is_err() {
                            break;
                        }
                    } else if text.starts_with(r#"{"msg":"result""#) || text.contains(r#""msg":"result""#) {
                        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                        if let Some(sent) = value["id"].as_str().and_then(|id| calls.remove(id)) {
                            shared.actions.record("typing", sent.elapsed(), value.get("error").is_none());
                        }
                    } else if text.contains(r#""collection":"stream-room-messages""#) && text.contains(&shared.prefix) {
                        let (Some(k), Some(sent_us)) = (number_after(text, K_MARK), number_after(text, T_MARK)) else {
                            continue;
                        };
                        if ks.insert(k) {
                            shared.delivered.fetch_add(1, Ordering::Relaxed);
                            shared.recorder.delivery(received.saturating_sub(sent_us));
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    ddp::close(ws).await;
    (ks, duplicates)
}
