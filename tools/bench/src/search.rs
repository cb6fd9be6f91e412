//! `search`: how fast `chat.search` answers in a room of many messages.
//!
//! Seeds one channel with `--messages` messages through `chat.postMessage` (unless `--room`
//! names one seeded before), then times `chat.search` queries of five kinds, one at a time:
//! words common to many messages, rare words, substrings of words, CJK terms, and text found
//! nowhere. The texts come from a seeded generator: words are drawn from a made-up vocabulary
//! with Zipf-like frequencies (a few words in most messages, most words in few), and one message
//! in twenty carries a CJK phrase, so each kind of query is asked of the same data on every run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::report::percentiles;
use crate::{Api, TEST_ADMIN, create_and_login, loopback_base, read_rss, run_prefix};

#[derive(Args)]
pub(crate) struct SearchArgs {
    /// Server URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Messages to seed the channel with.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Concurrent senders while seeding (one user each).
    #[arg(long, short = 'c', default_value_t = 16)]
    senders: usize,
    /// Search a channel seeded by an earlier run (its id) instead of seeding a new one; the
    /// queries are the same as long as `--seed` is.
    #[arg(long)]
    room: Option<String>,
    /// Queries of each kind.
    #[arg(long, short = 'q', default_value_t = 200)]
    queries: usize,
    /// Results asked per query (`count`).
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Seed of the text generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Server process id: report its RSS after seeding and after the queries.
    #[arg(long)]
    pid: Option<u32>,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Size of the made-up vocabulary.
const WORDS: usize = 20_000;
/// CJK phrases, one of them in one message in twenty.
const CJK: &[&str] = &[
    "项目进度会议",
    "数据库迁移计划",
    "明天下午三点",
    "東京オフィス",
    "ありがとうございます",
    "서버 점검 일정",
    "请检查部署日志",
    "新しい機能の説明",
];

/// Word `i` of the vocabulary: syllables chosen from `i`'s digits, so every word is distinct
/// and pronounceable-ish, and no word is a substring of the fixed CJK phrases.
fn word(i: usize) -> String {
    const ONSETS: &[&str] = &["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
    let mut n = i + 1;
    let mut out = String::new();
    while n > 0 {
        out.push_str(ONSETS[n % ONSETS.len()]);
        n /= ONSETS.len();
        out.push_str(VOWELS[n % VOWELS.len()]);
        n /= VOWELS.len();
    }
    // Short words would match inside longer ones; pad to at least 5 letters.
    while out.len() < 5 {
        out.push('x');
    }
    out
}

/// Draws word ranks with probability ∝ 1/rank (Zipf, s = 1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut sum = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                sum += 1.0 / r as f64;
                sum
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random_range(0.0..total);
        self.cumulative.partition_point(|&c| c < x).min(self.cumulative.len() - 1)
    }
}

/// Message `n`'s text: 6 to 14 words, a CJK phrase in one message in twenty.
fn message_text(zipf: &Zipf, seed: u64, n: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let len = rng.random_range(6..=14);
    let mut words: Vec<String> = (0..len).map(|_| word(zipf.sample(&mut rng))).collect();
    if rng.random_range(0..20) == 0 {
        let at = rng.random_range(0..=words.len());
        words.insert(at, CJK[rng.random_range(0..CJK.len())].to_owned());
    }
    words.join(" ")
}

/// The queries of each kind, the same for the same seed.
fn queries(seed: u64, per_kind: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let pick = |rng: &mut StdRng, lo: usize, hi: usize| word(rng.random_range(lo..hi));
    let common = (0..per_kind).map(|_| pick(&mut rng, 0, 10)).collect();
    let rare = (0..per_kind).map(|_| pick(&mut rng, 5_000, WORDS)).collect();
    let substring = (0..per_kind)
        .map(|_| {
            let w = pick(&mut rng, 10, 1_000);
            let chars: Vec<char> = w.chars().collect();
            let len = 3.min(chars.len());
            let at = rng.random_range(0..=chars.len() - len);
            chars[at..at + len].iter().collect()
        })
        .collect();
    let cjk = (0..per_kind)
        .map(|_| {
            let phrase: Vec<char> = CJK[rng.random_range(0..CJK.len())].chars().collect();
            // Two to four characters from inside the phrase: CJK words are short.
            let len = rng.random_range(2..=4).min(phrase.len());
            let at = rng.random_range(0..=phrase.len() - len);
            phrase[at..at + len].iter().collect()
        })
        .collect();
    let nowhere = (0..per_kind).map(|i| format!("qqzx{i}wv")).collect();
    vec![
        ("common word", common),
        ("rare word", rare),
        ("substring", substring),
        ("cjk", cjk),
        ("no match", nowhere),
    ]
}

pub(crate) fn main(args: SearchArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: SearchArgs) -> anyhow::Result<()> {
    if args.senders == 0 || args.queries == 0 || args.count == 0 {
        bail!("--senders, --queries and --count must be at least 1");
    }
    let base = loopback_base(&args.url)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.senders.max(8))
        .tcp_nodelay(true)
        .build()?;
    let anon = Api { http, base: base.into(), auth: None };
    let admin = anon.login(TEST_ADMIN, TEST_ADMIN).await.context("log in as the TEST_MODE admin")?;
    let zipf = Arc::new(Zipf::new(WORDS));

    let (rid, searcher, seeding) = match &args.room {
        Some(rid) => (rid.clone(), admin.clone(), None),
        None => {
            let prefix = run_prefix();
            let names: Vec<String> = (0..args.senders).map(|i| format!("{prefix}-s{i}")).collect();
            let senders = create_and_login(&admin, &anon, &names).await?;
            let channel = admin
                .post("channels.create", &json!({ "name": format!("{prefix}-search"), "members": names }))
                .await?;
            let rid = channel["channel"]["_id"].as_str().context("channels.create: no _id")?.to_owned();
            println!("seeding {} messages into {rid} with {} senders", args.messages, args.senders);
            let seeded = seed(&senders, &rid, &zipf, args.seed, args.messages).await?;
            (rid, senders[0].clone(), Some(seeded))
        }
    };
    if let Some(pid) = args.pid {
        let rss = read_rss(pid)?;
        println!("server RSS before the queries: {:.1} MiB", rss.rss_kb as f64 / 1024.0);
    }

    let mut kinds = Vec::new();
    let mut all = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for (kind, texts) in queries(args.seed, args.queries) {
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let (mut hits, mut errors) = (0u64, 0u64);
        for text in &texts {
            let path = format!("chat.search?roomId={rid}&searchText={}&count={}", encode(text), args.count);
            let started = Instant::now();
            match searcher.get(&path).await {
                Ok(reply) => {
                    let us = started.elapsed().as_micros().max(1) as u64;
                    let _ = h.record(us.min(600_000_000));
                    let _ = all.record(us.min(600_000_000));
                    hits += reply["messages"].as_array().map_or(0, |m| m.len() as u64);
                }
                Err(e) => {
                    errors += 1;
                    if errors <= 3 {
                        println!("  {kind} {text:?}: {e:#}");
                    }
                }
            }
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{kind:>12}: p50 {:7.2}  p95 {:7.2}  p99 {:7.2}  max {:7.2} ms  ({} queries, {:.1} results each, {errors} errors)",
            ms(0.5),
            ms(0.95),
            ms(0.99),
            h.max() as f64 / 1000.0,
            h.len(),
            hits as f64 / h.len().max(1) as f64
        );
        let mut p = percentiles(&h);
        p["p95_ms"] = json!((h.value_at_quantile(0.95) as f64 / 10.0).round() / 100.0);
        kinds.push(json!({ "kind": kind, "latency": p, "results_per_query": hits as f64 / h.len().max(1) as f64, "errors": errors }));
    }
    let p95 = all.value_at_quantile(0.95) as f64 / 1000.0;
    println!(
        "{:>12}: p50 {:7.2}  p95 {p95:7.2}  p99 {:7.2} ms",
        "all",
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0
    );
    let rss = args.pid.map(read_rss).transpose()?;
    if let Some(rss) = &rss {
        println!(
            "server RSS after the queries: {:.1} MiB (peak {:.1} MiB)",
            rss.rss_kb as f64 / 1024.0,
            rss.hwm_kb as f64 / 1024.0
        );
    }
    if let Some(out) = &args.out {
        let mut all_p = percentiles(&all);
        all_p["p95_ms"] = json!((all.value_at_quantile(0.95) as f64 / 10.0).round() / 100.0);
        let report = json!({
            "scenario": "search",
            "room": rid,
            "seeded": seeding,
            "count": args.count,
            "kinds": kinds,
            "all": all_p,
            "server_rss_kb": rss.as_ref().map(|r| r.rss_kb),
            "server_peak_rss_kb": rss.as_ref().map(|r| r.hwm_kb),
        });
        std::fs::write(out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

/// Posts `total` messages from the senders, in turn, with progress every ten seconds.
async fn seed(senders: &[Api], rid: &str, zipf: &Arc<Zipf>, seed: u64, total: u64) -> anyhow::Result<Value> {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for api in senders {
        let (api, rid, zipf, next, done) =
            (api.clone(), rid.to_owned(), zipf.clone(), next.clone(), done.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(());
                }
                let body = json!({ "roomId": &rid, "text": message_text(&zipf, seed, n) });
                api.post("chat.postMessage", &body).await.with_context(|| format!("message {n}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                println!("  seeded {n} of {total} ({:.0} msg/s)", n as f64 / secs);
            }
        })
    };
    while let Some(joined) = tasks.join_next().await {
        joined.context("sender task panicked")??;
    }
    progress.abort();
    let secs = started.elapsed().as_secs_f64();
    println!("seeded {total} messages in {secs:.0} s ({:.0} msg/s)", total as f64 / secs);
    Ok(json!({ "messages": total, "seconds": secs }))
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_texts_repeatable() {
        let words: std::collections::HashSet<String> = (0..WORDS).map(word).collect();
        assert_eq!(words.len(), WORDS);
        let zipf = Zipf::new(WORDS);
        assert_eq!(message_text(&zipf, 7, 42), message_text(&zipf, 7, 42));
        assert_ne!(message_text(&zipf, 7, 42), message_text(&zipf, 7, 43));
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(WORDS);
        let mut rng = StdRng::seed_from_u64(1);
        let low = (0..10_000).filter(|_| zipf.sample(&mut rng) < 10).count();
        // H(10)/H(20000) ≈ 0.28.
        assert!((2_400..3_200).contains(&low), "{low}");
    }

    #[test]
    fn encode_escapes_everything_but_unreserved() {
        assert_eq!(encode("ab c&d"), "ab%20c%26d");
        assert_eq!(encode("明"), "%E6%98%8E");
    }
}
