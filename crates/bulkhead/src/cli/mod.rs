//! The client half of the `bulkhead` command: operators' and scripts' way into a running
//! server, through the same SDK applications use. Each subcommand is one module; this one holds
//! what they share: where the server is, which credential to send, and how results print.

mod audit;
mod backup;
mod cache;
mod collection;
mod fields;
mod filter;
mod import;
mod jwks;
mod key;
mod output;
mod query;
mod tenant;
pub mod token;

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use bulkhead_client::{AdminClient, Client, ClientError, TenantClient, TlsOptions};
use clap::Subcommand;
use output::Output;
use secrecy::{ExposeSecret, SecretString};

/// Where the server is and what to authenticate with; flags or environment.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// Server endpoint.
    #[arg(
        long,
        env = "BULKHEAD_ENDPOINT",
        default_value = "http://127.0.0.1:7600",
        global = true
    )]
    endpoint: String,
    /// PEM CA certificate(s) to trust for an https:// endpoint, instead of the public roots.
    #[arg(long, env = "BULKHEAD_TLS_CA", value_name = "PEM", global = true)]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS); needs --client-key.
    #[arg(long, env = "BULKHEAD_CLIENT_CERT", value_name = "PEM", global = true)]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "BULKHEAD_CLIENT_KEY", value_name = "PEM", global = true)]
    client_key: Option<PathBuf>,
    /// The server's admin token (tenant and key management; works for any tenant).
    #[arg(
        long,
        env = "BULKHEAD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    admin_token: Option<SecretString>,
    /// A tenant key's secret (data commands; TENANT_ADMIN keys also manage their tenant's keys).
    #[arg(
        long,
        env = "BULKHEAD_KEY",
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    key: Option<SecretString>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

/// A client subcommand with the connection flags, which its own subcommands inherit.
#[derive(Debug, clap::Args)]
pub struct WithRemote<T: clap::Args> {
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    args: T,
}

/// A group of client subcommands with the connection flags.
#[derive(Debug, clap::Args)]
pub struct Group<C: Subcommand> {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: C,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create, list, show, update and delete tenants (admin token).
    Tenant(Group<tenant::TenantCommand>),
    /// Create, list and revoke a tenant's API keys and end-user token verification keys.
    Key(Group<key::KeyCommand>),

    /// Create, list, show and delete a tenant's collections.
    Collection(Group<collection::CollectionCommand>),
    /// Create a semantic cache, store and look up answers, invalidate entries.
    Cache(Group<cache::CacheCommand>),
    /// Import records from .fvecs and/or JSON lines into a collection.
    Import(WithRemote<import::ImportArgs>),
    /// Search a collection for the nearest records to a vector.
    Query(WithRemote<query::QueryArgs>),
    /// Show a tenant's audit trail.
    Audit(WithRemote<audit::AuditArgs>),
    /// Write every collection of a tenant to a directory (Arrow IPC files and a manifest).
    Export(WithRemote<backup::ExportArgs>),
    /// Restore a directory written by `export` into a new (or, with --merge, existing) tenant.
    ImportTenant(WithRemote<backup::ImportTenantArgs>),
}

pub fn run(command: ClientCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let done = runtime.block_on(async move {
        match command {
            ClientCommand::Tenant(g) => {
                tenant::run(&Session::connect(g.remote).await?, g.command).await
            }
            ClientCommand::Key(g) => key::run(&Session::connect(g.remote).await?, g.command).await,
            ClientCommand::Cache(g) => {
                cache::run(&Session::connect(g.remote).await?, g.command).await
            }
            ClientCommand::Collection(g) => {
                collection::run(&Session::connect(g.remote).await?, g.command).await
            }
            ClientCommand::Import(w) => {
                import::run(&Session::connect(w.remote).await?, w.args).await
            }
            ClientCommand::Query(w) => query::run(&Session::connect(w.remote).await?, w.args).await,
            ClientCommand::Audit(w) => audit::run(&Session::connect(w.remote).await?, w.args).await,
            ClientCommand::Export(w) => {
                backup::export(&Session::connect(w.remote).await?, w.args).await
            }
            ClientCommand::ImportTenant(w) => {
                backup::import_tenant(&Session::connect(w.remote).await?, w.args).await
            }
        }
    });
    done.map_err(said_once)
}

/// The server's not-found and already-exists messages name the thing and say what is wrong
/// ("API key k1 not found"); after the SDK's category ("not found: ...") they said it twice.
/// An error with context around it is kept whole: the context says what was going on (how far
/// an import got, that a restore was rolled back), and a downcast would drop it.
fn said_once(e: anyhow::Error) -> anyhow::Error {
    if e.chain().nth(1).is_some() {
        return e;
    }
    match e.downcast::<ClientError>() {
        Ok(ClientError::NotFound(m) | ClientError::AlreadyExists(m)) => anyhow!(m),
        Ok(other) => other.into(),
        Err(e) => e,
    }
}

/// A credential from the command line or the environment: `Debug` (clap's, a panic's) prints
/// it redacted.
fn secret(value: &str) -> std::result::Result<SecretString, std::convert::Infallible> {
    Ok(value.into())
}

/// A connected client plus the credentials it may use.
struct Session {
    client: Client,
    admin_token: Option<SecretString>,
    key: Option<SecretString>,
    out: Output,
}

impl Session {
    async fn connect(remote: Remote) -> Result<Self> {
        let tls = TlsOptions::from_files(
            remote.tls_ca.as_deref(),
            remote.client_cert.as_deref(),
            remote.client_key.as_deref(),
        )?;
        let client = Client::builder(remote.endpoint.clone())
            .tls(tls)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", remote.endpoint))?;
        // An empty variable (`BULKHEAD_KEY=`) means "not set", not an empty secret.
        let given = |s: Option<SecretString>| s.filter(|s| !s.expose_secret().is_empty());
        Ok(Self {
            client,
            admin_token: given(remote.admin_token),
            key: given(remote.key),
            out: Output { json: remote.json },
        })
    }

    fn admin_token(&self) -> Result<&str> {
        match &self.admin_token {
            Some(token) => Ok(token.expose_secret()),
            None => {
                bail!("this command needs the admin token: --admin-token or BULKHEAD_ADMIN_TOKEN")
            }
        }
    }

    fn admin(&self) -> Result<AdminClient> {
        Ok(self.client.admin(self.admin_token()?)?)
    }

    /// A handle on `tenant` with the admin token, for commands that made the tenant themselves.
    fn admin_tenant(&self, tenant: &str) -> Result<TenantClient> {
        Ok(self.client.tenant(tenant, self.admin_token()?)?)
    }

    /// A handle on `tenant`, with the tenant key when one is given, else the admin token.
    fn tenant(&self, tenant: &str) -> Result<TenantClient> {
        let Some(secret) = self.key.as_ref().or(self.admin_token.as_ref()) else {
            bail!(
                "no credential: set --key / BULKHEAD_KEY (a key of tenant {tenant:?}) or --admin-token / BULKHEAD_ADMIN_TOKEN"
            );
        };
        Ok(self.client.tenant(tenant, secret.expose_secret())?)
    }
}
