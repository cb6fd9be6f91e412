//! `startup`: how long `apogee serve` takes from spawn until `/api/info` answers, on fresh data
//! directories and once more on an existing one, polled in-process (no `curl` start-up cost in
//! the measurement).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use crate::{mib, read_rss};

/// How long a server may take to become ready or to stop.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Args)]
pub(crate) struct StartupArgs {
    /// The `apogee` binary to start (release build recommended).
    #[arg(long)]
    bin: PathBuf,
    /// Port to start it on (on 127.0.0.1 it is polled; it must be free).
    #[arg(long, default_value_t = 3300)]
    port: u16,
    /// Starts on a fresh data directory; then one more on the last one (existing data).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Poll interval in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Where the temporary data directories go [default: the system temp dir].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

pub(crate) fn run(args: StartupArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run_async(args))
}

async fn run_async(args: StartupArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
    let url = format!("http://127.0.0.1:{}/api/info", args.port);
    if http.get(&url).send().await.is_ok() {
        bail!("something already answers on port {}", args.port);
    }
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut fresh = Vec::with_capacity(args.runs);
    let mut last_dir = None;
    for i in 1..=args.runs {
        let dir = tempfile::Builder::new()
            .prefix("apogee-startup-")
            .tempdir_in(&work_dir)
            .with_context(|| format!("create a data dir in {}", work_dir.display()))?;
        let (ready, rss_kb) = measure(&args, &http, &url, dir.path()).await?;
        println!("fresh run {i}: ready in {:.1} ms, VmRSS at ready {rss_kb} kB", ms(ready));
        fresh.push(ready);
        last_dir = Some(dir);
    }
    let dir = last_dir.context("no run")?;
    let (ready, rss_kb) = measure(&args, &http, &url, dir.path()).await?;
    fresh.sort_unstable();
    let median = if fresh.len() % 2 == 1 {
        ms(fresh[fresh.len() / 2])
    } else {
        (ms(fresh[fresh.len() / 2 - 1]) + ms(fresh[fresh.len() / 2])) / 2.0
    };
    println!(
        "existing data dir: ready in {:.1} ms, VmRSS at ready {rss_kb} kB ({:.1} MiB)",
        ms(ready),
        mib(rss_kb)
    );
    println!(
        "fresh: median {median:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (poll every {} ms)",
        fresh.first().copied().map_or(0.0, ms),
        fresh.last().copied().map_or(0.0, ms),
        fresh.len(),
        args.poll_ms
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts the server on `dir`, waits until it answers, reads its RSS and stops it.
async fn measure(
    args: &StartupArgs,
    http: &reqwest::Client,
    url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = Command::new(&args.bin)
        .args(["serve", "--port", &args.port.to_string(), "--data-dir"])
        .arg(dir)
        .env("TEST_MODE", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", args.bin.display()))?;
    let ready = loop {
        if http.get(url).send().await.is_ok() {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited before it was ready: {status}");
        }
        if started.elapsed() > PATIENCE {
            stop(&mut child).await?;
            bail!("server not ready after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    };
    let rss = read_rss(child.id())?;
    stop(&mut child).await?;
    Ok((ready, rss.rss_kb))
}

/// SIGTERM (through `kill(1)`: this crate has no unsafe code), then waits for the graceful exit.
async fn stop(child: &mut Child) -> anyhow::Result<()> {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().context("run kill -TERM")?;
    let asked = Instant::now();
    while child.try_wait()?.is_none() {
        if asked.elapsed() > PATIENCE {
            child.kill()?;
            child.wait()?;
            bail!("server {pid} ignored SIGTERM for {PATIENCE:?}; killed");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
