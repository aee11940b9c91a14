//! Server settings: a TOML file, then `BULKHEAD_*` environment variables, then command-line
//! flags, each overriding the one before. `validate` runs before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use bulkhead_engine::EngineConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::tls::TlsFiles;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Where tenant data lives.
    pub data_dir: PathBuf,
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
    /// token is generated into `<data-dir>/admin.token`. A secret: `Debug` prints it redacted.
    pub admin_token: Option<SecretString>,
    /// HS256 key for tenant tokens (JWTs with `tenant`, `role`, `iat`, `exp` claims) minted by
    /// an identity provider; none by default (API keys only). Prefer `BULKHEAD_JWT_HS256_SECRET`.
    pub jwt_hs256_secret: Option<SecretString>,
    /// fsync the WAL before acknowledging writes (see docs/operations.md).
    pub sync_writes: bool,
    pub tenants_per_group: usize,
    /// Most tenant groups open at once (lowered to fit the open-files limit).
    pub max_open_groups: usize,
    /// A group unused for this long is closed; its tenants reopen it on their next request.
    pub group_idle_close_secs: u64,
    pub block_cache_mib: usize,
    pub write_buffer_budget_mib: usize,
    pub index_memory_budget_mib: usize,
    pub sweep_interval_secs: u64,
    pub default_audit_retention_days: u64,
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
    /// Most of those one tenant may hold; 0: half the CPU count (at least 1).
    pub engine_threads_per_tenant: usize,
    /// Lowest-priority threads running tenants' work past their share; 0: the CPU count.
    pub borrowed_engine_threads: usize,
    /// Most requests of one tenant in flight at once; past it, `RESOURCE_EXHAUSTED`.
    pub tenant_requests_in_flight: usize,
    /// Most Import and Export streams one tenant may hold open.
    pub tenant_open_streams: usize,
    /// Requests/s of a tenant that sets no rate limit of its own (0: unlimited).
    pub default_requests_per_second: f64,
    /// Burst of a tenant that sets no rate limit of its own.
    pub default_burst: u64,
    /// Written bytes/s of a tenant that sets no write limit of its own (0: unlimited).
    pub default_write_bytes_per_second: u64,
    /// Share of its tenant's request rate one API key or token subject may use, in (0, 1].
    pub principal_rate_share: f64,
    /// Most concurrent streams (calls) on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// An Import or Export stream that moves nothing for this long is ended.
    pub stream_idle_timeout_secs: u64,
    /// Longest an Import or Export stream may run.
    pub stream_timeout_secs: u64,
    /// Most API keys one tenant may hold, revoked ones included.
    pub max_api_keys_per_tenant: usize,
    /// Most elements of a list-valued metadata field that is indexed.
    pub max_indexed_list_len: usize,
    /// Threads one background index build uses (0: one fewer than the CPUs, at least one).
    pub index_build_threads: usize,
    /// Changes after which a loaded collection's segment file is written again.
    pub segment_refresh_changes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let engine = EngineConfig::new("./data");
        Self {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:7600".parse().expect("literal address"),
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            insecure_plaintext: false,
            admin_token: None,
            jwt_hs256_secret: None,
            sync_writes: true,
            tenants_per_group: engine.tenants_per_group,
            max_open_groups: engine.max_open_groups,
            group_idle_close_secs: engine.group_idle_close.as_secs(),
            block_cache_mib: 256,
            write_buffer_budget_mib: 256,
            index_memory_budget_mib: 4096,
            sweep_interval_secs: 30,
            default_audit_retention_days: 30,
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
            default_requests_per_second: 1000.0,
            default_burst: 2000,
            default_write_bytes_per_second: 64 << 20,
            principal_rate_share: 1.0,
            max_streams_per_connection: 128,
            stream_idle_timeout_secs: 30,
            stream_timeout_secs: 3600,
            max_api_keys_per_tenant: engine.max_api_keys_per_tenant,
            max_indexed_list_len: engine.max_indexed_list_len,
            index_build_threads: 0,
            segment_refresh_changes: engine.segment_refresh_changes,
        }
    }
}

impl ServerConfig {
    /// Reads `path` (TOML) if given, then applies the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, v: String) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.parse()
                .map_err(|e| anyhow::anyhow!("environment variable {name}={v:?}: {e}"))
        }
        if let Some(v) = var("BULKHEAD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("BULKHEAD_LISTEN") {
            self.listen = parse("BULKHEAD_LISTEN", v)?;
        }
        if let Some(v) = var("BULKHEAD_METRICS_LISTEN") {
            self.metrics_listen = Some(parse("BULKHEAD_METRICS_LISTEN", v)?);
        }
        if let Some(v) = var("BULKHEAD_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = var("BULKHEAD_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        if let Some(v) = var("BULKHEAD_TLS_CLIENT_CA") {
            self.tls_client_ca = Some(v.into());
        }
        if let Some(v) = var("BULKHEAD_ADMIN_TOKEN") {
            self.admin_token = Some(v.into());
        }
        if let Some(v) = var("BULKHEAD_JWT_HS256_SECRET") {
            self.jwt_hs256_secret = Some(v.into());
        }
        if let Some(v) = var("BULKHEAD_SYNC_WRITES") {
            self.sync_writes = parse("BULKHEAD_SYNC_WRITES", v)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
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
        self.engine_config().validate()?;
        Ok(())
    }

    pub fn tls(&self) -> TlsFiles {
        TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
        }
    }

    /// The engine pool's size and one tenant's share of it.
    pub fn engine_pool(&self) -> crate::admission::PoolSize {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let or = |set: usize, default: usize| if set == 0 { default } else { set };
        let share_threads = or(self.engine_threads, cpus);
        crate::admission::PoolSize {
            share_threads,
            borrowed_threads: or(self.borrowed_engine_threads, cpus),
            per_tenant_share: or(self.engine_threads_per_tenant, (cpus / 2).max(1))
                .min(share_threads),
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut e = EngineConfig::new(&self.data_dir);
        e.sync_writes = self.sync_writes;
        e.tenants_per_group = self.tenants_per_group;
        e.max_open_groups = self.max_open_groups;
        e.group_idle_close = Duration::from_secs(self.group_idle_close_secs);
        e.block_cache_bytes = self.block_cache_mib << 20;
        e.write_buffer_budget_bytes = self.write_buffer_budget_mib << 20;
        e.index_memory_budget_bytes = self.index_memory_budget_mib << 20;
        e.sweep_interval = Duration::from_secs(self.sweep_interval_secs.max(1));
        e.default_audit_retention = Duration::from_secs(self.default_audit_retention_days * 86_400);
        e.max_api_keys_per_tenant = self.max_api_keys_per_tenant;
        e.max_indexed_list_len = self.max_indexed_list_len;
        e.segment_refresh_changes = self.segment_refresh_changes;
        if self.index_build_threads > 0 {
            e.index_build_threads = self.index_build_threads;
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override() {
        let mut c: ServerConfig =
            toml::from_str("data-dir = \"/srv/bh\"\nmax-top-k = 50\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/bh"));
        assert_eq!(c.max_top_k, 50);
        c.apply_env(|k| (k == "BULKHEAD_DATA_DIR").then(|| "/other".to_owned()))
            .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/other"));
        c.validate().unwrap();
    }

    /// A configuration printed (in a log line, a panic, a debugger) shows no secret.
    #[test]
    fn secrets_are_read_but_never_printed() {
        let mut c: ServerConfig =
            toml::from_str("admin-token = \"file-admin-token-0123\"\n").unwrap();
        c.apply_env(|k| {
            (k == "BULKHEAD_JWT_HS256_SECRET")
                .then(|| "env-jwt-secret-0123456789-0123456789".into())
        })
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("file-admin-token"), "{printed}");
        assert!(!printed.contains("env-jwt-secret"), "{printed}");
        assert_eq!(
            c.admin_token.as_ref().unwrap().expose_secret(),
            "file-admin-token-0123"
        );
        assert_eq!(
            c.jwt_hs256_secret.as_ref().unwrap().expose_secret().len(),
            36
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(toml::from_str::<ServerConfig>("no-such-key = 1").is_err());
        let mut c = ServerConfig::default();
        assert!(
            c.apply_env(|k| (k == "BULKHEAD_LISTEN").then(|| "nope".into()))
                .is_err()
        );
        c.max_top_k = 0;
        assert!(c.validate().is_err());
    }
}
