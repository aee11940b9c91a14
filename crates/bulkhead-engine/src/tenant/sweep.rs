//! TTL sweeping of one tenant. The expiry index is ordered by time, so a sweep reads only the
//! entries that have expired: its cost is what expired, not the tenant's size. Work is done in
//! bounded batches, each under the collection's writer lock only, so queries never wait on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkhead_core::CollectionId;

use crate::change_log;
use crate::codec;
use crate::collection::LiveCollection;
use crate::error::{EngineError, Result};
use crate::keys::{self, ExpiryEntry};
use crate::storage::WriteSet;
use crate::tenant::TenantHandle;

/// What a maintenance pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Maintained {
    pub records: usize,
    pub sessions: usize,
    pub audit_events: usize,
}

impl std::ops::AddAssign for Maintained {
    fn add_assign(&mut self, other: Self) {
        self.records += other.records;
        self.sessions += other.sessions;
        self.audit_events += other.audit_events;
    }
}

impl Maintained {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

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

    /// One maintenance pass: expired records swept, dead sessions purged and audit events past
    /// retention pruned. A tenant deleted meanwhile has nothing left to maintain.
    pub(crate) fn maintain(&self) -> Result<Maintained> {
        self.schedule_segments();
        let pass = || {
            Ok(Maintained {
                records: self.sweep_expired()?,
                sessions: self.purge_dead_sessions()?,
                audit_events: self.prune_audit()?,
            })
        };
        match pass() {
            Err(EngineError::TenantNotFound(_)) => Ok(Maintained::default()),
            done => done,
        }
    }

    fn sweep_batch(&self) -> Result<(usize, bool)> {
        let _g = self.enter_for_maintenance()?;
        let now = self.state.now_ms();
        let mut entries = Vec::new();
        self.store().scan(keys::expired_range(now), &mut |k, _| {
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
            let slots = col.slots.read();
            let label = slots.label_of(&e.id);
            let matches = label
                .and_then(|l| slots.slot(l))
                .is_some_and(|s| s.expires_at_ms == e.expires_at_ms);
            drop(slots);
            if let (true, Some(label)) = (matches, label) {
                // Out of the index before the slot map lets go of it (see `write_records`).
                col.index.remove(label);
                col.slots.write().remove(&e.id);
            }
        }
        drop(writer);
        self.build_later_if_wanted(col);
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};

    use crate::codec::EXPIRED_MARKER;
    use crate::keys;
    use crate::tenant::TenantHandle;
    use crate::{CollectionSpec, Engine, EngineConfig, ManualClock, NewRecord, TenantSettings};

    const DOOMED: &str = "doomed-7f3a";

    fn open(dir: &std::path::Path, clock: &ManualClock) -> Engine {
        let mut config = EngineConfig::new(dir);
        config.sweep_interval = Duration::from_secs(3600);
        config.clock = clock.clock();
        Engine::open(config).unwrap()
    }

    /// Every key in the tenant's column family, as RocksDB holds it: reads' hiding of expired
    /// records plays no part.
    fn raw_keys(t: &TenantHandle) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        t.store()
            .scan((Vec::new(), vec![u8::MAX]), &mut |k, _| {
                all.push(k.to_vec());
                Ok(true)
            })
            .unwrap();
        all
    }

    /// The raw keys that name record `id`.
    fn keys_naming(t: &TenantHandle, id: &str) -> Vec<String> {
        raw_keys(t)
            .iter()
            .filter(|k| k.windows(id.len()).any(|w| w == id.as_bytes()))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    fn raw_value(t: &TenantHandle, key: Vec<u8>) -> Option<Vec<u8>> {
        t.store().multi_get(&[key]).unwrap().remove(0)
    }

    /// Compacts the tenant's whole column family, running the TTL compaction filter.
    fn compact_all(t: &TenantHandle) {
        t.flush().unwrap();
        t.store().compact((Vec::new(), vec![u8::MAX])).unwrap();
    }

    /// A swept record leaves no key at all in the column family (not just one reads skip):
    /// neither its record key nor its expiry entry, after the sweep and after a compaction,
    /// whether the tenant was loaded or cold when swept. Before the sweep the compaction
    /// filter turns the expired value into the marker, which keeps the key.
    #[test]
    fn a_swept_record_leaves_no_key_in_the_tenant_column_family() {
        let (acme, docs) = (
            TenantId::new("acme").unwrap(),
            CollectionId::new("docs").unwrap(),
        );
        let record_key = keys::record_key(&docs, &RecordId::new(DOOMED).unwrap());
        let keeper_key = keys::record_key(&docs, &RecordId::new("keeper").unwrap());
        for cold in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let clock = ManualClock::starting_now();
            let mut engine = open(dir.path(), &clock);
            engine
                .create_tenant(&acme, &TenantSettings::default())
                .unwrap();
            let mut t = engine
                .tenant(&engine.authority().admin(&acme, "sweep test"))
                .unwrap();
            t.create_collection(&docs, &CollectionSpec::new(4, Metric::Cosine))
                .unwrap();
            let mut doomed =
                NewRecord::new(RecordId::new(DOOMED).unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
            doomed.ttl = Some(Duration::from_millis(200));
            let keeper = NewRecord::new(RecordId::new("keeper").unwrap(), vec![0.0, 1.0, 0.0, 0.0]);
            t.upsert(&docs, vec![doomed, keeper]).unwrap();
            let before = keys_naming(&t, DOOMED);
            assert_eq!(before.len(), 2, "its record and expiry keys: {before:?}");
            assert!(raw_keys(&t).contains(&record_key));

            clock.advance(Duration::from_millis(200));
            // The compaction filter alone hides the value but keeps the key.
            compact_all(&t);
            assert_eq!(
                raw_value(&t, record_key.clone()).as_deref(),
                Some(&EXPIRED_MARKER[..]),
                "the compaction filter marks an expired record"
            );
            assert!(
                t.get(&docs, &[RecordId::new(DOOMED).unwrap()])
                    .unwrap()
                    .is_empty()
            );

            if cold {
                drop(t);
                drop(engine);
                engine = open(dir.path(), &clock);
                t = engine
                    .tenant(&engine.authority().admin(&acme, "sweep test"))
                    .unwrap();
            }
            assert_eq!(t.sweep_expired().unwrap(), 1, "cold: {cold}");
            assert_eq!(
                keys_naming(&t, DOOMED),
                Vec::<String>::new(),
                "cold: {cold}, after the sweep"
            );
            compact_all(&t);
            assert_eq!(
                keys_naming(&t, DOOMED),
                Vec::<String>::new(),
                "cold: {cold}, after a compaction"
            );
            assert!(raw_keys(&t).contains(&keeper_key), "the live record stays");
            assert_eq!(
                t.get(&docs, &[RecordId::new("keeper").unwrap()])
                    .unwrap()
                    .len(),
                1
            );
        }
    }
}
