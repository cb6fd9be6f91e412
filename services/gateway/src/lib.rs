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
use apogee_types::{Principal, ServiceResult};
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
    /// Rocket.Chat's REST rate limiter (`API_Enable_Rate_Limiter*`) on the routes that carry
    /// file bytes, counted per client address and route, shared between gateways.
    pub(crate) api_limiter: Arc<limiter::RateLimiter>,
    pub(crate) hub: Arc<hub::Hub>,
    pub(crate) presence: Arc<presence::Presence>,
    pub(crate) ready: ReadyCheck,
    /// The shared token-validation cache, when auth evicts from it (see [`Self::with_token_cache`]).
    token_cache: Option<PresenceHandle>,
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
        // The limit and window come from settings on every call; these are placeholders.
        let api_limiter = limiter::RateLimiter::shared(
            10,
            std::time::Duration::from_secs(60),
            "api",
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
            api_limiter: Arc::new(api_limiter),
            hub,
            presence,
            token_cache: None,
        }
    }
}

impl GatewayState {
    /// Replaces the `/readyz` check (distributed mode checks the roles it calls and the bus).
    pub fn with_readiness(mut self, ready: ReadyCheck) -> Self {
        self.ready = ready;
        self
    }

    /// Answers token checks from `cache` (shared by the gateways) before asking auth. Only for a
    /// cache that the auth service evicts from (`Auth::set_token_cache` with the same store):
    /// otherwise a logout would not stop a cached token.
    pub fn with_token_cache(mut self, cache: PresenceHandle) -> Self {
        self.token_cache = Some(cache);
        self
    }

    /// Who a REST token belongs to: the cache first, then auth (whose answer is cached for
    /// [`TOKEN_CACHE_TTL`]). A cache that cannot answer is skipped, never trusted.
    pub(crate) async fn authenticate(&self, user_id: &str, token: &str) -> ServiceResult<Principal> {
        let Some(cache) = &self.token_cache else { return self.auth.authenticate(user_id, token).await };
        let key = apogee_api::hash_token(token);
        if let Ok(Some(bytes)) = cache.token(&key).await
            && let Ok(principal) = serde_json::from_slice::<Principal>(&bytes)
            && principal.user_id == user_id
        {
            return Ok(principal);
        }
        let principal = self.auth.authenticate(user_id, token).await?;
        if let Ok(bytes) = serde_json::to_vec(&principal)
            && let Err(e) = cache.put_token(&key, user_id, &bytes, TOKEN_CACHE_TTL).await
        {
            tracing::debug!(error = %e, "token cache: not stored");
        }
        Ok(principal)
    }

    /// Serves the file routes through this files service.
    pub fn with_files(mut self, files: FilesClient) -> Self {
        self.files = Some(files);
        self
    }
}

/// How long a validated token is trusted without asking auth. Auth evicts on logout and on any
/// change to the user, so this bounds only what it cannot see: a token pruned at a later login
/// or reaching its expiry.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

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
