//! `apogee`: the one binary. `apogee serve` runs every service in one process on an embedded
//! SQLite store; `apogee gateway|auth|messaging|presence|files` runs one role of distributed mode.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use apogee::roles::Role;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "apogee", version, about = "A team-chat server that speaks the Rocket.Chat client protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process: REST API on one port, SQLite store in the data dir.
    #[command(after_help = apogee_config::ENV_HELP)]
    Serve(ServeArgs),
    /// Distributed mode: a stateless gateway (REST, DDP) calling the auth and messaging roles.
    #[command(after_help = apogee_config::ENV_HELP)]
    Gateway(ServeArgs),
    /// Distributed mode: users, logins, tokens, roles, permissions and settings over gRPC.
    #[command(after_help = apogee_config::ENV_HELP)]
    Auth(ServeArgs),
    /// Distributed mode: rooms, subscriptions and messages over gRPC.
    #[command(after_help = apogee_config::ENV_HELP)]
    Messaging(ServeArgs),
    /// Distributed mode: takes users of vanished gateways offline.
    #[command(after_help = apogee_config::ENV_HELP)]
    Presence(ServeArgs),
    /// Distributed mode: uploads, downloads and avatars over gRPC, bytes in a local dir or S3.
    #[command(after_help = apogee_config::ENV_HELP)]
    Files(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file [env: APOGEE_CONFIG]
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// HTTP port [env: PORT] [default: 3000]
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Address to bind [env: APOGEE_HOST] [default: 0.0.0.0]
    #[arg(long)]
    host: Option<IpAddr>,
    /// Data directory (SQLite database) [env: APOGEE_DATA_DIR] [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Public URL of the server [env: ROOT_URL] [default: http://localhost:<port>]
    #[arg(long)]
    root_url: Option<String>,
    /// Rocket.Chat's test mode: the test-suite admin, no rate limits [env: TEST_MODE=true]
    #[arg(long)]
    test_mode: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let (args, role) = match cli.command {
        Command::Serve(args) => (args, None),
        Command::Gateway(args) => (args, Some(Role::Gateway)),
        Command::Auth(args) => (args, Some(Role::Auth)),
        Command::Messaging(args) => (args, Some(Role::Messaging)),
        Command::Presence(args) => (args, Some(Role::Presence)),
        Command::Files(args) => (args, Some(Role::Files)),
    };
    let overrides = apogee_config::CliOverrides {
        config_file: args.config,
        port: args.port,
        host: args.host,
        data_dir: args.data_dir,
        root_url: args.root_url,
        test_mode: args.test_mode.then_some(true),
    };
    let config = apogee_config::load(&overrides, &env)?;
    // Traces go to an OTLP collector only when an endpoint is set; the service name defaults to
    // the role, so each process of a cluster is told apart in the trace.
    let service = match role {
        None => "apogee".to_owned(),
        Some(role) => format!("apogee-{}", role.name()),
    };
    let otlp = apogee_telemetry::trace::OtlpConfig::from_env(|k| env.get(k).cloned(), &service)
        .map_err(|e| anyhow::anyhow!("OpenTelemetry configuration: {e}"))?;
    apogee_telemetry::init(env.get("RUST_LOG").map(String::as_str), config.log_json, otlp);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = match role {
        None => runtime.block_on(apogee::serve(config)),
        Some(role) => runtime.block_on(apogee::roles::run(role, config)),
    };
    // The spans of the last requests are still queued: send them before the process ends.
    apogee_telemetry::trace::shutdown(std::time::Duration::from_secs(5));
    outcome
}
