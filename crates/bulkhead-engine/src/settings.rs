//! Per-tenant settings kept in the registry: audit retention, quotas the engine enforces, and
//! rate limits and shares the server enforces. Zero means unlimited for quotas and rate limits,
//! and the server's setting for shares.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::verification_keys::check_token_lifetime;

/// Limits on what a tenant may store; checked by the engine before every write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quota {
    pub max_collections: u64,
    pub max_records: u64,
    pub max_stored_bytes: u64,
}

/// Request and write-bandwidth limits; enforced by the server, stored here so they persist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    pub requests_per_second: f64,
    pub burst: u64,
    pub write_bytes_per_second: u64,
}

/// A tenant's share of what every tenant of the process shares, enforced by the server, stored
/// here so it persists. Zero here means the server's setting, not unlimited: no tenant is ever
/// without a bound on these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerShare {
    /// Requests of the tenant in flight at once.
    pub requests_in_flight: u64,
    /// Import and Export streams the tenant holds open at once.
    pub open_streams: u64,
    /// Normal-priority engine-pool threads the tenant's work may hold at once (the server caps
    /// it at the pool's size).
    pub engine_threads: u64,
    /// Bytes of writes the server receives and writes for the tenant's callers at once.
    pub write_bytes_in_flight: u64,
}

/// The largest values a tenant's [`ServerShare`] may take: well past any one machine, small
/// enough that a typo can't turn a bound into none.
pub const MAX_REQUESTS_IN_FLIGHT: u64 = 100_000;
pub const MAX_OPEN_STREAMS: u64 = 10_000;
pub const MAX_ENGINE_THREADS: u64 = 1024;
pub const MAX_WRITE_BYTES_IN_FLIGHT: u64 = 1 << 40;

impl ServerShare {
    fn validate(&self) -> crate::Result<()> {
        for (field, value, most) in [
            (
                "share.requests_in_flight",
                self.requests_in_flight,
                MAX_REQUESTS_IN_FLIGHT,
            ),
            ("share.open_streams", self.open_streams, MAX_OPEN_STREAMS),
            (
                "share.engine_threads",
                self.engine_threads,
                MAX_ENGINE_THREADS,
            ),
            (
                "share.write_bytes_in_flight",
                self.write_bytes_in_flight,
                MAX_WRITE_BYTES_IN_FLIGHT,
            ),
        ] {
            if value > most {
                return Err(crate::EngineError::InvalidArgument(format!(
                    "{field} is {value}; it must be 0 (the server's setting) to {most}"
                )));
            }
        }
        Ok(())
    }
}

/// Settings chosen at tenant creation or update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantSettings {
    /// `None`: the engine's default retention applies.
    pub audit_retention: Option<Duration>,
    pub quota: Quota,
    pub rate_limit: RateLimit,
    /// The longest lifetime of an end-user token of this tenant, whatever its verification
    /// keys allow: the operator's bound on the tenant admin's choice. `None`: the engine's
    /// ceiling (`MAX_TOKEN_LIFETIME_SECS`).
    pub max_token_lifetime: Option<Duration>,
    pub share: ServerShare,
}

impl TenantSettings {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let r = &self.rate_limit;
        if !r.requests_per_second.is_finite() || r.requests_per_second < 0.0 {
            return Err(crate::EngineError::InvalidArgument(
                "rate_limit.requests_per_second must be a finite number >= 0".into(),
            ));
        }
        self.share.validate()?;
        if let Some(d) = self.max_token_lifetime {
            check_token_lifetime("max_token_lifetime", d.as_secs())?;
        }
        if self.audit_retention.is_some_and(|d| d.as_secs() == 0) {
            return Err(crate::EngineError::InvalidArgument(
                "audit retention must be at least one second".into(),
            ));
        }
        Ok(())
    }
}
