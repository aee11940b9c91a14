//! Records in (from messages and from imported Arrow rows), records and hits out.

use std::time::Duration;

use bulkhead_core::RecordId;
use bulkhead_engine::{Hit, NewRecord, StoredRecord};
use bulkhead_formats::RecordRow;
use bulkhead_proto::v1 as pb;

use crate::error::{Result, WireError};
use crate::time::{positive_seconds, timestamp_from_ms};
use crate::values::{metadata_from_pb, metadata_to_pb};

/// A record's id and TTL as sent, both checked: the part every way records arrive shares.
fn id_and_ttl(id: String, ttl_seconds: Option<i64>) -> Result<(RecordId, Option<Duration>)> {
    let id = RecordId::new(id)?;
    let ttl = ttl_seconds
        .map(|s| positive_seconds("ttl_seconds", s))
        .transpose()?;
    Ok((id, ttl))
}

/// The record at `index` of a request; errors name it (`records[3]: …`).
pub fn new_record(index: usize, r: pb::Record) -> Result<NewRecord> {
    let at = |e: WireError| e.at(&format!("records[{index}]"));
    let (id, ttl) = id_and_ttl(r.id, r.ttl_seconds).map_err(at)?;
    Ok(NewRecord {
        id,
        vector: r.vector,
        text: r.text,
        metadata: metadata_from_pb(r.metadata).map_err(at)?,
        ttl,
    })
}

/// A record of an imported Arrow batch; errors name the batch and row.
pub fn record_from_row(batch: usize, row: usize, r: RecordRow) -> Result<NewRecord> {
    let (id, ttl) =
        id_and_ttl(r.id, r.ttl_seconds).map_err(|e| e.at(&format!("batch {batch} row {row}")))?;
    Ok(NewRecord {
        id,
        vector: r.vector,
        text: r.text,
        metadata: r.metadata,
        ttl,
    })
}

/// A stored record for export; its TTL is the time left, rounded up to whole seconds.
pub fn stored_record_to_row(r: StoredRecord, now_ms: u64) -> RecordRow {
    RecordRow {
        id: r.id.into(),
        vector: r.vector,
        text: r.text,
        metadata: r.metadata,
        ttl_seconds: r
            .expire_time_ms
            .map(|at| at.saturating_sub(now_ms).div_ceil(1000).max(1) as i64),
    }
}

pub fn stored_record_to_pb(r: StoredRecord) -> pb::Record {
    pb::Record {
        id: r.id.into(),
        vector: r.vector,
        text: r.text,
        metadata: metadata_to_pb(r.metadata),
        ttl_seconds: None,
        expire_time: r.expire_time_ms.map(timestamp_from_ms),
    }
}

pub fn hit_to_pb(h: Hit) -> pb::Hit {
    pb::Hit {
        id: h.id.into(),
        score: h.score,
        text: h.text,
        metadata: h.metadata.map(metadata_to_pb).unwrap_or_default(),
        vector: h.vector.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_errors_name_the_record() {
        let bad = pb::Record {
            id: String::new(),
            ..Default::default()
        };
        let e = new_record(3, bad).unwrap_err().to_string();
        assert!(e.starts_with("records[3]: "), "{e}");
        let bad_ttl = pb::Record {
            id: "x".into(),
            ttl_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(
            new_record(0, bad_ttl).unwrap_err().to_string(),
            "records[0]: ttl_seconds must be positive, got 0"
        );
        let untyped = pb::Record {
            id: "x".into(),
            metadata: [("k".to_owned(), pb::Value { kind: None })].into(),
            ..Default::default()
        };
        assert!(new_record(1, untyped).is_err());
    }

    #[test]
    fn row_errors_name_the_batch_and_row() {
        let row = RecordRow {
            id: "x".into(),
            vector: vec![1.0],
            text: None,
            metadata: Default::default(),
            ttl_seconds: Some(-1),
        };
        let e = record_from_row(2, 7, row).unwrap_err().to_string();
        assert!(e.starts_with("batch 2 row 7: ttl_seconds"), "{e}");
    }

    #[test]
    fn an_exported_ttl_is_the_time_left_rounded_up() {
        let stored = |expire_time_ms| StoredRecord {
            id: RecordId::new("r").unwrap(),
            vector: vec![1.0],
            text: None,
            metadata: Default::default(),
            expire_time_ms,
        };
        assert_eq!(stored_record_to_row(stored(None), 0).ttl_seconds, None);
        assert_eq!(
            stored_record_to_row(stored(Some(10_001)), 0).ttl_seconds,
            Some(11)
        );
        assert_eq!(
            stored_record_to_row(stored(Some(5_000)), 5_000).ttl_seconds,
            Some(1),
            "a record due now still has a TTL, never 0 (which would mean none)"
        );
    }
}
