//! The per-tenant audit log. Events live in the tenant's own column family under a sequence
//! number, so a tenant's trail is deleted with the tenant and can never be listed from another.

use serde::{Deserialize, Serialize};

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the engine on append, increasing within the tenant.
    pub sequence: u64,
    /// Milliseconds since the Unix epoch, assigned on append.
    pub time_ms: u64,
    /// Who acted: an API key id or `admin`.
    pub principal: String,
    /// The operation, e.g. `RecordService.Upsert`.
    pub operation: String,
    /// The resource name the request addressed.
    pub resource: String,
    /// Outcome, e.g. a gRPC status code name.
    pub outcome: String,
    /// Records read, written or returned, where that applies.
    pub record_count: u64,
}

/// What a caller supplies; the engine assigns sequence and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub principal: String,
    pub operation: String,
    pub resource: String,
    pub outcome: String,
    pub record_count: u64,
}

/// Who is writing, for the audit event a write carries in its own batch (see
/// `TenantHandle::audited`). The outcome of a committed write is always `OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStamp {
    pub principal: String,
    pub operation: String,
    pub resource: String,
}

impl AuditStamp {
    pub(crate) fn entry(&self, record_count: u64) -> AuditEntry {
        AuditEntry {
            principal: self.principal.clone(),
            operation: self.operation.clone(),
            resource: self.resource.clone(),
            outcome: "OK".to_owned(),
            record_count,
        }
    }
}
