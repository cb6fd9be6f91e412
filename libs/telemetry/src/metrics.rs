//! Process-wide metrics in Prometheus' text exposition format (version 0.0.4).
//!
//! Hand-written rather than a metrics crate: the set is small and fixed, recording is one or two
//! relaxed atomics, and the only allocation-bearing path is a labelled family's first use of a
//! label set. Labels are bounded by construction — route templates, methods, status classes,
//! operation kinds — never user or room ids.
//!
//! Every role serves [`render`] on `/metrics` with [`CONTENT_TYPE`]. Metrics are process-global
//! (as Prometheus expects): several servers in one process (tests) share them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency bucket bounds in seconds: 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Bounds for batch sizes (jobs per store transaction).
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Self {
        Self(AtomicI64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn dec(&self) {
        self.add(-1);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Cumulative buckets with fixed bounds; the sum is kept in nanoseconds (or units × 10⁹) so
/// it stays an atomic integer.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus `+Inf`; not cumulative (summed when rendered).
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records a duration (in seconds, against the bounds).
    pub fn observe_duration(&self, d: Duration) {
        self.record(d.as_secs_f64(), u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records a plain value (a size).
    pub fn observe(&self, v: f64) {
        self.record(v, (v.max(0.0) * 1e9) as u64);
    }

    fn record(&self, v: f64, nanos: u64) {
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        // The count is the buckets' total, so a scrape racing a record stays consistent.
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Histograms by label values. `N` label names are fixed; the caller guarantees the values come
/// from a bounded set.
#[derive(Debug)]
pub struct HistogramVec<const N: usize> {
    names: [&'static str; N],
    bounds: &'static [f64],
    children: RwLock<BTreeMap<[String; N], Arc<Histogram>>>,
}

impl<const N: usize> HistogramVec<N> {
    pub fn new(names: [&'static str; N], bounds: &'static [f64]) -> Self {
        Self { names, bounds, children: RwLock::new(BTreeMap::new()) }
    }

    /// The histogram for these label values (created on first use). Callers on a hot path
    /// keep the returned handle rather than looking it up each time.
    pub fn with(&self, values: [&str; N]) -> Arc<Histogram> {
        let key = values.map(str::to_owned);
        if let Some(h) = self.children.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return h.clone();
        }
        let mut children = self.children.write().unwrap_or_else(PoisonError::into_inner);
        children.entry(key).or_insert_with(|| Arc::new(Histogram::new(self.bounds))).clone()
    }

    fn write(&self, out: &mut String, name: &str) {
        let children = self.children.read().unwrap_or_else(PoisonError::into_inner);
        for (values, h) in children.iter() {
            let labels: Vec<String> =
                self.names.iter().zip(values).map(|(n, v)| format!("{n}=\"{}\"", escape_label(v))).collect();
            h.write(out, name, &labels.join(","));
        }
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every metric the processes record. Roles record what they own; the rest stay at zero.
#[derive(Debug)]
pub struct Metrics {
    // Gateway.
    pub ddp_connections: Gauge,
    pub ddp_connections_opened: Counter,
    pub ddp_subscriptions: Gauge,
    pub ddp_frames_written: Counter,
    pub fanout_frames_delivered: Counter,
    pub fanout_queue_depth: Gauge,
    pub slow_consumer_disconnects: Counter,
    /// Labels: method, route (the matched route template, or `unmatched`), status (`2xx`…).
    pub http_request_seconds: HistogramVec<3>,
    // Messaging.
    pub messages_sent: Counter,
    // Store: one job's latency from the caller's side, by kind (rendered as label `op`).
    pub store_read_seconds: Histogram,
    pub store_write_seconds: Histogram,
    pub store_write_batch_seconds: Histogram,
    pub store_write_batch_jobs: Histogram,
    // Bus.
    pub bus_published: Counter,
    pub bus_received: Counter,
    pub bus_lost: Counter,
    // Trace export (OTLP), when enabled.
    pub trace_spans_exported: Counter,
    pub trace_spans_dropped: Counter,
    pub trace_export_failures: Counter,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    ddp_connections: Gauge::new(),
    ddp_connections_opened: Counter::new(),
    ddp_subscriptions: Gauge::new(),
    ddp_frames_written: Counter::new(),
    fanout_frames_delivered: Counter::new(),
    fanout_queue_depth: Gauge::new(),
    slow_consumer_disconnects: Counter::new(),
    http_request_seconds: HistogramVec::new(["method", "route", "status"], LATENCY_BUCKETS),
    messages_sent: Counter::new(),
    store_read_seconds: Histogram::new(LATENCY_BUCKETS),
    store_write_seconds: Histogram::new(LATENCY_BUCKETS),
    store_write_batch_seconds: Histogram::new(LATENCY_BUCKETS),
    store_write_batch_jobs: Histogram::new(SIZE_BUCKETS),
    bus_published: Counter::new(),
    bus_received: Counter::new(),
    bus_lost: Counter::new(),
    trace_spans_exported: Counter::new(),
    trace_spans_dropped: Counter::new(),
    trace_export_failures: Counter::new(),
});

/// Shorthand for [`METRICS`].
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The `status` label for an HTTP status code: `1xx` … `5xx`.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The `method` label: the standard methods, anything else `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The whole exposition.
pub fn render() -> String {
    let m = metrics();
    let mut out = String::with_capacity(8 * 1024);
    let counter = |out: &mut String, name: &str, help: &str, c: &Counter| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", c.get());
    };
    let gauge = |out: &mut String, name: &str, help: &str, g: &Gauge| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}\n", g.get());
    };
    let head = |out: &mut String, name: &str, help: &str| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
    };
    gauge(&mut out, "apogee_ddp_connections", "Open DDP WebSocket connections.", &m.ddp_connections);
    counter(
        &mut out,
        "apogee_ddp_connections_opened_total",
        "DDP WebSocket connections accepted.",
        &m.ddp_connections_opened,
    );
    gauge(&mut out, "apogee_ddp_subscriptions", "Active DDP subscriptions.", &m.ddp_subscriptions);
    counter(
        &mut out,
        "apogee_ddp_frames_written_total",
        "DDP frames written to sockets (replies and fan-out).",
        &m.ddp_frames_written,
    );
    counter(
        &mut out,
        "apogee_messages_delivered_total",
        "Fan-out frames (stream events) written to sockets.",
        &m.fanout_frames_delivered,
    );
    gauge(
        &mut out,
        "apogee_fanout_queue_depth",
        "Frames queued for sockets and not yet written, over all sockets.",
        &m.fanout_queue_depth,
    );
    counter(
        &mut out,
        "apogee_slow_consumer_disconnects_total",
        "Sockets closed because their outbound queue was full.",
        &m.slow_consumer_disconnects,
    );
    head(
        &mut out,
        "apogee_http_request_duration_seconds",
        "HTTP request latency by route template, method and status class.",
    );
    m.http_request_seconds.write(&mut out, "apogee_http_request_duration_seconds");
    counter(
        &mut out,
        "apogee_messages_sent_total",
        "Messages committed and announced by the messaging service.",
        &m.messages_sent,
    );
    head(&mut out, "apogee_store_operation_duration_seconds", "Store latency by operation kind.");
    m.store_read_seconds.write(&mut out, "apogee_store_operation_duration_seconds", "op=\"read\"");
    m.store_write_seconds.write(&mut out, "apogee_store_operation_duration_seconds", "op=\"write\"");
    head(&mut out, "apogee_store_write_batch_duration_seconds", "Time to run and commit one write batch.");
    m.store_write_batch_seconds.write(&mut out, "apogee_store_write_batch_duration_seconds", "");
    head(&mut out, "apogee_store_write_batch_jobs", "Jobs per write transaction.");
    m.store_write_batch_jobs.write(&mut out, "apogee_store_write_batch_jobs", "");
    counter(&mut out, "apogee_bus_events_published_total", "Events published on the bus.", &m.bus_published);
    counter(
        &mut out,
        "apogee_bus_events_received_total",
        "Events queued for bus subscribers.",
        &m.bus_received,
    );
    counter(
        &mut out,
        "apogee_bus_events_lost_total",
        "Events dropped because a subscriber's queue was full (lag).",
        &m.bus_lost,
    );
    counter(
        &mut out,
        "apogee_trace_spans_exported_total",
        "Spans the OTLP exporter delivered to the collector.",
        &m.trace_spans_exported,
    );
    counter(
        &mut out,
        "apogee_trace_spans_dropped_total",
        "Spans dropped because the export queue was full or the collector refused or missed them.",
        &m.trace_spans_dropped,
    );
    counter(
        &mut out,
        "apogee_trace_export_failures_total",
        "OTLP export requests that failed.",
        &m.trace_export_failures,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe_duration(Duration::from_micros(500));
        h.observe_duration(Duration::from_millis(5));
        h.observe_duration(Duration::from_secs(1));
        let mut out = String::new();
        h.write(&mut out, "x", "op=\"read\"");
        assert!(out.contains("x_bucket{op=\"read\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{op=\"read\",le=\"0.01\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{op=\"read\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{op=\"read\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{op=\"read\"} 1.0055\n"), "{out}");
    }

    #[test]
    fn a_family_reuses_its_children_and_escapes_values() {
        let v = HistogramVec::new(["route"], &[1.0]);
        v.with(["/a"]).observe(0.5);
        v.with(["/a"]).observe(2.0);
        v.with(["q\"\\"]).observe(0.5);
        let mut out = String::new();
        v.write(&mut out, "h");
        assert!(out.contains("h_count{route=\"/a\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{route=\"q\\\"\\\\\",le=\"1\"} 1\n"), "{out}");
    }

    #[test]
    fn render_names_every_metric_once() {
        metrics().messages_sent.inc();
        let text = render();
        for name in [
            "apogee_ddp_connections",
            "apogee_ddp_subscriptions",
            "apogee_messages_sent_total",
            "apogee_messages_delivered_total",
            "apogee_fanout_queue_depth",
            "apogee_slow_consumer_disconnects_total",
            "apogee_http_request_duration_seconds",
            "apogee_store_operation_duration_seconds",
            "apogee_bus_events_published_total",
            "apogee_bus_events_received_total",
        ] {
            assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1, "{name}");
        }
        assert!(!text.contains("apogee_messages_sent_total 0\n"));
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(method_label("BREW"), "other");
    }
}
