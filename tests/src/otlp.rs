//! A minimal OpenTelemetry collector for tests: an HTTP server that accepts OTLP/HTTP JSON
//! trace exports on `/v1/traces` and keeps every span with its resource's `service.name` and
//! `process.pid`, and the headers each export came with.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;

/// One received span, flattened with its resource.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub pid: i64,
    pub trace_id: String,
    pub span_id: String,
    pub parent: Option<String>,
    pub name: String,
    pub kind: i64,
    /// The raw OTLP JSON of the span.
    pub json: Value,
}

impl Span {
    /// A string or integer attribute as text.
    pub fn attr(&self, key: &str) -> Option<String> {
        let attrs = self.json["attributes"].as_array()?;
        let v = &attrs.iter().find(|a| a["key"] == key)?["value"];
        v["stringValue"].as_str().or(v["intValue"].as_str()).map(str::to_owned)
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    headers: Vec<Vec<(String, String)>>,
}

/// The running collector; stops with the test's runtime.
pub struct Collector {
    pub url: String,
    received: Arc<Mutex<Received>>,
}

impl Collector {
    pub async fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let app =
            axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(received.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, received }
    }

    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    /// The headers of every export request so far (names lowercased).
    pub fn headers(&self) -> Vec<Vec<(String, String)>> {
        self.received.lock().unwrap().headers.clone()
    }

    /// Waits (up to 30 s) until `pred` holds for the spans received so far, and returns them.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans();
            if pred(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{} {} {} {:?}", s.service, s.name, s.trace_id, s.parent))
                    .collect();
                panic!("collector: {what} never arrived; got {} spans:\n{}", spans.len(), names.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `POST /v1/traces`: records an OTLP/HTTP JSON export; anything else is refused.
async fn export(
    axum::extract::State(store): axum::extract::State<Arc<Mutex<Received>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if json => {
            let mut r = store.lock().unwrap();
            r.spans.extend(flatten(&v));
            r.headers.push(
                headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect(),
            );
            axum::http::StatusCode::OK
        }
        _ => axum::http::StatusCode::BAD_REQUEST,
    }
}

fn flatten(request: &Value) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        let attrs = rs["resource"]["attributes"].as_array().cloned().unwrap_or_default();
        let attr = |key: &str| attrs.iter().find(|a| a["key"] == key).map(|a| a["value"].clone());
        let service = attr("service.name")
            .and_then(|v| v["stringValue"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let pid = attr("process.pid")
            .and_then(|v| v["intValue"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                out.push(Span {
                    service: service.clone(),
                    pid,
                    trace_id: s["traceId"].as_str().unwrap_or_default().to_owned(),
                    span_id: s["spanId"].as_str().unwrap_or_default().to_owned(),
                    parent: s["parentSpanId"].as_str().filter(|p| !p.is_empty()).map(str::to_owned),
                    name: s["name"].as_str().unwrap_or_default().to_owned(),
                    kind: s["kind"].as_i64().unwrap_or(0),
                    json: s.clone(),
                });
            }
        }
    }
    out
}
