//! Validation failures of the domain types. Every variant is the caller's fault: the core crate
//! only judges input, it never does I/O.

/// A value supplied by a caller failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Caller's fault: an identifier (tenant, collection, key) breaks the naming rule.
    #[error("invalid {kind} id {value:?}: {reason}")]
    InvalidId {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    /// Caller's fault: a resource name is not of the expected shape.
    #[error("invalid resource name {name:?}: expected {expected}")]
    InvalidResourceName {
        name: String,
        expected: &'static str,
    },
    /// Caller's fault: a record id is empty or longer than allowed.
    #[error("invalid record id: {0}")]
    InvalidRecordId(&'static str),
    /// Caller's fault: the metric name is none of `cosine`, `dot`, `l2`.
    #[error("unknown metric {0:?}: expected one of cosine, dot, l2")]
    UnknownMetric(String),
    /// Caller's fault: a vector has the wrong length or a non-finite value.
    #[error("invalid vector: {0}")]
    InvalidVector(String),
    /// Caller's fault: a metadata key or value is unacceptable.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
