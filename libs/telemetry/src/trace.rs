//! Distributed traces: spans exported to an OpenTelemetry collector over OTLP/HTTP (JSON), and
//! the W3C `traceparent` that carries a trace from process to process.
//!
//! Hand-written rather than the `opentelemetry` crates: a [`tracing_subscriber::Layer`] gives
//! every exported span a trace id, span id and parent (inherited from the enclosing span, or
//! adopted from a remote `traceparent` put on the span as the `otel.parent` field); when a sampled
//! span closes it is `try_send`-ed into a bounded queue, so the request path never waits on the
//! exporter: a full queue drops the span and counts it (`apogee_trace_spans_dropped_total`).
//! One background thread batches the queue and POSTs OTLP/HTTP JSON with the `reqwest` client the
//! process already links.
//!
//! Nothing of this runs unless [`OtlpConfig::from_env`] found an endpoint and `init` installed the
//! layer: [`enabled`] is then false, and the span helpers return [`Span::none`], which costs
//! nothing to enter.
//!
//! Span fields the layer understands (everything else becomes an attribute):
//! `otel.name` (the span's name in the trace), `otel.kind` (`server`, `client`, `producer`,
//! `consumer`, default internal), `otel.parent` (a remote `traceparent`), `otel.status_code`
//! (`error` or `ok`).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Span, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::metrics::metrics;

static ENABLED: AtomicBool = AtomicBool::new(false);
static EXPORTER: OnceLock<Arc<Control>> = OnceLock::new();

/// Whether spans are being exported. The span helpers check it first, so an unset endpoint
/// costs one relaxed load.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    /// Share of new traces sampled, 0.0 ..= 1.0 (decided from the trace id, so every process
    /// decides the same for the same trace).
    pub ratio: f64,
    /// A span with a parent follows the parent's decision (`parentbased_*` samplers).
    pub parent_based: bool,
}

/// Where and how spans are exported; read from the standard `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    /// `service.name`, and any other resource attributes.
    pub resource: Vec<(String, String)>,
    pub sampler: Sampler,
    /// Spans waiting for export at most; more are dropped (and counted).
    pub max_queue: usize,
    /// Spans per request at most.
    pub max_batch: usize,
    /// How long a span may wait before its batch is sent.
    pub delay: Duration,
    /// Deadline of one export request.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// Reads the standard variables through `get` (the caller owns the environment):
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended) or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`,
    /// `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT` (ms), `OTEL_SERVICE_NAME` (else `default_service`),
    /// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`,
    /// `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`;
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn export off.
    ///
    /// `Ok(None)`: no endpoint, export off. `Err`: a variable that is set but unusable.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        default_service: &str,
    ) -> Result<Option<OtlpConfig>, String> {
        let get = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match get("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(format!("OTEL_TRACES_EXPORTER={other}: only otlp and none are supported"));
            }
        }
        let endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(e), _) => e,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if !endpoint.starts_with("http://") {
            // The exporter's HTTP client is built without TLS (no TLS stack for one sidecar hop).
            return Err(format!(
                "OTLP endpoint {endpoint}: only http:// is supported (run the collector beside the process)"
            ));
        }
        if let Some(p) =
            get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
            && p != "http/json"
        {
            return Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL={p}: only http/json is supported"));
        }
        let mut headers = Vec::new();
        for var in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            if let Some(v) = get(var) {
                headers.extend(key_values(&v).map_err(|e| format!("{var}: {e}"))?);
            }
        }
        let mut resource = Vec::new();
        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            resource = key_values(&v).map_err(|e| format!("OTEL_RESOURCE_ATTRIBUTES: {e}"))?;
        }
        let service = get("OTEL_SERVICE_NAME")
            .or_else(|| resource.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.clone()))
            .unwrap_or_else(|| default_service.to_owned());
        resource.retain(|(k, _)| k != "service.name");
        resource.insert(0, ("service.name".to_owned(), service));
        let sampler_arg = || -> Result<f64, String> {
            match get("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("OTEL_TRACES_SAMPLER_ARG={a}: a ratio 0..1")),
            }
        };
        let sampler = match get("OTEL_TRACES_SAMPLER").as_deref().unwrap_or("parentbased_always_on") {
            "always_on" => Sampler { ratio: 1.0, parent_based: false },
            "always_off" => Sampler { ratio: 0.0, parent_based: false },
            "traceidratio" => Sampler { ratio: sampler_arg()?, parent_based: false },
            "parentbased_always_on" => Sampler { ratio: 1.0, parent_based: true },
            "parentbased_always_off" => Sampler { ratio: 0.0, parent_based: true },
            "parentbased_traceidratio" => Sampler { ratio: sampler_arg()?, parent_based: true },
            other => return Err(format!("OTEL_TRACES_SAMPLER={other}: not a known sampler")),
        };
        let number = |var: &str, default: u64| -> Result<u64, String> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{var}={v}: a positive integer")),
            }
        };
        let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
            Some(_) => number("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 10_000)?,
            None => number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
        };
        let max_queue = number("OTEL_BSP_MAX_QUEUE_SIZE", 2048)? as usize;
        Ok(Some(OtlpConfig {
            endpoint,
            headers,
            resource,
            sampler,
            max_queue,
            max_batch: (number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)? as usize).min(max_queue),
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5000)?),
            timeout: Duration::from_millis(timeout),
        }))
    }
}

/// `k1=v1,k2=v2` with percent-encoded values (the OTel environment format).
fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            Ok((k.trim().to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Trace context

/// A span's place in its trace, as the W3C `traceparent` header carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl SpanContext {
    /// Parses a version-00 `traceparent` (all-zero ids are invalid).
    pub fn parse(header: &str) -> Option<SpanContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = unhex(trace)?;
        let span_id: [u8; 8] = unhex(span)?;
        let [flags]: [u8; 1] = unhex(flags)?;
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header naming this span as the parent.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), u8::from(self.sampled))
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// The trace context of `span`, if it is exported (the layer gave it one).
pub fn context_of(span: &Span) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanData>().map(|d| d.context)
    })
    .flatten()
}

/// The `traceparent` to send with a call made inside the current span.
pub fn current_traceparent() -> Option<String> {
    context_of(&Span::current()).map(|c| c.header())
}

/// The `traceparent` naming `span` as the parent.
pub fn traceparent_of(span: &Span) -> Option<String> {
    context_of(span).map(|c| c.header())
}

/// A span around a message published on the bus (`producer`), child of the current span.
pub fn producer_span(subject: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "bus.publish",
        otel.name = "bus publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.destination.name = subject
    )
}

/// A span around handling a message that came with `traceparent` (`consumer`), continuing the
/// publisher's trace. `None` when export is off or the message carried no context.
pub fn consumer_span(operation: &'static str, subject: &str, traceparent: Option<&str>) -> Span {
    match traceparent {
        Some(tp) if enabled() => tracing::info_span!(
            "bus.process",
            otel.name = operation,
            otel.kind = "consumer",
            otel.parent = tp,
            messaging.system = "nats",
            messaging.destination.name = subject
        ),
        _ => Span::none(),
    }
}

// ---------------------------------------------------------------------------------------------
// The layer

/// What the layer keeps on each span it exports.
struct SpanData {
    context: SpanContext,
    parent: Option<[u8; 8]>,
    name: &'static str,
    start: SystemTime,
    fields: Fields,
}

#[derive(Default)]
struct Fields {
    name: Option<String>,
    kind: u8,
    remote_parent: Option<SpanContext>,
    error: Option<bool>,
    attributes: Vec<(&'static str, AttrValue)>,
}

#[derive(Debug, Clone, PartialEq)]
enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Fields {
    fn set(&mut self, field: &Field, value: AttrValue) {
        let text = || match &value {
            AttrValue::Str(s) => s.clone(),
            other => format!("{other:?}"),
        };
        match field.name() {
            "otel.name" => self.name = Some(text()),
            "otel.kind" => {
                self.kind = match text().as_str() {
                    "server" => 2,
                    "client" => 3,
                    "producer" => 4,
                    "consumer" => 5,
                    _ => 1,
                }
            }
            "otel.parent" => self.remote_parent = SpanContext::parse(&text()),
            "otel.status_code" => self.error = Some(text().eq_ignore_ascii_case("error")),
            name => {
                if let Some(slot) = self.attributes.iter_mut().find(|(k, _)| *k == name) {
                    slot.1 = value;
                } else {
                    self.attributes.push((name, value));
                }
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, AttrValue::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, AttrValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, AttrValue::Int(i64::try_from(value).unwrap_or(i64::MAX)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, AttrValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, AttrValue::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, AttrValue::Str(format!("{value:?}")));
    }
}

/// A finished span on its way to the collector.
struct Finished {
    data: SpanData,
    end: SystemTime,
}

/// The `tracing` layer that gives spans trace context and queues finished ones for export.
pub struct OtlpLayer {
    queue: mpsc::Sender<Finished>,
    sampler: Sampler,
}

fn random_id<const N: usize>() -> [u8; N] {
    loop {
        let id: [u8; N] = std::array::from_fn(|_| rand::random::<u8>());
        if id != [0; N] {
            return id;
        }
    }
}

impl Sampler {
    fn sample(&self, trace_id: &[u8; 16], parent: Option<bool>) -> bool {
        match parent {
            Some(sampled) if self.parent_based => sampled,
            _ => {
                // The low 8 bytes of a random trace id are uniform: compare them to the ratio.
                let low = u64::from_be_bytes(trace_id[8..].try_into().unwrap_or([0; 8]));
                self.ratio >= 1.0 || (low as f64) < self.ratio * u64::MAX as f64
            }
        }
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let local_parent = span.parent().and_then(|p| p.extensions().get::<SpanData>().map(|d| d.context));
        let (trace_id, parent) = match (fields.remote_parent, local_parent) {
            (Some(remote), _) => (remote.trace_id, Some(remote)),
            (None, Some(local)) => (local.trace_id, Some(local)),
            (None, None) => (random_id(), None),
        };
        let sampled = self.sampler.sample(&trace_id, parent.map(|p| p.sampled));
        let data = SpanData {
            context: SpanContext { trace_id, span_id: random_id(), sampled },
            parent: parent.map(|p| p.span_id),
            name: span.name(),
            start: SystemTime::now(),
            fields,
        };
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            values.record(&mut data.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else { return };
        if !data.context.sampled {
            return;
        }
        // Never wait: a slow collector costs dropped spans, not slower requests.
        if self.queue.try_send(Finished { data, end: SystemTime::now() }).is_err() {
            metrics().trace_spans_dropped.inc();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The exporter

struct Control {
    /// Asks the exporter to send what it holds and stop.
    stop: Notify,
    /// Signalled by the exporter once it has stopped.
    stopped: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// Starts the export thread and returns the layer that feeds it.
pub(crate) fn layer(config: OtlpConfig) -> std::io::Result<OtlpLayer> {
    let (queue, spans) = mpsc::channel(config.max_queue.max(1));
    let (done, stopped) = std::sync::mpsc::channel();
    let control = Arc::new(Control { stop: Notify::new(), stopped: Mutex::new(Some(stopped)) });
    let sampler = config.sampler;
    let exporter = control.clone();
    std::thread::Builder::new().name("otlp-export".to_owned()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        if let Ok(runtime) = runtime {
            runtime.block_on(export_loop(config, spans, &exporter));
        }
        let _ = done.send(());
    })?;
    let _ = EXPORTER.set(control);
    Ok(OtlpLayer { queue, sampler })
}

/// Sends the spans still queued and stops the exporter, waiting at most `wait`. Call once, as
/// the process exits.
pub fn shutdown(wait: Duration) {
    let Some(control) = EXPORTER.get() else { return };
    control.stop.notify_one();
    let stopped = control.stopped.lock().ok().and_then(|mut s| s.take());
    if let Some(stopped) = stopped {
        let _ = stopped.recv_timeout(wait);
    }
}

async fn export_loop(config: OtlpConfig, mut spans: mpsc::Receiver<Finished>, control: &Control) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "OTLP exporter: no HTTP client; traces are not exported");
            return;
        }
    };
    let exporter = Exporter { config: &config, client, failing: false };
    let mut exporter = exporter;
    let mut batch: Vec<Finished> = Vec::with_capacity(config.max_batch);
    let mut deadline = tokio::time::Instant::now() + config.delay;
    loop {
        tokio::select! {
            biased;
            () = control.stop.notified() => {
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                    if batch.len() >= config.max_batch {
                        exporter.send(&mut batch).await;
                    }
                }
                exporter.send(&mut batch).await;
                return;
            }
            n = spans.recv_many(&mut batch, config.max_batch) => {
                if n == 0 {
                    exporter.send(&mut batch).await;
                    return;
                }
                if batch.len() >= config.max_batch {
                    exporter.send(&mut batch).await;
                    deadline = tokio::time::Instant::now() + config.delay;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                exporter.send(&mut batch).await;
                deadline = tokio::time::Instant::now() + config.delay;
            }
        }
    }
}

struct Exporter<'a> {
    config: &'a OtlpConfig,
    client: reqwest::Client,
    /// The last export failed: log the next failure only once it has recovered.
    failing: bool,
}

impl Exporter<'_> {
    async fn send(&mut self, batch: &mut Vec<Finished>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let body = encode(&self.config.resource, batch);
        batch.clear();
        let mut request =
            self.client.post(&self.config.endpoint).header("content-type", "application/json").body(body);
        for (k, v) in &self.config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let outcome = match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                metrics().trace_spans_exported.add(n);
                if self.failing {
                    tracing::info!(endpoint = %self.config.endpoint, "OTLP export recovered");
                }
                self.failing = false;
            }
            Err(error) => {
                metrics().trace_export_failures.inc();
                metrics().trace_spans_dropped.add(n);
                if !self.failing {
                    tracing::warn!(endpoint = %self.config.endpoint, %error, spans = n,
                        "OTLP export failed; spans are dropped until the collector answers");
                }
                self.failing = true;
            }
        }
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0).to_string()
}

fn attribute(key: &str, value: &AttrValue) -> Value {
    let value = match value {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        // OTLP/JSON writes 64-bit integers as strings.
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Float(f) => json!({ "doubleValue": f }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
    };
    json!({ "key": key, "value": value })
}

/// One `ExportTraceServiceRequest` in OTLP/JSON (ids in lowercase hex, times as strings).
fn encode(resource: &[(String, String)], batch: &[Finished]) -> Vec<u8> {
    let spans: Vec<Value> = batch
        .iter()
        .map(|f| {
            let d = &f.data;
            let mut span = json!({
                "traceId": hex(&d.context.trace_id),
                "spanId": hex(&d.context.span_id),
                "name": d.fields.name.as_deref().unwrap_or(d.name),
                "kind": if d.fields.kind == 0 { 1 } else { d.fields.kind },
                "startTimeUnixNano": nanos(d.start),
                "endTimeUnixNano": nanos(f.end),
                "attributes": d.fields.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
            });
            if let Some(parent) = d.parent {
                span["parentSpanId"] = json!(hex(&parent));
            }
            if let Some(error) = d.fields.error {
                span["status"] = json!({ "code": if error { 2 } else { 1 } });
            }
            span
        })
        .collect();
    let mut attributes: Vec<Value> =
        resource.iter().map(|(k, v)| attribute(k, &AttrValue::Str(v.clone()))).collect();
    attributes.push(attribute("process.pid", &AttrValue::Int(i64::from(std::process::id()))));
    attributes.push(attribute("telemetry.sdk.name", &AttrValue::Str("apogee".to_owned())));
    attributes.push(attribute("telemetry.sdk.language", &AttrValue::Str("rust".to_owned())));
    let request = json!({
        "resourceSpans": [{
            "resource": { "attributes": attributes },
            "scopeSpans": [{ "scope": { "name": "apogee" }, "spans": spans }],
        }],
    });
    serde_json::to_vec(&request).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, String> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        OtlpConfig::from_env(|k| map.get(k).cloned(), "apogee")
    }

    #[test]
    fn no_endpoint_no_export() {
        assert_eq!(config(&[]), Ok(None));
        assert_eq!(config(&[("OTEL_SERVICE_NAME", "x")]), Ok(None));
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")]),
            Ok(None)
        );
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        );
    }

    #[test]
    fn standard_variables_are_honoured() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc, x-tenant=t1"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=ignored"),
            ("OTEL_SERVICE_NAME", "chat-gw"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            c.headers,
            vec![("authorization".into(), "Bearer abc".into()), ("x-tenant".into(), "t1".into())]
        );
        assert_eq!(
            c.resource,
            vec![("service.name".into(), "chat-gw".into()), ("deployment.environment".into(), "prod".into())]
        );
        assert_eq!(c.sampler, Sampler { ratio: 0.25, parent_based: true });
        assert_eq!(c.delay, Duration::from_millis(200));

        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/custom");
        assert_eq!(c.resource[0], ("service.name".into(), "apogee".into()));
        assert_eq!(c.sampler, Sampler { ratio: 1.0, parent_based: true });
    }

    #[test]
    fn unusable_settings_are_refused() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")]).is_err());
        assert!(config(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).is_err());
        assert!(config(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).is_ok());
        assert!(config(&[base, ("OTEL_TRACES_SAMPLER", "sometimes")]).is_err());
        assert!(
            config(&[base, ("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")])
                .is_err()
        );
        assert!(config(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]).is_err());
    }

    #[test]
    fn traceparent_round_trips_with_its_flag() {
        let c = SpanContext { trace_id: random_id(), span_id: random_id(), sampled: true };
        assert_eq!(SpanContext::parse(&c.header()), Some(c));
        let unsampled = SpanContext { sampled: false, ..c };
        assert!(unsampled.header().ends_with("-00"));
        assert_eq!(SpanContext::parse(&unsampled.header()), Some(unsampled));
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(SpanContext::parse(good).unwrap().header(), good);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "zz",
        ] {
            assert_eq!(SpanContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sampling_is_decided_by_the_trace_id_or_the_parent() {
        let all = Sampler { ratio: 1.0, parent_based: true };
        let none = Sampler { ratio: 0.0, parent_based: true };
        let id = random_id();
        assert!(all.sample(&id, None));
        assert!(!none.sample(&id, None));
        assert!(none.sample(&id, Some(true)), "children follow a sampled parent");
        assert!(!all.sample(&id, Some(false)));
        let half = Sampler { ratio: 0.5, parent_based: false };
        let sampled = (0..4000).filter(|_| half.sample(&random_id(), None)).count();
        assert!((1600..2400).contains(&sampled), "{sampled}");
        let id = random_id();
        assert_eq!(half.sample(&id, None), half.sample(&id, None), "the same trace, the same answer");
    }

    #[test]
    fn the_layer_links_spans_and_encodes_otlp_json() {
        use tracing_subscriber::layer::SubscriberExt;
        let (queue, mut spans) = mpsc::channel(16);
        let layer = OtlpLayer { queue, sampler: Sampler { ratio: 1.0, parent_based: true } };
        let subscriber = tracing_subscriber::registry().with(layer);
        let remote = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        tracing::subscriber::with_default(subscriber, || {
            set_enabled();
            let server = tracing::info_span!(
                "rpc",
                otel.kind = "server",
                otel.parent = remote,
                rpc = "Send",
                count = 3u64,
                status = tracing::field::Empty
            );
            let _g = server.enter();
            let child = tracing::info_span!("inner", otel.name = "do work", otel.status_code = "error");
            let header = traceparent_of(&child).unwrap();
            assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{header}");
            drop(child);
            server.record("status", 200u64);
        });
        let mut batch = Vec::new();
        while let Ok(f) = spans.try_recv() {
            batch.push(f);
        }
        assert_eq!(batch.len(), 2);
        let body: Value =
            serde_json::from_slice(&encode(&[("service.name".into(), "svc".into())], &batch)).unwrap();
        let rs = &body["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "svc"}})
        );
        let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
        let (inner, server) = (&spans[0], &spans[1]);
        assert_eq!(server["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(server["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(server["kind"], 2);
        assert_eq!(server["name"], "rpc");
        let attrs = server["attributes"].as_array().unwrap();
        assert!(attrs.contains(&json!({"key": "rpc", "value": {"stringValue": "Send"}})), "{attrs:?}");
        assert!(attrs.contains(&json!({"key": "count", "value": {"intValue": "3"}})), "{attrs:?}");
        assert!(attrs.contains(&json!({"key": "status", "value": {"intValue": "200"}})), "{attrs:?}");
        assert!(!attrs.iter().any(|a| a["key"].as_str().unwrap().starts_with("otel.")), "{attrs:?}");
        assert_eq!(inner["traceId"], server["traceId"]);
        assert_eq!(inner["parentSpanId"], server["spanId"]);
        assert_eq!(inner["name"], "do work");
        assert_eq!(inner["kind"], 1);
        assert_eq!(inner["status"]["code"], 2);
        let (start, end) =
            (inner["startTimeUnixNano"].as_str().unwrap(), inner["endTimeUnixNano"].as_str().unwrap());
        assert!(start.parse::<u128>().unwrap() <= end.parse::<u128>().unwrap());
    }
}
