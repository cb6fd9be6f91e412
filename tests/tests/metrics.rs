//! `/metrics`: the Prometheus exposition names the metrics, they move with traffic, and labels
//! hold route templates and classes, never ids.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use apogee_tests::TestServer;
use apogee_tests::ddp::Ddp;
use serde_json::json;

/// Scrapes `/metrics` and returns every sample line as `name{labels}` → value.
async fn scrape(url: &str) -> HashMap<String, f64> {
    let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = resp.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample {l:?}")))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or(&0.0)
}

#[tokio::test]
async fn metrics_move_with_traffic_and_labels_stay_bounded() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut bob_ws = Ddp::login(&server.url, bob.token()).await;
    let ready =
        bob_ws.sub("stream-room-messages", json!(["GENERAL", {"useCollection": false, "args": []}])).await;
    assert_eq!(ready["msg"], "ready", "{ready}");

    let before = scrape(&server.url).await;
    assert!(get(&before, "apogee_ddp_connections") >= 1.0, "bob's socket is open");
    assert!(get(&before, "apogee_ddp_subscriptions") >= 1.0, "bob's subscription is active");

    const SENT: usize = 3;
    let mut ids = Vec::new();
    for i in 0..SENT {
        let reply =
            alice.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": format!("m{i}")})).await;
        ids.push(reply["message"]["_id"].as_str().unwrap().to_owned());
    }
    for _ in 0..SENT {
        bob_ws.event("stream-room-messages", "GENERAL").await;
    }
    // A templated route with a concrete id in its path, and a path no route matches.
    server.admin().await.ok_get("settings/Site_Name").await;
    alice.ok_get(&format!("chat.getMessage?msgId={}", ids[0])).await;
    let (status, _) = alice.get(&format!("nothing.here.{}", ids[0])).await;
    assert_eq!(status, 404);

    let after = scrape(&server.url).await;
    let moved = |key: &str| get(&after, key) - get(&before, key);
    assert!(
        moved("apogee_messages_sent_total") >= SENT as f64,
        "messages sent: {}",
        moved("apogee_messages_sent_total")
    );
    assert!(moved("apogee_messages_delivered_total") >= SENT as f64, "delivered to bob's socket");
    assert!(moved("apogee_ddp_frames_written_total") >= SENT as f64);
    assert!(moved("apogee_bus_events_published_total") >= SENT as f64);
    assert!(moved("apogee_bus_events_received_total") >= SENT as f64);
    assert!(moved("apogee_store_operation_duration_seconds_count{op=\"write\"}") >= SENT as f64);
    assert!(moved("apogee_store_operation_duration_seconds_count{op=\"read\"}") >= 1.0);
    assert!(moved("apogee_store_write_batch_duration_seconds_count") >= 1.0);
    assert!(after.contains_key("apogee_fanout_queue_depth"));
    assert!(after.contains_key("apogee_slow_consumer_disconnects_total"));
    let post_route = "apogee_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/chat.postMessage\",status=\"2xx\"}";
    assert!(moved(post_route) >= SENT as f64, "{post_route}");
    assert_eq!(
        get(
            &after,
            "apogee_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/settings/{id}\",status=\"2xx\"}"
        ),
        1.0,
        "the template, not the setting id"
    );
    assert!(
        get(
            &after,
            "apogee_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"4xx\"}"
        ) >= 1.0
    );
    // Buckets are cumulative and end at the count.
    let bucket_inf = "apogee_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/chat.postMessage\",status=\"2xx\",le=\"+Inf\"}";
    assert_eq!(get(&after, bucket_inf), get(&after, post_route));

    // No label anywhere carries an id: no message, user or room id, no concrete setting name.
    let forbidden: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .chain([alice.user_id(), bob.user_id(), "GENERAL", "Site_Name"])
        .collect();
    for key in after.keys() {
        for id in &forbidden {
            assert!(!key.contains(id), "label carries an id: {key}");
        }
        if let Some(start) = key.find("route=\"") {
            let route = &key[start + 7..];
            assert!(route.starts_with('/') || route.starts_with("unmatched"), "{key}");
        }
    }
}
