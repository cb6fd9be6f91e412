//! The gateway: Rocket.Chat's REST API v1 (and, with the realtime issue, DDP) in front of the
//! services. Handlers extract, authenticate to a [`Principal`](apogee_types::Principal), call a
//! service client and render Rocket.Chat's JSON; rules live in the services.
//!
//! **Architecture invariant:** the gateway holds no durable state and depends on no service
//! crate, only on their traits in `apogee-api`.

mod commands;
mod ddp;
mod download;
mod error;
mod extract;
mod hub;
mod limiter;
mod presence;
mod reply;
mod router;
mod v1;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

pub use router::router;

use apogee_api::{AuthClient, FilesClient, MessagingClient};
use apogee_bus::Bus;
use apogee_presence::PresenceHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the gateway needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Public base URL (`ROOT_URL`), for absolute links such as `avatarUrl`.
    pub site_url: String,
    pub test_mode: bool,
    pub max_body_bytes: usize,
    /// Login attempts per client address per minute (before authentication we only know the address).
    pub logins_per_minute: u32,
    /// DDP: silence after which the server pings a socket, and after as much again closes it.
    pub ddp_idle: std::time::Duration,
}

/// A check of the gateway's dependencies for `/readyz`: `Err` names what is missing.
pub type ReadyCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub auth: AuthClient,
    pub messaging: MessagingClient,
    /// Uploads, downloads and avatars; `None` until [`GatewayState::with_files`].
    pub files: Option<FilesClient>,
    pub bus: Bus,
    pub cfg: Arc<GatewayConfig>,
    pub(crate) login_limiter: Arc<limiter::RateLimiter>,
    pub(crate) hub: Arc<hub::Hub>,
    pub(crate) presence: Arc<presence::Presence>,
    pub(crate) ready: ReadyCheck,
}

impl GatewayState {
    /// Builds the gateway with in-process presence (embedded mode).
    pub async fn new(auth: AuthClient, messaging: MessagingClient, bus: Bus, cfg: GatewayConfig) -> Self {
        Self::with_presence(auth, messaging, bus, cfg, PresenceHandle::memory()).await
    }

    /// Builds the gateway over a presence store shared with other gateways (Redis when
    /// distributed), starts heartbeating in it and following presence on the bus.
    pub async fn with_presence(
        auth: AuthClient,
        messaging: MessagingClient,
        bus: Bus,
        cfg: GatewayConfig,
        presence_store: PresenceHandle,
    ) -> Self {
        let login_limiter = limiter::RateLimiter::shared(
            cfg.logins_per_minute,
            std::time::Duration::from_secs(60),
            "login",
            presence_store.clone(),
        );
        let hub = hub::Hub::new(bus.clone());
        let presence = presence::Presence::new(auth.clone(), bus.clone(), presence_store);
        presence.keep_alive().await;
        presence.run(hub.clone()).await;
        hub.run_all_feed().await;
        // Embedded default: the services answer from their store.
        let probe = auth.clone();
        let ready: ReadyCheck = Arc::new(move || {
            let probe = probe.clone();
            Box::pin(async move {
                probe
                    .find_user(apogee_api::UserSelector::Id("rocket.cat".into()))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        });
        Self {
            ready,
            auth,
            messaging,
            files: None,
            bus,
            cfg: Arc::new(cfg),
            login_limiter: Arc::new(login_limiter),
            hub,
            presence,
        }
    }
}

impl GatewayState {
    /// Replaces the `/readyz` check (distributed mode checks the roles it calls and the bus).
    pub fn with_readiness(mut self, ready: ReadyCheck) -> Self {
        self.ready = ready;
        self
    }

    /// Serves the file routes through this files service.
    pub fn with_files(mut self, files: FilesClient) -> Self {
        self.files = Some(files);
        self
    }
}

/// The `apogee presence` role: sweeps the shared presence store every third of the lease, so the
/// users of a gateway that vanished go offline (stored and published once) even when no other
/// gateway runs. Runs until `shutdown`.
pub async fn sweep_presence(auth: AuthClient, bus: Bus, store: PresenceHandle, shutdown: CancellationToken) {
    let interval = (store.gateway_ttl() / 3).max(std::time::Duration::from_millis(100));
    let presence = presence::Presence::new(auth, bus, store);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => presence.sweep().await,
            () = shutdown.cancelled() => return,
        }
    }
}

/// Serves HTTP on `listener` until `shutdown` fires, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: GatewayState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let hub = state.hub.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    // Upgraded sockets outlive the HTTP server's drain: tell each to reconnect elsewhere.
    let closing = shutdown.clone();
    tokio::spawn(async move {
        closing.cancelled().await;
        hub.close_all();
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
