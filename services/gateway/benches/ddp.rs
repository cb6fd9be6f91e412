//! DDP hot paths: encoding frames, and the hub fanning one room message out to N sockets.
//!
//! The frame and hub modules are crate-private; the bench compiles the same source files
//! (`#[path]`) rather than widening the gateway's public API for it.
#![allow(clippy::unwrap_used)]

#[allow(dead_code, unused_imports)]
#[path = "../src/ddp/frame.rs"]
mod frame;
/// Where `hub.rs` looks for the frame helpers.
mod ddp {
    pub(crate) use super::frame;
}
#[allow(dead_code, unused_imports)]
#[path = "../src/hub.rs"]
mod hub;

use std::hint::black_box;
use std::time::{Duration, Instant};

use apogee_api::events::{BusEvent, RoomEvent, room_subject};
use apogee_bus::{Bus, Subject};
use apogee_rc::Dates;
use apogee_types::{Message, Millis, Room, RoomType};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn message(rid: &str, n: u64) -> Message {
    serde_json::from_value(json!({
        "_id": format!("m{n}"), "rid": rid, "msg": "hello @alice, see #general for the *notes*",
        "ts": 1_700_000_000_000_i64, "_updatedAt": 1_700_000_000_000_i64,
        "u": {"_id": "u1", "username": "bob", "name": "Bob"},
        "mentions": [{"_id": "u2", "username": "alice", "name": "Alice", "type": "user"}],
        "seq": n,
    }))
    .unwrap()
}

fn frames(c: &mut Criterion) {
    let msg = message("GENERAL", 1);
    let mut g = c.benchmark_group("ddp_frame");
    g.bench_function("stream_room_message", |b| {
        b.iter(|| {
            let shown = apogee_rc::message(black_box(&msg), Dates::Ejson);
            frame::stream_event("stream-room-messages", "GENERAL", json!([shown]))
        })
    });
    let result = json!({"msg": "result", "id": "42", "result": apogee_rc::message(&msg, Dates::Ejson)});
    g.bench_function("method_result", |b| b.iter(|| frame::encode(black_box(&result))));
    let inbound = r#"{"msg":"method","id":"7","method":"sendMessage","params":[{"_id":"abc","rid":"GENERAL","msg":"hello there"}]}"#;
    g.bench_function("parse_method", |b| b.iter(|| frame::parse(black_box(inbound)).is_ok()));
    g.finish();
}

/// Publishes one message event on the bus and waits until every one of N sockets has its frame:
/// bus delivery, decoding, encoding once, and N queue pushes and pops.
fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut g = c.benchmark_group("hub_fanout");
    g.measurement_time(Duration::from_secs(3));
    for n in [10usize, 1_000, 10_000] {
        let bus = Bus::local_with_capacity(4096);
        let hub = hub::Hub::new(bus.clone());
        let rid = "bench-room";
        let conns: Vec<_> = rt.block_on(async {
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                let conn = hub.connect();
                conn.watches.lock().unwrap().room_messages.insert(rid.to_owned());
                hub.watch_room(&conn, rid).await;
                conns.push(conn);
            }
            conns
        });
        let room = Room::new(rid.into(), RoomType::Channel, Some("bench".into()), None, Millis(0));
        let subject = Subject::new(&room_subject(rid, "message")).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for i in 0..iters {
                        let event = RoomEvent::Message {
                            message: Box::new(message(rid, i)),
                            room: Box::new(room.clone()),
                            touched: vec![],
                            left: vec![],
                            inserted: true,
                        };
                        let payload = event.encode();
                        bus.publish(&subject, payload).await.unwrap();
                        for conn in &conns {
                            black_box(conn.outbox.pop().await);
                        }
                    }
                    started.elapsed()
                })
            })
        });
        drop(conns);
    }
    g.finish();
}

criterion_group!(benches, frames, fanout);
criterion_main!(benches);
