//! What every newer scenario reports: latency in an HDR histogram (and per second of the run),
//! deliveries per second, completeness with the missing message ids, connect+login rate, per
//! action REST latency, and the server's RSS and CPU sampled from /proc. Rendered as a human
//! summary, a JSON report and an SVG chart of latency and throughput over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{cpu_time, read_rss};

/// Highest latency tracked exactly (µs); slower samples are clamped to it.
const MAX_TRACKED_US: u64 = 600_000_000;
/// Missing ids listed in the report; the rest are only counted.
pub(crate) const MISSING_LISTED: usize = 100;

fn histogram() -> Histogram<u64> {
    // Three significant digits over 1 µs … 10 min: a few tens of kB.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("constant bounds are valid")
}

fn record(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.clamp(1, MAX_TRACKED_US));
}

/// Percentiles of a histogram in milliseconds.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
    })
}

fn line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_owned();
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

/// Per second of the run: deliveries, and p50/p99 latency (ms) if any.
type Timeline = Vec<(u64, Option<(f64, f64)>)>;
/// Server samples: seconds into the run, RSS (kB), CPU (% of one core).
pub(crate) type ServerSamples = Vec<(f64, u64, f64)>;
/// A named line of points for the chart: name, colour, (x, y).
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

#[derive(Default)]
struct Second {
    deliveries: u64,
    latency: Option<Histogram<u64>>,
}

/// Send→receive latency of every delivery, overall and per second of the run. Shared by the
/// receiving sockets; each record is one short lock.
pub(crate) struct Recorder {
    start: Instant,
    inner: Mutex<(Histogram<u64>, Vec<Second>)>,
}

impl Recorder {
    pub(crate) fn new(start: Instant) -> Recorder {
        Recorder { start, inner: Mutex::new((histogram(), Vec::new())) }
    }

    /// One delivery, just now, that arrived `latency_us` after it was sent.
    pub(crate) fn delivery(&self, latency_us: u64) {
        self.delivery_at(self.start.elapsed(), latency_us);
    }

    /// One delivery at `at` into the run (for scenarios that collect first and record after).
    pub(crate) fn delivery_at(&self, at: Duration, latency_us: u64) {
        let sec = at.as_secs() as usize;
        let Ok(mut inner) = self.inner.lock() else { return };
        let (all, seconds) = &mut *inner;
        record(all, latency_us);
        if seconds.len() <= sec {
            seconds.resize_with(sec + 1, Second::default);
        }
        let s = &mut seconds[sec];
        s.deliveries += 1;
        record(s.latency.get_or_insert_with(histogram), latency_us);
    }

    fn snapshot(&self) -> (Histogram<u64>, Timeline) {
        let Ok(inner) = self.inner.lock() else { return (histogram(), Vec::new()) };
        let timeline = inner
            .1
            .iter()
            .map(|s| {
                let q = s.latency.as_ref().map(|h| {
                    (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0)
                });
                (s.deliveries, q)
            })
            .collect();
        (inner.0.clone(), timeline)
    }
}

/// REST/DDP action latencies by action name (a handful of fixed names).
#[derive(Default)]
pub(crate) struct Actions(Mutex<BTreeMap<&'static str, (Histogram<u64>, u64)>>);

impl Actions {
    pub(crate) fn record(&self, name: &'static str, took: Duration, ok: bool) {
        let Ok(mut map) = self.0.lock() else { return };
        let entry = map.entry(name).or_insert_with(|| (histogram(), 0));
        if ok {
            record(&mut entry.0, took.as_micros() as u64);
        } else {
            entry.1 += 1;
        }
    }

    fn snapshot(&self) -> BTreeMap<&'static str, (Histogram<u64>, u64)> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The server's RSS and CPU, sampled once a second from /proc while the run lasts.
pub(crate) struct ServerSampler {
    samples: tokio::task::JoinHandle<ServerSamples>,
    stop: watch::Sender<bool>,
}

impl ServerSampler {
    pub(crate) fn start(pid: u32, start: Instant) -> ServerSampler {
        let (stop, mut stopped) = watch::channel(false);
        let samples = tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last: Option<(Instant, Duration)> = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let (Ok(rss), Ok(cpu)) = (read_rss(pid), cpu_time(&pid.to_string())) else { break };
                let now = Instant::now();
                let pct = match last {
                    Some((t, c)) => {
                        cpu.saturating_sub(c).as_secs_f64() * 100.0
                            / now.duration_since(t).as_secs_f64().max(1e-3)
                    }
                    None => 0.0,
                };
                if last.is_some() {
                    out.push((now.duration_since(start).as_secs_f64(), rss.rss_kb, pct));
                }
                last = Some((now, cpu));
            }
            out
        });
        ServerSampler { samples, stop }
    }

    pub(crate) async fn finish(self) -> ServerSamples {
        let _ = self.stop.send(true);
        self.samples.await.unwrap_or_default()
    }
}

/// Everything one run measured.
pub(crate) struct Report {
    pub scenario: &'static str,
    pub params: Value,
    pub elapsed: Duration,
    /// Connections attempted, opened, and how long opening them took.
    pub connections: (u64, u64, Duration),
    /// Messages the senders got acknowledged.
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    pub missing: Vec<String>,
    pub missing_count: u64,
    pub extra: Value,
    pub server: Option<(u32, ServerSamples)>,
    pub latency: Histogram<u64>,
    timeline: Timeline,
    actions: BTreeMap<&'static str, (Histogram<u64>, u64)>,
}

impl Report {
    pub(crate) fn new(
        scenario: &'static str,
        params: Value,
        recorder: &Recorder,
        actions: &Actions,
    ) -> Report {
        let (latency, timeline) = recorder.snapshot();
        Report {
            scenario,
            params,
            elapsed: recorder.start.elapsed(),
            connections: (0, 0, Duration::ZERO),
            sent: 0,
            expected: 0,
            received: 0,
            duplicates: 0,
            missing: Vec::new(),
            missing_count: 0,
            extra: Value::Null,
            server: None,
            latency,
            timeline,
            actions: actions.snapshot(),
        }
    }

    fn completeness(&self) -> f64 {
        if self.expected == 0 { 1.0 } else { self.received as f64 / self.expected as f64 }
    }

    fn deliveries_per_s(&self) -> f64 {
        // Over the seconds in which deliveries happened, so set-up time does not dilute it.
        let first = self.timeline.iter().position(|s| s.0 > 0);
        let last = self.timeline.iter().rposition(|s| s.0 > 0);
        match (first, last) {
            (Some(f), Some(l)) => self.latency.len() as f64 / (l - f + 1) as f64,
            _ => 0.0,
        }
    }

    fn connect_rate(&self) -> f64 {
        let (_, ok, took) = self.connections;
        ok as f64 / took.as_secs_f64().max(1e-9)
    }

    pub(crate) fn to_json(&self) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let server = self.server.as_ref().map(|(pid, samples)| {
            let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
            let avg_cpu = samples.iter().map(|s| s.2).sum::<f64>() / samples.len().max(1) as f64;
            json!({
                "pid": pid,
                "rss_max_kb": max_rss,
                "cpu_avg_pct": round(avg_cpu),
                "samples": samples.iter().map(|(t, rss, cpu)| json!({"t_s": round(*t), "rss_kb": rss, "cpu_pct": round(*cpu)})).collect::<Vec<_>>(),
            })
        });
        let actions: serde_json::Map<String, Value> = self
            .actions
            .iter()
            .map(|(name, (h, errors))| {
                let mut v = percentiles(h);
                v["errors"] = json!(errors);
                ((*name).to_owned(), v)
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "params": self.params,
            "elapsed_s": round(self.elapsed.as_secs_f64()),
            "connections": {
                "attempted": self.connections.0,
                "opened": self.connections.1,
                "open_s": round(self.connections.2.as_secs_f64()),
                "connect_login_per_s": round(self.connect_rate()),
            },
            "messages_sent": self.sent,
            "deliveries": {
                "expected": self.expected,
                "received": self.received,
                "duplicates": self.duplicates,
                "completeness": round(self.completeness()),
                "missing_count": self.missing_count,
                "missing": self.missing,
                "per_s": round(self.deliveries_per_s()),
            },
            "latency": percentiles(&self.latency),
            "actions": actions,
            "server": server,
            "timeline": self.timeline.iter().enumerate().map(|(t, (n, q))| json!({
                "t_s": t, "deliveries": n, "p50_ms": q.map(|q| round(q.0)), "p99_ms": q.map(|q| round(q.1)),
            })).collect::<Vec<_>>(),
            "extra": self.extra,
        })
    }

    pub(crate) fn print(&self) {
        println!("== {} ==", self.scenario);
        println!("elapsed:        {:.2} s", self.elapsed.as_secs_f64());
        let (attempted, ok, took) = self.connections;
        println!(
            "connections:    {ok} of {attempted} opened in {:.2} s ({:.0} connect+login/s)",
            took.as_secs_f64(),
            self.connect_rate()
        );
        println!("messages sent:  {}", self.sent);
        println!(
            "deliveries:     {} of {} expected ({:.3}%), {} duplicates, {} missing",
            self.received,
            self.expected,
            self.completeness() * 100.0,
            self.duplicates,
            self.missing_count
        );
        for id in self.missing.iter().take(5) {
            println!("  missing: {id}");
        }
        println!("deliveries/s:   {:.0}", self.deliveries_per_s());
        println!("latency:        {}", line(&self.latency));
        for (name, (h, errors)) in &self.actions {
            println!("  {name:<14}{} errors {errors}", line(h));
        }
        if let Some((pid, samples)) = &self.server {
            let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
            let avg_cpu = samples.iter().map(|s| s.2).sum::<f64>() / samples.len().max(1) as f64;
            println!("server {pid}:   RSS max {max_rss} kB, CPU avg {avg_cpu:.0}% of one core");
        }
    }

    /// Writes `<out>.json` and `<out>.svg`.
    pub(crate) fn write(&self, out: &Path) -> anyhow::Result<()> {
        let json_path = out.with_extension("json");
        let svg_path = out.with_extension("svg");
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(&json_path, text).with_context(|| format!("write {}", json_path.display()))?;
        std::fs::write(&svg_path, self.svg()).with_context(|| format!("write {}", svg_path.display()))?;
        println!("report: {} and {}", json_path.display(), svg_path.display());
        Ok(())
    }

    /// Two panels over the run's seconds: p50/p99 latency (ms) and deliveries per second, plus
    /// server CPU when sampled.
    fn svg(&self) -> String {
        const W: f64 = 800.0;
        const PANEL: f64 = 200.0;
        const LEFT: f64 = 60.0;
        const TOP: f64 = 30.0;
        let secs = self.timeline.len().max(2) as f64;
        let x = |t: f64| LEFT + t / (secs - 1.0) * (W - LEFT - 20.0);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif" font-size="12">"#,
            TOP * 3.0 + PANEL * 2.0 + 20.0
        );
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="18" font-size="14">apogee-bench {} — latency and throughput over time (s)</text>"#,
            self.scenario
        );
        let panel = |s: &mut String, top: f64, title: &str, series: &[Series<'_>]| {
            let max =
                series.iter().flat_map(|(_, _, p)| p.iter().map(|v| v.1)).fold(0.0f64, f64::max).max(1e-9);
            let y = |v: f64| top + PANEL - v / max * PANEL;
            let _ = write!(
                s,
                r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PANEL}" fill="none" stroke="#999"/>"##,
                W - LEFT - 20.0
            );
            let _ = write!(s, r#"<text x="{LEFT}" y="{}">{title}</text>"#, top - 4.0);
            let _ = write!(
                s,
                r#"<text x="4" y="{}">{max:.1}</text><text x="4" y="{}">0</text>"#,
                top + 10.0,
                top + PANEL
            );
            let _ =
                write!(s, r#"<text x="{}" y="{}">{:.0} s</text>"#, W - 60.0, top + PANEL + 14.0, secs - 1.0);
            for (i, (name, color, points)) in series.iter().enumerate() {
                let path: Vec<String> =
                    points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                    path.join(" ")
                );
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
                    W - 200.0 + i as f64 * 60.0,
                    top - 4.0
                );
            }
        };
        let p50: Vec<(f64, f64)> =
            self.timeline.iter().enumerate().filter_map(|(t, (_, q))| q.map(|q| (t as f64, q.0))).collect();
        let p99: Vec<(f64, f64)> =
            self.timeline.iter().enumerate().filter_map(|(t, (_, q))| q.map(|q| (t as f64, q.1))).collect();
        panel(&mut s, TOP, "send→receive latency (ms)", &[("p50", "#1f77b4", p50), ("p99", "#d62728", p99)]);
        let rate: Vec<(f64, f64)> =
            self.timeline.iter().enumerate().map(|(t, (n, _))| (t as f64, *n as f64)).collect();
        let mut second: Vec<Series<'_>> = vec![("deliveries/s", "#2ca02c", rate)];
        if let Some((_, samples)) = &self.server {
            // CPU % scaled into the deliveries axis would mislead; it gets its own line label.
            let cpu: Vec<(f64, f64)> = samples.iter().map(|(t, _, c)| (*t, *c)).collect();
            if !cpu.is_empty() {
                second.push(("cpu %", "#9467bd", cpu));
            }
        }
        let title = if second.len() > 1 {
            "deliveries per second (server CPU % on its own scale)"
        } else {
            "deliveries per second"
        };
        // Each series in the lower panel is drawn on its own maximum.
        for (i, series) in second.into_iter().enumerate() {
            let t = if i == 0 { title } else { "" };
            panel(&mut s, TOP * 2.0 + PANEL, t, &[series]);
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json_and_svg_carry_the_measurements() {
        let start = Instant::now();
        let rec = Recorder::new(start);
        for us in [1_000, 2_000, 3_000, 50_000] {
            rec.delivery(us);
        }
        let actions = Actions::default();
        actions.record("send", Duration::from_millis(3), true);
        actions.record("send", Duration::from_millis(3), false);
        let mut r = Report::new("test", json!({"clients": 2}), &rec, &actions);
        r.expected = 5;
        r.received = 4;
        r.missing = vec!["m5".into()];
        r.missing_count = 1;
        let v = r.to_json();
        assert_eq!(v["deliveries"]["completeness"], 0.8);
        assert_eq!(v["latency"]["count"], 4);
        assert_eq!(v["deliveries"]["missing"][0], "m5");
        assert_eq!(v["actions"]["send"]["errors"], 1);
        assert!((v["latency"]["max_ms"].as_f64().unwrap_or(0.0) - 50.0).abs() < 0.1, "{v}");
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("<polyline"));
    }
}
