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
    /// Whom the call was for and under which trace; absent in events of earlier versions.
    #[serde(default, skip_serializing_if = "AuditContext::is_empty")]
    pub context: AuditContext,
}

/// Which end user, session and trace an event belongs to, and what a read returned: what makes
/// "which user saw which document, when" answerable from the tenant's own trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditContext {
    /// The end user (`sub` of its token), for calls made with an end-user token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The session the end user's token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The caller's trace id: a W3C `traceparent`'s trace id, or its `x-request-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The ids a read returned, in a collection that records them (at most
    /// [`MAX_AUDITED_READ_IDS`]; `record_count` has the whole number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_ids: Vec<String>,
}

/// Most record ids one audit event keeps of a read.
pub const MAX_AUDITED_READ_IDS: usize = 1_000;

impl AuditContext {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Which events a listing wants, besides its position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only events of this end user.
    pub user: Option<String>,
    /// Only events in this session.
    pub session: Option<String>,
}

impl AuditFilter {
    pub(crate) fn matches(&self, event: &AuditEvent) -> bool {
        self.since_ms.is_none_or(|t| event.time_ms >= t)
            && self
                .user
                .as_ref()
                .is_none_or(|u| event.context.user.as_ref() == Some(u))
            && self
                .session
                .as_ref()
                .is_none_or(|s| event.context.session.as_ref() == Some(s))
    }
}

/// What a caller supplies; the engine assigns sequence and time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    pub principal: String,
    pub operation: String,
    pub resource: String,
    pub outcome: String,
    pub record_count: u64,
    pub context: AuditContext,
}

/// Who is writing, for the audit event a write carries in its own batch (see
/// `TenantHandle::audited`). The outcome of a committed write is always `OK`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditStamp {
    pub principal: String,
    pub operation: String,
    pub resource: String,
    pub context: AuditContext,
}

impl AuditStamp {
    pub(crate) fn entry(&self, record_count: u64) -> AuditEntry {
        AuditEntry {
            principal: self.principal.clone(),
            operation: self.operation.clone(),
            resource: self.resource.clone(),
            outcome: "OK".to_owned(),
            record_count,
            context: self.context.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: Option<&str>, session: Option<&str>, time_ms: u64) -> AuditEvent {
        AuditEvent {
            sequence: 1,
            time_ms,
            principal: "k1".into(),
            operation: "RecordService/Get".into(),
            resource: "tenants/a/collections/docs".into(),
            outcome: "OK".into(),
            record_count: 0,
            context: AuditContext {
                user: user.map(str::to_owned),
                session: session.map(str::to_owned),
                ..AuditContext::default()
            },
        }
    }

    #[test]
    fn a_filter_matches_only_its_user_session_and_time() {
        let by = |user: Option<&str>, session: Option<&str>, since_ms: Option<u64>| AuditFilter {
            since_ms,
            user: user.map(str::to_owned),
            session: session.map(str::to_owned),
        };
        let e = event(Some("alice"), Some("s1"), 100);
        assert!(by(None, None, None).matches(&e));
        assert!(by(Some("alice"), Some("s1"), Some(100)).matches(&e));
        assert!(!by(Some("bob"), None, None).matches(&e));
        assert!(!by(None, Some("s2"), None).matches(&e));
        assert!(!by(None, None, Some(101)).matches(&e));
        assert!(!by(Some("alice"), None, None).matches(&event(None, None, 100)));
    }

    #[test]
    fn events_of_earlier_versions_read_with_an_empty_context() {
        let old = r#"{"sequence":3,"time_ms":5,"principal":"k","operation":"o","resource":"r","outcome":"OK","record_count":1}"#;
        let e: AuditEvent = serde_json::from_str(old).unwrap();
        assert!(e.context.is_empty());
        let plain = event(None, None, 5);
        assert!(!serde_json::to_string(&plain).unwrap().contains("context"));
    }
}
