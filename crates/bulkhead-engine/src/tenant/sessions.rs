//! The way into a session: `TenantHandle::session` gives a `SessionHandle` for exactly one
//! session of the tenant, and every read and write of working memory is a method of it, so no
//! call can address two sessions or a session of another tenant. Every call checks the session
//! is still live by the engine's clock before it reads, so an ended or expired session answers
//! nothing from the millisecond it ends, long before the sweeper (`purge_dead_sessions`)
//! removes its keys.
//!
//! A tenant's session writes (create, append, end, purge, and the reads that count as activity)
//! are serial under the tenant's own session lock: the sequence numbers of a session's items and
//! the count of the tenant's sessions stay exact, and one tenant's sessions never wait on
//! another tenant's.

use std::cmp::Ordering as CmpOrdering;

use bulkhead_core::{Metric, SessionId};
use bulkhead_index::distance::{distance, normalize};
use parking_lot::MutexGuard;

use crate::access::{Access, CanWrite, KeyAdmin};
use crate::clock::millis;
use crate::collection::score_of;
use crate::error::{EngineError, Result};
use crate::keys;
use crate::session::{
    HistoryPage, MAX_APPEND_BATCH, MAX_HISTORY_PAGE, MAX_RECALL_TOP_K, MAX_SESSION_PAGE,
    MemoryItem, NewMemory, Recall, Recalled, SessionInfo, SessionPage, SessionSpec, StoredSession,
    TOUCH_EVERY_MS, decode_item, encode_item, validate_item,
};
use crate::storage::WriteSet;
use crate::tenant::TenantHandle;

/// One session of one tenant: the only way to its memory.
#[derive(Debug, Clone)]
pub struct SessionHandle<A: Access> {
    tenant: TenantHandle<A>,
    id: SessionId,
}

/// The tenant's session lock, with the count of its stored sessions (live or awaiting the
/// sweeper), read from disk on first use.
type SessionLock<'a> = MutexGuard<'a, Option<usize>>;

impl<A: Access> TenantHandle<A> {
    /// The handle of live session `id`; `SessionNotFound` if it doesn't exist, ended or
    /// expired.
    pub fn session(&self, id: &SessionId) -> Result<SessionHandle<A>> {
        let _g = self.enter()?;
        self.live_session(id)?;
        Ok(SessionHandle {
            tenant: self.clone(),
            id: id.clone(),
        })
    }

    /// The stored settings of `id` if it is live now.
    pub(super) fn live_session(&self, id: &SessionId) -> Result<StoredSession> {
        let now = self.state.now_ms();
        self.stored_session(id)?
            .filter(|s| s.is_live(now))
            .ok_or_else(|| EngineError::SessionNotFound(id.clone()))
    }

    fn stored_session(&self, id: &SessionId) -> Result<Option<StoredSession>> {
        let raw = self
            .store()
            .multi_get(&[keys::session_key(id)])?
            .pop()
            .flatten();
        raw.map(|r| StoredSession::decode(&r)).transpose()
    }

    /// Takes the tenant's session lock, counting its sessions first if nobody has yet.
    fn lock_sessions(&self) -> Result<SessionLock<'_>> {
        let mut lock = self.state.sessions.lock();
        if lock.is_none() {
            let mut count = 0;
            self.store().scan(keys::sessions_range(None), &mut |_, _| {
                count += 1;
                Ok(true)
            })?;
            *lock = Some(count);
        }
        Ok(lock)
    }

    /// Removes the keys of sessions that ended or expired; returns how many. Runs in the
    /// background sweeper; exposed for operators and tests.
    pub fn purge_dead_sessions(&self) -> Result<usize> {
        let _g = self.enter_for_maintenance()?;
        let now = self.state.now_ms();
        let mut dead = Vec::new();
        self.store().scan(keys::sessions_range(None), &mut |k, v| {
            if !StoredSession::decode(v)?.is_live(now) {
                dead.push(keys::session_of_key(k)?);
            }
            Ok(true)
        })?;
        let mut purged = 0;
        for id in dead {
            let mut lock = self.lock_sessions()?;
            // Dead stays dead, but the id may have been created anew since the scan.
            if self.stored_session(&id)?.is_some_and(|s| s.is_live(now)) {
                continue;
            }
            let mut set = WriteSet::default();
            for range in keys::session_data_ranges(&id) {
                set.delete_range(range);
            }
            set.delete(keys::session_key(&id));
            self.store().write(set)?;
            *lock = lock.map(|n| n.saturating_sub(1));
            drop(lock);
            for range in keys::session_data_ranges(&id) {
                self.store().compact(range)?;
            }
            purged += 1;
        }
        Ok(purged)
    }
}

impl<A: CanWrite> TenantHandle<A> {
    /// Creates session `id`. An id whose session ended or expired may be created again: the
    /// old session's keys go in the same write that creates the new one, so nothing of it can
    /// show through.
    pub fn create_session(&self, id: &SessionId, spec: &SessionSpec) -> Result<SessionInfo> {
        spec.validate()?;
        let _g = self.enter()?;
        let mut lock = self.lock_sessions()?;
        let now = self.state.now_ms();
        let mut set = WriteSet::default();
        let mut count = lock.unwrap_or(0);
        match self.stored_session(id)? {
            Some(s) if s.is_live(now) => return Err(EngineError::SessionExists(id.clone())),
            Some(_) => {
                for range in keys::session_data_ranges(id) {
                    set.delete_range(range);
                }
                count = count.saturating_sub(1);
            }
            None => {}
        }
        let max = self.state.services.config.max_sessions_per_tenant;
        if count >= max {
            return Err(EngineError::QuotaExceeded(format!(
                "a tenant holds at most {max} sessions (max-sessions-per-tenant); end some first"
            )));
        }
        let stored = StoredSession::new(spec, now);
        set.put(keys::session_key(id), stored.encode());
        self.commit(set, 0)?;
        *lock = Some(count + 1);
        Ok(stored.info(id.clone()))
    }
}

impl TenantHandle<KeyAdmin> {
    /// The tenant's live sessions by id, `page_size` at most, after `after`.
    pub fn list_sessions(
        &self,
        after: Option<&SessionId>,
        page_size: usize,
    ) -> Result<SessionPage> {
        let _g = self.enter()?;
        let page_size = page_size.clamp(1, MAX_SESSION_PAGE);
        let now = self.state.now_ms();
        let mut sessions = Vec::new();
        let mut more = false;
        self.store()
            .scan(keys::sessions_range(after), &mut |k, v| {
                let stored = StoredSession::decode(v)?;
                if !stored.is_live(now) {
                    return Ok(true);
                }
                if sessions.len() == page_size {
                    more = true;
                    return Ok(false);
                }
                sessions.push(stored.info(keys::session_of_key(k)?));
                Ok(true)
            })?;
        let next_after = more
            .then(|| sessions.last().map(|s: &SessionInfo| s.id.clone()))
            .flatten();
        Ok(SessionPage {
            sessions,
            next_after,
        })
    }
}

/// A recall candidate: an item and its distance to the query.
struct Candidate {
    distance: f32,
    item: MemoryItem,
}

/// Closest first, then later items first among equals (the more recent memory wins a tie).
fn closer(a: &Candidate, b: &Candidate) -> CmpOrdering {
    a.distance
        .total_cmp(&b.distance)
        .then(b.item.sequence.cmp(&a.item.sequence))
}

/// Keeps the `top_k` closest of `candidates`, in order.
fn keep_closest(candidates: &mut Vec<Candidate>, top_k: usize) {
    candidates.sort_by(closer);
    candidates.truncate(top_k);
}

impl<A: Access> SessionHandle<A> {
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The session's settings and figures, if it is still live. Doesn't count as activity.
    pub fn info(&self) -> Result<SessionInfo> {
        let _g = self.tenant.enter()?;
        Ok(self.tenant.live_session(&self.id)?.info(self.id.clone()))
    }

    /// Checks the session is live and counts the call as activity; returns its settings.
    fn enter_active(&self) -> Result<StoredSession> {
        let session = self.tenant.live_session(&self.id)?;
        let now = self.tenant.state.now_ms();
        if now.saturating_sub(session.last_active_ms) < TOUCH_EVERY_MS {
            return Ok(session);
        }
        let _lock = self.tenant.lock_sessions()?;
        let mut session = self.tenant.live_session(&self.id)?;
        session.last_active_ms = now;
        let mut set = WriteSet::default();
        set.put(keys::session_key(&self.id), session.encode());
        // Unsynced: a touch lost to a crash only ends the session sooner.
        self.tenant.store().write_unsynced(set)?;
        Ok(session)
    }

    /// The items with the closest vectors to `recall.vector` among the session's recent ones
    /// (those in its window), closest first.
    pub fn recall(&self, recall: &Recall) -> Result<Vec<Recalled>> {
        let _g = self.tenant.enter()?;
        if recall.top_k == 0 || recall.top_k > MAX_RECALL_TOP_K {
            return Err(EngineError::InvalidArgument(format!(
                "top_k: between 1 and {MAX_RECALL_TOP_K}"
            )));
        }
        let session = self.enter_active()?;
        if session.dimension == 0 {
            return Err(EngineError::InvalidArgument(
                "this session was created without vectors: read it with History".into(),
            ));
        }
        bulkhead_core::validate_vector(&recall.vector, session.dimension, session.metric)?;
        let mut query = recall.vector.clone();
        if session.metric == Metric::Cosine {
            normalize(&mut query);
        }
        let from = recall
            .last_items
            .map_or(0, |n| session.next_sequence.saturating_sub(n));
        let now = self.tenant.state.now_ms();
        let since = recall
            .max_age
            .map_or(0, |age| now.saturating_sub(millis(age)));
        // Sorted down to `top_k` whenever twice that many are held: memory stays bounded by
        // the request, not the window.
        let mut closest = Vec::with_capacity(2 * recall.top_k);
        self.tenant
            .store()
            .scan(keys::memory_range(&self.id, from), &mut |k, v| {
                let mut item = decode_item(keys::sequence_of(&self.id, k)?, v)?;
                if item.created_at_ms < since {
                    return Ok(true);
                }
                let Some(vector) = &item.vector else {
                    return Ok(true);
                };
                let distance = distance(session.metric, &query, vector);
                if !recall.include_vectors {
                    item.vector = None;
                }
                closest.push(Candidate { distance, item });
                if closest.len() >= 2 * recall.top_k {
                    keep_closest(&mut closest, recall.top_k);
                }
                Ok(true)
            })?;
        keep_closest(&mut closest, recall.top_k);
        Ok(closest
            .into_iter()
            .map(|c| Recalled {
                score: score_of(session.metric, c.distance),
                item: c.item,
            })
            .collect())
    }

    /// The session's items in the order they were appended, `page_size` at most, after
    /// sequence number `after`.
    pub fn history(&self, after: Option<u64>, page_size: usize) -> Result<HistoryPage> {
        let _g = self.tenant.enter()?;
        self.enter_active()?;
        let page_size = page_size.clamp(1, MAX_HISTORY_PAGE);
        let from = after.map_or(0, |s| s.saturating_add(1));
        let mut items = Vec::new();
        let mut more = false;
        self.tenant
            .store()
            .scan(keys::memory_range(&self.id, from), &mut |k, v| {
                if items.len() == page_size {
                    more = true;
                    return Ok(false);
                }
                items.push(decode_item(keys::sequence_of(&self.id, k)?, v)?);
                Ok(true)
            })?;
        let next_after = more
            .then(|| items.last().map(|i: &MemoryItem| i.sequence))
            .flatten();
        Ok(HistoryPage { items, next_after })
    }
}

impl<A: CanWrite> SessionHandle<A> {
    /// Appends `items` in order, atomically: all are stored or none. Returns them as stored.
    pub fn append(&self, items: Vec<NewMemory>) -> Result<Vec<MemoryItem>> {
        let _g = self.tenant.enter()?;
        if items.is_empty() || items.len() > MAX_APPEND_BATCH {
            return Err(EngineError::InvalidArgument(format!(
                "append between 1 and {MAX_APPEND_BATCH} items"
            )));
        }
        let _lock = self.tenant.lock_sessions()?;
        let mut session = self.tenant.live_session(&self.id)?;
        let max_text = self.tenant.state.services.config.max_text_bytes;
        for (index, item) in items.iter().enumerate() {
            validate_item(item, &session, max_text)
                .map_err(|e| EngineError::InvalidArgument(format!("item {index}: {e}")))?;
        }
        let max_items = self.tenant.state.services.config.max_items_per_session;
        if session.next_sequence + items.len() as u64 > max_items {
            return Err(EngineError::QuotaExceeded(format!(
                "a session holds at most {max_items} items (max-items-per-session); start another"
            )));
        }
        let incoming: u64 = items
            .iter()
            .map(|i| (i.text.len() + i.vector.as_ref().map_or(0, |v| v.len() * 4)) as u64)
            .sum();
        self.tenant.check_stored_bytes(incoming, "append")?;
        let now = self.tenant.state.now_ms();
        let mut set = WriteSet::default();
        let mut stored = Vec::with_capacity(items.len());
        let mut ids_in_batch = std::collections::HashSet::new();
        for item in items {
            let sequence = session.next_sequence;
            if let Some(id) = &item.id {
                let id_key = keys::memory_id_key(&self.id, id);
                let taken = !ids_in_batch.insert(id.clone())
                    || self
                        .tenant
                        .store()
                        .multi_get(std::slice::from_ref(&id_key))?[0]
                        .is_some();
                if taken {
                    return Err(EngineError::MemoryExists(id.clone()));
                }
                set.put(id_key, sequence.to_be_bytes().to_vec());
            }
            let mut vector = item.vector;
            if session.metric == Metric::Cosine
                && let Some(v) = &mut vector
            {
                normalize(v);
            }
            let memory = MemoryItem {
                id: item.id,
                sequence,
                kind: item.kind,
                text: item.text,
                metadata: item.metadata,
                chunk_ids: item.chunk_ids,
                created_at_ms: now,
                vector,
            };
            set.put(keys::memory_key(&self.id, sequence), encode_item(&memory));
            session.next_sequence += 1;
            stored.push(memory);
        }
        session.last_active_ms = now;
        set.put(keys::session_key(&self.id), session.encode());
        self.tenant.commit(set, stored.len() as u64)?;
        Ok(stored)
    }

    /// Ends the session: from now on it answers nothing, and the sweeper removes its items.
    pub fn end(&self) -> Result<()> {
        let _g = self.tenant.enter()?;
        let _lock = self.tenant.lock_sessions()?;
        let mut session = self.tenant.live_session(&self.id)?;
        session.ended_ms = Some(self.tenant.state.now_ms());
        let mut set = WriteSet::default();
        set.put(keys::session_key(&self.id), session.encode());
        self.tenant.commit(set, 0)?;
        Ok(())
    }
}
