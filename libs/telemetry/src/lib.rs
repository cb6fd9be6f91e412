//! Logging set-up: `RUST_LOG` filters (default `info`), JSON lines when asked; process metrics
//! in Prometheus' text format ([`metrics`]); distributed traces exported over OTLP when an
//! endpoint is configured ([`trace`]).

pub mod metrics;
pub mod trace;

use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, filter};

/// Installs the global subscriber. `filter` is the value of `RUST_LOG`, if set; `json` writes
/// one JSON object per log line; `otlp` exports spans (see [`trace`]).
///
/// `RUST_LOG` filters the logs only: the exporter sees every span at `info` or above, so a quiet
/// log level does not silence traces.
pub fn init(filter: Option<&str>, json: bool, otlp: Option<trace::OtlpConfig>) {
    let filter = EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let logs: Box<dyn Layer<Registry> + Send + Sync> =
        if json { fmt.json().with_filter(filter).boxed() } else { fmt.with_filter(filter).boxed() };
    let mut layers = vec![logs];
    let mut exporting = false;
    if let Some(config) = otlp {
        let endpoint = config.endpoint.clone();
        match trace::layer(config) {
            Ok(layer) => {
                let spans = filter::filter_fn(|m| m.is_span() && *m.level() <= Level::INFO);
                layers.push(layer.with_filter(spans).boxed());
                exporting = true;
            }
            Err(e) => eprintln!("OTLP exporter for {endpoint} not started: {e}"),
        }
    }
    // A second init (tests starting several servers) is harmless: keep the first subscriber.
    if tracing_subscriber::registry().with(layers).try_init().is_ok() && exporting {
        trace::set_enabled();
    }
}
