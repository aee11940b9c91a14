//! Per-tenant settings kept in the registry: audit retention, quotas the engine enforces, and
//! rate limits the server enforces. Zero means unlimited throughout.

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
}

impl TenantSettings {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let r = &self.rate_limit;
        if !r.requests_per_second.is_finite() || r.requests_per_second < 0.0 {
            return Err(crate::EngineError::InvalidArgument(
                "rate_limit.requests_per_second must be a finite number >= 0".into(),
            ));
        }
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
