//! Logging set-up: `RUST_LOG` filters (default `info`), JSON lines when asked; process metrics
//! in Prometheus' text format ([`metrics`]).

pub mod metrics;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` is the value of `RUST_LOG`, if set.
pub fn init(filter: Option<&str>, json: bool) {
    let filter = EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests starting several servers) is harmless: keep the first subscriber.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
