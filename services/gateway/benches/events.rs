//! The bus encoding of the hottest event, a `RoomEvent::Message`: protobuf (what the bus carries,
//! `proto/apogee/events/v1/events.proto`) against the serde JSON it replaced, encode and decode.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use apogee_api::events::{BusEvent, RoomEvent};
use apogee_types::{Message, Millis, Room, RoomType};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// A message as messaging publishes it after `sendMessage`: a mention, a reaction-free body, an
/// attachment in `extra`, and the room after the write (its `lastMessage` is the same message).
fn event() -> RoomEvent {
    let message: Message = serde_json::from_value(json!({
        "_id": "Xk2pQ9aLr7mBv3CtE", "rid": "GENERAL", "msg": "hello @alice, see #general for the *notes* 🚀",
        "ts": 1_700_000_000_000_i64, "_updatedAt": 1_700_000_000_000_i64,
        "u": {"_id": "u1KdJw8sPq2", "username": "bob", "name": "Bob"},
        "mentions": [{"_id": "u2LmZx4tRn7", "username": "alice", "name": "Alice", "type": "user"}],
        "channels": [{"_id": "GENERAL", "name": "general"}],
        "seq": 123_456,
        "extra": {"attachments": [{"title": "notes.pdf", "title_link": "/file-upload/f1/notes.pdf", "type": "file"}]},
    }))
    .unwrap();
    let mut room = Room::new(
        "GENERAL".into(),
        RoomType::Channel,
        Some("general".into()),
        None,
        Millis(1_600_000_000_000),
    );
    room.msgs = 123_456;
    room.users_count = 5_000;
    room.lm = Some(message.ts);
    room.updated_at = message.ts;
    room.default = true;
    room.last_message = Some(Box::new(message.clone()));
    RoomEvent::Message {
        message: Box::new(message),
        room: Box::new(room),
        touched: vec!["u2LmZx4tRn7".into()],
        left: vec![],
        inserted: true,
    }
}

fn codec(c: &mut Criterion) {
    let event = event();
    let proto = event.encode();
    let json = serde_json::to_vec(&event).unwrap();
    println!("room_event_message payload: protobuf {} bytes, json {} bytes", proto.len(), json.len());
    let mut g = c.benchmark_group("room_event_message");
    g.bench_function("protobuf_encode", |b| b.iter(|| black_box(&event).encode()));
    g.bench_function("json_encode", |b| b.iter(|| serde_json::to_vec(black_box(&event)).unwrap()));
    g.bench_function("protobuf_decode", |b| b.iter(|| RoomEvent::decode(black_box(&proto)).unwrap()));
    g.bench_function("json_decode", |b| {
        b.iter(|| serde_json::from_slice::<RoomEvent>(black_box(&json)).unwrap())
    });
    g.bench_function("protobuf_round_trip", |b| {
        b.iter(|| RoomEvent::decode(&black_box(&event).encode()).unwrap())
    });
    g.bench_function("json_round_trip", |b| {
        b.iter(|| {
            serde_json::from_slice::<RoomEvent>(&serde_json::to_vec(black_box(&event)).unwrap()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
