//! Activation: a tenant's indexes are built from its column family on first use after start (or
//! after eviction), never at engine start, so start-up cost doesn't grow with the tenant count.

use std::sync::Arc;
use std::time::Instant;

use bulkhead_core::CollectionId;

use crate::access::Access;
use crate::background::at_background_priority;
use crate::clock::is_expired;
use crate::codec;
use crate::collection::{CollectionMeta, LiveCollection};
use crate::error::{EngineError, Result};
use crate::keys;
use crate::tenant::{Loaded, TenantHandle};

/// Activations at least this long are logged at INFO.
const SLOW_ACTIVATION: std::time::Duration = std::time::Duration::from_millis(500);

impl<A: Access> TenantHandle<A> {
    /// The tenant's loaded state, loading it if cold. Callers hold the gate.
    pub(super) fn loaded(&self) -> Result<Arc<Loaded>> {
        let mut slot = self.state.loaded.lock();
        if let Some(loaded) = slot.as_ref() {
            return Ok(loaded.clone());
        }
        let started = Instant::now();
        let loaded = Arc::new(at_background_priority(|| self.load())?);
        *slot = Some(loaded.clone());
        drop(slot);
        let elapsed = started.elapsed();
        let collections = loaded.collections.read().len();
        // A big tenant's activation rebuilds its graphs and takes seconds: operators need to
        // see why a first request was slow; quick ones stay at debug.
        if elapsed >= SLOW_ACTIVATION {
            tracing::info!(
                tenant = %self.id(),
                collections,
                elapsed_ms = elapsed.as_millis() as u64,
                "tenant activated (indexes rebuilt from storage)"
            );
        } else {
            tracing::debug!(
                tenant = %self.id(),
                collections,
                elapsed_ms = elapsed.as_millis() as u64,
                "tenant activated"
            );
        }
        self.state.index_grew();
        Ok(loaded)
    }

    /// The settings of collection `id` as stored in RocksDB (the truth the loaded state
    /// follows), or `CollectionNotFound`: never activates the tenant nor waits for an
    /// activation, for operations that need no index (export).
    pub(super) fn stored_meta(&self, id: &CollectionId) -> Result<CollectionMeta> {
        let raw = self.store().multi_get(&[keys::meta_key(id)])?.remove(0);
        let raw = raw.ok_or_else(|| EngineError::CollectionNotFound(id.clone()))?;
        CollectionMeta::decode(id, &raw)
    }

    /// The loaded collection `id`, or `CollectionNotFound`.
    pub(super) fn collection(&self, id: &CollectionId) -> Result<Arc<LiveCollection>> {
        self.loaded()?
            .collections
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::CollectionNotFound(id.clone()))
    }

    fn load(&self) -> Result<Loaded> {
        let mut metas = Vec::new();
        self.store().scan(keys::meta_range(), &mut |k, v| {
            let id = keys::collection_of_meta_key(k)?;
            let meta = CollectionMeta::decode(&id, v)?;
            metas.push((id, meta));
            Ok(true)
        })?;
        let loaded = Loaded::default();
        for (id, meta) in metas {
            let live = Arc::new(self.load_collection(id.clone(), meta)?);
            // Searches scan the vectors exactly until the graph is built in the background.
            self.build_later_if_wanted(&live);
            loaded.collections.write().insert(id, live);
        }
        Ok(loaded)
    }

    pub(super) fn load_collection(
        &self,
        id: CollectionId,
        meta: CollectionMeta,
    ) -> Result<LiveCollection> {
        if meta.segments
            && let Some(live) = self.load_from_segment(&id, &meta)?
        {
            return Ok(live);
        }
        let live = LiveCollection::new(id.clone(), meta)?;
        live.changes.advance_to(self.last_stored_change(&id)?);
        let now = self.state.now_ms();
        {
            let mut slots = live.slots.write();
            self.store().scan(keys::record_range(&id), &mut |k, v| {
                let Some(value) = codec::decode(v)? else {
                    return Ok(true);
                };
                if is_expired(value.expires_at_ms, now) {
                    return Ok(true);
                }
                live.load_record(&mut slots, keys::record_id_of(&id, k)?, &value)?;
                Ok(true)
            })?;
        }
        Ok(live)
    }
}
