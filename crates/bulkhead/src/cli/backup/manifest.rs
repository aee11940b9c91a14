//! The export manifest: what a backup holds besides the records, written so that a restore
//! serves the tenant exactly as before. Format 2 added the indexed fields (without them a
//! restored semantic cache or filtered collection fails at query time) and the tenant's limits,
//! and names what a backup deliberately leaves out; format 1 manifests are still read.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use bulkhead_client::proto as pb;
use bulkhead_client::{CachePolicy, CollectionSpec, EndUserScope, Metric, TenantUpdate};
use serde::{Deserialize, Serialize};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "bulkhead-export/2";
const FORMAT_V1: &str = "bulkhead-export/1";

/// What no backup holds, stated in every manifest so nobody assumes otherwise.
pub const NOT_INCLUDED: &[&str] = &[
    "API keys: create new keys for the restored tenant (secrets are never exported)",
    "the audit trail: it stays with the source tenant",
    "records that had expired when the export ran",
];

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub tenant: String,
    pub exported_at: String,
    /// The tenant's limits; absent when the export ran without the admin token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<TenantLimits>,
    #[serde(default)]
    pub not_included: Vec<String>,
    pub collections: Vec<CollectionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantLimits {
    pub max_collections: u64,
    pub max_records: u64,
    pub max_stored_bytes: u64,
    pub requests_per_second: f64,
    pub burst: u64,
    pub write_bytes_per_second: u64,
    pub audit_retention_seconds: u64,
    /// Absent in manifests written before tenants had the bound (the server's default then
    /// applies).
    #[serde(default)]
    pub max_token_lifetime_seconds: Option<u64>,
    /// The tenant's share of the server; absent in manifests written before tenants had one
    /// (the server's settings then apply).
    #[serde(default)]
    pub share: Option<ShareLimits>,
}

/// A tenant's share of the server, as `Tenant.share` (0: the server's setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLimits {
    pub requests_in_flight: u64,
    pub open_streams: u64,
    pub engine_threads: u64,
    /// Absent in manifests written before tenants had their own (0: the server's setting, which
    /// every tenant had then).
    #[serde(default)]
    pub write_bytes_in_flight: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CollectionEntry {
    pub id: String,
    pub dimension: u32,
    pub metric: String,
    pub default_ttl_seconds: Option<i64>,
    pub m: u32,
    pub ef_construction: u32,
    pub ef_search: u32,
    pub flat_threshold: u32,
    /// `QUANTIZATION_NONE` or `INT8`; absent in manifests written before it existed (the
    /// server's default then applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// 0: the server's default (also when absent).
    #[serde(default)]
    pub build_threads: u32,
    /// `SEGMENTS_ON` or `SEGMENTS_OFF`; absent: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<String>,
    /// Field name → `KEYWORD`, `INTEGER`, `FLOAT` or `BOOL`.
    #[serde(default)]
    pub indexed_fields: BTreeMap<String, String>,
    /// `RECORDS` or `SEMANTIC_CACHE`; absent in manifests written before kinds existed (a
    /// cache is then told by its two reserved indexed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Records carry their readers; absent (off) in manifests written before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub access_control: bool,
    /// Reads are audited with the ids they returned; absent (off) in older manifests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit_reads: bool,
    /// A cache's end-user scope, `USER` or `SESSION`; absent: `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_end_user_scope: Option<String>,
    /// A cache's similarity floor; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_similarity_floor: Option<f32>,
    pub records: u64,
    pub file: String,
}

impl Manifest {
    pub fn new(tenant: &str, settings: Option<TenantLimits>) -> Self {
        let mut not_included: Vec<String> = NOT_INCLUDED.iter().map(|s| s.to_string()).collect();
        if settings.is_none() {
            not_included.push(
                "the tenant's quota, rate limit and audit retention: export with the admin token to include them"
                    .to_owned(),
            );
        }
        Self {
            format: FORMAT.into(),
            tenant: tenant.to_owned(),
            exported_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            settings,
            not_included,
            collections: Vec::new(),
        }
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        ensure!(
            manifest.format == FORMAT || manifest.format == FORMAT_V1,
            "{}: format {:?}, expected {FORMAT:?} (or the older {FORMAT_V1:?})",
            path.display(),
            manifest.format
        );
        Ok(manifest)
    }
}

impl TenantLimits {
    pub fn of(t: &pb::Tenant) -> Self {
        let q = t.quota.unwrap_or_default();
        let r = t.rate_limit.unwrap_or_default();
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            max_collections: u(q.max_collections),
            max_records: u(q.max_records),
            max_stored_bytes: u(q.max_stored_bytes),
            requests_per_second: r.requests_per_second,
            burst: u(r.burst),
            write_bytes_per_second: u(r.write_bytes_per_second),
            audit_retention_seconds: u(t.audit_retention_seconds),
            max_token_lifetime_seconds: Some(u(t.max_token_lifetime_seconds)),
            share: t.share.map(|s| ShareLimits {
                requests_in_flight: u(s.requests_in_flight),
                open_streams: u(s.open_streams),
                engine_threads: u(s.engine_threads),
                write_bytes_in_flight: u(s.write_bytes_in_flight),
            }),
        }
    }

    /// Every limit, so the restored tenant ends up with exactly these.
    pub fn update(&self) -> TenantUpdate {
        TenantUpdate {
            max_collections: Some(self.max_collections),
            max_records: Some(self.max_records),
            max_stored_bytes: Some(self.max_stored_bytes),
            requests_per_second: Some(self.requests_per_second),
            burst: Some(self.burst),
            write_bytes_per_second: Some(self.write_bytes_per_second),
            audit_retention: Some(std::time::Duration::from_secs(self.audit_retention_seconds)),
            max_token_lifetime: self
                .max_token_lifetime_seconds
                .map(std::time::Duration::from_secs),
            requests_in_flight: self.share.map(|s| s.requests_in_flight),
            open_streams: self.share.map(|s| s.open_streams),
            engine_threads: self.share.map(|s| s.engine_threads),
            write_bytes_in_flight: self.share.map(|s| s.write_bytes_in_flight),
        }
    }
}

impl CollectionEntry {
    pub fn of(id: &str, c: &pb::Collection, file: String) -> Self {
        let hnsw = c.hnsw.unwrap_or_default();
        let indexed_fields = c
            .indexed_fields
            .iter()
            .map(|(name, t)| {
                let t = pb::FieldType::try_from(*t).map_or("UNKNOWN", |t| t.as_str_name());
                (name.clone(), t.to_owned())
            })
            .collect();
        Self {
            id: id.to_owned(),
            dimension: c.dimension,
            metric: pb::Metric::try_from(c.metric)
                .map_or("UNKNOWN", |m| m.as_str_name())
                .to_owned(),
            default_ttl_seconds: c.default_ttl_seconds,
            m: hnsw.m,
            ef_construction: hnsw.ef_construction,
            ef_search: hnsw.ef_search,
            flat_threshold: hnsw.flat_threshold,
            quantization: pb::Quantization::try_from(hnsw.quantization)
                .ok()
                .filter(|q| *q != pb::Quantization::Unspecified)
                .map(|q| q.as_str_name().to_owned()),
            build_threads: hnsw.build_threads,
            segments: pb::SegmentPolicy::try_from(hnsw.segments)
                .ok()
                .filter(|s| *s != pb::SegmentPolicy::Unspecified)
                .map(|s| s.as_str_name().to_owned()),
            indexed_fields,
            kind: pb::CollectionKind::try_from(c.kind)
                .ok()
                .filter(|k| *k != pb::CollectionKind::Unspecified)
                .map(|k| k.as_str_name().to_owned()),
            access_control: c.access_control,
            audit_reads: c.audit_reads,
            cache_end_user_scope: pb::EndUserScope::try_from(c.cache_end_user_scope)
                .ok()
                .filter(|s| *s != pb::EndUserScope::Unspecified)
                .map(|s| s.as_str_name().to_owned()),
            cache_similarity_floor: c.cache_similarity_floor,
            records: c.record_count,
            file,
        }
    }

    /// Whether this is a semantic cache, re-created with CreateCache: only a cache's own
    /// entries may carry its reserved fields.
    pub fn is_cache(&self) -> bool {
        match &self.kind {
            Some(kind) => kind == pb::CollectionKind::SemanticCache.as_str_name(),
            None => {
                self.indexed_fields.len() == 2
                    && self.indexed_fields.get("_scope").map(String::as_str) == Some("KEYWORD")
                    && self.indexed_fields.get("_stored_at").map(String::as_str) == Some("INTEGER")
            }
        }
    }

    /// The policy to re-create a cache with.
    pub fn cache_policy(&self) -> Result<CachePolicy> {
        let end_user_scope = match self.cache_end_user_scope.as_deref() {
            None | Some("USER") => EndUserScope::User,
            Some("SESSION") => EndUserScope::Session,
            Some(other) => bail!(
                "collection {}: cache_end_user_scope {other:?}; expected USER or SESSION",
                self.id
            ),
        };
        Ok(CachePolicy {
            end_user_scope,
            similarity_floor: self.cache_similarity_floor,
        })
    }

    /// The settings to re-create the collection with.
    pub fn spec(&self) -> Result<CollectionSpec> {
        let metric: Metric = self
            .metric
            .to_ascii_lowercase()
            .parse()
            .with_context(|| format!("collection {}: metric {:?}", self.id, self.metric))?;
        let mut spec = CollectionSpec::new(self.dimension, metric);
        spec.default_ttl = self
            .default_ttl_seconds
            .map(|s| std::time::Duration::from_secs(s.max(1) as u64));
        let quantization = match &self.quantization {
            None => pb::Quantization::Unspecified,
            Some(name) => pb::Quantization::from_str_name(name).with_context(|| {
                format!(
                    "collection {}: quantization {name:?}; expected QUANTIZATION_NONE or INT8",
                    self.id
                )
            })?,
        };
        let segments = match &self.segments {
            None => pb::SegmentPolicy::Unspecified,
            Some(name) => pb::SegmentPolicy::from_str_name(name).with_context(|| {
                format!(
                    "collection {}: segments {name:?}; expected SEGMENTS_ON or SEGMENTS_OFF",
                    self.id
                )
            })?,
        };
        spec.hnsw = Some(pb::HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
            flat_threshold: self.flat_threshold,
            quantization: quantization as i32,
            build_threads: self.build_threads,
            segments: segments as i32,
        });
        for (name, t) in &self.indexed_fields {
            let Some(field_type) = pb::FieldType::from_str_name(t) else {
                bail!(
                    "collection {}: indexed field {name:?} has type {t:?}; expected KEYWORD, INTEGER, FLOAT or BOOL",
                    self.id
                );
            };
            spec = spec.with_indexed_field(name.clone(), field_type);
        }
        spec.access_control = self.access_control;
        spec.audit_reads = self.audit_reads;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caches_policy_survives_the_manifest() {
        let c = pb::Collection {
            dimension: 3,
            metric: pb::Metric::Cosine as i32,
            kind: pb::CollectionKind::SemanticCache as i32,
            cache_end_user_scope: pb::EndUserScope::Session as i32,
            cache_similarity_floor: Some(0.75),
            ..Default::default()
        };
        let entry = CollectionEntry::of("answers", &c, "a".into());
        let written = serde_json::to_string(&entry).unwrap();
        let read: CollectionEntry = serde_json::from_str(&written).unwrap();
        let policy = read.cache_policy().unwrap();
        assert_eq!(policy.end_user_scope, EndUserScope::Session);
        assert_eq!(policy.similarity_floor, Some(0.75));
        // Manifests written before cache policies: the defaults.
        let old = CollectionEntry::of("answers", &pb::Collection::default(), "a".into());
        assert_eq!(old.cache_policy().unwrap(), CachePolicy::default());
        let mut bad = read;
        bad.cache_end_user_scope = Some("TEAM".into());
        assert!(bad.cache_policy().is_err());
    }

    #[test]
    fn a_cache_is_known_by_its_kind_or_in_old_manifests_by_its_reserved_fields() {
        let mut c = pb::Collection {
            dimension: 3,
            metric: pb::Metric::Cosine as i32,
            indexed_fields: [
                ("_scope".to_owned(), pb::FieldType::Keyword as i32),
                ("_stored_at".to_owned(), pb::FieldType::Integer as i32),
            ]
            .into(),
            kind: pb::CollectionKind::SemanticCache as i32,
            ..Default::default()
        };
        assert!(CollectionEntry::of("answers", &c, "a".into()).is_cache());
        c.kind = pb::CollectionKind::Records as i32;
        assert!(!CollectionEntry::of("answers", &c, "a".into()).is_cache());
        // Written before kinds existed.
        c.kind = pb::CollectionKind::Unspecified as i32;
        let old = CollectionEntry::of("answers", &c, "a".into());
        assert_eq!(old.kind, None);
        assert!(old.is_cache());
        c.indexed_fields
            .insert("year".into(), pb::FieldType::Integer as i32);
        assert!(!CollectionEntry::of("answers", &c, "a".into()).is_cache());
    }

    #[test]
    fn indexed_fields_survive_the_manifest_round_trip() {
        let c = pb::Collection {
            dimension: 3,
            metric: pb::Metric::Cosine as i32,
            indexed_fields: [
                ("_scope".to_owned(), pb::FieldType::Keyword as i32),
                ("year".to_owned(), pb::FieldType::Integer as i32),
            ]
            .into(),
            ..Default::default()
        };
        let entry = CollectionEntry::of("answers", &c, "answers.arrows".into());
        let json = serde_json::to_string(&entry).unwrap();
        let back: CollectionEntry = serde_json::from_str(&json).unwrap();
        let spec = back.spec().unwrap();
        assert_eq!(spec.indexed_fields.len(), 2);
        assert_eq!(spec.indexed_fields["_scope"], pb::FieldType::Keyword);
        assert_eq!(spec.indexed_fields["year"], pb::FieldType::Integer);
    }

    #[test]
    fn a_format_1_manifest_still_reads_and_an_unknown_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST),
            r#"{"format":"bulkhead-export/1","tenant":"a","exported_at":"x","collections":[
                {"id":"d","dimension":2,"metric":"L2","default_ttl_seconds":null,"m":16,
                 "ef_construction":200,"ef_search":64,"flat_threshold":100,"records":1,"file":"d.arrows"}]}"#,
        )
        .unwrap();
        let m = Manifest::read(dir.path()).unwrap();
        assert!(m.settings.is_none());
        assert!(m.collections[0].spec().unwrap().indexed_fields.is_empty());

        let mut entry = m.collections.into_iter().next().unwrap();
        entry.indexed_fields.insert("x".into(), "TEXT".into());
        let err = entry.spec().unwrap_err().to_string();
        assert!(err.contains("\"TEXT\""), "{err}");
    }

    #[test]
    fn every_manifest_says_what_it_leaves_out() {
        let with = Manifest::new("a", Some(TenantLimits::of(&pb::Tenant::default())));
        let without = Manifest::new("a", None);
        assert!(with.not_included.iter().any(|s| s.contains("API keys")));
        assert!(without.not_included.iter().any(|s| s.contains("quota")));
        assert!(!with.not_included.iter().any(|s| s.contains("quota")));
    }
}
