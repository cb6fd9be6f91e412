//! `upload`: users uploading files into a room, then downloading every one back to check it.
//!
//! `--users` users share one room. `--concurrency` workers take the next of `--files` uploads in
//! turn, each as user `k mod users`: `rooms.media` (the multipart upload) then
//! `rooms.mediaConfirm` (the file message), or one `rooms.upload` with `--mode upload`. Each file
//! is `--size` bytes of its own pseudo-random content, generated before its clock starts. The
//! upload phase reports MB/s, files/s and the latency of each upload (upload + confirm); the
//! server's RSS and CPU are sampled from /proc throughout. Then every uploaded file is downloaded
//! back at the same concurrency and checked against its size and SHA-256: a file that does not
//! come back intact is listed as missing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinSet;

use crate::report::{Actions, MISSING_LISTED, Recorder, Report, ServerSampler};
use crate::{Api, ddp, loopback_base};

const MAX_FILES: u64 = 1_000_000;
const MAX_SIZE: u64 = 1 << 30;
const BOUNDARY: &str = "apogee-bench-boundary-7f3a9c";

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
    /// `rooms.media` then `rooms.mediaConfirm` (what Rocket.Chat's web client does).
    Media,
    /// One `rooms.upload` (the older single-request API).
    Upload,
}

#[derive(Args, Clone)]
pub(crate) struct UploadArgs {
    /// Server URL; must be a loopback address (127.0.0.1, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Users uploading (all members of one room); upload k is made by user k mod N.
    #[arg(long, short = 'n', default_value_t = 10)]
    pub users: usize,
    /// Files to upload in all.
    #[arg(long, short = 'k', default_value_t = 200)]
    pub files: u64,
    /// Size of each file: bytes, or with a K/M suffix (KiB, MiB).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub size: u64,
    /// Uploads (and later downloads) in flight at once.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,
    /// Which upload API to use.
    #[arg(long, value_enum, default_value = "media")]
    pub mode: Mode,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Server process id: sample its RSS and CPU from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Report path without extension: `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "apogee-bench-upload")]
    pub out: PathBuf,
}

/// `1048576`, `256K`, `4M` → bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&s[..i], 1024),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&s[..i], 1024 * 1024),
        _ => (s, 1),
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("not a size: {s:?}"))?;
    let bytes = n.checked_mul(unit).ok_or("size too large")?;
    if bytes == 0 || bytes > MAX_SIZE {
        return Err(format!("size must be 1 byte ..= {MAX_SIZE} bytes"));
    }
    Ok(bytes)
}

pub(crate) fn main(args: UploadArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

/// File `k`'s content: the same bytes for the same `k` and size, different for every `k`.
fn content(k: u64, size: u64) -> Bytes {
    let mut buf = vec![0u8; size as usize];
    rand::rngs::StdRng::seed_from_u64(k ^ 0x5eed_f11e).fill_bytes(&mut buf);
    Bytes::from(buf)
}

/// A `multipart/form-data` body with the file part (and, for `rooms.upload`, a `msg` part).
fn multipart(name: &str, file: &Bytes, msg: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 512);
    if let Some(msg) = msg {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"msg\"\r\n\r\n{msg}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// What one upload left to check: its index, file id, download URL, size and hash.
struct Uploaded {
    k: u64,
    file_id: String,
    url: String,
    sha256: [u8; 32],
}

impl Api {
    /// POSTs a multipart body to `/api/v1/<endpoint>`; the JSON reply if it succeeded.
    async fn post_multipart(&self, endpoint: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/{endpoint}", self.base))
            .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body);
        if let Some((uid, token)) = &self.auth {
            req = req.header("X-User-Id", &**uid).header("X-Auth-Token", &**token);
        }
        let resp = req.send().await.with_context(|| format!("{endpoint}: request failed"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("{endpoint}: reading reply"))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() || value.get("success").and_then(Value::as_bool) != Some(true) {
            bail!(
                "{endpoint}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>()
            );
        }
        Ok(value)
    }

    /// Downloads `path` (relative to the server) and returns its size and SHA-256, streamed.
    async fn download_hash(&self, path: &str) -> anyhow::Result<(u64, [u8; 32])> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some((uid, token)) = &self.auth {
            req = req.header("X-User-Id", &**uid).header("X-Auth-Token", &**token);
        }
        let mut resp = req.send().await.with_context(|| format!("GET {path}"))?;
        if !resp.status().is_success() {
            bail!("GET {path}: HTTP {}", resp.status());
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.with_context(|| format!("GET {path}: body"))? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hasher.finalize().into()))
    }
}

async fn upload_one(
    api: &Api,
    mode: Mode,
    rid: &str,
    name: &str,
    file: &Bytes,
    actions: &Actions,
) -> anyhow::Result<(String, String)> {
    let started = Instant::now();
    match mode {
        Mode::Media => {
            let reply = api.post_multipart(&format!("rooms.media/{rid}"), multipart(name, file, None)).await;
            actions.record("media", started.elapsed(), reply.is_ok());
            let reply = reply?;
            let file_id = reply["file"]["_id"].as_str().context("rooms.media: no file._id")?.to_owned();
            let url = reply["file"]["url"].as_str().context("rooms.media: no file.url")?.to_owned();
            let confirm_started = Instant::now();
            let confirmed =
                api.post(&format!("rooms.mediaConfirm/{rid}/{file_id}"), &json!({ "msg": name })).await;
            actions.record("confirm", confirm_started.elapsed(), confirmed.is_ok());
            let confirmed = confirmed?;
            if confirmed["message"]["file"]["_id"].as_str() != Some(file_id.as_str()) {
                bail!("rooms.mediaConfirm: the message does not carry file {file_id}: {confirmed}");
            }
            Ok((file_id, url))
        }
        Mode::Upload => {
            let reply =
                api.post_multipart(&format!("rooms.upload/{rid}"), multipart(name, file, Some(name))).await;
            actions.record("upload", started.elapsed(), reply.is_ok());
            let reply = reply?;
            let m = &reply["message"];
            let file_id = m["file"]["_id"].as_str().context("rooms.upload: no message.file._id")?.to_owned();
            let url =
                m["attachments"][0]["title_link"].as_str().context("rooms.upload: no title_link")?.to_owned();
            Ok((file_id, url))
        }
    }
}

pub(crate) async fn run(args: UploadArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.users > 20_000 {
        bail!("--users must be 1..=20000");
    }
    if args.files == 0 || args.files > MAX_FILES {
        bail!("--files must be 1..={MAX_FILES}");
    }
    if args.concurrency == 0 || args.concurrency > 1024 {
        bail!("--concurrency must be 1..=1024");
    }
    let base = loopback_base(&args.url)?;
    let setup_started = Instant::now();
    let setup = ddp::setup(&base, args.users, 1).await?;
    let rid: Arc<str> = setup.rooms[0].as_str().into();
    println!(
        "setup: prefix {}, {} users in room {rid}, {:.2} s",
        setup.prefix,
        args.users,
        setup_started.elapsed().as_secs_f64()
    );
    // Uploads can take a while; the setup clients' timeout is for small requests.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let clients: Arc<[Api]> = setup.clients.iter().map(|c| Api { http: http.clone(), ..c.clone() }).collect();

    let start = Instant::now();
    let sampler = args.pid.map(|pid| ServerSampler::start(pid, start));
    let recorder = Arc::new(Recorder::new(start));
    let actions = Arc::new(Actions::default());
    let next = Arc::new(AtomicU64::new(0));
    let uploaded = Arc::new(AsyncMutex::new(Vec::<Uploaded>::new()));
    let errors = Arc::new(AsyncMutex::new(Vec::<String>::new()));
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency {
        let (clients, rid, recorder, actions, next, uploaded, errors, prefix) = (
            clients.clone(),
            rid.clone(),
            recorder.clone(),
            actions.clone(),
            next.clone(),
            uploaded.clone(),
            errors.clone(),
            setup.prefix.clone(),
        );
        let (size, files, mode) = (args.size, args.files, args.mode);
        tasks.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= files {
                    break;
                }
                let file = content(k, size);
                let sha256: [u8; 32] = Sha256::digest(&file).into();
                let api = &clients[(k % clients.len() as u64) as usize];
                let name = format!("{prefix}-f{k}.bin");
                let sent = Instant::now();
                match upload_one(api, mode, &rid, &name, &file, &actions).await {
                    Ok((file_id, url)) => {
                        recorder.delivery(sent.elapsed().as_micros() as u64);
                        uploaded.lock().await.push(Uploaded { k, file_id, url, sha256 });
                    }
                    Err(e) => errors.lock().await.push(format!("file {k}: {e:#}")),
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("upload task panicked")?;
    }
    let upload_secs = start.elapsed().as_secs_f64().max(1e-9);
    let uploaded = std::mem::take(&mut *uploaded.lock().await);
    let uploaded_count = uploaded.len() as u64;
    let upload_bytes = uploaded_count * args.size;

    // Every uploaded file comes back, whole and unchanged, to a member other than the uploader.
    let download_started = Instant::now();
    let pending = Arc::new(AsyncMutex::new(uploaded));
    let checked = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AsyncMutex::new(Vec::<String>::new()));
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency {
        let (pending, checked, bad, clients, actions) =
            (pending.clone(), checked.clone(), bad.clone(), clients.clone(), actions.clone());
        let size = args.size;
        tasks.spawn(async move {
            loop {
                let Some(u) = pending.lock().await.pop() else { break };
                let api = &clients[((u.k + 1) % clients.len() as u64) as usize];
                let t = Instant::now();
                let got = api.download_hash(&u.url).await;
                actions.record("download", t.elapsed(), got.is_ok());
                match got {
                    Ok((n, hash)) if n == size && hash == u.sha256 => {
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((n, _)) => bad.lock().await.push(format!("{} ({n} bytes or wrong hash)", u.file_id)),
                    Err(e) => bad.lock().await.push(format!("{} ({e:#})", u.file_id)),
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("download task panicked")?;
    }
    let download_secs = download_started.elapsed().as_secs_f64().max(1e-9);
    let server = match (sampler, args.pid) {
        (Some(s), Some(pid)) => Some((pid, s.finish().await)),
        _ => None,
    };

    let intact = checked.load(Ordering::Relaxed);
    let mut missing = std::mem::take(&mut *bad.lock().await);
    let errors = std::mem::take(&mut *errors.lock().await);
    missing.extend(errors.iter().cloned());
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut report = Report::new(
        "upload",
        json!({
            "users": args.users, "files": args.files, "size_bytes": args.size,
            "concurrency": args.concurrency,
            "mode": match args.mode { Mode::Media => "media+mediaConfirm", Mode::Upload => "rooms.upload" },
        }),
        &recorder,
        &actions,
    );
    report.sent = uploaded_count;
    report.expected = args.files;
    report.received = intact;
    report.missing_count = missing.len() as u64;
    report.missing = missing.into_iter().take(MISSING_LISTED).collect();
    report.server = server;
    report.extra = json!({
        "upload": {
            "files": report.sent,
            "errors": errors.len(),
            "seconds": round(upload_secs),
            "mib_per_s": round(mib(upload_bytes) / upload_secs),
            "files_per_s": round(report.sent as f64 / upload_secs),
        },
        "download": {
            "intact": intact,
            "seconds": round(download_secs),
            "mib_per_s": round(mib(intact * args.size) / download_secs),
            "files_per_s": round(intact as f64 / download_secs),
        },
    });
    report.print();
    println!(
        "upload:         {} files of {} bytes in {upload_secs:.2} s: {:.1} MiB/s, {:.1} files/s, {} errors",
        report.sent,
        args.size,
        mib(upload_bytes) / upload_secs,
        report.sent as f64 / upload_secs,
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    println!(
        "download check: {intact} of {} intact (size + SHA-256) in {download_secs:.2} s: {:.1} MiB/s",
        report.sent,
        mib(intact * args.size) / download_secs
    );
    report.write(&args.out)?;
    if intact != args.files {
        bail!("{} of {} files did not upload and come back intact", args.files - intact, args.files);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("256K"), Ok(256 * 1024));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("2048M").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn contents_differ_per_file_and_repeat_per_index() {
        assert_eq!(content(3, 1000), content(3, 1000));
        assert_ne!(content(3, 1000), content(4, 1000));
        assert_eq!(content(7, 12345).len(), 12345);
    }

    #[test]
    fn multipart_wraps_the_file_whole() {
        let file = Bytes::from_static(b"\x00\x01binary\r\n--not-a-boundary");
        let body = multipart("a.bin", &file, Some("hi"));
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{BOUNDARY}\r\n")));
        assert!(text.contains("name=\"msg\"\r\n\r\nhi\r\n"));
        assert!(text.contains("filename=\"a.bin\""));
        assert!(body.windows(file.len()).any(|w| w == &file[..]));
        assert!(text.ends_with(&format!("\r\n--{BOUNDARY}--\r\n")));
    }
}
