//! Key layout inside one tenant's column family. Every key a tenant owns lives in its own column
//! family, so none of these keys carries the tenant: there is nothing to get wrong. Prefix bytes:
//!
//! | prefix | key                                             | value                         |
//! |--------|-------------------------------------------------|-------------------------------|
//! | `m`    | `m` collection                                  | collection settings (JSON)    |
//! | `r`    | `r` collection `0x00` record-id                 | record (see `codec`)          |
//! | `x`    | `x` expires-at (u64 BE ms) collection `0x00` id | empty: the expiry index       |
//! | `a`    | `a` sequence (u64 BE)                           | audit event (JSON)            |
//! | `c`    | `c` collection `0x00` change (u64 BE)           | record ids a write touched    |
//! | `s`    | `s` session                                     | session settings (JSON)       |
//! | `t`    | `t` session `0x00` sequence (u64 BE)            | memory item (see `session`)   |
//! | `u`    | `u` session `0x00` memory-id                    | its sequence (u64 BE)         |
//!
//! The change log (`c`) lets a collection's index come back from its segment file: the
//! segment reflects every change up to its number, and activation replays the later ones
//! (see `tenant::persist`).
//!
//! A session's items (`t`) and memory ids (`u`) sit under its id, so a session is two key ranges
//! that no other session's keys fall into, which is what makes it a partition of its own.
//!
//! Collection and session ids never contain `0x00`, so the separator is unambiguous even though record ids
//! may contain any UTF-8. Big-endian numbers make the expiry index time-ordered, so a sweep
//! reads only what has expired.

use bulkhead_core::{CollectionId, RecordId, SessionId};

use crate::error::{EngineError, Result};

pub const META: u8 = b'm';
pub const RECORD: u8 = b'r';
pub const EXPIRY: u8 = b'x';
pub const AUDIT: u8 = b'a';
pub const CHANGE: u8 = b'c';
pub const SESSION: u8 = b's';
pub const MEMORY: u8 = b't';
pub const MEMORY_ID: u8 = b'u';
const SEP: u8 = 0;

pub fn meta_key(collection: &CollectionId) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + collection.as_str().len());
    k.push(META);
    k.extend_from_slice(collection.as_str().as_bytes());
    k
}

/// `[start, end)` of all collection settings keys.
pub fn meta_range() -> (Vec<u8>, Vec<u8>) {
    (vec![META], vec![META + 1])
}

pub fn collection_of_meta_key(key: &[u8]) -> Result<CollectionId> {
    let raw = key
        .strip_prefix(&[META])
        .ok_or_else(|| EngineError::Corrupt("collection key without prefix".into()))?;
    let s = std::str::from_utf8(raw).map_err(|_| EngineError::Corrupt("collection key".into()))?;
    CollectionId::new(s).map_err(|e| EngineError::Corrupt(e.to_string()))
}

fn record_prefix(collection: &CollectionId) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + collection.as_str().len());
    k.push(RECORD);
    k.extend_from_slice(collection.as_str().as_bytes());
    k.push(SEP);
    k
}

pub fn record_key(collection: &CollectionId, id: &RecordId) -> Vec<u8> {
    let mut k = record_prefix(collection);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// `[start, end)` of every key that starts with `prefix`, which ends in the separator: the end
/// is the prefix with its separator raised by one.
fn span_of(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.clone();
    *end.last_mut().expect("prefix is never empty") = SEP + 1;
    (prefix, end)
}

/// `[start, end)` of one collection's records.
pub fn record_range(collection: &CollectionId) -> (Vec<u8>, Vec<u8>) {
    span_of(record_prefix(collection))
}

/// The record id of a key inside `record_range(collection)`.
pub fn record_id_of(collection: &CollectionId, key: &[u8]) -> Result<RecordId> {
    let prefix_len = 2 + collection.as_str().len();
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| EngineError::Corrupt("short record key".into()))?;
    RecordId::from_utf8(raw).map_err(|e| EngineError::Corrupt(e.to_string()))
}

fn change_prefix(collection: &CollectionId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + collection.as_str().len());
    k.push(CHANGE);
    k.extend_from_slice(collection.as_str().as_bytes());
    k.push(SEP);
    k
}

pub fn change_key(collection: &CollectionId, change: u64) -> Vec<u8> {
    let mut k = change_prefix(collection);
    k.extend_from_slice(&change.to_be_bytes());
    k
}

/// `[start, end)` of one collection's change log.
pub fn change_range(collection: &CollectionId) -> (Vec<u8>, Vec<u8>) {
    span_of(change_prefix(collection))
}

/// The change number of a key inside `change_range(collection)`.
pub fn change_of(collection: &CollectionId, key: &[u8]) -> Result<u64> {
    let raw = key
        .get(2 + collection.as_str().len()..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or_else(|| EngineError::Corrupt("change key".into()))?;
    Ok(u64::from_be_bytes(raw))
}

pub fn expiry_key(expires_at_ms: u64, collection: &CollectionId, id: &RecordId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + collection.as_str().len() + id.as_str().len());
    k.push(EXPIRY);
    k.extend_from_slice(&expires_at_ms.to_be_bytes());
    k.extend_from_slice(collection.as_str().as_bytes());
    k.push(SEP);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// `[start, end)` of expiry entries that expire at or before `now`.
pub fn expired_range(now: u64) -> (Vec<u8>, Vec<u8>) {
    let mut end = vec![EXPIRY];
    end.extend_from_slice(&now.saturating_add(1).to_be_bytes());
    (vec![EXPIRY], end)
}

/// One entry of the expiry index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryEntry {
    pub expires_at_ms: u64,
    pub collection: CollectionId,
    pub id: RecordId,
}

pub fn parse_expiry_key(key: &[u8]) -> Result<ExpiryEntry> {
    let corrupt = || EngineError::Corrupt("malformed expiry key".into());
    let rest = key.strip_prefix(&[EXPIRY]).ok_or_else(corrupt)?;
    let (ts, rest) = rest.split_at_checked(8).ok_or_else(corrupt)?;
    let expires_at_ms = u64::from_be_bytes(ts.try_into().map_err(|_| corrupt())?);
    let sep = rest.iter().position(|b| *b == SEP).ok_or_else(corrupt)?;
    let collection = std::str::from_utf8(&rest[..sep])
        .ok()
        .and_then(|s| CollectionId::new(s).ok())
        .ok_or_else(corrupt)?;
    let id = RecordId::from_utf8(&rest[sep + 1..]).map_err(|_| corrupt())?;
    Ok(ExpiryEntry {
        expires_at_ms,
        collection,
        id,
    })
}

pub fn session_key(session: &SessionId) -> Vec<u8> {
    [&[SESSION], session.as_str().as_bytes()].concat()
}

/// `[start, end)` of every session's settings key, or of those after `after`.
pub fn sessions_range(after: Option<&SessionId>) -> (Vec<u8>, Vec<u8>) {
    let start = match after {
        Some(s) => [session_key(s), vec![0]].concat(),
        None => vec![SESSION],
    };
    (start, vec![SESSION + 1])
}

pub fn session_of_key(key: &[u8]) -> Result<SessionId> {
    key.strip_prefix(&[SESSION])
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(|s| SessionId::new(s).ok())
        .ok_or_else(|| EngineError::Corrupt("malformed session key".into()))
}

fn in_session(prefix: u8, session: &SessionId) -> Vec<u8> {
    [&[prefix], session.as_str().as_bytes(), &[SEP]].concat()
}

/// `[start, end)` of keys of `prefix` under one session.
fn session_span(prefix: u8, session: &SessionId) -> (Vec<u8>, Vec<u8>) {
    span_of(in_session(prefix, session))
}

pub fn memory_key(session: &SessionId, sequence: u64) -> Vec<u8> {
    [in_session(MEMORY, session), sequence.to_be_bytes().to_vec()].concat()
}

/// `[start, end)` of one session's items from sequence `from` on.
pub fn memory_range(session: &SessionId, from: u64) -> (Vec<u8>, Vec<u8>) {
    (memory_key(session, from), session_span(MEMORY, session).1)
}

/// The sequence number of a key inside `memory_range(session, _)`.
pub fn sequence_of(session: &SessionId, key: &[u8]) -> Result<u64> {
    key.get(2 + session.as_str().len()..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| EngineError::Corrupt("memory key".into()))
}

pub fn memory_id_key(session: &SessionId, id: &RecordId) -> Vec<u8> {
    [
        in_session(MEMORY_ID, session),
        id.as_str().as_bytes().to_vec(),
    ]
    .concat()
}

/// Every key range one session owns besides its settings key: its items and its memory ids.
pub fn session_data_ranges(session: &SessionId) -> [(Vec<u8>, Vec<u8>); 2] {
    [
        session_span(MEMORY, session),
        session_span(MEMORY_ID, session),
    ]
}

pub fn audit_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(AUDIT);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn audit_range() -> (Vec<u8>, Vec<u8>) {
    (vec![AUDIT], vec![AUDIT + 1])
}

pub fn audit_seq_of(key: &[u8]) -> Result<u64> {
    key.strip_prefix(&[AUDIT])
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| EngineError::Corrupt("malformed audit key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coll(s: &str) -> CollectionId {
        CollectionId::new(s).unwrap()
    }

    #[test]
    fn record_ranges_do_not_overlap_between_collections() {
        // "a" and "a-b": a prefix relation between collection names must not leak records.
        let (s, e) = record_range(&coll("a"));
        let other = record_key(&coll("a-b"), &RecordId::new("x").unwrap());
        assert!(!(s <= other && other < e));
        let own = record_key(&coll("a"), &RecordId::new("\0weird").unwrap());
        assert!(s <= own && own < e);
    }

    #[test]
    fn session_ranges_hold_exactly_their_own_sessions_keys() {
        let s = |id: &str| SessionId::new(id).unwrap();
        let id = RecordId::new("m1").unwrap();
        for (mine, other) in [("a", "a-b"), ("a-b", "a"), ("a", "b")] {
            let [items, ids] = session_data_ranges(&s(mine));
            let within = |(start, end): &(Vec<u8>, Vec<u8>), k: &Vec<u8>| start <= k && k < end;
            assert!(within(&items, &memory_key(&s(mine), u64::MAX)));
            assert!(within(&ids, &memory_id_key(&s(mine), &id)));
            assert!(!within(&items, &memory_key(&s(other), 0)));
            assert!(!within(&ids, &memory_id_key(&s(other), &id)));
            assert!(!within(
                &memory_range(&s(mine), 0),
                &memory_key(&s(other), 5)
            ));
        }
        let key = memory_key(&s("chat"), 77);
        assert_eq!(sequence_of(&s("chat"), &key).unwrap(), 77);
        let (start, end) = memory_range(&s("chat"), 10);
        assert!(memory_key(&s("chat"), 9) < start && start <= memory_key(&s("chat"), 10));
        assert!(key < end);
        assert_eq!(session_of_key(&session_key(&s("chat"))).unwrap(), s("chat"));
        let (after_a, _) = sessions_range(Some(&s("a")));
        assert!(session_key(&s("a")) < after_a && after_a <= session_key(&s("a-b")));
    }

    proptest! {
        #[test]
        fn expiry_keys_round_trip_and_sort_by_time(
            t1 in 0u64..u64::MAX / 2, t2 in 0u64..u64::MAX / 2,
            c in "[a-z0-9][a-z0-9_-]{0,10}", id in "\\PC{1,20}",
        ) {
            let c = coll(&c);
            let id = RecordId::new(id).unwrap();
            let k1 = expiry_key(t1, &c, &id);
            let parsed = parse_expiry_key(&k1).unwrap();
            prop_assert_eq!(parsed, ExpiryEntry { expires_at_ms: t1, collection: c.clone(), id: id.clone() });
            let k2 = expiry_key(t2, &c, &id);
            if t1 < t2 { prop_assert!(k1 < k2); }
            let (start, end) = expired_range(t1);
            prop_assert!(start <= k1 && k1 < end);
            prop_assert_eq!(t2 <= t1, start <= k2 && k2 < end);
        }

        #[test]
        fn record_ids_round_trip(c in "[a-z0-9][a-z0-9_-]{0,10}", id in "\\PC{1,40}") {
            let c = coll(&c);
            let id = RecordId::new(id).unwrap();
            let k = record_key(&c, &id);
            prop_assert_eq!(record_id_of(&c, &k).unwrap(), id);
            let (s, e) = record_range(&c);
            prop_assert!(s <= k && k < e);
        }
    }
}
