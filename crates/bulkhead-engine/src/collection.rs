//! A collection's settings and its in-memory state: the vector index plus the map between
//! caller record ids and index labels. The state is derived from RocksDB and rebuilt from it on
//! load, so it can be evicted and recreated at any time without losing anything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bulkhead_core::{CollectionId, Metric, RecordId, validate_dimension};
use bulkhead_index::{IndexParams, Quantization, VectorIndex};
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::change_log::ChangeLog;
use crate::clock::is_expired;
use crate::codec::StoredValue;
use crate::error::{EngineError, Result};
use crate::fields::{FieldIndexes, FieldKey, FieldType};
use crate::readers::READERS_FIELD;

/// Most indexed fields one collection may declare.
pub const MAX_INDEXED_FIELDS: usize = 32;

/// What a caller chooses when creating a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub dimension: usize,
    pub metric: Metric,
    /// Applied to records upserted without a TTL of their own.
    pub default_ttl: Option<Duration>,
    /// `None` takes the engine's defaults.
    pub index: Option<IndexParams>,
    /// Metadata fields kept in bitmap indexes for filtered queries.
    pub indexed_fields: BTreeMap<String, FieldType>,
    pub build: BuildSettings,
    pub kind: CollectionKind,
    /// Records carry their readers (`_readers`, see `readers`), and a handle bound to a reader
    /// sees only the records it is among the readers of.
    pub access_control: bool,
    /// A semantic cache's rules for end users and lookups (see `tenant::semantic_cache`);
    /// `None` for collections of records.
    pub cache_policy: Option<CachePolicy>,
    /// Each read's audit event lists the ids it returned (see `tenant::read_log`).
    pub audit_reads: bool,
}

/// Whose answers an end user's cache requests reach: derived from the end user's token, never
/// from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndUserCacheScope {
    /// Each end user has a scope of its own, `user:<sub>`.
    #[default]
    User,
    /// Each session has a scope of its own, `session:<id>`; tokens bound to no session reach
    /// no entry.
    Session,
}

/// A semantic cache's settings beyond a collection's.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CachePolicy {
    #[serde(default)]
    pub end_user_scope: EndUserCacheScope,
    /// Lookups hit only entries at least this similar, whatever the request asks for.
    #[serde(default)]
    pub similarity_floor: Option<f32>,
}

/// What a collection holds, which decides who may write which of its metadata fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionKind {
    /// Records, written by the tenant's upserts and imports.
    #[default]
    Records,
    /// A semantic cache (see `tenant::semantic_cache`): its reserved fields are written only by
    /// the cache's own store, or restored from a backup by a tenant admin.
    SemanticCache,
}

/// How a collection's index is built and kept, beside its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildSettings {
    /// Threads its background builds use (at most the machine's CPUs); 0: the engine's
    /// `index_build_threads`.
    pub threads: usize,
    /// Whether its index is kept in a segment file, so a restart loads it instead of
    /// rebuilding it from the records.
    pub segments: bool,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            threads: 0,
            segments: true,
        }
    }
}

/// Most threads one collection's builds may ask for.
pub const MAX_BUILD_THREADS: usize = 256;

impl CollectionSpec {
    pub fn new(dimension: usize, metric: Metric) -> Self {
        Self {
            dimension,
            metric,
            default_ttl: None,
            index: None,
            indexed_fields: BTreeMap::new(),
            build: BuildSettings::default(),
            kind: CollectionKind::Records,
            access_control: false,
            cache_policy: None,
            audit_reads: false,
        }
    }
}

/// Settings as stored in the tenant's column family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CollectionMeta {
    pub dimension: usize,
    pub metric: Metric,
    pub default_ttl_ms: Option<u64>,
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub flat_threshold: usize,
    pub created_at_ms: u64,
    /// Absent in collections created before filters existed.
    #[serde(default)]
    pub indexed_fields: BTreeMap<String, FieldType>,
    /// Absent in collections created before quantization existed: they take the default, which
    /// changes only how the in-memory index is built.
    #[serde(default)]
    pub quantization: StoredQuantization,
    /// 0: the engine's default. Absent in collections created before it existed.
    #[serde(default)]
    pub build_threads: usize,
    #[serde(default = "segments_by_default")]
    pub segments: bool,
    /// Absent in collections created before kinds existed; `decode` infers it.
    #[serde(default)]
    pub kind: Option<CollectionKind>,
    /// Absent in collections created before access control existed: off.
    #[serde(default)]
    pub access_control: bool,
    /// Absent in caches created before cache policies existed: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_policy: Option<CachePolicy>,
    /// Absent in collections created before read auditing existed: off.
    #[serde(default)]
    pub audit_reads: bool,
}

fn segments_by_default() -> bool {
    true
}

/// [`Quantization`] as stored in a collection's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoredQuantization {
    None,
    #[default]
    Int8,
}

impl From<Quantization> for StoredQuantization {
    fn from(q: Quantization) -> Self {
        match q {
            Quantization::None => Self::None,
            Quantization::Int8 => Self::Int8,
        }
    }
}

impl From<StoredQuantization> for Quantization {
    fn from(q: StoredQuantization) -> Self {
        match q {
            StoredQuantization::None => Self::None,
            StoredQuantization::Int8 => Self::Int8,
        }
    }
}

impl CollectionMeta {
    pub fn from_spec(spec: &CollectionSpec, defaults: IndexParams, now: u64) -> Result<Self> {
        validate_dimension(spec.dimension)?;
        let p = spec.index.unwrap_or(defaults);
        p.validate()
            .map_err(|e| EngineError::InvalidArgument(format!("index parameters: {e}")))?;
        let default_ttl_ms = match spec.default_ttl {
            Some(ttl) if ttl.is_zero() => {
                return Err(EngineError::InvalidArgument(
                    "default TTL must be positive".into(),
                ));
            }
            Some(ttl) => Some(crate::clock::millis(ttl)),
            None => None,
        };
        if spec.build.threads > MAX_BUILD_THREADS {
            return Err(EngineError::InvalidArgument(format!(
                "build threads: at most {MAX_BUILD_THREADS}, got {}",
                spec.build.threads
            )));
        }
        let mut indexed_fields = spec.indexed_fields.clone();
        if spec.access_control {
            if spec.kind != CollectionKind::Records {
                return Err(EngineError::InvalidArgument(
                    "access control is for collections of records, not semantic caches".into(),
                ));
            }
            // Readers are looked up through postings, like any keyword field.
            match indexed_fields.insert(READERS_FIELD.to_owned(), FieldType::Keyword) {
                None | Some(FieldType::Keyword) => {}
                Some(other) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "indexed_fields: {READERS_FIELD} holds readers (KEYWORD), not {other:?}"
                    )));
                }
            }
        }
        match (&spec.cache_policy, spec.kind) {
            (Some(_), CollectionKind::Records) => {
                return Err(EngineError::InvalidArgument(
                    "a cache policy is for semantic caches, not collections of records".into(),
                ));
            }
            (
                Some(CachePolicy {
                    similarity_floor: Some(floor),
                    ..
                }),
                _,
            ) if !floor.is_finite() => {
                return Err(EngineError::InvalidArgument(
                    "similarity floor must be a finite number".into(),
                ));
            }
            _ => {}
        }
        if indexed_fields.len() > MAX_INDEXED_FIELDS {
            return Err(EngineError::InvalidArgument(format!(
                "indexed_fields: at most {MAX_INDEXED_FIELDS} fields, got {}",
                indexed_fields.len()
            )));
        }
        if let Some(bad) = indexed_fields
            .keys()
            .find(|k| k.is_empty() || k.len() > bulkhead_core::MAX_METADATA_KEY_BYTES)
        {
            return Err(EngineError::InvalidArgument(format!(
                "indexed_fields: {bad:?} is not a valid metadata key"
            )));
        }
        Ok(Self {
            dimension: spec.dimension,
            metric: spec.metric,
            default_ttl_ms,
            m: p.m,
            ef_construction: p.ef_construction,
            ef_search: p.ef_search,
            flat_threshold: p.flat_threshold,
            created_at_ms: now,
            indexed_fields,
            quantization: p.quantization.into(),
            build_threads: spec.build.threads,
            segments: spec.build.segments,
            kind: Some(spec.kind),
            access_control: spec.access_control,
            cache_policy: spec.cache_policy,
            audit_reads: spec.audit_reads,
        })
    }

    /// Settings as read back from the tenant's column family.
    pub fn decode(id: &CollectionId, raw: &[u8]) -> Result<Self> {
        let mut meta: Self = serde_json::from_slice(raw)
            .map_err(|e| EngineError::Corrupt(format!("collection {id} settings: {e}")))?;
        if meta.kind.is_none() {
            // Caches created before kinds existed are told apart by the fields only a cache
            // declared.
            meta.kind = Some(
                if crate::cache_fields::is_legacy_cache(&meta.indexed_fields) {
                    CollectionKind::SemanticCache
                } else {
                    CollectionKind::Records
                },
            );
        }
        Ok(meta)
    }

    pub fn kind(&self) -> CollectionKind {
        self.kind.unwrap_or_default()
    }

    pub fn index_params(&self) -> IndexParams {
        IndexParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
            flat_threshold: self.flat_threshold,
            quantization: self.quantization.into(),
            ..IndexParams::default()
        }
    }

    pub fn spec(&self) -> CollectionSpec {
        CollectionSpec {
            dimension: self.dimension,
            metric: self.metric,
            default_ttl: self.default_ttl_ms.map(Duration::from_millis),
            index: Some(self.index_params()),
            indexed_fields: self.indexed_fields.clone(),
            build: BuildSettings {
                threads: self.build_threads,
                segments: self.segments,
            },
            kind: self.kind(),
            access_control: self.access_control,
            cache_policy: self.cache_policy,
            audit_reads: self.audit_reads,
        }
    }
}

/// A record's place in the index.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub id: RecordId,
    pub expires_at_ms: u64,
    /// The record's values of the collection's indexed fields.
    pub keys: Vec<FieldKey>,
}

/// Record id ↔ index label, which labels expire when, and which hold which indexed values.
#[derive(Debug)]
pub(crate) struct Slots {
    by_label: HashMap<u32, Slot>,
    by_id: HashMap<RecordId, u32>,
    expiring: BTreeSet<(u64, u32)>,
    next_label: u32,
    /// Every label in `by_label`, kept as a bitmap for filters.
    labels: RoaringBitmap,
    pub fields: FieldIndexes,
}

impl Slots {
    pub fn new(indexed_fields: &BTreeMap<String, FieldType>) -> Self {
        Self {
            by_label: HashMap::new(),
            by_id: HashMap::new(),
            expiring: BTreeSet::new(),
            next_label: 0,
            labels: RoaringBitmap::new(),
            fields: FieldIndexes::new(indexed_fields),
        }
    }

    /// Every label that holds a record (expired ones included until swept).
    pub fn labels(&self) -> &RoaringBitmap {
        &self.labels
    }

    pub fn label_of(&self, id: &RecordId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn slot(&self, label: u32) -> Option<&Slot> {
        self.by_label.get(&label)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn allocate_label(&mut self) -> Result<u32> {
        let label = self.next_label;
        self.next_label = label.checked_add(1).ok_or_else(|| {
            EngineError::Storage("collection label space exhausted; reload the tenant".into())
        })?;
        Ok(label)
    }

    /// Points `slot.id` at `label`; returns the label it replaced.
    pub fn assign(&mut self, label: u32, slot: Slot) -> Option<u32> {
        if slot.expires_at_ms != 0 {
            self.expiring.insert((slot.expires_at_ms, label));
        }
        self.fields.insert(label, &slot.keys);
        self.labels.insert(label);
        let old = self.by_id.insert(slot.id.clone(), label);
        self.by_label.insert(label, slot);
        if let Some(old) = old {
            self.forget_label(old);
        }
        old
    }

    /// Removes `id`; returns its label.
    pub fn remove(&mut self, id: &RecordId) -> Option<u32> {
        let label = self.by_id.remove(id)?;
        self.forget_label(label);
        Some(label)
    }

    fn forget_label(&mut self, label: u32) {
        if let Some(old) = self.by_label.remove(&label) {
            if old.expires_at_ms != 0 {
                self.expiring.remove(&(old.expires_at_ms, label));
            }
            self.fields.remove(label, &old.keys);
        }
        self.labels.remove(label);
    }

    /// Labels whose records have expired at `now` but haven't been swept yet. The sweeper keeps
    /// this small, so building it per query is cheap.
    pub fn expired_labels(&self, now: u64) -> RoaringBitmap {
        self.expiring
            .range(..(now.saturating_add(1), 0))
            .map(|(_, label)| *label)
            .collect()
    }

    /// Every label with its record, for a segment.
    pub fn entries(&self) -> Vec<(u32, Slot)> {
        self.by_label
            .iter()
            .map(|(label, slot)| (*label, slot.clone()))
            .collect()
    }

    /// Slots holding `entries` (from a segment); new labels start past the largest.
    pub fn from_entries(
        indexed_fields: &BTreeMap<String, FieldType>,
        entries: Vec<(u32, Slot)>,
    ) -> Result<Self> {
        let mut slots = Self::new(indexed_fields);
        for (label, slot) in entries {
            slots.next_label = slots.next_label.max(label.saturating_add(1));
            if slots.by_label.contains_key(&label) || slots.assign(label, slot).is_some() {
                return Err(EngineError::Corrupt(format!(
                    "segment: label {label} or its record is listed twice"
                )));
            }
        }
        Ok(slots)
    }

    /// Live (unexpired) records at `now`.
    pub fn live_count(&self, now: u64) -> usize {
        self.by_id.len()
            - self
                .expiring
                .range(..(now.saturating_add(1), 0))
                .filter(|(exp, _)| is_expired(*exp, now))
                .count()
    }
}

/// A loaded collection.
#[derive(Debug)]
pub(crate) struct LiveCollection {
    pub id: CollectionId,
    pub meta: CollectionMeta,
    pub index: VectorIndex,
    pub slots: RwLock<Slots>,
    /// Serialises writers of this collection; also set once the collection is deleted.
    pub writer: Mutex<bool>,
    pub changes: ChangeLog,
}

impl LiveCollection {
    pub fn new(id: CollectionId, meta: CollectionMeta) -> Result<Self> {
        let index = VectorIndex::new(meta.dimension, meta.metric, meta.index_params())?;
        let slots = Slots::new(&meta.indexed_fields);
        Ok(Self::from_parts(
            id,
            meta,
            index,
            slots,
            ChangeLog::default(),
        ))
    }

    pub fn from_parts(
        id: CollectionId,
        meta: CollectionMeta,
        index: VectorIndex,
        slots: Slots,
        changes: ChangeLog,
    ) -> Self {
        Self {
            id,
            meta,
            index,
            slots: RwLock::new(slots),
            writer: Mutex::new(false),
            changes,
        }
    }

    /// Puts a record already in RocksDB into the in-memory state under a fresh label (loading
    /// from the records, replaying the change log); returns the label it replaced, which the
    /// caller removes from the index.
    pub fn load_record(
        &self,
        slots: &mut Slots,
        id: RecordId,
        value: &StoredValue,
    ) -> Result<Option<u32>> {
        let label = slots.allocate_label()?;
        self.index.insert(label, &value.vector)?;
        // Stored records passed the same check when written.
        let keys = slots
            .fields
            .keys_of(&value.metadata, usize::MAX)
            .unwrap_or_default();
        Ok(slots.assign(
            label,
            Slot {
                id,
                expires_at_ms: value.expires_at_ms,
                keys,
            },
        ))
    }

    /// Converts an index distance into the score callers see (higher is closer for cosine and
    /// dot, the euclidean distance for l2).
    pub fn score(&self, distance: f32) -> f32 {
        score_of(self.meta.metric, distance)
    }
}

/// The score callers see for an index distance under `metric` (higher is closer for cosine and
/// dot, the euclidean distance for l2).
pub(crate) fn score_of(metric: Metric, distance: f32) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - distance,
        Metric::Dot => -distance,
        Metric::L2 => distance.max(0.0).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, exp: u64) -> Slot {
        Slot {
            id: RecordId::new(id).unwrap(),
            expires_at_ms: exp,
            keys: Vec::new(),
        }
    }

    #[test]
    fn reassigning_an_id_forgets_the_old_label() {
        let mut s = Slots::new(&BTreeMap::new());
        let a = s.allocate_label().unwrap();
        assert_eq!(s.assign(a, slot("x", 100)), None);
        let b = s.allocate_label().unwrap();
        assert_eq!(s.assign(b, slot("x", 0)), Some(a));
        assert!(s.slot(a).is_none());
        assert_eq!(s.label_of(&RecordId::new("x").unwrap()), Some(b));
        assert!(s.expired_labels(1_000).is_empty());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn expired_labels_include_the_expiry_instant() {
        let mut s = Slots::new(&BTreeMap::new());
        for (i, exp) in [10u64, 20, 0].into_iter().enumerate() {
            let l = s.allocate_label().unwrap();
            s.assign(l, slot(&format!("r{i}"), exp));
        }
        assert_eq!(s.expired_labels(9).len(), 0);
        assert_eq!(s.expired_labels(10).iter().collect::<Vec<_>>(), vec![0]);
        assert_eq!(s.expired_labels(25).len(), 2);
        assert_eq!(s.live_count(25), 1);
        assert_eq!(s.remove(&RecordId::new("r0").unwrap()), Some(0));
        assert_eq!(s.expired_labels(25).iter().collect::<Vec<_>>(), vec![1]);
    }
}
