//! The entry point: one connection shared by the tenant and admin handles made from it.

use std::time::Duration;

use bulkhead_core::TenantId;
use tonic::transport::Endpoint;

use crate::admin::AdminClient;
use crate::connection::{CallPolicy, Connection, Credential};
use crate::error::Result;
use crate::sessions::SessionClient;
use crate::tenant::TenantClient;
use crate::tls::TlsOptions;

/// A connection to one Bulkhead server. Cheap to clone; every handle made from it shares the
/// underlying HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Client {
    connection: Connection,
}

impl Client {
    /// Connects with the default call policy (30 s deadline, 4 attempts on `UNAVAILABLE`).
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self> {
        Self::builder(endpoint).connect().await
    }

    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            policy: CallPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            tls: TlsOptions::default(),
        }
    }

    /// A handle fixed to `tenant`, authenticated with `secret` (a key of that tenant, or the
    /// admin token). Every call it makes names `tenant` and no other.
    pub fn tenant(&self, tenant: &str, secret: &str) -> Result<TenantClient> {
        Ok(TenantClient::new(
            self.connection.clone(),
            Credential::new(secret)?,
            TenantId::new(tenant)?,
        ))
    }

    /// A handle fixed to one session of `tenant`, authenticated with `secret`: typically an
    /// end-user token bound to that session (its `session` claim), which reaches nothing else;
    /// a key of the tenant works too.
    pub fn session(&self, tenant: &str, session: &str, secret: &str) -> Result<SessionClient> {
        SessionClient::new(
            self.connection.clone(),
            Credential::new(secret)?,
            TenantId::new(tenant)?,
            session,
        )
    }

    /// The tenant-management handle; needs the server's admin token.
    pub fn admin(&self, admin_token: &str) -> Result<AdminClient> {
        Ok(AdminClient::new(
            self.connection.clone(),
            Credential::new(admin_token)?,
        ))
    }
}

/// Settings for [`Client`] before connecting.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoint: String,
    policy: CallPolicy,
    connect_timeout: Duration,
    tls: TlsOptions,
}

impl ClientBuilder {
    /// Deadline of each attempt of each call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// Deadline of a whole Arrow import or export (default an hour, the server's own bound):
    /// a big file, or one the server paces to the tenant's write limit, takes longer than one
    /// call's `timeout`.
    pub fn stream_timeout(mut self, timeout: Duration) -> Self {
        self.policy.stream_timeout = timeout;
        self
    }

    /// Attempts per call in all; `1` disables retries.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// First and largest pause between attempts; each pause doubles up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.policy.initial_backoff = initial;
        self.policy.max_backoff = max.max(initial);
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// TLS settings for an `https://` endpoint (a private CA, a client certificate). An
    /// `https://` endpoint without them trusts the public roots.
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = options;
        self
    }

    pub async fn connect(self) -> Result<Client> {
        let endpoint = Endpoint::from_shared(self.endpoint)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        let endpoint = self.tls.apply(endpoint)?;
        Ok(Client {
            connection: Connection::open(endpoint, self.policy).await?,
        })
    }
}
