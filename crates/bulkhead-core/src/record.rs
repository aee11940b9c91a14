//! Record ids and vectors as callers send them. Ids are opaque UTF-8 chosen by the tenant; they
//! are only ever compared inside one collection of one tenant, so identical ids in two tenants
//! are two unrelated records.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::metric::Metric;

/// Longest record id, in bytes.
pub const MAX_RECORD_ID_BYTES: usize = 256;
/// Largest dimension a collection may declare.
pub const MAX_DIMENSION: usize = 4096;

/// A caller-chosen record id: UTF-8, 1..=256 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(String);

impl RecordId {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(CoreError::InvalidRecordId("must not be empty"));
        }
        if value.len() > MAX_RECORD_ID_BYTES {
            return Err(CoreError::InvalidRecordId("must be at most 256 bytes"));
        }
        Ok(Self(value))
    }

    /// Rebuilds an id from stored UTF-8 bytes.
    pub fn from_utf8(bytes: &[u8]) -> Result<Self> {
        let s = std::str::from_utf8(bytes)
            .map_err(|_| CoreError::InvalidRecordId("must be valid UTF-8"))?;
        Self::new(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecordId {
    type Error = CoreError;

    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<RecordId> for String {
    fn from(id: RecordId) -> Self {
        id.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({:?})", self.0)
    }
}

/// Checks a declared collection dimension.
pub fn validate_dimension(dimension: usize) -> Result<()> {
    if dimension == 0 || dimension > MAX_DIMENSION {
        return Err(CoreError::InvalidVector(format!(
            "dimension must be between 1 and {MAX_DIMENSION}, got {dimension}"
        )));
    }
    Ok(())
}

/// Checks a vector against its collection: declared length, finite values, and for cosine a
/// non-zero norm (a zero vector has no direction to compare).
pub fn validate_vector(vector: &[f32], dimension: usize, metric: Metric) -> Result<()> {
    if vector.len() != dimension {
        return Err(CoreError::InvalidVector(format!(
            "dimension mismatch: expected {dimension}, got {}",
            vector.len()
        )));
    }
    if let Some(pos) = vector.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::InvalidVector(format!(
            "value at position {pos} is not finite"
        )));
    }
    if metric == Metric::Cosine && vector.iter().all(|v| *v == 0.0) {
        return Err(CoreError::InvalidVector(
            "a zero vector has no cosine similarity".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_bounds() {
        assert!(RecordId::new("").is_err());
        assert!(RecordId::new("x".repeat(256)).is_ok());
        assert!(RecordId::new("x".repeat(257)).is_err());
        assert!(RecordId::new("é".repeat(128)).is_ok());
        assert!(RecordId::new("é".repeat(129)).is_err());
        assert!(RecordId::from_utf8(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn vector_validation() {
        assert!(validate_vector(&[1.0, 2.0], 2, Metric::L2).is_ok());
        assert!(validate_vector(&[1.0], 2, Metric::L2).is_err());
        assert!(validate_vector(&[1.0, f32::NAN], 2, Metric::L2).is_err());
        assert!(validate_vector(&[1.0, f32::INFINITY], 2, Metric::Dot).is_err());
        assert!(validate_vector(&[0.0, 0.0], 2, Metric::Cosine).is_err());
        assert!(validate_vector(&[0.0, 0.0], 2, Metric::L2).is_ok());
        assert!(validate_dimension(0).is_err());
        assert!(validate_dimension(4097).is_err());
        assert!(validate_dimension(384).is_ok());
    }
}
