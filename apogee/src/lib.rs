//! Wiring: builds the services from a [`Config`](apogee_config::Config) and runs them. The
//! binary (`main.rs`) parses flags and calls [`serve`] (everything in one process) or
//! [`roles::run`] (one role of distributed mode); tests call [`start`] with port 0.

pub mod roles;

use std::sync::Arc;

use anyhow::Context;
use apogee_api::{AuthClient, FilesClient, MessagingClient};
use apogee_auth::{Auth, AuthConfig, Bootstrap};
use apogee_bus::Bus;
use apogee_config::Config;
use apogee_gateway::{GatewayConfig, GatewayState};
use apogee_messaging::Messaging;
use apogee_presence::PresenceHandle;
use apogee_store::{SqliteStore, StoreRef};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running all-in-one server.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store, bootstraps the services and starts serving on `listener`.
pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create data dir {}", config.data_dir.display()))?;
    let store = open_store(config, "apogee.db").await?;

    let bus = Bus::local();
    let auth = Arc::new(Auth::new(store.clone(), auth_config(config), bus.clone()));
    let auth_client = AuthClient::local(auth.clone());
    let messaging = Messaging::new(store.clone(), auth_client.clone(), bus.clone());
    let messaging_client = MessagingClient::local(messaging.clone());
    auth.set_messaging(messaging_client.clone());

    messaging.init().await.map_err(|e| anyhow::anyhow!("bootstrap rooms: {e}"))?;
    auth.init(bootstrap(config)).await.map_err(|e| anyhow::anyhow!("bootstrap users and settings: {e}"))?;

    let (files, _) =
        start_files(config, store, auth_client.clone(), messaging_client.clone(), bus.clone()).await?;
    // One in-memory presence store: the gateway's registry and the token cache auth evicts from.
    let presence = PresenceHandle::memory();
    auth.set_token_cache(presence.clone());
    let gateway = GatewayState::with_presence(
        auth_client,
        messaging_client,
        bus,
        gateway_config(config),
        presence.clone(),
    )
    .await
    .with_files(files)
    .with_token_cache(presence);
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(apogee_gateway::serve(listener, gateway, shutdown.clone()));
    Ok(Running { addr, shutdown, task })
}

/// The store of a process: the MongoDB at `MONGO_URL` when set, else the SQLite file `file` in
/// the data dir.
pub(crate) async fn open_store(config: &Config, file: &str) -> anyhow::Result<StoreRef> {
    // One MongoDB for every role (each owns its collections), as Rocket.Chat's services share one.
    if let Some(url) = &config.mongo_url {
        return apogee_store::open(url).await.context("open the MongoDB store (MONGO_URL)");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create data dir {}", config.data_dir.display()))?;
    let path = config.data_dir.join(file);
    Ok(Arc::new(SqliteStore::open(&path).with_context(|| format!("open store {}", path.display()))?))
}

pub(crate) fn auth_config(config: &Config) -> AuthConfig {
    AuthConfig {
        site_url: config.root_url.clone(),
        test_mode: config.test_mode,
        failed_logins_per_user: config.limits.failed_logins_per_user,
        login_block: config.limits.login_block,
        bcrypt_cost: config.limits.bcrypt_cost,
    }
}

pub(crate) fn bootstrap(config: &Config) -> Bootstrap {
    Bootstrap {
        admin: config
            .admin
            .as_ref()
            .map(|a| (a.username.clone(), a.password.clone(), a.email.clone(), a.name.clone())),
        setting_overrides: config.setting_overrides.clone(),
    }
}

pub(crate) fn gateway_config(config: &Config) -> GatewayConfig {
    GatewayConfig {
        site_url: config.root_url.clone(),
        test_mode: config.test_mode,
        max_body_bytes: config.limits.max_body_bytes,
        logins_per_minute: 60,
        ddp_idle: config.limits.ddp_idle,
    }
}

/// The files service over the blob store the settings choose: `FileUpload_Storage_Type` =
/// `AmazonS3` uses the `FileUpload_S3_*` settings (any S3-compatible endpoint in
/// `FileUpload_S3_BucketURL`); anything else keeps blobs under `<data>/files`. Read once at
/// start: changing the storage needs a restart. `serve` and the files role both start here.
pub(crate) async fn start_files(
    config: &Config,
    store: StoreRef,
    auth: AuthClient,
    messaging: MessagingClient,
    bus: Bus,
) -> anyhow::Result<(FilesClient, apogee_blob::BlobRef)> {
    let storage = auth.setting_string("FileUpload_Storage_Type").await.unwrap_or_default();
    let (blobs, name): (apogee_blob::BlobRef, &str) = if storage == "AmazonS3" {
        let setting = async |id: &str| auth.setting_string(id).await.unwrap_or_default();
        let key = setting("FileUpload_S3_AWSAccessKeyId").await;
        let secret = setting("FileUpload_S3_AWSSecretAccessKey").await;
        let s3 = apogee_blob::S3Config {
            endpoint: setting("FileUpload_S3_BucketURL").await,
            bucket: setting("FileUpload_S3_Bucket").await,
            region: setting("FileUpload_S3_Region").await,
            path_style: auth.setting_bool("FileUpload_S3_ForcePathStyle", false).await,
            credentials: (!key.is_empty()).then_some((key, secret)),
        };
        let blobs = apogee_blob::S3Blobs::new(&s3).map_err(|e| anyhow::anyhow!("S3 file storage: {e}"))?;
        // Credentials scoped to one bucket may not create buckets; the bucket may exist anyway.
        if let Err(e) = blobs.ensure_bucket().await {
            tracing::warn!(bucket = %s3.bucket, error = %e, "could not check or create the S3 bucket");
        }
        (Arc::new(blobs), "AmazonS3")
    } else {
        let dir = config.data_dir.join("files");
        let blobs = apogee_blob::LocalBlobs::open(&dir)
            .map_err(|e| anyhow::anyhow!("file storage {}: {e}", dir.display()))?;
        (Arc::new(blobs), "FileSystem")
    };
    let files = apogee_files::Files::new(store, blobs.clone(), name, auth, messaging);
    files.allow_private_urls(config.test_mode);
    files.run(bus).await.map_err(|e| anyhow::anyhow!("start files: {e}"))?;
    Ok((FilesClient::local(files), blobs))
}

/// Runs until SIGINT or SIGTERM, then drains requests in flight for up to the grace period.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("bind {}", config.listen))?;
    let running = start(&config, listener).await?;
    tracing::info!(addr = %running.addr, url = %config.root_url, test_mode = config.test_mode, "apogee is ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown.cancel();
    match tokio::time::timeout(config.shutdown_grace_period, running.task).await {
        Ok(_) => tracing::info!("shutdown completed gracefully"),
        Err(_) => {
            tracing::warn!(grace = ?config.shutdown_grace_period, "shutdown did not complete in time, terminating")
        }
    }
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
