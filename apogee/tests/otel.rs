//! OpenTelemetry export end to end: a real `apogee serve` process, configured only by the
//! standard `OTEL_*` variables, sends its spans to a collector the test runs (OTLP/HTTP JSON).
//! A message's trace runs from the HTTP request through the bus publish to the fan-out to a
//! subscribed socket, under the trace id the client sent in `traceparent`.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apogee_tests::cluster::free_port;
use apogee_tests::ddp::Ddp;
use apogee_tests::otlp::{Collector, Span};
use apogee_tests::{ADMIN, Client};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_apogee");

struct Serve {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(env: &[(&str, &str)]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--port", &port.to_string(), "--host", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .env("TEST_MODE", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{url}/api/info")).await.is_err() {
        assert!(Instant::now() < deadline, "apogee serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Serve { child, url, _dir: dir }
}

/// Names of the process's threads (`/proc/<pid>/task/*/comm`).
fn threads(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

fn by_id<'a>(spans: &'a [Span], id: &str) -> &'a Span {
    spans.iter().find(|s| s.span_id == id).unwrap_or_else(|| panic!("no span {id} in {spans:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_a_message_trace_over_otlp() {
    let collector = Collector::start().await;
    let server = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret"),
        ("OTEL_SERVICE_NAME", "apogee-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    assert!(threads(server.child.id()).iter().any(|t| t == "otlp-export"), "the exporter runs");

    let admin = Client::anon(&server.url).login(ADMIN, ADMIN).await;
    let mut ws = Ddp::login(&server.url, admin.token()).await;
    assert_eq!(ws.sub("stream-room-messages", json!(["GENERAL", false])).await["msg"], "ready");

    // The client's own trace: the server continues it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = admin
        .request(reqwest::Method::POST, "chat.postMessage")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"roomId": "GENERAL", "text": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    ws.recv_where(|f| f["msg"] == "changed" && f["fields"]["args"][0]["msg"] == "traced").await;

    let spans = collector
        .wait_for("the message's HTTP, publish and fan-out spans", |spans| {
            let t: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
            t.iter().any(|s| s.kind == 2) && room_fanout(&t).is_some()
        })
        .await;
    let trace: Vec<Span> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
    let http = trace.iter().find(|s| s.kind == 2).unwrap();
    assert_eq!(http.name, "POST /api/v1/chat.postMessage");
    assert_eq!(http.parent.as_deref(), Some("00f067aa0ba902b7"), "continues the caller's span");
    assert_eq!(http.attr("http.route").as_deref(), Some("/api/v1/chat.postMessage"));
    assert_eq!(http.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(http.service, "apogee-under-test");
    assert_eq!(http.pid, i64::from(server.child.id()));

    // publish → fan-out: the consumer span's parent is the producer span, which descends from
    // the request's span.
    let fanout =
        room_fanout(&trace.iter().collect::<Vec<_>>()).expect("a fan-out of the room's message event");
    let producer = by_id(&trace, fanout.parent.as_deref().unwrap());
    assert_eq!(producer.kind, 4);
    let mut up = producer.clone();
    while let Some(parent) = up.parent.clone() {
        if parent == http.span_id {
            break;
        }
        up = by_id(&trace, &parent).clone();
    }
    assert_eq!(up.parent.as_deref(), Some(http.span_id.as_str()), "the publish happens inside the request");

    // Exports carry the configured headers.
    let headers = collector.headers();
    assert!(headers.iter().all(|h| h.iter().any(|(k, v)| k == "authorization" && v == "Bearer s3cret")));

    // A trace the client did not start gets a fresh id, and spans go on being exported.
    admin.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "untraced"})).await;
    collector
        .wait_for("a new trace", |spans| {
            spans
                .iter()
                .any(|s| s.kind == 2 && s.trace_id != trace_id && s.name == "POST /api/v1/chat.postMessage")
        })
        .await;
    let metrics = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    let exported = metrics
        .lines()
        .find_map(|l| l.strip_prefix("apogee_trace_spans_exported_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(exported >= 3, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_no_exporter() {
    let collector = Collector::start().await;
    // Only the service name: nothing says where to export, so nothing is.
    let server = serve(&[("OTEL_SERVICE_NAME", "apogee-quiet")]).await;
    let threads = threads(server.child.id());
    assert!(!threads.iter().any(|t| t == "otlp-export"), "{threads:?}");
    let admin = Client::anon(&server.url).login(ADMIN, ADMIN).await;
    admin.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "hi"})).await;
    let metrics = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("apogee_trace_spans_exported_total 0\n"), "{metrics}");
    assert!(collector.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_otel_settings_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--port", &free_port().to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OTEL_TRACES_SAMPLER=sometimes"), "{stderr}");
}

/// `APOGEE_LOG_FORMAT=json`: every log line is one JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("out.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--port", &port.to_string(), "--host", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_clear()
        .env("APOGEE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{url}/api/info")).await.is_err() {
        assert!(Instant::now() < deadline, "apogee serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "the start logs something");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

/// The hub's fan-out span of the room message event: the post also fans out user events (the
/// subscriptions it changed), in no fixed order, so the consumer span is picked by its producer.
fn room_fanout<'a>(trace: &[&'a Span]) -> Option<&'a Span> {
    trace.iter().copied().find(|s| {
        s.kind == 5
            && s.name == "hub fan-out"
            && s.parent.as_deref().is_some_and(|p| {
                trace.iter().any(|q| {
                    q.span_id == p
                        && q.kind == 4
                        && q.attr("messaging.destination.name")
                            .is_some_and(|d| d.starts_with("apogee.room.GENERAL."))
                })
            })
    })
}
