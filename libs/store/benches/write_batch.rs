//! The store's write path: K concurrent one-message room writes, which the writer thread folds
//! into batches (one transaction, one commit). Throughput is messages committed per second.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use apogee_store::testsuite::{message, room};
use apogee_store::{RoomStore, RoomWrite, SqliteStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn write_batch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = SqliteStore::open_temp().unwrap();
    rt.block_on(async {
        let mut create = RoomWrite::new("r");
        create.create = Some(room("r", "bench"));
        store.write_room(create).await.unwrap();
    });
    let mut g = c.benchmark_group("store_write");
    g.measurement_time(Duration::from_secs(4));
    let mut next = 0u64;
    for concurrent in [1usize, 16, 128] {
        g.throughput(Throughput::Elements(concurrent as u64));
        g.bench_with_input(BenchmarkId::new("concurrent_messages", concurrent), &concurrent, |b, &k| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let mut tasks = tokio::task::JoinSet::new();
                        for _ in 0..k {
                            next += 1;
                            let store = store.clone();
                            let mut write = RoomWrite::new("r");
                            write.messages.push(message(&format!("m{next}"), "r", "u1", next as i64));
                            tasks.spawn(async move { store.write_room(write).await.unwrap() });
                        }
                        while tasks.join_next().await.is_some() {}
                    }
                    started.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, write_batch);
criterion_main!(benches);
