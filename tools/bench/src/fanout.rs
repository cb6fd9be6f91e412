//! `fanout`: delivery latency of one room's messages to many subscribed sockets.
//!
//! Creates `--members` users plus one sender, one channel holding all of them, and one DDP
//! socket per member (logged in with `resume`, subscribed to the channel's
//! `stream-room-messages`). Then, for each rate in `--rates` (a phase; 0 = as fast as
//! `--concurrency` sequential senders go), the sender posts `--messages` messages over REST
//! (`chat.postMessage`), each carrying its index and its send time (µs since the epoch, taken
//! just before the POST). Every socket records when each message reached it; the report gives
//! per-copy delivery latency percentiles, copies delivered against members × messages, and
//! deliveries per second. Sender and sockets run in this process, so they share one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::ddp::{self, Counters, unix_micros};
use crate::report::{Actions, MISSING_LISTED, Recorder, Report, ServerSampler};
use crate::{Api, loopback_base, mib, percentile, read_rss};

const MAX_MEMBERS: usize = 20_000;
const MAX_MESSAGES: u64 = 100_000;
const MAX_WAIT_SECS: u64 = 600;
/// Longest the open phase may take.
const OPEN_DEADLINE: Duration = Duration::from_secs(900);
/// Highest paced rate accepted (messages per second).
const MAX_RATE: f64 = 10_000.0;
const ERRORS_SHOWN: usize = 5;
/// Markers in the message text: index and send time.
pub(crate) const K_MARK: &str = "fo-k=";
pub(crate) const T_MARK: &str = "fo-t=";
pub(crate) const TS_MARK: &str = r#""ts":{"$date":"#;

#[derive(Args)]
pub(crate) struct FanoutArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Room members, each its own user with one subscribed socket.
    #[arg(long, short = 'm', default_value_t = 1000)]
    members: usize,
    /// Messages per phase.
    #[arg(long, short = 'k', default_value_t = 200)]
    messages: u64,
    /// One phase per rate, in messages per second; 0 = burst (no pacing).
    #[arg(long, value_delimiter = ',', default_value = "20,0")]
    rates: Vec<f64>,
    /// Concurrent senders in a burst phase (all post as the sender user).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Message text length in bytes (plain ASCII).
    #[arg(long, default_value_t = 64)]
    text_size: usize,
    /// Seconds to wait for outstanding deliveries after a phase's last send.
    #[arg(long, default_value_t = 15)]
    drain: u64,
    /// Seconds to pause between phases.
    #[arg(long, default_value_t = 3)]
    pause: u64,
    /// Handshakes (connect + login + sub) in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Per-socket handshake timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Server process id: print its VmRSS along the way.
    #[arg(long)]
    pid: Option<u32>,
    /// Also print each phase's summary as one JSON line.
    #[arg(long)]
    json: bool,
    /// Loopback source addresses to spread sockets over (127.0.0.1 … 127.0.0.N); 0 = kernel's choice.
    #[arg(long, default_value_t = 0)]
    sources: u8,
    /// Report of the whole run (all phases) without extension: `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "apogee-bench-fanout")]
    out: std::path::PathBuf,
}

/// One copy of one message, as one socket received it.
#[derive(Clone, Copy)]
struct Delivery {
    k: u64,
    sent_us: u64,
    recv_us: u64,
    /// The message's `ts` (server clock, ms).
    ts_ms: u64,
}

/// One POST of the sender.
struct Sent {
    sent_us: u64,
    post: Result<Duration, String>,
}

pub(crate) fn main(args: FanoutArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.members > MAX_MEMBERS {
        bail!("--members must be 1..={MAX_MEMBERS}");
    }
    if args.messages == 0 || args.messages > MAX_MESSAGES {
        bail!("--messages must be 1..={MAX_MESSAGES}");
    }
    if args.rates.is_empty() || args.rates.iter().any(|r| !(0.0..=MAX_RATE).contains(r)) {
        bail!("--rates must list rates in 0..={MAX_RATE} (0 = burst)");
    }
    if args.concurrency == 0 || args.connect_concurrency == 0 {
        bail!("--concurrency and --connect-concurrency must be at least 1");
    }
    if args.drain > MAX_WAIT_SECS || args.pause > MAX_WAIT_SECS || args.timeout > MAX_WAIT_SECS {
        bail!("--drain, --pause and --timeout are at most {MAX_WAIT_SECS} s");
    }
    let base = loopback_base(&args.url)?;
    let url: Arc<str> = ddp::websocket_url(&base).into();
    let show_rss = |label: &str| {
        if let Some(pid) = args.pid
            && let Ok(rss) = read_rss(pid)
        {
            println!(
                "server RSS {label}: {} kB ({:.1} MiB), peak {} kB",
                rss.rss_kb,
                mib(rss.rss_kb),
                rss.hwm_kb
            );
        }
    };

    // Members plus the sender (the last user).
    let setup_started = Instant::now();
    let setup = ddp::setup(&base, args.members + 1, 1).await?;
    let rid: Arc<str> = setup.rooms[0].as_str().into();
    let sender = setup.clients[args.members].clone();
    println!(
        "setup: prefix {}, {} members + 1 sender, channel {rid}, {:.2} s",
        setup.prefix,
        args.members,
        setup_started.elapsed().as_secs_f64()
    );
    show_rss("before sockets");

    // One socket per member.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let counters = Arc::new(Counters::default());
    let delivered = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(args.connect_concurrency));
    let handshake_timeout = Duration::from_secs(args.timeout.max(1));
    let sources = ddp::Sources::loopback(args.sources, 1);
    let opening = Instant::now();
    let mut sockets = JoinSet::new();
    for i in 0..args.members {
        let token = setup.tokens[i].clone();
        let source = sources.pick(i);
        let (url, rid, limit, ready) = (url.clone(), rid.clone(), limit.clone(), ready_tx.clone());
        let (counters, delivered) = (counters.clone(), delivered.clone());
        let mut stop = stop_rx.clone();
        sockets.spawn(async move {
            let mut got: Vec<Delivery> = Vec::new();
            let opened = {
                let _permit = limit.acquire_owned().await;
                tokio::time::timeout(handshake_timeout, ddp::open_from(&url, &token, Some(&rid), source))
                    .await
            };
            let mut ws = match opened {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => {
                    let _ = ready.send(Err(format!("{e:#}")));
                    return (got, None);
                }
                Err(_) => {
                    let _ = ready.send(Err("handshake timed out".to_owned()));
                    return (got, None);
                }
            };
            let _ = ready.send(Ok(()));
            drop(ready);
            let ended = ddp::hold(&mut ws, &mut stop, &counters, |text, recv_us| {
                if let Some(d) = parse_delivery(text, &rid, recv_us) {
                    got.push(d);
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
            ddp::close(ws).await;
            (got, ended)
        });
    }
    drop(ready_tx);
    let deadline = tokio::time::Instant::now() + OPEN_DEADLINE;
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut samples = Vec::new();
    while ok + failed < args.members {
        tokio::select! {
            got = ready_rx.recv() => match got {
                Some(Ok(())) => ok += 1,
                Some(Err(e)) => {
                    failed += 1;
                    if samples.len() < ERRORS_SHOWN {
                        samples.push(e);
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    let open_took = opening.elapsed();
    println!("sockets: {ok} subscribed, {failed} failed, {:.2} s", open_took.as_secs_f64());
    for s in &samples {
        println!("  error: {s}");
    }
    if ok == 0 {
        bail!("no socket could subscribe");
    }
    show_rss("with sockets");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Phases.
    let run_start = Instant::now();
    let run_start_us = unix_micros();
    let sampler = args.pid.map(|pid| ServerSampler::start(pid, run_start));
    let mut phases = Vec::new();
    let mut next_k = 0u64;
    for (p, &rate) in args.rates.iter().enumerate() {
        if p > 0 {
            tokio::time::sleep(Duration::from_secs(args.pause)).await;
        }
        let ks = next_k..next_k + args.messages;
        next_k = ks.end;
        let target = delivered.load(Ordering::Relaxed) + ok as u64 * args.messages;
        let label =
            if rate > 0.0 { format!("paced {rate}/s") } else { format!("burst x{}", args.concurrency) };
        println!("phase {}: {label}, {} messages...", p + 1, args.messages);
        let started = Instant::now();
        let sent =
            send_phase(&sender, &rid, &setup.prefix, ks.clone(), rate, args.concurrency, args.text_size)
                .await;
        let send_secs = started.elapsed().as_secs_f64();
        let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
        while delivered.load(Ordering::Relaxed) < target && Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "  sent in {send_secs:.2} s; {} of {} copies in after {:.2} s",
            delivered.load(Ordering::Relaxed) - (target - ok as u64 * args.messages),
            ok as u64 * args.messages,
            started.elapsed().as_secs_f64()
        );
        phases.push((label, rate, ks, sent, send_secs));
    }
    show_rss("after the phases");
    let server = match (sampler, args.pid) {
        (Some(s), Some(pid)) => Some((pid, s.finish().await)),
        _ => None,
    };

    // Stop the sockets and gather what they saw.
    let _ = stop_tx.send(true);
    let mut per_socket: Vec<Vec<Delivery>> = Vec::with_capacity(ok);
    let mut dropped = Vec::new();
    let gathered = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(joined) = sockets.join_next().await {
            if let Ok((got, ended)) = joined {
                per_socket.push(got);
                if let Some(why) = ended {
                    dropped.push(why);
                }
            }
        }
    })
    .await;
    if gathered.is_err() {
        println!("some sockets did not finish within 60 s; aborting them");
        sockets.abort_all();
    }
    println!(
        "sockets dropped before the end: {} ({} pings answered)",
        dropped.len(),
        counters.pings.load(Ordering::Relaxed)
    );
    for why in dropped.iter().take(ERRORS_SHOWN) {
        println!("  {why}");
    }

    // The whole run as one report: HDR latency, timeline, completeness with what is missing.
    let recorder = Recorder::new(run_start);
    let all_ks = 0..next_k;
    for got in &per_socket {
        for d in got.iter().filter(|d| all_ks.contains(&d.k)) {
            let at = Duration::from_micros(d.recv_us.saturating_sub(run_start_us));
            recorder.delivery_at(at, d.recv_us.saturating_sub(d.sent_us));
        }
    }
    let mut report = Report::new(
        "fanout",
        json!({ "members": args.members, "messages_per_phase": args.messages, "rates": args.rates, "concurrency": args.concurrency, "sources": args.sources }),
        &recorder,
        &Actions::default(),
    );
    report.connections = (args.members as u64, ok as u64, open_took);
    report.sent = phases.iter().map(|p| p.3.iter().filter(|(_, s)| s.post.is_ok()).count() as u64).sum();
    report.expected = args.members as u64 * next_k;
    report.server = server;
    for (i, got) in per_socket.iter().enumerate() {
        let seen: std::collections::HashSet<u64> = got.iter().map(|d| d.k).collect();
        report.received += all_ks.clone().filter(|k| seen.contains(k)).count() as u64;
        for k in all_ks.clone().filter(|k| !seen.contains(k)) {
            report.missing_count += 1;
            if report.missing.len() < MISSING_LISTED {
                report.missing.push(format!("socket {i}: message #{k}"));
            }
        }
    }
    report.duplicates =
        per_socket.iter().map(|g| g.len() as u64).sum::<u64>().saturating_sub(report.latency.len());
    // Sockets that never opened miss everything.
    report.missing_count += (args.members - per_socket.len()) as u64 * next_k;

    for (label, rate, ks, sent, send_secs) in &phases {
        let report =
            PhaseReport::new(label, *rate, ks.clone(), sent, *send_secs, &per_socket, ok, args.members);
        report.print();
        if args.json {
            println!("{}", report.to_json());
        }
    }
    report.print();
    report.write(&args.out)?;
    Ok(())
}

/// Posts messages `ks` at `rate` per second (0: back to back from `concurrency` senders).
async fn send_phase(
    api: &Api,
    rid: &str,
    prefix: &str,
    ks: std::ops::Range<u64>,
    rate: f64,
    concurrency: usize,
    text_size: usize,
) -> Vec<(u64, Sent)> {
    let mut out = Vec::with_capacity((ks.end - ks.start) as usize);
    if rate > 0.0 {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for k in ks {
            tick.tick().await;
            out.push((k, send_one(api, rid, prefix, k, text_size).await));
        }
        return out;
    }
    let next = Arc::new(AtomicU64::new(ks.start));
    let mut senders = JoinSet::new();
    for _ in 0..concurrency {
        let (api, rid, prefix, next, end) =
            (api.clone(), rid.to_owned(), prefix.to_owned(), next.clone(), ks.end);
        senders.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= end {
                    break;
                }
                mine.push((k, send_one(&api, &rid, &prefix, k, text_size).await));
            }
            mine
        });
    }
    while let Some(joined) = senders.join_next().await {
        if let Ok(mut mine) = joined {
            out.append(&mut mine);
        }
    }
    out
}

async fn send_one(api: &Api, rid: &str, prefix: &str, k: u64, text_size: usize) -> Sent {
    let sent_us = unix_micros();
    let text = message_text(prefix, k, sent_us, text_size);
    let started = Instant::now();
    let post = match api.post("chat.postMessage", &json!({ "roomId": rid, "text": text })).await {
        Ok(_) => Ok(started.elapsed()),
        Err(e) => Err(format!("{e:#}")),
    };
    Sent { sent_us, post }
}

/// `<prefix> fo-k=<k> fo-t=<µs> ` padded to `size` bytes; no `@` or `#`.
pub(crate) fn message_text(prefix: &str, k: u64, sent_us: u64, size: usize) -> String {
    let mut text = format!("{prefix} {K_MARK}{k} {T_MARK}{sent_us} ");
    const FILL: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    while text.len() < size {
        let take = (size - text.len()).min(FILL.len());
        text.push_str(&FILL[..take]);
    }
    text
}

/// The digits right after `mark` in `text`.
pub(crate) fn number_after(text: &str, mark: &str) -> Option<u64> {
    let rest = &text[text.find(mark)? + mark.len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A `stream-room-messages` event for `rid` carrying one of our messages (cheap string scans,
/// no JSON parse: this runs once per copy on the receiving side of the measurement).
fn parse_delivery(text: &str, rid: &str, recv_us: u64) -> Option<Delivery> {
    if !text.contains(r#""collection":"stream-room-messages""#) || !text.contains(rid) {
        return None;
    }
    Some(Delivery {
        k: number_after(text, K_MARK)?,
        sent_us: number_after(text, T_MARK)?,
        recv_us,
        ts_ms: number_after(text, TS_MARK).unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------------
// Results

struct PhaseReport {
    label: String,
    rate: f64,
    messages: u64,
    posted: u64,
    post_errors: Vec<String>,
    send_secs: f64,
    sockets: usize,
    expected: u64,
    copies: u64,
    duplicates: u64,
    /// Per copy: send → receipt.
    latency: Pcts,
    /// Per copy: send → server `ts`, and server `ts` → receipt (ms resolution on `ts`).
    to_stamp: Pcts,
    stamp_to_recv: Pcts,
    /// Per message: send → receipt by the last socket / by the first socket.
    last_copy: Pcts,
    first_copy: Pcts,
    /// The sender's chat.postMessage round trip.
    post: Pcts,
    /// Copies over (last receipt − first send).
    deliveries_per_s: f64,
    span_secs: f64,
}

#[derive(Default)]
struct Pcts {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Pcts {
    fn of(mut v: Vec<Duration>) -> Pcts {
        v.sort_unstable();
        let ms = |p: f64| percentile(&v, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Pcts { n: v.len(), p50: ms(50.0), p90: ms(90.0), p99: ms(99.0), p999: ms(99.9), max: ms(100.0) }
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
            self.p50, self.p90, self.p99, self.p999, self.max, self.n
        )
    }

    fn to_json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({ "n": self.n, "p50_ms": r(self.p50), "p90_ms": r(self.p90), "p99_ms": r(self.p99), "p999_ms": r(self.p999), "max_ms": r(self.max) })
    }
}

impl PhaseReport {
    #[allow(clippy::too_many_arguments)]
    fn new(
        label: &str,
        rate: f64,
        ks: std::ops::Range<u64>,
        sent: &[(u64, Sent)],
        send_secs: f64,
        per_socket: &[Vec<Delivery>],
        sockets: usize,
        members: usize,
    ) -> PhaseReport {
        let messages = ks.end - ks.start;
        let us = Duration::from_micros;
        let mut latency = Vec::new();
        let mut to_stamp = Vec::new();
        let mut stamp_to_recv = Vec::new();
        let mut last = vec![0u64; messages as usize];
        let mut first = vec![u64::MAX; messages as usize];
        let mut duplicates = 0;
        let (mut first_sent, mut last_recv) = (u64::MAX, 0u64);
        for got in per_socket {
            let mut seen = vec![false; messages as usize];
            for d in got.iter().filter(|d| ks.contains(&d.k)) {
                let i = (d.k - ks.start) as usize;
                if std::mem::replace(&mut seen[i], true) {
                    duplicates += 1;
                    continue;
                }
                let lat = d.recv_us.saturating_sub(d.sent_us);
                latency.push(us(lat));
                if d.ts_ms > 0 {
                    to_stamp.push(us((d.ts_ms * 1000).saturating_sub(d.sent_us)));
                    stamp_to_recv.push(us(d.recv_us.saturating_sub(d.ts_ms * 1000)));
                }
                last[i] = last[i].max(lat);
                first[i] = first[i].min(lat);
                last_recv = last_recv.max(d.recv_us);
            }
        }
        first_sent = sent.iter().map(|(_, s)| s.sent_us).fold(first_sent, u64::min);
        let copies = latency.len() as u64;
        let span_secs = if last_recv > first_sent { (last_recv - first_sent) as f64 / 1e6 } else { 0.0 };
        let post_errors: Vec<String> =
            sent.iter().filter_map(|(_, s)| s.post.as_ref().err().cloned()).collect();
        let posts: Vec<Duration> = sent.iter().filter_map(|(_, s)| s.post.as_ref().ok().copied()).collect();
        PhaseReport {
            label: label.to_owned(),
            rate,
            messages,
            posted: posts.len() as u64,
            post_errors,
            send_secs,
            sockets,
            expected: members as u64 * messages,
            copies,
            duplicates,
            latency: Pcts::of(latency),
            to_stamp: Pcts::of(to_stamp),
            stamp_to_recv: Pcts::of(stamp_to_recv),
            last_copy: Pcts::of(
                last.iter().zip(&first).filter(|(_, f)| **f != u64::MAX).map(|(l, _)| us(*l)).collect(),
            ),
            first_copy: Pcts::of(first.iter().filter(|f| **f != u64::MAX).map(|f| us(*f)).collect()),
            post: Pcts::of(posts),
            deliveries_per_s: if span_secs > 0.0 { copies as f64 / span_secs } else { 0.0 },
            span_secs,
        }
    }

    fn print(&self) {
        println!("== {} ==", self.label);
        println!(
            "messages:        {} posted ({} errors) in {:.2} s = {:.1} msg/s",
            self.posted,
            self.post_errors.len(),
            self.send_secs,
            self.posted as f64 / self.send_secs.max(1e-9)
        );
        for e in self.post_errors.iter().take(ERRORS_SHOWN) {
            println!("  post error: {e}");
        }
        println!(
            "copies:          {} delivered of {} expected ({} sockets × {} messages; {} subscribed), {} duplicates",
            self.copies,
            self.expected,
            self.expected / self.messages.max(1),
            self.messages,
            self.sockets,
            self.duplicates
        );
        println!(
            "deliveries/s:    {:.0} (copies / {:.2} s from first send to last receipt)",
            self.deliveries_per_s, self.span_secs
        );
        println!("latency/copy:    {}", self.latency.line());
        println!("  send→ts:       {}", self.to_stamp.line());
        println!("  ts→receipt:    {}", self.stamp_to_recv.line());
        println!("first copy/msg:  {}", self.first_copy.line());
        println!("last copy/msg:   {}", self.last_copy.line());
        println!("POST latency:    {}", self.post.line());
    }

    fn to_json(&self) -> Value {
        json!({
            "phase": self.label,
            "rate": self.rate,
            "messages": self.messages,
            "posted": self.posted,
            "post_errors": self.post_errors.len(),
            "send_s": (self.send_secs * 1000.0).round() / 1000.0,
            "sockets": self.sockets,
            "expected": self.expected,
            "copies": self.copies,
            "duplicates": self.duplicates,
            "deliveries_per_s": self.deliveries_per_s.round(),
            "latency": self.latency.to_json(),
            "send_to_ts": self.to_stamp.to_json(),
            "ts_to_receipt": self.stamp_to_recv.to_json(),
            "first_copy": self.first_copy.to_json(),
            "last_copy": self.last_copy.to_json(),
            "post": self.post.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_parsed_from_events() {
        let text = message_text("lgabc", 42, 1_700_000_000_123_456, 80);
        assert_eq!(text.len(), 80);
        assert!(!text.contains(['@', '#']));
        let frame = json!({
            "msg": "changed", "collection": "stream-room-messages", "id": "id",
            "fields": { "eventName": "R1", "args": [{ "_id": "m", "rid": "R1", "msg": text, "ts": { "$date": 1_700_000_000_124u64 } }] },
        })
        .to_string();
        let d = parse_delivery(&frame, "R1", 1_700_000_000_125_000).expect("a delivery");
        assert_eq!((d.k, d.sent_us, d.ts_ms), (42, 1_700_000_000_123_456, 1_700_000_000_124));
        assert!(parse_delivery(&frame, "R2", 0).is_none());
        assert!(parse_delivery(r#"{"msg":"ready","subs":["s1"]}"#, "R1", 0).is_none());
    }
}
