//! Server settings: one model for the server and its engine. The engine's settings are
//! `EngineConfig` itself, flattened into this file's keys, so each has one name, default and
//! check. The file is read here; the `bulkhead` binary lays the environment and its flags over
//! it (clap, `env`), each overriding the one before. `validate` runs before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bulkhead_engine::EngineConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::tls::TlsFiles;

/// What one API key or token subject may use of its tenant's request rate unless configured:
/// a runaway one leaves the other half to the tenant's other callers.
const DEFAULT_PRINCIPAL_RATE_SHARE: f64 = 0.5;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// gRPC address; port 0 picks a free port (logged at start).
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address; none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// PEM certificate chain the server presents; with `tls-key`, gRPC is served over TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls-cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates; when set, clients must present a certificate they signed (mTLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Allow plaintext gRPC on a non-loopback address (something else encrypts the traffic).
    pub insecure_plaintext: bool,
    /// Admin token. Prefer the `BULKHEAD_ADMIN_TOKEN` environment variable; with neither, a
    /// token is generated into `<data-dir>/admin.token`. A secret: `Debug` prints it redacted,
    /// a printed config leaves it out.
    #[serde(skip_serializing)]
    pub admin_token: Option<SecretString>,
    /// HS256 key for tenant tokens (JWTs with `tenant`, `role`, `iat`, `exp` claims) minted by
    /// an identity provider; none by default (API keys only). Prefer `BULKHEAD_JWT_HS256_SECRET`.
    #[serde(skip_serializing)]
    pub jwt_hs256_secret: Option<SecretString>,
    /// Largest `top_k` a query may ask for.
    pub max_top_k: u32,
    /// Most records in one Upsert, Get or Delete.
    pub max_batch: usize,
    /// Largest request message, in bytes.
    pub max_message_bytes: usize,
    /// Largest request of a method that carries no records (all but Upsert, Import and the
    /// cache's Store), in bytes; `max-message-bytes` if that is lower.
    pub max_read_message_bytes: usize,
    /// Longest time a request may run, whatever deadline the client sets.
    pub request_timeout_secs: u64,
    /// Export per-tenant metric series (tenants are unbounded: off by default).
    pub per_tenant_metrics: bool,
    /// After SIGTERM, how long in-flight requests and open connections get to finish.
    pub shutdown_grace_secs: u64,
    /// Normal-priority threads of the engine pool every request's engine work runs on; 0: the
    /// CPU count.
    pub engine_threads: usize,
    /// Most of those one tenant may hold (never all of them while there are two or more); 0:
    /// half the CPU count (at least 1). This,
    /// `tenant-requests-in-flight` and `tenant-open-streams` are defaults: a tenant's own
    /// `share` overrides them.
    pub engine_threads_per_tenant: usize,
    /// Lowest-priority threads running tenants' work past their share; 0: the CPU count.
    pub borrowed_engine_threads: usize,
    /// Most requests of one tenant in flight at once; past it, `RESOURCE_EXHAUSTED`.
    pub tenant_requests_in_flight: usize,
    /// Most Import and Export streams one tenant may hold open.
    pub tenant_open_streams: usize,
    /// Most bytes of writes (Upserts, Stores, Appends) the server receives at once for one
    /// tenant's callers; past it, `RESOURCE_EXHAUSTED`. A write larger than this is still read
    /// while it is the tenant's only one. A tenant's own `share.write_bytes_in_flight`
    /// overrides it.
    pub tenant_write_bytes_in_flight: usize,
    /// Requests/s of a tenant that sets no rate limit of its own (0: unlimited).
    pub default_requests_per_second: f64,
    /// Burst of a tenant that sets no rate limit of its own.
    pub default_burst: u64,
    /// Written bytes/s of a tenant that sets no write limit of its own (0: unlimited).
    pub default_write_bytes_per_second: u64,
    /// Written bytes/s the tenants share while two or more are active: each may write what
    /// the others leave of it, and at least an even part (0: each writes at its own limit).
    pub shared_write_bytes_per_second: u64,
    /// Share of its tenant's request rate one API key or token subject may use, in (0, 1]. Below
    /// 1 by default: at 1, one runaway key (or end user) could take the whole rate and lock
    /// its tenant's other callers out.
    pub principal_rate_share: f64,
    /// Most concurrent streams (calls) on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// An Import or Export stream that moves nothing for this long is ended.
    pub stream_idle_timeout_secs: u64,
    /// Longest an Import or Export stream may run.
    pub stream_timeout_secs: u64,
    /// The engine's settings, at the top level of the file: `data-dir`, `sync-writes`, group,
    /// cache and index sizes, sweeps, retention, key and list bounds, index builds.
    #[serde(flatten)]
    pub engine: EngineConfig,
    /// Keys neither the server nor the engine knows, refused by `validate` (serde can't deny
    /// unknown keys across a flattened struct; the engine takes its own keys first).
    #[serde(flatten, skip_serializing)]
    pub(crate) unknown: BTreeMap<String, toml::Value>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7600".parse().expect("literal address"),
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            insecure_plaintext: false,
            admin_token: None,
            jwt_hs256_secret: None,
            max_top_k: 1000,
            max_batch: 1000,
            max_message_bytes: 64 << 20,
            max_read_message_bytes: 1 << 20,
            request_timeout_secs: 60,
            per_tenant_metrics: false,
            shutdown_grace_secs: 10,
            engine_threads: 0,
            engine_threads_per_tenant: 0,
            borrowed_engine_threads: 0,
            tenant_requests_in_flight: 64,
            tenant_open_streams: 8,
            tenant_write_bytes_in_flight: 128 << 20,
            default_requests_per_second: 1000.0,
            default_burst: 2000,
            default_write_bytes_per_second: 64 << 20,
            shared_write_bytes_per_second: 8 << 20,
            principal_rate_share: DEFAULT_PRINCIPAL_RATE_SHARE,
            max_streams_per_connection: 128,
            stream_idle_timeout_secs: 30,
            stream_timeout_secs: 3600,
            engine: EngineConfig::default(),
            unknown: BTreeMap::new(),
        }
    }
}

impl ServerConfig {
    /// The settings of the TOML file at `path`, or the defaults without one.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The settings as a config file would give them (secrets left out).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(self).context("printing the config")
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.unknown.is_empty() {
            let keys: Vec<&str> = self.unknown.keys().map(String::as_str).collect();
            bail!("unknown config key(s): {}", keys.join(", "));
        }
        if self.max_top_k == 0 || self.max_top_k as usize > bulkhead_engine::MAX_TOP_K {
            bail!(
                "max-top-k must be between 1 and {}",
                bulkhead_engine::MAX_TOP_K
            );
        }
        if self.max_batch == 0 {
            bail!("max-batch must be at least 1");
        }
        if self.max_message_bytes < 1024 {
            bail!("max-message-bytes must be at least 1024");
        }
        if self.max_read_message_bytes < 1024 {
            bail!("max-read-message-bytes must be at least 1024");
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            bail!("the admin token must be at least 16 characters");
        }
        if self
            .jwt_hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            bail!("jwt-hs256-secret must be at least 32 bytes");
        }
        if self.request_timeout_secs == 0 {
            bail!("request-timeout-secs must be positive");
        }
        if self.tenant_requests_in_flight == 0 || self.tenant_open_streams == 0 {
            bail!("tenant-requests-in-flight and tenant-open-streams must be at least 1");
        }
        if self.tenant_write_bytes_in_flight == 0 {
            bail!("tenant-write-bytes-in-flight must be at least 1");
        }
        if !self.default_requests_per_second.is_finite() || self.default_requests_per_second < 0.0 {
            bail!("default-requests-per-second must be a finite number >= 0");
        }
        if !(self.principal_rate_share > 0.0 && self.principal_rate_share <= 1.0) {
            bail!("principal-rate-share must be in (0, 1]");
        }
        if self.max_streams_per_connection == 0 {
            bail!("max-streams-per-connection must be at least 1");
        }
        if self.stream_idle_timeout_secs == 0 || self.stream_timeout_secs == 0 {
            bail!("stream-idle-timeout-secs and stream-timeout-secs must be positive");
        }
        self.tls().validate(self.listen, self.insecure_plaintext)?;
        self.engine.validate()?;
        Ok(())
    }

    pub fn tls(&self) -> TlsFiles {
        TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
        }
    }

    /// The engine pool's size.
    pub fn engine_pool(&self) -> crate::admission::PoolSize {
        let cpus = cpus();
        crate::admission::PoolSize {
            share_threads: or_default(self.engine_threads, cpus),
            borrowed_threads: or_default(self.borrowed_engine_threads, cpus),
        }
    }

    /// A tenant's share of the server where its own settings set none. The engine pool caps
    /// every tenant's engine threads at its size, these included.
    pub fn default_shares(&self) -> crate::gate::Shares {
        crate::gate::Shares {
            requests_in_flight: self.tenant_requests_in_flight,
            open_streams: self.tenant_open_streams,
            write_bytes_in_flight: self.tenant_write_bytes_in_flight,
            engine_threads: or_default(self.engine_threads_per_tenant, (cpus() / 2).max(1)),
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `set`, or `default` where it is 0.
fn or_default(set: usize, default: usize) -> usize {
    if set == 0 { default } else { set }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_engine_keys_share_one_file() {
        let c: ServerConfig = toml::from_str(
            "data-dir = \"/srv/bh\"\nmax-top-k = 50\nblock-cache-mib = 8\nsync-writes = false\n",
        )
        .unwrap();
        assert_eq!(c.engine.data_dir, PathBuf::from("/srv/bh"));
        assert_eq!(c.max_top_k, 50);
        assert_eq!(c.engine.block_cache_bytes, 8 << 20);
        assert!(!c.engine.sync_writes);
        c.validate().unwrap();
    }

    /// Every setting a printed config shows reads back as the same setting.
    #[test]
    fn a_printed_config_reads_back_the_same() {
        let c: ServerConfig = toml::from_str(
            "listen = \"127.0.0.1:7700\"\nmax-batch = 9\ngroup-idle-close-secs = 60\n\
             default-audit-retention-days = 7\n",
        )
        .unwrap();
        let printed = c.to_toml().unwrap();
        let again: ServerConfig = toml::from_str(&printed).unwrap();
        assert_eq!(format!("{again:?}"), format!("{c:?}"));
        assert!(
            printed.contains("default-audit-retention-days = 7"),
            "{printed}"
        );
    }

    /// A configuration printed (in a log line, a panic, a debugger, `--print-config`) shows no
    /// secret.
    #[test]
    fn secrets_are_read_but_never_printed() {
        let c: ServerConfig = toml::from_str(
            "admin-token = \"file-admin-token-0123\"\n\
             jwt-hs256-secret = \"file-jwt-secret-0123456789-0123456789\"\n",
        )
        .unwrap();
        for printed in [format!("{c:?}"), c.to_toml().unwrap()] {
            assert!(!printed.contains("file-admin-token"), "{printed}");
            assert!(!printed.contains("file-jwt-secret"), "{printed}");
        }
        assert_eq!(
            c.admin_token.as_ref().unwrap().expose_secret(),
            "file-admin-token-0123"
        );
        assert_eq!(
            c.jwt_hs256_secret.as_ref().unwrap().expose_secret().len(),
            37
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let c: ServerConfig = toml::from_str("no-such-key = 1\nmax-top-k = 5").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(e, "unknown config key(s): no-such-key");
        // Misspelt engine keys too: the engine takes only its own.
        let c: ServerConfig = toml::from_str("block-cache-mb = 1").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("block-cache-mb")
        );
        assert!(toml::from_str::<ServerConfig>("listen = \"nope\"").is_err());
        let c: ServerConfig = toml::from_str("max-top-k = 0").unwrap();
        assert!(c.validate().is_err());
        let c: ServerConfig = toml::from_str("tenants-per-group = 0").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("tenants-per-group"), "{e}");
    }
}
