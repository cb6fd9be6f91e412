//! Posting a message through the messaging service over a temporary SQLite store: permission
//! checks, mention parsing and resolution, the room write and the bus announcement. The plain
//! and the mention-heavy text differ only in what the message parser finds, so their gap is the
//! cost of mentions. (Apogee does not parse markdown: clients render it.)
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use apogee_api::{AuthClient, MessagingClient, NewMessage};
use apogee_auth::{Auth, AuthConfig, Bootstrap, TEST_ADMIN};
use apogee_bus::Bus;
use apogee_messaging::Messaging;
use apogee_store::{SqliteStore, StoreRef};
use apogee_types::Principal;
use criterion::{Criterion, criterion_group, criterion_main};

fn send(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let messaging = rt.block_on(async {
        let store: StoreRef = Arc::new(SqliteStore::open_temp().unwrap());
        let bus = Bus::local();
        let cfg = AuthConfig {
            site_url: "http://127.0.0.1:3000".into(),
            test_mode: true,
            failed_logins_per_user: 5,
            login_block: Duration::from_secs(60),
            bcrypt_cost: 4,
        };
        let auth = Arc::new(Auth::new(store.clone(), cfg, bus.clone()));
        let messaging = Messaging::new(store, AuthClient::local(auth.clone()), bus);
        let client = MessagingClient::local(messaging.clone());
        auth.set_messaging(client.clone());
        messaging.init().await.unwrap();
        auth.init(Bootstrap { admin: None, setting_overrides: Default::default() }).await.unwrap();
        client
    });
    let admin = Principal {
        user_id: TEST_ADMIN.into(),
        username: TEST_ADMIN.into(),
        name: None,
        roles: vec!["admin".into(), "user".into()],
    };
    let mut g = c.benchmark_group("messaging_send");
    g.measurement_time(Duration::from_secs(4));
    let texts = [
        ("plain", "the quick brown fox jumps over the lazy dog and keeps running far away"),
        (
            "mentions",
            "@rocket.cat ping @all about #general: *bold* _it_ `code` and [a link](http://x.y) @nobody.here",
        ),
    ];
    for (name, text) in texts {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let new = NewMessage {
                    id: None,
                    rid: "GENERAL".into(),
                    msg: text.into(),
                    tmid: None,
                    tshow: false,
                    groupable: None,
                    extra: Default::default(),
                };
                messaging.send_message(&admin, new).await.unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
