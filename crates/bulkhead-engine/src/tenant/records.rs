//! Record reads, writes and search inside one tenant. RocksDB is written first and is the
//! truth; the index follows. Expiry is checked on every read path against the clock, so an
//! expired record is invisible from the millisecond it expires, whatever the sweeper has done.

use std::collections::HashMap;
use std::time::Duration;

use bulkhead_core::{CollectionId, RecordId, validate_metadata, validate_vector};
use bulkhead_index::{MAX_EF, SearchFilter};

use crate::access::{Access, CanWrite, KeyAdmin};
use crate::background::offer_cpu;
use crate::cache_fields::{self, ReservedFields};
use crate::change_log;
use crate::clock::{expiry_after, is_expired};
use crate::codec::{self, StoredValue};
use crate::collection::{CollectionKind, LiveCollection, Slot};
use crate::error::{EngineError, Result};
use crate::keys;
use crate::readers;
use crate::record::{Hit, NewRecord, Query, StoredRecord};
use crate::storage::WriteSet;
use crate::tenant::TenantHandle;

/// Largest `top_k` the engine accepts; the server may set a lower limit.
pub const MAX_TOP_K: usize = 10_000;

impl<A: Access> TenantHandle<A> {
    pub(super) fn write_records(
        &self,
        collection: &CollectionId,
        records: Vec<NewRecord>,
        reserved: ReservedFields,
    ) -> Result<usize> {
        let _g = self.enter()?;
        let col = self.collection(collection)?;
        self.writable_by_handle(&col.meta, collection)?;
        self.validate_batch(&col, &records, reserved)?;
        let records = last_occurrence_wins(records);
        let max_list_len = self.state.services.config.max_indexed_list_len;
        let field_keys = {
            let slots = col.slots.read();
            records
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    slots
                        .fields
                        .keys_of(&r.metadata, max_list_len)
                        .map_err(|e| {
                            EngineError::InvalidArgument(format!(
                                "record {index} of the batch: {e}"
                            ))
                        })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let now = self.state.now_ms();

        let writer = col.writer.lock();
        if *writer {
            return Err(EngineError::CollectionNotFound(collection.clone()));
        }
        self.check_record_quota(&col, &records)?;
        let mut set = WriteSet::default();
        let mut expiries = Vec::with_capacity(records.len());
        {
            let slots = col.slots.read();
            for r in &records {
                let ttl = r.ttl.or(col.meta.default_ttl_ms.map(Duration::from_millis));
                let expires = ttl.map_or(0, |ttl| expiry_after(now, ttl));
                if let Some(old) = slots.label_of(&r.id).and_then(|l| slots.slot(l))
                    && old.expires_at_ms != 0
                {
                    set.delete(keys::expiry_key(old.expires_at_ms, collection, &r.id));
                }
                if expires != 0 {
                    set.put(keys::expiry_key(expires, collection, &r.id), Vec::new());
                }
                set.put(
                    keys::record_key(collection, &r.id),
                    codec::encode(expires, &r.vector, r.text.as_deref(), &r.metadata),
                );
                expiries.push(expires);
            }
        }
        change_log::log(
            &mut set,
            collection,
            col.changes.next(),
            records.iter().map(|r| &r.id),
        );
        self.commit(set, records.len() as u64)?;

        // A label is in the index only while the slot map names its record, so a search
        // never meets one that names nothing (`search_records`): a replaced record's old label
        // leaves the index before the slot map lets go of it, and the new label enters the
        // index once assigned. In between, the record is briefly in neither.
        for ((r, expires), keys) in records.iter().zip(expiries).zip(field_keys) {
            let (label, old) = {
                let mut slots = col.slots.write();
                (slots.allocate_label()?, slots.label_of(&r.id))
            };
            if let Some(old) = old {
                col.index.remove(old);
            }
            col.slots.write().assign(
                label,
                Slot {
                    id: r.id.clone(),
                    expires_at_ms: expires,
                    keys,
                },
            );
            col.index.insert(label, &r.vector)?;
            offer_cpu();
        }
        drop(writer);
        self.build_later_if_wanted(&col);
        self.state.index_grew();
        Ok(records.len())
    }

    /// Checks every record of a batch before anything is written; in a semantic cache, also
    /// its reserved fields as `reserved` says.
    fn validate_batch(
        &self,
        col: &LiveCollection,
        records: &[NewRecord],
        reserved: ReservedFields,
    ) -> Result<()> {
        let max_text = self.state.services.config.max_text_bytes;
        let cache = col.meta.kind() == CollectionKind::SemanticCache;
        for (index, r) in records.iter().enumerate() {
            let invalid = |source| EngineError::InvalidRecord { index, source };
            validate_vector(&r.vector, col.meta.dimension, col.meta.metric).map_err(invalid)?;
            validate_metadata(&r.metadata).map_err(invalid)?;
            if cache {
                cache_fields::check_reserved_fields(&r.metadata, reserved).map_err(|e| {
                    EngineError::InvalidArgument(format!("record {index} of the batch: {e}"))
                })?;
            }
            if col.meta.access_control {
                readers::check_readers(&r.metadata).map_err(|e| {
                    EngineError::InvalidArgument(format!("record {index} of the batch: {e}"))
                })?;
            }
            if r.text.as_ref().is_some_and(|t| t.len() > max_text) {
                return Err(EngineError::InvalidArgument(format!(
                    "record {index} of the batch: text is longer than {max_text} bytes"
                )));
            }
            if r.ttl.is_some_and(|t| t.is_zero()) {
                return Err(EngineError::InvalidArgument(format!(
                    "record {index} of the batch: TTL must be positive"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a batch that would take the tenant past its record or byte quota. Called under
    /// the collection's writer lock, so concurrent batches of one collection can't both pass.
    fn check_record_quota(&self, col: &LiveCollection, records: &[NewRecord]) -> Result<()> {
        let quota = self.state.record.read().quota;
        if quota.max_records > 0 {
            let new_ids = {
                let slots = col.slots.read();
                records
                    .iter()
                    .filter(|r| slots.label_of(&r.id).is_none())
                    .count() as u64
            };
            let current: u64 = self
                .loaded()?
                .collections
                .read()
                .values()
                .map(|c| c.slots.read().len() as u64)
                .sum();
            if current + new_ids > quota.max_records {
                return Err(EngineError::QuotaExceeded(format!(
                    "tenant holds {current} records, this batch adds {new_ids}, the quota is {}",
                    quota.max_records
                )));
            }
        }
        let incoming: u64 = records
            .iter()
            .map(|r| {
                (r.vector.len() * 4 + r.text.as_ref().map_or(0, String::len) + r.id.as_str().len())
                    as u64
            })
            .sum();
        self.check_stored_bytes(incoming, "batch")
    }

    /// Refuses a write of about `incoming` bytes (a `write`, named in the message) that would
    /// take the tenant past its byte quota; every write path of the tenant checks it here.
    pub(super) fn check_stored_bytes(&self, incoming: u64, write: &str) -> Result<()> {
        let max = self.state.record.read().quota.max_stored_bytes;
        if max == 0 {
            return Ok(());
        }
        let stored = self.store().size_bytes()?;
        if stored + incoming > max {
            return Err(EngineError::QuotaExceeded(format!(
                "tenant stores about {stored} bytes, this {write} adds {incoming}, the quota is {max}"
            )));
        }
        Ok(())
    }

    /// Reads records by id. Missing and expired ids are left out, and so, for a reader-bound
    /// handle in an access-controlled collection, are records it may not read; order follows
    /// `ids`.
    pub fn get(&self, collection: &CollectionId, ids: &[RecordId]) -> Result<Vec<StoredRecord>> {
        let _g = self.enter()?;
        let col = self.collection(collection)?;
        let reader = self.reader_in(&col.meta);
        let now = self.state.now_ms();
        let keys: Vec<_> = ids
            .iter()
            .map(|id| keys::record_key(collection, id))
            .collect();
        let values = self.store().multi_get(&keys)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, value) in ids.iter().zip(values) {
            let Some(mut v) = live_value(value.as_deref(), now)? else {
                continue;
            };
            if let Some(reader) = reader {
                if !reader.may_read(&v.metadata) {
                    continue;
                }
                v.metadata.remove(readers::READERS_FIELD);
            }
            out.push(StoredRecord {
                id: id.clone(),
                vector: v.vector,
                text: v.text,
                metadata: v.metadata,
                expire_time_ms: (v.expires_at_ms != 0).then_some(v.expires_at_ms),
            });
        }
        self.log_reads(&col.meta, out.iter().map(|r| &r.id));
        Ok(out)
    }

    /// The `top_k` nearest unexpired records to `query.vector`, closest first.
    pub fn query(&self, collection: &CollectionId, query: &Query) -> Result<Vec<Hit>> {
        let _g = self.enter()?;
        let col = self.collection(collection)?;
        validate_vector(&query.vector, col.meta.dimension, col.meta.metric)?;
        if query.top_k == 0 || query.top_k > MAX_TOP_K {
            return Err(EngineError::InvalidArgument(format!(
                "top_k must be between 1 and {MAX_TOP_K}, got {}",
                query.top_k
            )));
        }
        if let Some(ef) = query.ef.filter(|ef| *ef > MAX_EF) {
            return Err(EngineError::InvalidArgument(format!(
                "ef must be at most {MAX_EF}, got {ef}"
            )));
        }
        let now = self.state.now_ms();
        let reader = self.reader_in(&col.meta);
        // A reader searches only what it may read, through the same postings as filters.
        let restricted = reader.map(|r| r.restrict(query.filter.as_ref()));
        let (expired, allowed) = {
            let slots = col.slots.read();
            let allowed = match restricted.as_ref().or(query.filter.as_ref()) {
                Some(f) => Some(f.evaluate(&slots.fields, slots.labels())?),
                None => None,
            };
            (slots.expired_labels(now), allowed)
        };
        let filter = SearchFilter {
            allow: allowed.as_ref(),
            deny: (!expired.is_empty()).then_some(&expired),
        };
        let mut hits = search_records(&col, query, filter, now)?;
        if query.include.any() {
            self.fill_fields(collection, &mut hits, query, now)?;
        }
        if reader.is_some() {
            for hit in &mut hits {
                if let Some(metadata) = &mut hit.metadata {
                    metadata.remove(readers::READERS_FIELD);
                }
            }
        }
        self.log_reads(&col.meta, hits.iter().map(|h| &h.id));
        Ok(hits)
    }

    /// Reads the stored fields a query asked for; drops hits deleted since the search.
    fn fill_fields(
        &self,
        collection: &CollectionId,
        hits: &mut Vec<Hit>,
        query: &Query,
        now: u64,
    ) -> Result<()> {
        let keys: Vec<_> = hits
            .iter()
            .map(|h| keys::record_key(collection, &h.id))
            .collect();
        let values = self.store().multi_get(&keys)?;
        let mut found: HashMap<usize, StoredValue> = HashMap::new();
        for (i, value) in values.into_iter().enumerate() {
            if let Some(v) = live_value(value.as_deref(), now)? {
                found.insert(i, v);
            }
        }
        let mut i = 0;
        hits.retain_mut(|hit| {
            let keep = match found.remove(&i) {
                Some(v) => {
                    hit.text = if query.include.text { v.text } else { None };
                    hit.metadata = query.include.metadata.then_some(v.metadata);
                    hit.vector = query.include.vector.then_some(v.vector);
                    true
                }
                None => false,
            };
            i += 1;
            keep
        });
        Ok(())
    }
}

/// Searches made for one query at most: the first, and again for what it had to skip.
const MAX_SEARCHES: usize = 4;

/// The `query.top_k` nearest live records the index finds, as hits without stored fields.
///
/// A label is in the index only while it names its record (`write_records`), but a write may
/// go on between a search and the look-up of the labels it found: by then a label may name
/// nothing (its record replaced or deleted), or a record that has expired since the deny
/// list was made. Those are skipped, and rather than answer short the index is asked again
/// for as many more as were skipped (they come back too, so each search asks for more than
/// the last). Bounded: under a write that outruns every retry the answer can still be short.
fn search_records(
    col: &LiveCollection,
    query: &Query,
    filter: SearchFilter<'_>,
    now: u64,
) -> Result<Vec<Hit>> {
    let mut asked = query.top_k;
    let mut hits = Vec::new();
    for _ in 0..MAX_SEARCHES {
        let neighbours = col.index.search(&query.vector, asked, query.ef, filter)?;
        let slots = col.slots.read();
        hits = neighbours
            .iter()
            .filter_map(|n| {
                let slot = slots.slot(n.label)?;
                (!is_expired(slot.expires_at_ms, now)).then(|| Hit {
                    id: slot.id.clone(),
                    score: col.score(n.distance),
                    text: None,
                    metadata: None,
                    vector: None,
                })
            })
            .take(query.top_k)
            .collect();
        let index_ran_out = neighbours.len() < asked;
        if hits.len() == query.top_k || index_ran_out {
            break;
        }
        asked += query.top_k - hits.len();
    }
    Ok(hits)
}

/// Decodes a stored value unless it is absent, an expired marker, or expired at `now`.
fn live_value(raw: Option<&[u8]>, now: u64) -> Result<Option<StoredValue>> {
    let Some(raw) = raw else { return Ok(None) };
    Ok(codec::decode(raw)?.filter(|v| !is_expired(v.expires_at_ms, now)))
}

/// Keeps the last record of each id, in order of those last occurrences.
fn last_occurrence_wins(records: Vec<NewRecord>) -> Vec<NewRecord> {
    let mut last: HashMap<RecordId, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        last.insert(r.id.clone(), i);
    }
    if last.len() == records.len() {
        return records;
    }
    records
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.id) == Some(i))
        .map(|(_, r)| r)
        .collect()
}

impl<A: CanWrite> TenantHandle<A> {
    /// Inserts or replaces records. Either the whole batch is written or nothing is: every
    /// record is validated first, then one atomic write. Within a batch the last occurrence of
    /// an id wins. Returns the number of records written. In a semantic cache, metadata keys
    /// starting with `_` are refused: they are the cache's own (see `semantic_cache`).
    pub fn upsert(&self, collection: &CollectionId, records: Vec<NewRecord>) -> Result<usize> {
        self.write_records(collection, records, ReservedFields::Refused)
    }

    /// Deletes records by id; returns how many existed.
    pub fn delete(&self, collection: &CollectionId, ids: &[RecordId]) -> Result<usize> {
        let _g = self.enter()?;
        let col = self.collection(collection)?;
        self.writable_by_handle(&col.meta, collection)?;
        let writer = col.writer.lock();
        if *writer {
            return Err(EngineError::CollectionNotFound(collection.clone()));
        }
        let mut set = WriteSet::default();
        let mut present = Vec::new();
        {
            let slots = col.slots.read();
            for id in ids {
                if let Some(slot) = slots.label_of(id).and_then(|l| slots.slot(l)) {
                    if slot.expires_at_ms != 0 {
                        set.delete(keys::expiry_key(slot.expires_at_ms, collection, id));
                    }
                    set.delete(keys::record_key(collection, id));
                    present.push(id);
                }
            }
        }
        if !present.is_empty() {
            change_log::log(
                &mut set,
                collection,
                col.changes.next(),
                present.iter().copied(),
            );
        }
        self.commit(set, present.len() as u64)?;
        let now = self.state.now_ms();
        let mut count = 0;
        for id in present {
            let slots = col.slots.read();
            if let Some(label) = slots.label_of(id) {
                let expired = slots
                    .slot(label)
                    .is_some_and(|s| is_expired(s.expires_at_ms, now));
                drop(slots);
                // Out of the index before the slot map lets go of it (see `write_records`).
                col.index.remove(label);
                col.slots.write().remove(id);
                count += usize::from(!expired);
            }
        }
        self.build_later_if_wanted(&col);
        Ok(count)
    }

    /// Deletes every record of `collection` matching `filter`; returns how many were live.
    pub fn delete_where(&self, collection: &CollectionId, filter: &crate::Filter) -> Result<usize> {
        let ids: Vec<RecordId> = {
            let _g = self.enter()?;
            let col = self.collection(collection)?;
            self.writable_by_handle(&col.meta, collection)?;
            let slots = col.slots.read();
            let matching = filter.evaluate(&slots.fields, slots.labels())?;
            matching
                .iter()
                .filter_map(|label| slots.slot(label).map(|s| s.id.clone()))
                .collect()
        };
        if ids.is_empty() {
            return Ok(0);
        }
        self.delete(collection, &ids)
    }
}

impl TenantHandle<KeyAdmin> {
    /// `upsert` for restoring a backup: in a semantic cache, entries may carry the reserved
    /// fields they were exported with (each checked for its type and bounds). The server calls
    /// it only for a tenant admin's import.
    pub fn restore_records(
        &self,
        collection: &CollectionId,
        records: Vec<NewRecord>,
    ) -> Result<usize> {
        self.write_records(collection, records, ReservedFields::Checked)
    }
}
