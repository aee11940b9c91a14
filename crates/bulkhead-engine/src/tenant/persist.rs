//! Segments of a tenant's collections: writing them in the background and starting from them on
//! activation (see `crate::segment` for the file, `crate::change_log` for the replay). The
//! files live under `segments/{incarnation}/` of the data directory: only this tenant's, never
//! shared, and removed with the tenant.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bulkhead_core::{CollectionId, RecordId, TenantId};
use bulkhead_index::IndexKind;

use crate::access::{Access, KeyAdmin};
use crate::change_log::{self, ChangeLog};
use crate::clock::is_expired;
use crate::codec;
use crate::collection::{CollectionMeta, LiveCollection, Slots};
use crate::error::{EngineError, Result};
use crate::index_builds::{BuildOwner, Persisted, Work};
use crate::keys;
use crate::segment::{self, SegmentContents};
use crate::storage::WriteSet;
use crate::tenant::{TenantHandle, TenantState};

/// Record values read per batch while replaying the change log.
const REPLAY_BATCH: usize = 1024;

impl TenantState {
    pub(crate) fn segment_dir(&self) -> PathBuf {
        segment_dir(&self.services.config.data_dir, self.incarnation())
    }
}

fn segment_dir(data_dir: &Path, incarnation: u64) -> PathBuf {
    data_dir.join("segments").join(incarnation.to_string())
}

/// Removes the segment directories of incarnations not in `registered`: a deletion that stopped
/// (a crash) after the registry forgot its tenant and before the tenant's files were removed
/// leaves one, holding the deleted tenant's vectors. Run at open, before any tenant is served;
/// returns how many were removed.
pub(crate) fn remove_unregistered_segments(
    data_dir: &Path,
    registered: &HashSet<u64>,
) -> Result<usize> {
    let root = data_dir.join("segments");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(EngineError::Storage(format!("{}: {e}", root.display()))),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::Storage(format!("{}: {e}", root.display())))?;
        let name = entry.file_name();
        let Some(incarnation) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        if registered.contains(&incarnation) {
            continue;
        }
        let dir = segment_dir(data_dir, incarnation);
        tracing::warn!(dir = %dir.display(), "removing the segments of a deleted tenant");
        crate::disk_pacing::remove_dir_all(&dir)
            .map_err(|e| EngineError::Storage(format!("{}: {e}", dir.display())))?;
        removed += 1;
    }
    Ok(removed)
}

/// The build thread reaches a tenant only through this: it builds and persists what the tenant
/// queued, and learns nothing else of it.
impl BuildOwner for TenantState {
    fn tenant_id(&self) -> TenantId {
        self.id()
    }

    fn index_grew(&self) {
        TenantState::index_grew(self);
    }

    fn persist(self: Arc<Self>, collection: &LiveCollection) -> Result<Persisted> {
        TenantHandle::new(self).persist(collection)
    }
}

impl<A: Access> TenantHandle<A> {
    pub(crate) fn segment_path(&self, collection: &CollectionId) -> PathBuf {
        segment::segment_path(&self.state.segment_dir(), collection)
    }

    /// The newest change number in `collection`'s stored log (0 when empty).
    pub(super) fn last_stored_change(&self, collection: &CollectionId) -> Result<u64> {
        match self.store().last_key(keys::change_range(collection))? {
            Some(k) => keys::change_of(collection, &k),
            None => Ok(0),
        }
    }

    /// Writes `col`'s segment if it changed since the last one (a flat collection, or one
    /// whose settings turn segments off, gets none: any old one is removed), then trims its
    /// change log. Runs on the engine's build thread;
    /// writes of the collection wait only while its structure is copied and for the rename
    /// (the file replaced is removed after).
    pub(crate) fn persist(&self, col: &LiveCollection) -> Result<Persisted> {
        let path = self.segment_path(&col.id);
        let (change, image, slots) = {
            let deleted = col.writer.lock();
            let change = col.changes.last();
            let keep = col.meta.segments && col.index.kind() == IndexKind::Hnsw;
            // A graph without a segment gets one even with nothing logged: a collection
            // written before the change log existed has none, and would be rebuilt on every
            // activation otherwise.
            let first_segment = keep && col.changes.segment_written_ms().is_none();
            if *deleted || (col.changes.pending() == 0 && !first_segment) {
                return Ok(Persisted::Nothing);
            }
            let image = keep.then(|| col.index.image());
            let slots = image.as_ref().map(|_| col.slots.read().entries());
            (change, image, slots)
        };
        let written = match (&image, &slots) {
            (Some(image), Some(slots)) => Some(segment::write(
                &path, &col.meta, change, &col.index, image, slots,
            )?),
            _ => None,
        };
        // In place only while `col` is still what the tenant serves: a tenant evicted and
        // loaded again meanwhile serves another copy, which replayed the log from an older
        // segment; trimming under it could drop changes it still needs after a restart.
        let gate = self.enter_for_maintenance();
        let current = gate.is_ok() && self.serves(col);
        let deleted = col.writer.lock();
        if gate.is_err() || !current || *deleted {
            // Removed in steps, so not while the collection's writers wait.
            drop(deleted);
            drop(gate);
            if let Some(w) = written {
                w.discard();
            }
            return Ok(Persisted::Nothing);
        }
        let (bytes, retired) = match written {
            Some(w) => {
                let installed = w.install()?;
                (Some(installed.bytes), installed.replaced)
            }
            None => (None, segment::retire(&path)?),
        };
        let mut trim = WriteSet::default();
        trim.delete_range((
            keys::change_range(&col.id).0,
            keys::change_key(&col.id, change),
        ));
        trim.put(keys::change_key(&col.id, change), Vec::new());
        self.store().write(trim)?;
        col.changes.set_persisted(change);
        let persisted = match bytes {
            Some(bytes) => {
                col.changes.set_segment_written(self.state.now_ms());
                Persisted::Segment { change, bytes }
            }
            None => {
                col.changes.set_segment_written(0);
                Persisted::Trimmed { change }
            }
        };
        // The older segment goes once the collection's writers no longer wait on this.
        drop(deleted);
        drop(gate);
        if let Err(e) = retired.remove() {
            // The next install or load of the collection removes it.
            tracing::warn!(tenant = %self.id(), collection = %col.id, error = %e, "replaced segment left on disk");
        }
        Ok(persisted)
    }

    /// Queues a segment for each loaded collection with `segment_refresh_changes` changes
    /// since its last; never waits for an activation in progress.
    pub(super) fn schedule_segments(&self) {
        let Some(loaded) = self.state.loaded.try_lock().and_then(|l| l.clone()) else {
            return;
        };
        let threshold = self.state.services.config.segment_refresh_changes;
        for col in loaded.collections.read().values() {
            if col.changes.pending() >= threshold {
                self.state
                    .services
                    .index_builds
                    .schedule(&self.state, col, Work::Persist);
            }
        }
    }

    /// Whether `col` is the collection this tenant's loaded state holds under its id.
    fn serves(&self, col: &LiveCollection) -> bool {
        self.state.loaded.lock().as_ref().is_some_and(|loaded| {
            loaded
                .collections
                .read()
                .get(&col.id)
                .is_some_and(|c| std::ptr::eq(c.as_ref(), col))
        })
    }

    /// `id` from its segment and the changes logged after it, or `None` if it has no usable
    /// segment (an unusable one is removed, and logged).
    pub(super) fn load_from_segment(
        &self,
        id: &CollectionId,
        meta: &CollectionMeta,
    ) -> Result<Option<LiveCollection>> {
        let path = self.segment_path(id);
        let started = Instant::now();
        let contents = match segment::read(&path, meta) {
            Ok(Some(contents)) => contents,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(
                    tenant = %self.id(),
                    collection = %id,
                    error = %e,
                    "segment unusable; rebuilding the collection from its records"
                );
                segment::remove(&path)?;
                return Ok(None);
            }
        };
        let SegmentContents {
            change,
            index,
            slots,
            written_ms,
        } = contents;
        let slots = Slots::from_entries(&meta.indexed_fields, slots)?;
        let live = LiveCollection::from_parts(
            id.clone(),
            meta.clone(),
            index,
            slots,
            ChangeLog::starting_at(change, change),
        );
        live.changes.set_segment_written(written_ms);
        let replayed = self.replay_changes(&live, change)?;
        tracing::debug!(
            tenant = %self.id(),
            collection = %id,
            change,
            replayed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "collection loaded from its segment"
        );
        Ok(Some(live))
    }

    /// Applies the changes logged after `after` to `live`, whose state reflects `after`:
    /// each touched record takes its stored state now. Returns how many records it touched.
    fn replay_changes(&self, live: &LiveCollection, after: u64) -> Result<usize> {
        let (_, end) = keys::change_range(&live.id);
        let mut touched: Vec<RecordId> = Vec::new();
        let mut seen = HashSet::new();
        let mut last = after;
        self.store()
            .scan((keys::change_key(&live.id, after + 1), end), &mut |k, v| {
                last = keys::change_of(&live.id, k)?;
                for id in change_log::decode_ids(v)? {
                    if seen.insert(id.clone()) {
                        touched.push(id);
                    }
                }
                Ok(true)
            })?;
        let now = self.state.now_ms();
        for batch in touched.chunks(REPLAY_BATCH) {
            let record_keys: Vec<_> = batch
                .iter()
                .map(|id| keys::record_key(&live.id, id))
                .collect();
            let values = self.store().multi_get(&record_keys)?;
            let mut slots = live.slots.write();
            for (id, raw) in batch.iter().zip(values) {
                let value = match raw {
                    Some(raw) => codec::decode(&raw)?.filter(|v| !is_expired(v.expires_at_ms, now)),
                    None => None,
                };
                let old = match value {
                    Some(v) => live.load_record(&mut slots, id.clone(), &v)?,
                    None => slots.remove(id),
                };
                if let Some(old) = old {
                    live.index.remove(old);
                }
            }
        }
        live.changes.advance_to(last);
        Ok(touched.len())
    }
}

impl TenantHandle<KeyAdmin> {
    /// Writes the segment of every loaded collection that changed since its last one, now, on
    /// the calling thread; returns how many were written. The engine does this in the
    /// background (after builds, and every `segment_refresh_changes` changes); this is for
    /// operators and tests.
    pub fn write_segments(&self) -> Result<usize> {
        let collections: Vec<_> = {
            let _g = self.enter_for_maintenance()?;
            match self.state.loaded.lock().as_ref() {
                Some(loaded) => loaded.collections.read().values().cloned().collect(),
                None => return Ok(0),
            }
        };
        let mut written = 0;
        for col in collections {
            written += usize::from(matches!(self.persist(&col)?, Persisted::Segment { .. }));
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use bulkhead_core::{Metric, RecordId, TenantId};

    use super::*;
    use crate::{CollectionSpec, Engine, EngineConfig, IndexParams, NewRecord, TenantSettings};

    /// An engine with tenant `acme` whose collection `big` (flat threshold 10) holds 50
    /// records; `before_writes` runs once the tenant exists.
    fn with_collection_past_its_threshold(
        before_writes: impl FnOnce(&TenantHandle),
    ) -> (tempfile::TempDir, Engine, TenantHandle, CollectionId) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let id = TenantId::new("acme").unwrap();
        engine
            .create_tenant(&id, &TenantSettings::default())
            .unwrap();
        let t = engine
            .tenant(&engine.authority().admin(&id, "persist test"))
            .unwrap();
        before_writes(&t);
        let c = CollectionId::new("big").unwrap();
        let mut spec = CollectionSpec::new(4, Metric::L2);
        spec.index = Some(IndexParams {
            flat_threshold: 10,
            ..IndexParams::default()
        });
        t.create_collection(&c, &spec).unwrap();
        let records = (0..50)
            .map(|i| NewRecord::new(RecordId::new(format!("r{i}")).unwrap(), vec![i as f32; 4]))
            .collect();
        t.upsert(&c, records).unwrap();
        (dir, engine, t, c)
    }

    #[test]
    fn a_copy_evicted_and_loaded_again_meanwhile_writes_no_segment() {
        let (_dir, _engine, t, c) = with_collection_past_its_threshold(|t| {
            // No background builds or segments: only the persists this test makes.
            t.state.services.index_builds.stop();
        });
        let stale = t.collection(&c).unwrap();
        assert!(t.state.try_evict().is_some());
        let fresh = t.collection(&c).unwrap();
        assert!(!std::ptr::eq(stale.as_ref(), fresh.as_ref()));
        assert_eq!(t.persist(&stale).unwrap(), Persisted::Nothing);
        assert!(!t.segment_path(&c).exists());
        assert_eq!(t.last_stored_change(&c).unwrap(), 1, "the log is untouched");
        // The copy served now persists as usual (flat here: a trim, no file).
        assert_eq!(t.persist(&fresh).unwrap(), Persisted::Trimmed { change: 1 });
    }

    #[test]
    fn a_graph_written_before_the_change_log_existed_gets_a_segment() {
        let (_dir, engine, t, c) = with_collection_past_its_threshold(|_| {});
        let settle = || assert!(engine.wait_for_index_builds(std::time::Duration::from_secs(60)));
        settle();
        // As a deployment from before segments left it: no segment, no change log.
        crate::segment::remove(&t.segment_path(&c)).unwrap();
        let mut forget = WriteSet::default();
        forget.delete_range(keys::change_range(&c));
        t.store().write(forget).unwrap();
        assert!(t.state.try_evict().is_some());
        t.collection(&c).unwrap();
        settle();
        assert!(
            t.segment_path(&c).exists(),
            "the rebuilt graph got a segment"
        );
    }
}
