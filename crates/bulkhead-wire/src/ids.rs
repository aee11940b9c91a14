//! Record ids from the wire, each checked by the core's rules.

use bulkhead_core::RecordId;

use crate::error::{Result, WireError};

/// Parses request ids; an error names the offending position.
pub fn record_ids(ids: Vec<String>) -> Result<Vec<RecordId>> {
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| RecordId::new(id).map_err(|e| WireError::from(e).at(&format!("ids[{i}]"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_is_named_by_its_position() {
        assert_eq!(record_ids(vec!["a".into(), "b".into()]).unwrap().len(), 2);
        let e = record_ids(vec!["a".into(), String::new()]).unwrap_err();
        assert!(e.to_string().starts_with("ids[1]: "), "{e}");
    }
}
