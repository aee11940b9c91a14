//! The `bulkhead` command.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bulkhead_server::ServerConfig;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use secrecy::SecretString;

mod cli;

/// mimalloc instead of the system allocator: glibc returns large freed buffers (Arrow batches,
/// gRPC frames) to the OS and faults fresh zeroed pages in for the next one, which showed as
/// the top cost of export in a profile; mimalloc reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "bulkhead",
    version,
    about = "Bulkhead: a vector database with hard-partitioned tenants"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Make an Ed25519 key pair and sign end-user tokens with it, as a tenant's backend does
    /// (no server involved).
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// `bulkhead serve`'s flags. Each setting it has a flag for can also come from its environment
/// variable (clap's `env`), and all of them from the config file: file, then environment, then
/// flag, each overriding the one before.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file (see docs/operations.md for its keys).
    #[arg(long, env = "BULKHEAD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long, env = "BULKHEAD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address (default 127.0.0.1:7600; port 0 picks a free port).
    #[arg(long, env = "BULKHEAD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Prometheus /metrics listen address.
    #[arg(long, env = "BULKHEAD_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "BULKHEAD_TLS_CERT", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "BULKHEAD_TLS_KEY", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by these PEM CA certificates (mutual TLS).
    #[arg(long, env = "BULKHEAD_TLS_CLIENT_CA", value_name = "PEM")]
    tls_client_ca: Option<PathBuf>,
    /// Allow plaintext gRPC on a non-loopback address (only behind something that encrypts).
    #[arg(long)]
    insecure_plaintext: bool,
    /// fsync the write-ahead log before acknowledging a write (default true).
    #[arg(long, env = "BULKHEAD_SYNC_WRITES", value_name = "BOOL")]
    sync_writes: Option<bool>,
    /// The admin token (at least 16 characters). Prefer the environment variable: a flag's
    /// value is visible to other users of the machine.
    #[arg(
        long,
        env = "BULKHEAD_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    admin_token: Option<SecretString>,
    /// Accept HS256 tenant tokens signed with this key (at least 32 bytes). Prefer the
    /// environment variable.
    #[arg(
        long,
        env = "BULKHEAD_JWT_HS256_SECRET",
        hide_env_values = true,
        value_name = "KEY"
    )]
    jwt_hs256_secret: Option<SecretString>,
    /// Print the settings the server would run with (as a config file, secrets left out),
    /// after checking them, and exit.
    #[arg(long)]
    print_config: bool,
}

impl ServeArgs {
    /// The config file's settings with the environment's and the flags' laid over them.
    fn config(self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::load(self.config.as_deref())?;
        if let Some(d) = self.data_dir {
            config.engine.data_dir = d;
        }
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let Some(m) = self.metrics_listen {
            config.metrics_listen = Some(m);
        }
        if let Some(c) = self.tls_cert {
            config.tls_cert = Some(c);
        }
        if let Some(k) = self.tls_key {
            config.tls_key = Some(k);
        }
        if let Some(ca) = self.tls_client_ca {
            config.tls_client_ca = Some(ca);
        }
        config.insecure_plaintext |= self.insecure_plaintext;
        if let Some(sync) = self.sync_writes {
            config.engine.sync_writes = sync;
        }
        if let Some(token) = self.admin_token {
            config.admin_token = Some(token);
        }
        if let Some(secret) = self.jwt_hs256_secret {
            config.jwt_hs256_secret = Some(secret);
        }
        Ok(config)
    }
}

/// Errors print as one chain of causes (`error: a: b`), without a backtrace: they are for the
/// operator at the terminal, not for a debugger.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(command) => cli::token::run(command),
        Command::Client(command) => cli::run(command),
    }
}

/// The command line, parsed like `Cli::parse` does, but with each command's usage line fixed
/// to the one its `--help` shows. clap otherwise builds the usage line of a usage error from
/// the options given, counting those taken from the environment: with BULKHEAD_ADMIN_TOKEN set,
/// a missing argument printed `Usage: bulkhead tenant get --endpoint <ENDPOINT> --admin-token
/// <ADMIN_TOKEN> <TENANT>`, as if the optional connection flags were required.
fn parse() -> Cli {
    let mut command = Cli::command();
    command.build();
    let mut command = with_help_usage(command);
    let mut matches = command.clone().get_matches();
    Cli::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut command))
        .unwrap_or_else(|e| e.exit())
}

/// `command` and its subcommands, each with its help usage as its only usage.
fn with_help_usage(mut command: clap::Command) -> clap::Command {
    let usage = command.render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
    command
        .override_usage(usage)
        .mut_subcommands(with_help_usage)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let print_only = args.print_config;
    let config = args.config()?;
    if print_only {
        config.validate()?;
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        bulkhead_server::serve(config, shutdown).await
    })
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed now, before the server binds and
/// logs that it listens: a signal sent the moment after that line must drain, not kill.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; draining"),
            _ = int.recv() => tracing::info!("SIGINT received; draining"),
        }
    })
}
