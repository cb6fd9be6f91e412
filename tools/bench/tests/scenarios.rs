//! `apogee-bench` end to end against a real server: small runs of `reconnect-storm` and
//! `chat-mix` must see every message and write a JSON report that parses. Durations are never
//! asserted.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use apogee_tests::TestServer;
use serde_json::Value;

/// Runs the bench binary with `args` (blocking, off the server's runtime) and returns its output.
async fn bench(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_apogee-bench")).args(args).output().unwrap()
    })
    .await
    .unwrap()
}

fn report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.with_extension("json")).unwrap();
    let svg = std::fs::read_to_string(out.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
    serde_json::from_str(&text).unwrap()
}

fn assert_complete(v: &Value) {
    let d = &v["deliveries"];
    assert!(d["expected"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(d["received"], d["expected"], "{v}");
    assert_eq!(d["completeness"], 1.0, "{v}");
    assert_eq!(d["missing_count"], 0, "{v}");
    assert_eq!(d["missing"], Value::Array(vec![]), "{v}");
    assert_eq!(v["latency"]["count"], d["expected"], "every delivery but the caught-up ones is timed: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_loses_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("storm");
    let args = [
        "reconnect-storm",
        "--url",
        &server.url,
        "--clients",
        "4",
        "--storm",
        "3",
        "--rate",
        "20",
        "--before",
        "1",
        "--offline",
        "1",
        "--after",
        "1",
        "--drain",
        "10",
        "--sources",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = bench(args.iter().map(|s| (*s).to_owned()).collect()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let v = report(&out);
    assert_eq!(v["scenario"], "reconnect-storm");
    assert_eq!(v["connections"]["opened"], 4);
    assert_eq!(v["extra"]["reconnected"], 3, "{v}");
    let d = &v["deliveries"];
    assert!(d["expected"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(d["received"], d["expected"], "{v}");
    assert_eq!(d["completeness"], 1.0, "{v}");
    assert_eq!(d["missing_count"], 0, "{v}");
    assert!(stdout.contains("== reconnect-storm =="), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_mix_delivers_every_message_to_every_member() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mix");
    let args = [
        "chat-mix",
        "--url",
        &server.url,
        "--users",
        "6",
        "--room-size",
        "3",
        "--think",
        "0.2",
        "--duration",
        "2",
        "--drain",
        "10",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = bench(args.iter().map(|s| (*s).to_owned()).collect()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let v = report(&out);
    assert_eq!(v["scenario"], "chat-mix");
    assert_complete(&v);
    assert!(v["actions"]["send"]["count"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["actions"]["rest (all)"]["errors"], 0, "{v}");
}

/// Both upload APIs: every file uploads and comes back intact (size and SHA-256 checked by the
/// bench against what it sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sends_files_that_come_back_intact() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for mode in ["media", "upload"] {
        let out = dir.path().join(format!("upload-{mode}"));
        let args = [
            "upload",
            "--url",
            &server.url,
            "--users",
            "2",
            "--files",
            "6",
            "--size",
            "100K",
            "--concurrency",
            "3",
            "--mode",
            mode,
            "--out",
            out.to_str().unwrap(),
        ];
        let output = bench(args.iter().map(|s| (*s).to_owned()).collect()).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let v = report(&out);
        assert_eq!(v["scenario"], "upload");
        assert_eq!(v["messages_sent"], 6, "{v}");
        assert_complete(&v);
        assert_eq!(v["extra"]["upload"]["errors"], 0, "{v}");
        assert_eq!(v["extra"]["download"]["intact"], 6, "{v}");
        assert!(v["extra"]["upload"]["mib_per_s"].as_f64().unwrap() > 0.0, "{v}");
        assert!(stdout.contains("6 of 6 intact"), "{stdout}");
    }
}

/// `search` seeds a channel and asks every kind of query: words common to many messages are
/// found, text found nowhere is not, and no query fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_seeds_and_times_every_kind_of_query() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search.json");
    let args =
        ["search", "--url", &server.url, "-n", "300", "-c", "3", "-q", "5", "--out", out.to_str().unwrap()];
    let output = bench(args.iter().map(|s| (*s).to_owned()).collect()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["seeded"]["messages"], 300, "{v}");
    let kinds = v["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 5, "{v}");
    for kind in kinds {
        assert_eq!(kind["errors"], 0, "{v}");
        assert_eq!(kind["latency"]["count"], 5, "{v}");
    }
    let results =
        |name: &str| kinds.iter().find(|k| k["kind"] == name).unwrap()["results_per_query"].as_f64().unwrap();
    assert!(results("common word") > 0.0, "{v}");
    assert_eq!(results("no match"), 0.0, "{v}");
}

/// `idle --gateways` spreads the sockets over the gateways given (here the same server twice)
/// and every one logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_spreads_sockets_over_gateways() {
    let server = TestServer::start().await;
    let pid = std::process::id().to_string();
    let gateways = format!("{0},{0}", server.url);
    let args = [
        "idle",
        "--url",
        &server.url,
        "--gateways",
        &gateways,
        "--pid",
        &pid,
        "-n",
        "20",
        "-u",
        "2",
        "--subscribe",
        "--settle",
        "0",
        "--json",
    ];
    let output = bench(args.iter().map(|s| (*s).to_owned()).collect()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value =
        serde_json::from_str(stdout.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["opened"], 20, "{stdout}");
    assert_eq!(summary["failed"], 0, "{stdout}");
    assert_eq!(summary["gateways"], 2, "{stdout}");
}
