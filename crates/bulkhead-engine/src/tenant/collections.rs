//! Collection lifecycle inside one tenant.

use std::sync::Arc;

use bulkhead_core::CollectionId;
use bulkhead_index::IndexKind;

use crate::access::{Access, CanWrite};
use crate::collection::{CollectionMeta, CollectionSpec, LiveCollection};
use crate::error::{EngineError, Result};
use crate::keys;
use crate::storage::WriteSet;
use crate::tenant::TenantHandle;

/// A collection as reported to callers.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    pub id: CollectionId,
    pub spec: CollectionSpec,
    pub created_at_ms: u64,
    /// Unexpired records.
    pub records: u64,
    pub index: IndexStatus,
}

/// What answers a collection's searches now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStatus {
    /// Flat (exact scan) or HNSW; a collection past its flat threshold is flat until its
    /// graph is built in the background.
    pub kind: IndexKind,
    /// Whether a promotion or compaction is running.
    pub building: bool,
    /// Approximate memory of the index.
    pub memory_bytes: u64,
    /// When the collection's segment file was written (ms since the epoch), if it has one.
    pub segment_written_ms: Option<u64>,
    /// Changes since that segment (or since the collection loaded, without one): about what
    /// an activation would replay.
    pub changes_since_segment: u64,
}

/// `c` as the caller sees it at `now`.
fn info(c: &LiveCollection, now: u64) -> CollectionInfo {
    CollectionInfo {
        id: c.id.clone(),
        spec: c.meta.spec(),
        created_at_ms: c.meta.created_at_ms,
        records: c.slots.read().live_count(now) as u64,
        index: IndexStatus {
            kind: c.index.kind(),
            building: c.index.is_building(),
            memory_bytes: c.index.memory_bytes() as u64,
            segment_written_ms: c.changes.segment_written_ms(),
            changes_since_segment: c.changes.pending(),
        },
    }
}

impl<A: Access> TenantHandle<A> {
    pub fn get_collection(&self, id: &CollectionId) -> Result<CollectionInfo> {
        let _g = self.enter()?;
        Ok(info(self.collection(id)?.as_ref(), self.state.now_ms()))
    }

    /// All collections of this tenant, ordered by id.
    pub fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        let _g = self.enter()?;
        let loaded = self.loaded()?;
        let now = self.state.now_ms();
        let mut out: Vec<_> = loaded
            .collections
            .read()
            .values()
            .map(|c| info(c, now))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl<A: CanWrite> TenantHandle<A> {
    pub fn create_collection(
        &self,
        id: &CollectionId,
        spec: &CollectionSpec,
    ) -> Result<CollectionInfo> {
        let _g = self.enter()?;
        let meta = CollectionMeta::from_spec(
            spec,
            self.state.services.config.default_index,
            self.state.now_ms(),
        )?;
        let loaded = self.loaded()?;
        let mut collections = loaded.collections.write();
        if collections.contains_key(id) {
            return Err(EngineError::CollectionExists(id.clone()));
        }
        let max = self.state.record.read().quota.max_collections;
        if max > 0 && collections.len() as u64 >= max {
            return Err(EngineError::QuotaExceeded(format!(
                "tenant has {} collections, the quota is {max}",
                collections.len()
            )));
        }
        let live = LiveCollection::new(id.clone(), meta.clone())?;
        let mut set = WriteSet::default();
        set.put(
            keys::meta_key(id),
            serde_json::to_vec(&meta).expect("collection settings always serialise"),
        );
        self.commit(set, 0)?;
        let out = info(&live, self.state.now_ms());
        collections.insert(id.clone(), Arc::new(live));
        Ok(out)
    }

    /// Deletes a collection and all its records. Expiry-index entries left behind are removed by
    /// the next sweep.
    pub fn delete_collection(&self, id: &CollectionId) -> Result<()> {
        let _g = self.enter()?;
        let loaded = self.loaded()?;
        let live = loaded
            .collections
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::CollectionNotFound(id.clone()))?;
        let mut deleted = live.writer.lock();
        let mut set = WriteSet::default();
        set.delete(keys::meta_key(id));
        set.delete_range(keys::record_range(id));
        set.delete_range(keys::change_range(id));
        self.commit(set, 0)?;
        *deleted = true;
        loaded.collections.write().remove(id);
        // A segment left behind (a crash right here) is refused by its creation time. It is
        // removed in steps, once the collection's lock is released.
        let retired = crate::segment::retire(&self.segment_path(id))?;
        drop(deleted);
        retired.remove()?;
        self.store().compact(keys::record_range(id))?;
        Ok(())
    }
}
