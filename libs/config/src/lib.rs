//! Configuration. [`load`] merges, in increasing precedence: defaults, an optional TOML file,
//! the environment (Rocket.Chat's own variable names where one exists, `APOGEE_*` for ours) and
//! command-line flags. It never reads the process environment itself: `main` passes it in, tests
//! pass a map.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything `apogee serve` needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// The public URL clients use (`Site_Url`); defaults to `http://localhost:<port>`.
    pub root_url: String,
    pub data_dir: PathBuf,
    /// Rocket.Chat's `MONGO_URL`: store the data in this MongoDB (a replica set) instead of the
    /// SQLite file in `data_dir`.
    pub mongo_url: Option<String>,
    /// Created on an empty store.
    pub admin: Option<AdminSeed>,
    /// Rocket.Chat's `TEST_MODE=true`: the test-suite admin, no rate limits.
    pub test_mode: bool,
    /// `OVERWRITE_SETTING_<id>=<value>`: forced at every start.
    pub setting_overrides: BTreeMap<String, String>,
    pub limits: Limits,
    pub log_json: bool,
    pub shutdown_grace_period: Duration,
    /// Distributed mode: where the other roles and the shared services are.
    pub cluster: ClusterConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminSeed {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted request body (JSON routes).
    pub max_body_bytes: usize,
    /// Failed logins per user (and per address × 5) before logins are blocked for `login_block`.
    pub failed_logins_per_user: u32,
    pub login_block: Duration,
    /// DDP silence before the server pings (and, as long again, closes); Rocket.Chat uses 30 s.
    pub ddp_idle: Duration,
    /// bcrypt cost of the password hashes written from now on (Meteor's `bcryptRounds`; hashes
    /// already stored keep their own cost).
    pub bcrypt_cost: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            failed_logins_per_user: 10,
            login_block: Duration::from_secs(300),
            ddp_idle: Duration::from_secs(30),
            bcrypt_cost: 10,
        }
    }
}

/// What a role of distributed mode needs to find the others (environment only).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub nats_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key, so deployments (and tests) can share one Redis.
    pub redis_prefix: String,
    /// How long a gateway's connections count as live without a heartbeat.
    pub presence_ttl: Duration,
    /// gRPC addresses of the auth role's replicas (`http://host:port`).
    pub auth_addrs: Vec<String>,
    pub messaging_addrs: Vec<String>,
    /// gRPC addresses of the files role's replicas; empty: a gateway serves no file routes.
    pub files_addrs: Vec<String>,
    /// Where a service role serves gRPC (`None`: the role's default port).
    pub grpc_listen: Option<SocketAddr>,
    /// Where a service role serves `/livez`, `/readyz` (`None`: the role's default port).
    pub health_listen: Option<SocketAddr>,
    /// Shared secret every role sends to and requires of the others.
    pub cluster_token: Option<String>,
    /// Deadline of one call to another role.
    pub rpc_timeout: Duration,
    /// This process's name in the presence registry (default: host name and process id).
    pub node_id: Option<String>,
}

fn env_list(env: &HashMap<String, String>, key: &str, default: &str) -> Vec<String> {
    env_str(env, key)
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .map(|a| a.trim().trim_end_matches('/').to_owned())
        .filter(|a| !a.is_empty())
        .collect()
}

fn load_cluster(env: &HashMap<String, String>) -> Result<ClusterConfig, ConfigError> {
    let cluster = ClusterConfig {
        nats_url: env_str(env, "APOGEE_NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
        redis_url: env_str(env, "APOGEE_REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
        redis_prefix: env_str(env, "APOGEE_REDIS_PREFIX").unwrap_or_else(|| "apogee:".into()),
        presence_ttl: Duration::from_secs(
            parse_env(env, "APOGEE_PRESENCE_TTL_SECS", "seconds")?.unwrap_or(30).max(1),
        ),
        auth_addrs: env_list(env, "APOGEE_AUTH_ADDRS", "http://127.0.0.1:50051"),
        messaging_addrs: env_list(env, "APOGEE_MESSAGING_ADDRS", "http://127.0.0.1:50052"),
        // No default: a cluster without a files role is a choice the gateway reports at start.
        files_addrs: env_list(env, "APOGEE_FILES_ADDRS", ""),
        grpc_listen: parse_env(env, "APOGEE_GRPC_LISTEN", "an address like 0.0.0.0:50051")?,
        health_listen: parse_env(env, "APOGEE_HEALTH_LISTEN", "an address like 0.0.0.0:9101")?,
        cluster_token: env_str(env, "APOGEE_CLUSTER_TOKEN"),
        rpc_timeout: Duration::from_millis(
            parse_env(env, "APOGEE_RPC_TIMEOUT_MS", "milliseconds")?.unwrap_or(10_000),
        ),
        node_id: env_str(env, "APOGEE_NODE_ID"),
    };
    for (key, addrs) in [
        ("APOGEE_AUTH_ADDRS", &cluster.auth_addrs),
        ("APOGEE_MESSAGING_ADDRS", &cluster.messaging_addrs),
        ("APOGEE_FILES_ADDRS", &cluster.files_addrs),
    ] {
        if let Some(bad) = addrs.iter().find(|a| !(a.starts_with("http://") || a.starts_with("https://"))) {
            return Err(ConfigError::Invalid {
                key: key.into(),
                value: bad.clone(),
                expected: "http://host:port, comma-separated",
            });
        }
    }
    if cluster.rpc_timeout.is_zero() {
        return Err(ConfigError::Inconsistent("APOGEE_RPC_TIMEOUT_MS must be at least 1".into()));
    }
    Ok(cluster)
}

/// Flags given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub config_file: Option<PathBuf>,
    pub port: Option<u16>,
    pub host: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub root_url: Option<String>,
    pub test_mode: Option<bool>,
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    host: Option<IpAddr>,
    root_url: Option<String>,
    data_dir: Option<PathBuf>,
    test_mode: Option<bool>,
    log_format: Option<String>,
    shutdown_grace_period_secs: Option<u64>,
    admin: Option<FileAdmin>,
    limits: Option<FileLimits>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAdmin {
    username: String,
    password: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_body_bytes: Option<usize>,
    failed_logins_per_user: Option<u32>,
    login_block_secs: Option<u64>,
    ddp_idle_secs: Option<u64>,
    bcrypt_cost: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid value for {key}: {value:?} ({expected})")]
    Invalid { key: String, value: String, expected: &'static str },
    #[error("{0}")]
    Inconsistent(String),
}

/// The environment variables Apogee reads, for `--help`.
pub const ENV_HELP: &str = "\
Environment (flags win over environment, environment over the config file):
  PORT                        HTTP port (default 3000)
  APOGEE_HOST                 address to bind (default 0.0.0.0)
  ROOT_URL                    public URL of the server (default http://localhost:<port>)
  APOGEE_DATA_DIR             data directory (default ./data)
  MONGO_URL                   MongoDB replica set to store data in, instead of SQLite in the
                              data directory (needs a build with the `mongodb` feature)
  APOGEE_CONFIG               TOML configuration file
  ADMIN_USERNAME, ADMIN_PASS, ADMIN_EMAIL, ADMIN_NAME
                              first admin, created on an empty store
  TEST_MODE                   'true': Rocket.Chat's test mode (test admin, no rate limits)
  OVERWRITE_SETTING_<id>      force setting <id> to a value at every start
  APOGEE_MAX_BODY_BYTES       largest request body (default 1048576)
  APOGEE_LOG_FORMAT           'json' for JSON logs; RUST_LOG sets the filter
  OTEL_EXPORTER_OTLP_ENDPOINT export traces to this OpenTelemetry collector (OTLP/HTTP JSON,
                              http:// only); also OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
                              OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER(_ARG)
  APOGEE_SHUTDOWN_GRACE_SECS  how long shutdown waits for requests in flight (default 10)
  APOGEE_DDP_IDLE_SECS        DDP silence before the server pings, then closes (default 30)
  APOGEE_BCRYPT_COST          bcrypt cost of new password hashes (default 10, Meteor's; 4-31)
Distributed roles (apogee gateway | auth | messaging | presence | files):
  APOGEE_NATS_URL             NATS server (default nats://127.0.0.1:4222)
  APOGEE_REDIS_URL            Redis server (default redis://127.0.0.1:6379)
  APOGEE_REDIS_PREFIX         prefix of Apogee's Redis keys (default apogee:)
  APOGEE_PRESENCE_TTL_SECS    a vanished gateway's users go offline after this (default 30)
  APOGEE_AUTH_ADDRS           auth replicas, comma-separated (default http://127.0.0.1:50051)
  APOGEE_MESSAGING_ADDRS      messaging replicas, comma-separated (default http://127.0.0.1:50052)
  APOGEE_FILES_ADDRS          files replicas, comma-separated (no default: without it a
                              gateway answers file routes with 503)
  APOGEE_GRPC_LISTEN          where a service role serves gRPC (auth :50051, messaging :50052,
                              files :50053)
  APOGEE_HEALTH_LISTEN        where a service role serves /livez and /readyz (auth :9101,
                              messaging :9102, presence :9103, files :9104; the gateway uses PORT)
  APOGEE_CLUSTER_TOKEN        shared secret the roles require of each other
  APOGEE_RPC_TIMEOUT_MS       deadline of a call to another role (default 10000)
  APOGEE_NODE_ID              this process's name in the presence registry";

fn parse_env<T: std::str::FromStr>(
    env: &HashMap<String, String>,
    key: &str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ConfigError::Invalid {
            key: key.into(),
            value: v.into(),
            expected,
        }),
    }
}

fn env_str(env: &HashMap<String, String>, key: &str) -> Option<String> {
    env.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn toml_to_string(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Merges every source into a validated [`Config`].
pub fn load(cli: &CliOverrides, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let file_path = cli.config_file.clone().or_else(|| env_str(env, "APOGEE_CONFIG").map(PathBuf::from));
    let file = match &file_path {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };

    let port = cli.port.or(parse_env(env, "PORT", "a port number")?).or(file.port).unwrap_or(3000);
    let host = cli
        .host
        .or(parse_env(env, "APOGEE_HOST", "an IP address")?)
        .or(file.host)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let root_url = cli
        .root_url
        .clone()
        .or_else(|| env_str(env, "ROOT_URL"))
        .or(file.root_url)
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    let root_url = root_url.trim_end_matches('/').to_owned();
    if !(root_url.starts_with("http://") || root_url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            key: "ROOT_URL".into(),
            value: root_url,
            expected: "an http(s) URL",
        });
    }
    let data_dir = cli
        .data_dir
        .clone()
        .or_else(|| env_str(env, "APOGEE_DATA_DIR").map(PathBuf::from))
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./data"));
    let mongo_url = env_str(env, "MONGO_URL");
    if let Some(url) = &mongo_url
        && !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://"))
    {
        return Err(ConfigError::Invalid {
            key: "MONGO_URL".into(),
            value: url.clone(),
            expected: "a mongodb:// URL",
        });
    }
    // Rocket.Chat compares with the exact string "true".
    let test_mode =
        cli.test_mode.or(env.get("TEST_MODE").map(|v| v == "true")).or(file.test_mode).unwrap_or(false);

    let admin = match (env_str(env, "ADMIN_USERNAME"), env_str(env, "ADMIN_PASS")) {
        (Some(username), Some(password)) => Some(AdminSeed {
            username,
            password,
            email: env_str(env, "ADMIN_EMAIL"),
            name: env_str(env, "ADMIN_NAME"),
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ConfigError::Inconsistent(
                "ADMIN_USERNAME and ADMIN_PASS must be given together".into(),
            ));
        }
        (None, None) => match file.admin {
            Some(FileAdmin { username, password: Some(password), email, name }) => {
                Some(AdminSeed { username, password, email, name })
            }
            Some(FileAdmin { password: None, .. }) => {
                return Err(ConfigError::Inconsistent(
                    "[admin] needs a password; give it in ADMIN_PASS rather than the file".into(),
                ));
            }
            None => None,
        },
    };

    let mut setting_overrides: BTreeMap<String, String> =
        file.settings.iter().map(|(k, v)| (k.clone(), toml_to_string(v))).collect();
    for (key, value) in env {
        if let Some(id) = key.strip_prefix("OVERWRITE_SETTING_").filter(|id| !id.is_empty()) {
            setting_overrides.insert(id.to_owned(), value.clone());
        }
    }

    let file_limits = file.limits.unwrap_or_default();
    let defaults = Limits::default();
    let limits = Limits {
        max_body_bytes: parse_env(env, "APOGEE_MAX_BODY_BYTES", "a byte count")?
            .or(file_limits.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        failed_logins_per_user: file_limits.failed_logins_per_user.unwrap_or(defaults.failed_logins_per_user),
        login_block: file_limits.login_block_secs.map(Duration::from_secs).unwrap_or(defaults.login_block),
        ddp_idle: parse_env(env, "APOGEE_DDP_IDLE_SECS", "seconds")?
            .or(file_limits.ddp_idle_secs)
            .map(Duration::from_secs)
            .unwrap_or(defaults.ddp_idle),
        bcrypt_cost: parse_env(env, "APOGEE_BCRYPT_COST", "a bcrypt cost from 4 to 31")?
            .or(file_limits.bcrypt_cost)
            .unwrap_or(defaults.bcrypt_cost),
    };
    if !(4..=31).contains(&limits.bcrypt_cost) {
        return Err(ConfigError::Inconsistent("bcrypt_cost must be from 4 to 31".into()));
    }
    if limits.ddp_idle.is_zero() {
        return Err(ConfigError::Inconsistent("ddp_idle_secs must be at least 1".into()));
    }
    if limits.max_body_bytes < 1024 {
        return Err(ConfigError::Inconsistent("max_body_bytes must be at least 1024".into()));
    }
    let log_json = env_str(env, "APOGEE_LOG_FORMAT").or(file.log_format).is_some_and(|f| f == "json");
    let grace = parse_env(env, "APOGEE_SHUTDOWN_GRACE_SECS", "seconds")?
        .or(file.shutdown_grace_period_secs)
        .unwrap_or(10);

    let cluster = load_cluster(env)?;

    Ok(Config {
        cluster,
        listen: SocketAddr::new(host, port),
        root_url,
        data_dir,
        mongo_url,
        admin,
        test_mode,
        setting_overrides,
        limits,
        log_json,
        shutdown_grace_period: Duration::from_secs(grace),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults() {
        let c = load(&CliOverrides::default(), &HashMap::new()).unwrap();
        assert_eq!(c.listen.port(), 3000);
        assert_eq!(c.root_url, "http://localhost:3000");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(!c.test_mode && c.admin.is_none());
        assert_eq!(c.mongo_url, None);
    }

    #[test]
    fn bcrypt_cost_defaults_to_meteors_and_is_bounded() {
        let c = load(&CliOverrides::default(), &HashMap::new()).unwrap();
        assert_eq!(c.limits.bcrypt_cost, 10);
        let c = load(&CliOverrides::default(), &env(&[("APOGEE_BCRYPT_COST", "4")])).unwrap();
        assert_eq!(c.limits.bcrypt_cost, 4);
        for bad in ["3", "32", "ten"] {
            assert!(load(&CliOverrides::default(), &env(&[("APOGEE_BCRYPT_COST", bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn mongo_url_from_the_environment() {
        let url = "mongodb://mongo:27017/rocketchat?replicaSet=rs0";
        let c = load(&CliOverrides::default(), &env(&[("MONGO_URL", url)])).unwrap();
        assert_eq!(c.mongo_url.as_deref(), Some(url));
        let err = load(&CliOverrides::default(), &env(&[("MONGO_URL", "localhost:27017")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { ref key, .. } if key == "MONGO_URL"), "{err}");
    }

    #[test]
    fn precedence_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apogee.toml");
        std::fs::write(&path, "port = 4000\ndata_dir = \"/f\"\n[settings]\nSite_Name = \"From file\"\n")
            .unwrap();
        let e = env(&[("PORT", "5000"), ("OVERWRITE_SETTING_Site_Name", "From env"), ("TEST_MODE", "true")]);
        let cli = CliOverrides { config_file: Some(path.clone()), ..Default::default() };
        let c = load(&cli, &e).unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.data_dir, PathBuf::from("/f"));
        assert_eq!(c.setting_overrides["Site_Name"], "From env");
        assert!(c.test_mode);
        let cli = CliOverrides { config_file: Some(path), port: Some(6000), ..Default::default() };
        assert_eq!(load(&cli, &e).unwrap().listen.port(), 6000);
    }

    #[test]
    fn bad_values_are_named() {
        let err = load(&CliOverrides::default(), &env(&[("PORT", "http")])).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
        let err = load(&CliOverrides::default(), &env(&[("ADMIN_USERNAME", "root")])).unwrap_err();
        assert!(err.to_string().contains("ADMIN_PASS"), "{err}");
        assert!(!load(&CliOverrides::default(), &env(&[("TEST_MODE", "1")])).unwrap().test_mode);
    }

    #[test]
    fn cluster_addresses() {
        let c = load(&CliOverrides::default(), &HashMap::new()).unwrap().cluster;
        assert_eq!(c.auth_addrs, ["http://127.0.0.1:50051"]);
        assert!(c.files_addrs.is_empty());
        let c = load(&CliOverrides::default(), &env(&[("APOGEE_FILES_ADDRS", "http://f1:1,http://f2:2")]))
            .unwrap()
            .cluster;
        assert_eq!(c.files_addrs, ["http://f1:1", "http://f2:2"]);
        let err = load(&CliOverrides::default(), &env(&[("APOGEE_FILES_ADDRS", "files:50053")])).unwrap_err();
        assert!(err.to_string().contains("APOGEE_FILES_ADDRS"), "{err}");
        let e = env(&[
            ("APOGEE_MESSAGING_ADDRS", " http://m1:1/, http://m2:2 "),
            ("APOGEE_RPC_TIMEOUT_MS", "250"),
        ]);
        let c = load(&CliOverrides::default(), &e).unwrap().cluster;
        assert_eq!(c.messaging_addrs, ["http://m1:1", "http://m2:2"]);
        assert_eq!(c.rpc_timeout, Duration::from_millis(250));
        let err = load(&CliOverrides::default(), &env(&[("APOGEE_AUTH_ADDRS", "auth:50051")])).unwrap_err();
        assert!(err.to_string().contains("APOGEE_AUTH_ADDRS"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apogee.toml");
        std::fs::write(&path, "prot = 1\n").unwrap();
        let cli = CliOverrides { config_file: Some(path), ..Default::default() };
        assert!(matches!(load(&cli, &HashMap::new()), Err(ConfigError::Parse { .. })));
    }
}
