//! Distributed mode: each service as its own process (`apogee auth`, `apogee messaging`,
//! `apogee presence`, `apogee files`, `apogee gateway`), calling the others over gRPC and sharing NATS and Redis.
//!
//! Every role serves `/livez` (the process runs) and `/readyz` (its dependencies answer), and a
//! service role also serves gRPC health. On SIGTERM a role reports not ready, stops accepting,
//! lets calls in flight finish (a gateway tells its sockets to reconnect elsewhere), and exits
//! after at most the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use apogee_api::events::{SETTINGS_CHANGED_SUBJECT, all_subject};
use apogee_api::grpc::{RpcClient, RpcOptions, ServerOptions};
use apogee_api::{AuthClient, FilesClient, MessagingClient};
use apogee_auth::Auth;
use apogee_bus::{Bus, SubjectPattern};
use apogee_config::Config;
use apogee_messaging::Messaging;
use apogee_presence::{PresenceHandle, PresenceOptions};
use apogee_types::ErrorKind;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use apogee_gateway::ReadyCheck;

/// The processes of distributed mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Auth,
    Messaging,
    Presence,
    Files,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Auth => "auth",
            Role::Messaging => "messaging",
            Role::Presence => "presence",
            Role::Files => "files",
        }
    }

    fn default_grpc_port(self) -> u16 {
        match self {
            Role::Auth => 50051,
            Role::Messaging => 50052,
            Role::Files => 50053,
            Role::Gateway | Role::Presence => 0,
        }
    }

    fn default_health_port(self) -> u16 {
        match self {
            Role::Auth => 9101,
            Role::Messaging => 9102,
            Role::Presence => 9103,
            Role::Files => 9104,
            Role::Gateway => 0,
        }
    }
}

fn rpc(config: &Config, service: &'static str, addrs: &[String]) -> anyhow::Result<RpcClient> {
    let mut options = RpcOptions::new(service);
    options.timeout = config.cluster.rpc_timeout;
    options.cluster_token = config.cluster.cluster_token.clone();
    RpcClient::new(addrs, options).map_err(anyhow::Error::msg)
}

/// The auth role over gRPC, with its setting and permission answers cached here and dropped on
/// the change events auth publishes.
async fn auth_client(config: &Config, bus: &Bus) -> anyhow::Result<(AuthClient, RpcClient)> {
    let rpc = rpc(config, "auth", &config.cluster.auth_addrs)?;
    let (client, cache) = AuthClient::grpc(rpc.clone());
    let pattern = |s: &str| SubjectPattern::new(s).with_context(|| format!("subject {s}"));
    let mut settings = bus.subscribe(&pattern(SETTINGS_CHANGED_SUBJECT)?).await?;
    let mut permissions = bus.subscribe(&pattern(&all_subject("permissions-changed"))?).await?;
    tokio::spawn(async move {
        let mut lost = 0;
        loop {
            tokio::select! {
                Some(_) = settings.next() => cache.settings_changed(),
                Some(_) = permissions.next() => cache.permissions_changed(),
                else => break,
            }
            // A missed event would leave a stale answer until it expires: start over instead.
            let lagged = settings.lagged() + permissions.lagged();
            if lagged > lost {
                lost = lagged;
                cache.clear();
            }
        }
        cache.clear();
    });
    Ok((client, rpc))
}

fn messaging_client(config: &Config) -> anyhow::Result<(MessagingClient, RpcClient)> {
    let rpc = rpc(config, "messaging", &config.cluster.messaging_addrs)?;
    Ok((MessagingClient::grpc(rpc.clone()), rpc))
}

/// The files role's client, when the cluster has one (`APOGEE_FILES_ADDRS`).
fn files_client(config: &Config) -> anyhow::Result<Option<(FilesClient, RpcClient)>> {
    if config.cluster.files_addrs.is_empty() {
        return Ok(None);
    }
    let rpc = rpc(config, "files", &config.cluster.files_addrs)?;
    Ok(Some((FilesClient::grpc(rpc.clone()), rpc)))
}

async fn connect_bus(role: Role, config: &Config) -> anyhow::Result<Bus> {
    let name = format!("apogee-{}-{}", role.name(), node_id(config));
    Bus::nats(&config.cluster.nats_url, apogee_bus::NatsOptions::new(name))
        .await
        .with_context(|| format!("connect to NATS at {}", config.cluster.nats_url))
}

/// This process's name among the roles: `APOGEE_NODE_ID`, else host name and process id.
fn node_id(config: &Config) -> String {
    config.cluster.node_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "apogee" } else { &host }, std::process::id())
    })
}

fn listen_addr(config: &Config, given: Option<SocketAddr>, port: u16) -> SocketAddr {
    given.unwrap_or(SocketAddr::new(config.listen.ip(), port))
}

/// Whether every given service answers its gRPC health check.
async fn services_serving(clients: &[(&'static str, RpcClient)]) -> Result<(), String> {
    for (name, client) in clients {
        client.health().await.map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Serves `/livez`, `/readyz` (and `/health`, an alias of `/livez`) and `/metrics`.
pub fn health_routes(ready: ReadyCheck) -> axum::Router {
    use apogee_telemetry::metrics;
    use axum::routing::get;
    let live = || async { (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))) };
    let prometheus =
        || async { ([(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render()) };
    axum::Router::new()
        .route("/livez", get(live))
        .route("/health", get(live))
        .route("/metrics", get(prometheus))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready().await {
                        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ready" })))
                            .into_response(),
                        Err(reason) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(serde_json::json!({ "status": "not ready", "reason": reason })),
                        )
                            .into_response(),
                    }
                }
            }),
        )
}

/// Runs `role` until SIGINT or SIGTERM.
pub async fn run(role: Role, config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    let grace = config.shutdown_grace_period;
    let done = match role {
        Role::Auth => run_auth(config, shutdown.clone()).await?,
        Role::Messaging => run_messaging(config, shutdown.clone()).await?,
        Role::Presence => run_presence(config, shutdown.clone()).await?,
        Role::Gateway => run_gateway(config, shutdown.clone()).await?,
        Role::Files => run_files(config, shutdown.clone()).await?,
    };
    shutdown.cancelled().await;
    match tokio::time::timeout(grace, done).await {
        Ok(_) => tracing::info!(role = role.name(), "shutdown completed gracefully"),
        Err(_) => {
            tracing::warn!(role = role.name(), ?grace, "shutdown did not complete in time, terminating")
        }
    }
    Ok(())
}

type Done = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Binds the role's health port and gRPC port (if any) and serves them until `shutdown`;
/// the returned future ends when both have drained.
async fn serve_role(
    role: Role,
    config: &Config,
    grpc: Option<tonic::service::Routes>,
    ready: ReadyCheck,
    serving: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> anyhow::Result<Done> {
    let health_addr = listen_addr(config, config.cluster.health_listen, role.default_health_port());
    let health_listener =
        TcpListener::bind(health_addr).await.with_context(|| format!("bind health port {health_addr}"))?;
    let health_addr = health_listener.local_addr()?;
    let check = ready.clone();
    let flag = serving.clone();
    let gated: ReadyCheck = Arc::new(move || {
        let check = check.clone();
        let flag = flag.clone();
        Box::pin(async move {
            if !flag.load(Ordering::Acquire) {
                return Err("starting or stopping".to_owned());
            }
            check().await
        })
    });
    let stop = shutdown.clone();
    let health = tokio::spawn(async move {
        axum::serve(health_listener, health_routes(gated))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });

    let mut grpc_addr = None;
    let grpc_task = match grpc {
        Some(routes) => {
            let addr = listen_addr(config, config.cluster.grpc_listen, role.default_grpc_port());
            let listener = TcpListener::bind(addr).await.with_context(|| format!("bind gRPC port {addr}"))?;
            grpc_addr = Some(listener.local_addr()?);
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            }))
        }
        None => None,
    };
    tracing::info!(role = role.name(), grpc = ?grpc_addr, health = %health_addr, "role listening");
    let stopping = serving.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        stopping.store(false, Ordering::Release);
    });
    let done: Done = Box::pin(async move {
        if let Some(task) = grpc_task {
            let _ = task.await;
        }
        let _ = health.await;
    });
    Ok(done)
}

/// Retries a bootstrap step while the services it needs are not up yet.
async fn with_retries<F, Fut>(what: &str, shutdown: &CancellationToken, mut step: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = apogee_types::ServiceResult<()>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match step().await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == ErrorKind::Unavailable && !shutdown.is_cancelled() => {
                tracing::warn!(error = %e, "{what}: a service it needs is not up yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => anyhow::bail!("{what}: {e}"),
        }
    }
}

async fn run_auth(config: Config, shutdown: CancellationToken) -> anyhow::Result<Done> {
    let store = crate::open_store(&config, "auth.db").await?;
    let bus = connect_bus(Role::Auth, &config).await?;
    let (messaging, _) = messaging_client(&config)?;
    let auth = Arc::new(Auth::new(store.clone(), crate::auth_config(&config), bus.clone()));
    auth.set_messaging(messaging);
    // The gateways' token cache: a logout or a change to a user must evict there at once.
    let token_cache = presence_store(&config).await?;
    auth.set_token_cache(token_cache.clone());
    let client = AuthClient::local(auth.clone());

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let routes = tonic::service::Routes::new(health_service).add_service(
        client.grpc_server(ServerOptions { cluster_token: config.cluster.cluster_token.clone() }),
    );
    let serving = Arc::new(AtomicBool::new(false));
    let probe = client.clone();
    let ready: ReadyCheck = Arc::new(move || {
        let probe = probe.clone();
        let bus = bus.clone();
        let token_cache = token_cache.clone();
        Box::pin(async move {
            bus.healthy().map_err(|e| format!("bus: {e}"))?;
            presence_ok(&token_cache).await?;
            probe
                .find_user(apogee_api::UserSelector::Id("rocket.cat".into()))
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        })
    });
    // gRPC is up before the bootstrap: seeding users calls messaging, which calls back.
    let done =
        serve_role(Role::Auth, &config, Some(routes), ready, serving.clone(), shutdown.clone()).await?;
    let boot = crate::bootstrap(&config);
    with_retries("bootstrap users and settings", &shutdown, || auth.init(boot.clone())).await?;
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    serving.store(true, Ordering::Release);
    tracing::info!("auth is ready");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    });
    Ok(done)
}

async fn run_messaging(config: Config, shutdown: CancellationToken) -> anyhow::Result<Done> {
    let store = crate::open_store(&config, "messaging.db").await?;
    let bus = connect_bus(Role::Messaging, &config).await?;
    let (auth, auth_rpc) = auth_client(&config, &bus).await?;
    let messaging = Messaging::new(store.clone(), auth, bus.clone());
    messaging.init().await.map_err(|e| anyhow::anyhow!("bootstrap rooms: {e}"))?;
    let client = MessagingClient::local(messaging);

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let routes = tonic::service::Routes::new(health_service).add_service(
        client.grpc_server(ServerOptions { cluster_token: config.cluster.cluster_token.clone() }),
    );
    let serving = Arc::new(AtomicBool::new(true));
    let ready: ReadyCheck = Arc::new(move || {
        let store = store.clone();
        let bus = bus.clone();
        let auth_rpc = auth_rpc.clone();
        Box::pin(async move {
            bus.healthy().map_err(|e| format!("bus: {e}"))?;
            store.room_by_id("GENERAL").await.map_err(|e| format!("store: {e}"))?;
            services_serving(&[("auth", auth_rpc)]).await
        })
    });
    let done = serve_role(Role::Messaging, &config, Some(routes), ready, serving, shutdown.clone()).await?;
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    tracing::info!("messaging is ready");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    });
    Ok(done)
}

async fn presence_store(config: &Config) -> anyhow::Result<PresenceHandle> {
    let options = PresenceOptions {
        prefix: config.cluster.redis_prefix.clone(),
        gateway_ttl: config.cluster.presence_ttl,
    };
    PresenceHandle::redis(&config.cluster.redis_url, options)
        .await
        .with_context(|| format!("connect to Redis at {}", config.cluster.redis_url))
}

/// Whether Redis answers (a registry read of nobody).
async fn presence_ok(store: &PresenceHandle) -> Result<(), String> {
    store.connections("-").await.map(|_| ()).map_err(|e| format!("redis: {e}"))
}

async fn run_presence(config: Config, shutdown: CancellationToken) -> anyhow::Result<Done> {
    let bus = connect_bus(Role::Presence, &config).await?;
    let store = presence_store(&config).await?;
    let (auth, auth_rpc) = auth_client(&config, &bus).await?;
    let sweeper =
        tokio::spawn(apogee_gateway::sweep_presence(auth, bus.clone(), store.clone(), shutdown.clone()));
    let ready: ReadyCheck = Arc::new(move || {
        let (bus, store, auth_rpc) = (bus.clone(), store.clone(), auth_rpc.clone());
        Box::pin(async move {
            bus.healthy().map_err(|e| format!("bus: {e}"))?;
            presence_ok(&store).await?;
            services_serving(&[("auth", auth_rpc)]).await
        })
    });
    let serving = Arc::new(AtomicBool::new(true));
    let done = serve_role(Role::Presence, &config, None, ready, serving, shutdown).await?;
    tracing::info!("presence is ready");
    Ok(Box::pin(async move {
        done.await;
        let _ = sweeper.await;
    }))
}

async fn run_files(config: Config, shutdown: CancellationToken) -> anyhow::Result<Done> {
    // Upload records live in the role's own store; bytes in the blob store the settings choose.
    let store = crate::open_store(&config, "files.db").await?;
    let bus = connect_bus(Role::Files, &config).await?;
    let (auth, auth_rpc) = auth_client(&config, &bus).await?;
    let (messaging, messaging_rpc) = messaging_client(&config)?;
    // The storage settings live in auth: wait for it rather than fall back to the local
    // directory because auth was not up yet.
    with_retries("read the file storage settings", &shutdown, || {
        let auth = auth.clone();
        async move { auth.setting_value("FileUpload_Storage_Type").await.map(|_| ()) }
    })
    .await?;
    let (client, blobs) = crate::start_files(&config, store.clone(), auth, messaging, bus.clone()).await?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let routes = tonic::service::Routes::new(health_service).add_service(
        client.grpc_server(ServerOptions { cluster_token: config.cluster.cluster_token.clone() }),
    );
    let serving = Arc::new(AtomicBool::new(true));
    let ready: ReadyCheck = Arc::new(move || {
        let (store, bus, blobs) = (store.clone(), bus.clone(), blobs.clone());
        let clients = [("auth", auth_rpc.clone()), ("messaging", messaging_rpc.clone())];
        Box::pin(async move {
            bus.healthy().map_err(|e| format!("bus: {e}"))?;
            store.upload_by_id("-").await.map_err(|e| format!("store: {e}"))?;
            // A key that is never written: the answer (absent) proves the backend answers.
            blobs.head("readyz-probe").await.map_err(|e| format!("blob store: {e}"))?;
            services_serving(&clients).await
        })
    });
    let done = serve_role(Role::Files, &config, Some(routes), ready, serving, shutdown.clone()).await?;
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    tracing::info!("files is ready");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    });
    Ok(done)
}

async fn run_gateway(config: Config, shutdown: CancellationToken) -> anyhow::Result<Done> {
    let bus = connect_bus(Role::Gateway, &config).await?;
    let (auth, auth_rpc) = auth_client(&config, &bus).await?;
    let (messaging, messaging_rpc) = messaging_client(&config)?;
    let files = files_client(&config)?;
    if files.is_none() {
        tracing::warn!(
            "APOGEE_FILES_ADDRS is not set: file uploads, downloads and avatars answer 503 on this gateway"
        );
    }
    let presence = presence_store(&config).await?;
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("bind {}", config.listen))?;
    let (probe_bus, probe_presence) = (bus.clone(), presence.clone());
    // Files stays out of the gateway's readiness on purpose: without it only the file routes
    // fail (503), so a files outage must not take every gateway out of its load balancer.
    let ready: ReadyCheck = Arc::new(move || {
        let clients = [("auth", auth_rpc.clone()), ("messaging", messaging_rpc.clone())];
        let (bus, presence) = (probe_bus.clone(), probe_presence.clone());
        Box::pin(async move {
            bus.healthy().map_err(|e| format!("bus: {e}"))?;
            presence_ok(&presence).await?;
            services_serving(&clients).await
        })
    });
    let state = apogee_gateway::GatewayState::with_presence(
        auth,
        messaging,
        bus,
        crate::gateway_config(&config),
        presence.clone(),
    )
    .await
    .with_readiness(ready)
    .with_token_cache(presence);
    let state = match files {
        Some((files, _)) => state.with_files(files),
        None => state,
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, url = %config.root_url, "gateway is ready");
    let task = tokio::spawn(apogee_gateway::serve(listener, state, shutdown));
    Ok(Box::pin(async move {
        let _ = task.await;
    }))
}
