//! Why a wire message was refused. Each message names the field (and position) at fault, e.g.
//! `records[3]: ttl_seconds must be positive, got 0`, because the sender has to find it.

/// A wire message that doesn't convert: a field out of range, missing or of an unknown kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = WireError> = std::result::Result<T, E>;

impl WireError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// This error with `position` (e.g. `records[3]`) in front, for a field of a list element.
    pub fn at(self, position: &str) -> Self {
        match self {
            Self::Invalid(m) => Self::Invalid(format!("{position}: {m}")),
        }
    }
}

impl From<bulkhead_core::CoreError> for WireError {
    /// Core validation errors (ids, names, vectors, metadata) are all about what was sent.
    fn from(e: bulkhead_core::CoreError) -> Self {
        Self::Invalid(e.to_string())
    }
}
