//! Conversions between protobuf messages and engine types. Every field from the wire is
//! validated on the way in; errors name the field.

use std::collections::HashMap;
use std::time::Duration;

use bulkhead_core::{Metadata, Metric, RecordId};
use bulkhead_engine::{
    BuildSettings, CollectionInfo, CollectionKind, CollectionSpec, FieldType, Hit, IndexKind,
    IndexParams, NewRecord, Quantization, Quota, RateLimit, StoredRecord, TenantInfo,
};
use bulkhead_proto::v1 as pb;
use prost_types::Timestamp;
use tonic::Status;

use crate::status::core_status;

pub fn timestamp_ms(ms: u64) -> Timestamp {
    Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

pub fn timestamp_to_ms(t: &Timestamp) -> Result<u64, Status> {
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Status::invalid_argument("timestamp out of range"));
    }
    Ok(t.seconds as u64 * 1000 + t.nanos as u64 / 1_000_000)
}

/// A positive number of seconds from the wire, or an error naming `field`.
pub fn positive_seconds(field: &str, secs: i64) -> Result<Duration, Status> {
    if secs <= 0 {
        return Err(Status::invalid_argument(format!(
            "{field} must be positive, got {secs}"
        )));
    }
    Ok(Duration::from_secs(secs as u64))
}

pub fn metric(m: i32) -> Result<Metric, Status> {
    match pb::Metric::try_from(m) {
        Ok(pb::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(pb::Metric::Dot) => Ok(Metric::Dot),
        Ok(pb::Metric::L2) => Ok(Metric::L2),
        Ok(pb::Metric::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "metric: unknown value {m}; expected COSINE, DOT or L2"
        ))),
    }
}

/// The quantization a request asks for; `None` for the server's default.
fn quantization(raw: i32) -> Result<Option<Quantization>, Status> {
    match pb::Quantization::try_from(raw) {
        Ok(pb::Quantization::Unspecified) => Ok(None),
        Ok(pb::Quantization::None) => Ok(Some(Quantization::None)),
        Ok(pb::Quantization::Int8) => Ok(Some(Quantization::Int8)),
        Err(_) => Err(Status::invalid_argument(format!(
            "hnsw.quantization: unknown value {raw}; expected QUANTIZATION_NONE or INT8"
        ))),
    }
}

pub fn collection_spec(req: &pb::CreateCollectionRequest) -> Result<CollectionSpec, Status> {
    let mut spec = CollectionSpec::new(req.dimension as usize, metric(req.metric)?);
    if let Some(ttl) = req.default_ttl_seconds {
        spec.default_ttl = Some(positive_seconds("default_ttl_seconds", ttl)?);
    }
    if let Some(h) = &req.hnsw {
        let d = IndexParams::default();
        let pick = |v: u32, default: usize| if v == 0 { default } else { v as usize };
        spec.index = Some(IndexParams {
            m: pick(h.m, d.m),
            ef_construction: pick(h.ef_construction, d.ef_construction),
            ef_search: pick(h.ef_search, d.ef_search),
            flat_threshold: pick(h.flat_threshold, d.flat_threshold),
            quantization: quantization(h.quantization)?.unwrap_or(d.quantization),
            ..d
        });
        spec.build = BuildSettings {
            threads: h.build_threads as usize,
            segments: match pb::SegmentPolicy::try_from(h.segments) {
                Ok(pb::SegmentPolicy::Unspecified | pb::SegmentPolicy::SegmentsOn) => true,
                Ok(pb::SegmentPolicy::SegmentsOff) => false,
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "hnsw.segments: unknown value {}; expected SEGMENTS_ON or SEGMENTS_OFF",
                        h.segments
                    )));
                }
            },
        };
    }
    spec.indexed_fields = req
        .indexed_fields
        .iter()
        .map(|(name, t)| field_type(name, *t).map(|t| (name.clone(), t)))
        .collect::<Result<_, _>>()?;
    Ok(spec)
}

pub fn collection_to_pb(name: String, c: &CollectionInfo) -> pb::Collection {
    let p = c.spec.index.unwrap_or_default();
    pb::Collection {
        name,
        dimension: c.spec.dimension as u32,
        metric: pb::Metric::from(c.spec.metric) as i32,
        default_ttl_seconds: c.spec.default_ttl.map(|d| d.as_secs() as i64),
        hnsw: Some(pb::HnswParams {
            m: p.m as u32,
            ef_construction: p.ef_construction as u32,
            ef_search: p.ef_search as u32,
            flat_threshold: p.flat_threshold as u32,
            quantization: match p.quantization {
                Quantization::None => pb::Quantization::None,
                Quantization::Int8 => pb::Quantization::Int8,
            } as i32,
            build_threads: c.spec.build.threads as u32,
            segments: if c.spec.build.segments {
                pb::SegmentPolicy::SegmentsOn
            } else {
                pb::SegmentPolicy::SegmentsOff
            } as i32,
        }),
        create_time: Some(timestamp_ms(c.created_at_ms)),
        record_count: c.records,
        kind: match c.spec.kind {
            CollectionKind::Records => pb::CollectionKind::Records,
            CollectionKind::SemanticCache => pb::CollectionKind::SemanticCache,
        } as i32,
        index: Some(pb::IndexStatus {
            kind: match c.index.kind {
                IndexKind::Flat => pb::IndexKind::Flat,
                IndexKind::Hnsw => pb::IndexKind::Hnsw,
            } as i32,
            building: c.index.building,
            memory_bytes: c.index.memory_bytes,
            segment_time: c.index.segment_written_ms.map(timestamp_ms),
            changes_since_segment: c.index.changes_since_segment,
        }),
        indexed_fields: c
            .spec
            .indexed_fields
            .iter()
            .map(|(name, t)| (name.clone(), field_type_to_pb(*t) as i32))
            .collect(),
    }
}

pub fn metadata(map: HashMap<String, pb::Value>) -> Result<Metadata, Status> {
    bulkhead_proto::metadata_from_pb(map).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Parses request ids; an error names the offending position.
pub fn record_ids(ids: Vec<String>) -> Result<Vec<RecordId>, Status> {
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            RecordId::new(id).map_err(|e| Status::invalid_argument(format!("ids[{i}]: {e}")))
        })
        .collect()
}

pub fn new_record(index: usize, r: pb::Record) -> Result<NewRecord, Status> {
    let at = |e: Status| Status::invalid_argument(format!("records[{index}]: {}", e.message()));
    let id = RecordId::new(r.id).map_err(|e| at(core_status(e)))?;
    let ttl = r
        .ttl_seconds
        .map(|s| positive_seconds("ttl_seconds", s))
        .transpose()
        .map_err(at)?;
    Ok(NewRecord {
        id,
        vector: r.vector,
        text: r.text,
        metadata: metadata(r.metadata).map_err(at)?,
        ttl,
    })
}

/// A record of an imported Arrow batch; errors name the batch and row.
pub fn record_from_row(
    batch: usize,
    row: usize,
    r: bulkhead_formats::RecordRow,
) -> Result<NewRecord, Status> {
    let at = |m: &str| Status::invalid_argument(format!("batch {batch} row {row}: {m}"));
    let id = RecordId::new(r.id).map_err(|e| at(core_status(e).message()))?;
    let ttl = r
        .ttl_seconds
        .map(|s| positive_seconds("ttl_seconds", s))
        .transpose()
        .map_err(|e| at(e.message()))?;
    Ok(NewRecord {
        id,
        vector: r.vector,
        text: r.text,
        metadata: r.metadata,
        ttl,
    })
}

/// A stored record for export; its TTL is the time left, rounded up to whole seconds.
pub fn stored_record_to_row(r: StoredRecord, now_ms: u64) -> bulkhead_formats::RecordRow {
    bulkhead_formats::RecordRow {
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
        metadata: bulkhead_proto::metadata_to_pb(r.metadata),
        ttl_seconds: None,
        expire_time: r.expire_time_ms.map(timestamp_ms),
    }
}

pub fn hit_to_pb(h: Hit) -> pb::Hit {
    pb::Hit {
        id: h.id.into(),
        score: h.score,
        text: h.text,
        metadata: h
            .metadata
            .map(bulkhead_proto::metadata_to_pb)
            .unwrap_or_default(),
        vector: h.vector.unwrap_or_default(),
    }
}

pub fn quota(q: Option<pb::Quota>) -> Result<Quota, Status> {
    let q = q.unwrap_or_default();
    let non_negative = |field: &str, v: i64| {
        u64::try_from(v)
            .map_err(|_| Status::invalid_argument(format!("quota.{field} must be >= 0")))
    };
    Ok(Quota {
        max_collections: non_negative("max_collections", q.max_collections)?,
        max_records: non_negative("max_records", q.max_records)?,
        max_stored_bytes: non_negative("max_stored_bytes", q.max_stored_bytes)?,
    })
}

pub fn rate_limit(r: Option<pb::RateLimit>) -> Result<RateLimit, Status> {
    let r = r.unwrap_or_default();
    if !r.requests_per_second.is_finite() || r.requests_per_second < 0.0 {
        return Err(Status::invalid_argument(
            "rate_limit.requests_per_second must be a finite number >= 0",
        ));
    }
    let non_negative = |field: &str, v: i64| {
        u64::try_from(v)
            .map_err(|_| Status::invalid_argument(format!("rate_limit.{field} must be >= 0")))
    };
    Ok(RateLimit {
        requests_per_second: r.requests_per_second,
        burst: non_negative("burst", r.burst)?,
        write_bytes_per_second: non_negative("write_bytes_per_second", r.write_bytes_per_second)?,
    })
}

pub fn tenant_to_pb(t: &TenantInfo, default_retention: Duration) -> pb::Tenant {
    pb::Tenant {
        name: format!("tenants/{}", t.id),
        create_time: Some(timestamp_ms(t.created_at_ms)),
        quota: Some(pb::Quota {
            max_collections: t.quota.max_collections as i64,
            max_records: t.quota.max_records as i64,
            max_stored_bytes: t.quota.max_stored_bytes as i64,
        }),
        rate_limit: Some(pb::RateLimit {
            requests_per_second: t.rate_limit.requests_per_second,
            burst: t.rate_limit.burst as i64,
            write_bytes_per_second: t.rate_limit.write_bytes_per_second as i64,
        }),
        audit_retention_seconds: t.audit_retention.unwrap_or(default_retention).as_secs() as i64,
        state: match (t.loaded, t.group_open) {
            (true, _) => pb::TenantState::Hot,
            (false, true) => pb::TenantState::Warm,
            (false, false) => pb::TenantState::Cold,
        } as i32,
        group: t.group,
    }
}

pub fn field_type(name: &str, t: i32) -> Result<FieldType, Status> {
    match pb::FieldType::try_from(t) {
        Ok(pb::FieldType::Keyword) => Ok(FieldType::Keyword),
        Ok(pb::FieldType::Integer) => Ok(FieldType::Integer),
        Ok(pb::FieldType::Float) => Ok(FieldType::Float),
        Ok(pb::FieldType::Bool) => Ok(FieldType::Bool),
        Ok(pb::FieldType::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "indexed_fields[{name:?}]: unknown type {t}; expected KEYWORD, INTEGER, FLOAT or BOOL"
        ))),
    }
}

pub fn field_type_to_pb(t: FieldType) -> pb::FieldType {
    match t {
        FieldType::Keyword => pb::FieldType::Keyword,
        FieldType::Integer => pb::FieldType::Integer,
        FieldType::Float => pb::FieldType::Float,
        FieldType::Bool => pb::FieldType::Bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_rejects_unknown_values() {
        assert_eq!(metric(1).unwrap(), Metric::Cosine);
        assert!(metric(0).is_err());
        assert!(metric(42).is_err());
    }

    #[test]
    fn record_errors_name_the_record() {
        let bad = pb::Record {
            id: String::new(),
            ..Default::default()
        };
        let e = new_record(3, bad).unwrap_err();
        assert!(e.message().starts_with("records[3]"), "{}", e.message());
        let bad_ttl = pb::Record {
            id: "x".into(),
            ttl_seconds: Some(0),
            ..Default::default()
        };
        assert!(new_record(0, bad_ttl).is_err());
    }
}
