//! TTL sweeping of one tenant. The expiry index is ordered by time, so a sweep reads only the
//! entries that have expired: its cost is what expired, not the tenant's size. Work is done in
//! bounded batches, each under the collection's writer lock only, so queries never wait on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkhead_core::CollectionId;

use crate::change_log;
use crate::clock::now_ms;
use crate::codec;
use crate::collection::LiveCollection;
use crate::error::{EngineError, Result};
use crate::keys::{self, ExpiryEntry};
use crate::storage::WriteSet;
use crate::tenant::TenantHandle;

/// Expiry entries handled per batch.
const SWEEP_BATCH: usize = 4096;

impl TenantHandle {
    /// Deletes records that have expired, with their index entries, and compacts what they
    /// occupied. Returns the number of records removed. Runs in the background sweeper; exposed
    /// for operators and tests.
    pub fn sweep_expired(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            let (batch_removed, more) = self.sweep_batch()?;
            removed += batch_removed;
            if !more {
                break;
            }
        }
        Ok(removed)
    }

    /// One maintenance pass: expired records swept and audit events past retention pruned;
    /// returns how many of each. A tenant deleted meanwhile has nothing left to maintain.
    pub(crate) fn maintain(&self) -> Result<(usize, usize)> {
        self.schedule_segments();
        match self
            .sweep_expired()
            .and_then(|records| Ok((records, self.prune_audit()?)))
        {
            Err(EngineError::TenantNotFound(_)) => Ok((0, 0)),
            done => done,
        }
    }

    fn sweep_batch(&self) -> Result<(usize, bool)> {
        let _g = self.enter_for_maintenance()?;
        let now = now_ms();
        let mut entries = Vec::new();
        self.store().scan(keys::expired_range(now), |k, _| {
            entries.push(keys::parse_expiry_key(k)?);
            Ok(entries.len() < SWEEP_BATCH)
        })?;
        if entries.is_empty() {
            return Ok((0, false));
        }
        let more = entries.len() == SWEEP_BATCH;
        let last_swept = keys::expiry_key(
            entries.last().map_or(0, |e| e.expires_at_ms),
            &entries.last().expect("not empty").collection,
            &entries.last().expect("not empty").id,
        );
        let mut by_collection: BTreeMap<CollectionId, Vec<ExpiryEntry>> = BTreeMap::new();
        for e in entries {
            by_collection
                .entry(e.collection.clone())
                .or_default()
                .push(e);
        }

        let mut removed = 0;
        let loaded_guard = self.state.loaded.lock();
        match loaded_guard.clone() {
            // Loaded: go through each live collection so the index follows the deletion.
            Some(loaded) => {
                drop(loaded_guard);
                for (id, list) in &by_collection {
                    let live = loaded.collections.read().get(id).cloned();
                    removed += match live {
                        Some(col) => self.sweep_live(&col, list)?,
                        // A deleted collection: its records and change log went with it.
                        None => self.sweep_stored(list, None)?,
                    };
                }
            }
            // Cold: nothing in memory to update; holding the load lock keeps a concurrent
            // activation from reading a half-swept state.
            None => {
                for (id, list) in &by_collection {
                    let change = self.last_stored_change(id)? + 1;
                    removed += self.sweep_stored(list, Some(change))?;
                }
                drop(loaded_guard);
            }
        }

        let mut expiry_span = keys::expired_range(now);
        expiry_span.1 = [last_swept, vec![0]].concat();
        self.store().compact(expiry_span)?;
        for (id, list) in &by_collection {
            let swept = list.iter().map(|e| keys::record_key(id, &e.id));
            let (Some(first), Some(last)) = (swept.clone().min(), swept.max()) else {
                continue;
            };
            self.store().compact((first, [last, vec![0]].concat()))?;
        }
        Ok((removed, more))
    }

    /// Deletes the stored records `entries` (all of one collection) point at, where they still
    /// carry that expiry (a record upserted again since has a new expiry and stays), logging
    /// them under `change` if given. Returns how many were deleted.
    fn sweep_stored(&self, entries: &[ExpiryEntry], change: Option<u64>) -> Result<usize> {
        let record_keys: Vec<_> = entries
            .iter()
            .map(|e| keys::record_key(&e.collection, &e.id))
            .collect();
        let values = self.store().multi_get(&record_keys)?;
        let mut set = WriteSet::default();
        let mut removed = Vec::new();
        for ((entry, key), value) in entries.iter().zip(record_keys).zip(values) {
            set.delete(keys::expiry_key(
                entry.expires_at_ms,
                &entry.collection,
                &entry.id,
            ));
            let Some(value) = value else { continue };
            let is_marker = codec::decode(&value).ok().flatten().is_none();
            if is_marker || codec::peek_expiry(&value) == Some(entry.expires_at_ms) {
                set.delete(key);
                removed.push(&entry.id);
            }
        }
        if let (Some(change), Some(first)) = (change, entries.first())
            && !removed.is_empty()
        {
            change_log::log(&mut set, &first.collection, change, removed.iter().copied());
        }
        self.store().write(set)?;
        Ok(removed.len())
    }

    fn sweep_live(&self, col: &Arc<LiveCollection>, entries: &[ExpiryEntry]) -> Result<usize> {
        let writer = col.writer.lock();
        if *writer {
            return self.sweep_stored(entries, None);
        }
        let removed = self.sweep_stored(entries, Some(col.changes.next()))?;
        for e in entries {
            let mut slots = col.slots.write();
            let label = slots.label_of(&e.id);
            let matches = label
                .and_then(|l| slots.slot(l))
                .is_some_and(|s| s.expires_at_ms == e.expires_at_ms);
            if let (true, Some(label)) = (matches, label) {
                slots.remove(&e.id);
                drop(slots);
                col.index.remove(label);
            }
        }
        drop(writer);
        self.build_later_if_wanted(col);
        Ok(removed)
    }
}
