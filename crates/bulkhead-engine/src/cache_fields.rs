//! The semantic cache's reserved fields: their names, and which writes may set them. Kept
//! apart from the cache's operations (`tenant::semantic_cache`) because every write of records
//! checks them, and a collection's settings need them to recognise caches made before
//! collections had a kind.

use std::collections::BTreeMap;

use bulkhead_core::{Metadata, Value};

use crate::error::{EngineError, Result};
use crate::fields::FieldType;

pub(crate) const SCOPE: &str = "_scope";
pub(crate) const STORED_AT: &str = "_stored_at";
pub(crate) const PROMPT: &str = "_prompt";
pub(crate) const FINGERPRINT: &str = "_fingerprint";

/// Longest scope, in bytes.
const MAX_SCOPE_BYTES: usize = 256;
/// Longest model/prompt fingerprint, in bytes.
const MAX_FINGERPRINT_BYTES: usize = 256;

/// How a write into a cache treats the reserved fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReservedFields {
    /// A plain upsert or import: no `_` key at all.
    Refused,
    /// A restore, or the cache's own store: each reserved field checked for its type and
    /// bounds, no other `_` key.
    Checked,
}

/// Whether a collection's declared fields are those of a cache created before collections had
/// a kind.
pub(crate) fn is_legacy_cache(fields: &BTreeMap<String, FieldType>) -> bool {
    fields.len() == 2
        && fields.get(SCOPE) == Some(&FieldType::Keyword)
        && fields.get(STORED_AT) == Some(&FieldType::Integer)
}

pub(crate) fn check_scope(scope: &str) -> Result<()> {
    if scope.is_empty() || scope.len() > MAX_SCOPE_BYTES {
        return Err(EngineError::InvalidArgument(format!(
            "scope must be 1 to {MAX_SCOPE_BYTES} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn check_fingerprint(fingerprint: &str) -> Result<()> {
    if fingerprint.is_empty() || fingerprint.len() > MAX_FINGERPRINT_BYTES {
        return Err(EngineError::InvalidArgument(format!(
            "fingerprint must be 1 to {MAX_FINGERPRINT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks the `_` keys of an entry written into a cache.
pub(crate) fn check_reserved_fields(
    metadata: &Metadata,
    reserved: ReservedFields,
) -> std::result::Result<(), String> {
    for (key, value) in metadata.iter().filter(|(k, _)| k.starts_with('_')) {
        let valid = match (reserved, key.as_str(), value) {
            (ReservedFields::Refused, ..) => {
                return Err(format!(
                    "metadata.{key}: keys starting with '_' are reserved in a semantic cache \
                     (its entries are written by SemanticCacheService.Store)"
                ));
            }
            (ReservedFields::Checked, SCOPE, Value::String(s)) => check_scope(s).is_ok(),
            (ReservedFields::Checked, STORED_AT, Value::Int(t)) => *t >= 0,
            (ReservedFields::Checked, PROMPT, Value::String(_)) => true,
            (ReservedFields::Checked, FINGERPRINT, Value::String(f)) => {
                check_fingerprint(f).is_ok()
            }
            (ReservedFields::Checked, ..) => false,
        };
        if !valid {
            return Err(format!(
                "metadata.{key}: not a valid reserved field of a cache entry \
                 ({SCOPE}: 1 to {MAX_SCOPE_BYTES} bytes, {STORED_AT}: ms since the epoch, \
                 {PROMPT}: a string, {FINGERPRINT}: 1 to {MAX_FINGERPRINT_BYTES} bytes)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, Value)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn plain_writes_carry_no_reserved_key_and_restores_only_valid_ones() {
        let own = meta(&[("lang", Value::String("en".into()))]);
        assert!(check_reserved_fields(&own, ReservedFields::Refused).is_ok());
        for key in [SCOPE, STORED_AT, PROMPT, "_other"] {
            let m = meta(&[(key, Value::String("x".into()))]);
            let refused = check_reserved_fields(&m, ReservedFields::Refused).unwrap_err();
            assert!(
                refused.contains(key) && refused.contains("reserved"),
                "{refused}"
            );
        }
        let restored = meta(&[
            (SCOPE, Value::String("user-1".into())),
            (STORED_AT, Value::Int(1_700_000_000_000)),
            (PROMPT, Value::String("what is bulkhead?".into())),
            ("lang", Value::String("en".into())),
        ]);
        assert!(check_reserved_fields(&restored, ReservedFields::Checked).is_ok());
        for bad in [
            meta(&[(SCOPE, Value::String(String::new()))]),
            meta(&[(SCOPE, Value::String("u".repeat(MAX_SCOPE_BYTES + 1)))]),
            meta(&[(SCOPE, Value::Int(1))]),
            meta(&[(STORED_AT, Value::Int(-1))]),
            meta(&[(STORED_AT, Value::String("now".into()))]),
            meta(&[(PROMPT, Value::Bool(true))]),
            meta(&[("_other", Value::String("x".into()))]),
        ] {
            assert!(
                check_reserved_fields(&bad, ReservedFields::Checked).is_err(),
                "{bad:?}"
            );
        }
        let longest = meta(&[(SCOPE, Value::String("u".repeat(MAX_SCOPE_BYTES)))]);
        assert!(check_reserved_fields(&longest, ReservedFields::Checked).is_ok());
    }

    #[test]
    fn a_fingerprint_is_one_to_256_bytes_on_every_path() {
        check_fingerprint("m").unwrap();
        check_fingerprint(&"f".repeat(MAX_FINGERPRINT_BYTES)).unwrap();
        assert!(check_fingerprint("").is_err());
        assert!(check_fingerprint(&"f".repeat(MAX_FINGERPRINT_BYTES + 1)).is_err());
        let restored =
            |f: Value| check_reserved_fields(&meta(&[(FINGERPRINT, f)]), ReservedFields::Checked);
        restored(Value::String("gpt-x/v1".into())).unwrap();
        assert!(restored(Value::String(String::new())).is_err());
        assert!(restored(Value::String("f".repeat(MAX_FINGERPRINT_BYTES + 1))).is_err());
        assert!(restored(Value::Int(1)).is_err());
        let planted = meta(&[(FINGERPRINT, Value::String("gpt-x/v1".into()))]);
        assert!(check_reserved_fields(&planted, ReservedFields::Refused).is_err());
    }

    #[test]
    fn only_the_two_fields_a_cache_declared_mark_a_legacy_cache() {
        let cache = BTreeMap::from([
            (SCOPE.to_owned(), FieldType::Keyword),
            (STORED_AT.to_owned(), FieldType::Integer),
        ]);
        assert!(is_legacy_cache(&cache));
        let mut more = cache.clone();
        more.insert("lang".into(), FieldType::Keyword);
        assert!(!is_legacy_cache(&more));
        let mut other_type = cache.clone();
        other_type.insert(STORED_AT.into(), FieldType::Keyword);
        assert!(!is_legacy_cache(&other_type));
        assert!(!is_legacy_cache(&BTreeMap::new()));
    }
}
