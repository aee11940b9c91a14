//! Every write to a collection's records also writes one change-log entry, in the same batch:
//! the ids it touched, under the collection's next change number. A segment file records the
//! change number it reflects, so activation can load the segment and replay only the entries
//! after it, reading those records' current values; whether an entry was an upsert, a delete
//! or an expiry doesn't matter, because the record's state now decides.
//!
//! Numbers are allocated under the collection's writer lock, so they follow commit order. When
//! a segment at change `n` is durable, entries below `n` are deleted and entry `n` is kept
//! (emptied) as a floor: a collection's next number is always past its latest segment's, even
//! when it is computed from the log alone (a cold tenant's sweep).

use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_core::{CollectionId, RecordId};

use crate::error::{EngineError, Result};
use crate::keys;
use crate::storage::WriteSet;

/// A loaded collection's change numbers.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    /// The last number allocated.
    last: AtomicU64,
    /// The change the collection's segment (or, for a flat collection, the last trim)
    /// reflects.
    persisted: AtomicU64,
    /// When the segment loaded or last written was written (ms since the epoch; 0: none).
    segment_written_ms: AtomicU64,
}

impl ChangeLog {
    pub fn starting_at(last: u64, persisted: u64) -> Self {
        Self {
            last: AtomicU64::new(last.max(persisted)),
            persisted: AtomicU64::new(persisted),
            segment_written_ms: AtomicU64::new(0),
        }
    }

    /// The next number; the caller holds the collection's writer lock.
    pub fn next(&self) -> u64 {
        self.last.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Moves the last number up to `change` (after replaying the log up to it).
    pub fn advance_to(&self, change: u64) {
        self.last.fetch_max(change, Ordering::AcqRel);
    }

    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    pub fn set_persisted(&self, change: u64) {
        self.persisted.fetch_max(change, Ordering::AcqRel);
    }

    pub fn set_segment_written(&self, at_ms: u64) {
        self.segment_written_ms.store(at_ms, Ordering::Release);
    }

    /// When the collection's segment was written, if it has one.
    pub fn segment_written_ms(&self) -> Option<u64> {
        Some(self.segment_written_ms.load(Ordering::Acquire)).filter(|&ms| ms > 0)
    }

    /// Changes not yet in a segment.
    pub fn pending(&self) -> u64 {
        self.last()
            .saturating_sub(self.persisted.load(Ordering::Acquire))
    }
}

/// Adds to `set` the entry saying that change `change` of `collection` touched `ids`.
pub(crate) fn log<'a>(
    set: &mut WriteSet,
    collection: &CollectionId,
    change: u64,
    ids: impl Iterator<Item = &'a RecordId>,
) {
    set.put(keys::change_key(collection, change), encode_ids(ids));
}

/// An entry's value: each id as its length (u32 LE) and bytes.
fn encode_ids<'a>(ids: impl Iterator<Item = &'a RecordId>) -> Vec<u8> {
    let mut out = Vec::new();
    for id in ids {
        out.extend_from_slice(&(id.as_str().len() as u32).to_le_bytes());
        out.extend_from_slice(id.as_str().as_bytes());
    }
    out
}

pub(crate) fn decode_ids(mut raw: &[u8]) -> Result<Vec<RecordId>> {
    let corrupt = || EngineError::Corrupt("change log entry".into());
    let mut ids = Vec::new();
    while !raw.is_empty() {
        let (len, rest) = raw.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        let id = rest.get(..len).ok_or_else(corrupt)?;
        ids.push(RecordId::from_utf8(id).map_err(|_| corrupt())?);
        raw = &rest[len..];
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ids_round_trip(ids in prop::collection::vec("\\PC{1,40}", 0..20)) {
            let ids: Vec<RecordId> = ids.into_iter().filter_map(|s| RecordId::new(s).ok()).collect();
            prop_assert_eq!(decode_ids(&encode_ids(ids.iter())).unwrap(), ids);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(raw in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_ids(&raw);
        }
    }

    #[test]
    fn numbers_start_past_the_persisted_change() {
        let log = ChangeLog::starting_at(3, 7);
        assert_eq!(log.next(), 8);
        assert_eq!(log.pending(), 1);
        log.set_persisted(8);
        assert_eq!(log.pending(), 0);
    }
}
