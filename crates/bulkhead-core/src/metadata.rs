//! Metadata attached to records: a small typed map. Types are fixed to what filters can index
//! later (strings, integers, finite doubles, booleans, string lists), so a stored value can
//! always be compared without guessing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Most keys one record may carry.
pub const MAX_METADATA_KEYS: usize = 64;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_BYTES: usize = 128;
/// Largest encoded metadata of one record, in bytes (strings and lists counted by content).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    StringList(Vec<String>),
}

impl Value {
    fn approximate_size(&self) -> usize {
        match self {
            Value::String(s) => s.len(),
            Value::StringList(l) => l.iter().map(|s| s.len() + 1).sum(),
            Value::Int(_) | Value::Double(_) | Value::Bool(_) => 8,
        }
    }
}

/// A record's metadata; ordered so its encoding is deterministic.
pub type Metadata = BTreeMap<String, Value>;

/// Checks key count, key shape, value size and that doubles are finite.
pub fn validate_metadata(metadata: &Metadata) -> Result<()> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(CoreError::InvalidMetadata(format!(
            "at most {MAX_METADATA_KEYS} keys, got {}",
            metadata.len()
        )));
    }
    let mut total = 0;
    for (key, value) in metadata {
        if key.is_empty() || key.len() > MAX_METADATA_KEY_BYTES {
            return Err(CoreError::InvalidMetadata(format!(
                "key {key:?} must be 1..={MAX_METADATA_KEY_BYTES} bytes"
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(CoreError::InvalidMetadata(format!(
                "key {key:?} contains a control character"
            )));
        }
        if let Value::Double(d) = value
            && !d.is_finite()
        {
            return Err(CoreError::InvalidMetadata(format!(
                "value of {key:?} is not finite"
            )));
        }
        total += key.len() + value.approximate_size();
    }
    if total > MAX_METADATA_BYTES {
        return Err(CoreError::InvalidMetadata(format!(
            "metadata is {total} bytes, at most {MAX_METADATA_BYTES} allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_metadata() {
        let mut m = Metadata::new();
        m.insert("section".into(), Value::String("libs".into()));
        m.insert("year".into(), Value::Int(2024));
        m.insert("score".into(), Value::Double(0.5));
        m.insert("public".into(), Value::Bool(true));
        m.insert("tags".into(), Value::StringList(vec!["a".into()]));
        validate_metadata(&m).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), m);
    }

    #[test]
    fn rejects_bad_metadata() {
        let one = |k: &str, v: Value| Metadata::from([(k.to_owned(), v)]);
        assert!(validate_metadata(&one("", Value::Int(1))).is_err());
        assert!(validate_metadata(&one("x", Value::Double(f64::NAN))).is_err());
        assert!(validate_metadata(&one("a\nb", Value::Int(1))).is_err());
        assert!(validate_metadata(&one("k", Value::String("x".repeat(70_000)))).is_err());
        let many: Metadata = (0..65).map(|i| (format!("k{i}"), Value::Int(i))).collect();
        assert!(validate_metadata(&many).is_err());
    }
}
