//! Collection specs in, collection descriptions out.

use bulkhead_engine::{
    BuildSettings, CollectionInfo, CollectionKind, CollectionSpec, EndUserCacheScope, FieldType,
    IndexKind, IndexParams, Quantization,
};
use bulkhead_proto::v1 as pb;

use crate::error::{Result, WireError};
use crate::time::{positive_seconds, timestamp_from_ms};
use crate::values::{metric_from_pb, metric_to_pb};

/// The quantization a request asks for; `None` for the server's default.
fn quantization(raw: i32) -> Result<Option<Quantization>> {
    match pb::Quantization::try_from(raw) {
        Ok(pb::Quantization::Unspecified) => Ok(None),
        Ok(pb::Quantization::None) => Ok(Some(Quantization::None)),
        Ok(pb::Quantization::Int8) => Ok(Some(Quantization::Int8)),
        Err(_) => Err(WireError::invalid(format!(
            "hnsw.quantization: unknown value {raw}; expected QUANTIZATION_NONE or INT8"
        ))),
    }
}

fn segments(raw: i32) -> Result<bool> {
    match pb::SegmentPolicy::try_from(raw) {
        Ok(pb::SegmentPolicy::Unspecified | pb::SegmentPolicy::SegmentsOn) => Ok(true),
        Ok(pb::SegmentPolicy::SegmentsOff) => Ok(false),
        Err(_) => Err(WireError::invalid(format!(
            "hnsw.segments: unknown value {raw}; expected SEGMENTS_ON or SEGMENTS_OFF"
        ))),
    }
}

pub fn collection_spec(req: &pb::CreateCollectionRequest) -> Result<CollectionSpec> {
    let mut spec = CollectionSpec::new(req.dimension as usize, metric_from_pb(req.metric)?);
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
            segments: segments(h.segments)?,
        };
    }
    spec.access_control = req.access_control;
    spec.audit_reads = req.audit_reads;
    spec.indexed_fields = req
        .indexed_fields
        .iter()
        .map(|(name, t)| field_type(name, *t).map(|t| (name.clone(), t)))
        .collect::<Result<_>>()?;
    Ok(spec)
}

pub fn collection_to_pb(name: String, c: &CollectionInfo) -> pb::Collection {
    let p = c.spec.index.unwrap_or_default();
    pb::Collection {
        name,
        dimension: c.spec.dimension as u32,
        metric: metric_to_pb(c.spec.metric) as i32,
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
        create_time: Some(timestamp_from_ms(c.created_at_ms)),
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
            segment_time: c.index.segment_written_ms.map(timestamp_from_ms),
            changes_since_segment: c.index.changes_since_segment,
        }),
        indexed_fields: c
            .spec
            .indexed_fields
            .iter()
            .map(|(name, t)| (name.clone(), field_type_to_pb(*t) as i32))
            .collect(),
        access_control: c.spec.access_control,
        cache_end_user_scope: c
            .spec
            .cache_policy
            .map_or(pb::EndUserScope::Unspecified, |p| match p.end_user_scope {
                EndUserCacheScope::User => pb::EndUserScope::User,
                EndUserCacheScope::Session => pb::EndUserScope::Session,
            }) as i32,
        cache_similarity_floor: c.spec.cache_policy.and_then(|p| p.similarity_floor),
        audit_reads: c.spec.audit_reads,
    }
}

pub fn field_type(name: &str, t: i32) -> Result<FieldType> {
    match pb::FieldType::try_from(t) {
        Ok(pb::FieldType::Keyword) => Ok(FieldType::Keyword),
        Ok(pb::FieldType::Integer) => Ok(FieldType::Integer),
        Ok(pb::FieldType::Float) => Ok(FieldType::Float),
        Ok(pb::FieldType::Bool) => Ok(FieldType::Bool),
        Ok(pb::FieldType::Unspecified) | Err(_) => Err(WireError::invalid(format!(
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
    fn unknown_enum_values_are_refused_naming_the_field() {
        let mut req = pb::CreateCollectionRequest {
            dimension: 4,
            metric: pb::Metric::Cosine as i32,
            hnsw: Some(pb::HnswParams {
                quantization: 9,
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = collection_spec(&req).unwrap_err().to_string();
        assert!(e.starts_with("hnsw.quantization"), "{e}");
        req.hnsw = Some(pb::HnswParams {
            segments: 9,
            ..Default::default()
        });
        let e = collection_spec(&req).unwrap_err().to_string();
        assert!(e.starts_with("hnsw.segments"), "{e}");
        req.hnsw = None;
        req.indexed_fields = [("lang".to_owned(), 0)].into();
        let e = collection_spec(&req).unwrap_err().to_string();
        assert!(e.starts_with("indexed_fields[\"lang\"]"), "{e}");
    }

    #[test]
    fn unset_index_parameters_take_the_defaults() {
        let req = pb::CreateCollectionRequest {
            dimension: 4,
            metric: pb::Metric::L2 as i32,
            default_ttl_seconds: Some(60),
            hnsw: Some(pb::HnswParams {
                m: 8,
                segments: pb::SegmentPolicy::SegmentsOff as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = collection_spec(&req).unwrap();
        let d = IndexParams::default();
        let index = spec.index.unwrap();
        assert_eq!((index.m, index.ef_search), (8, d.ef_search));
        assert!(!spec.build.segments);
        assert_eq!(spec.default_ttl, Some(std::time::Duration::from_secs(60)));
    }
}
