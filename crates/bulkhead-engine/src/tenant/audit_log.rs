//! The tenant's audit trail: appended under a per-tenant sequence, listed in order, pruned by
//! the tenant's retention. A write made through an audited handle carries its own event in its
//! own RocksDB batch, so a committed write without its event can't exist, whatever happens to
//! the request after the engine call (a cancelled client, a crash).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulkhead_index::CpuPacer;
use parking_lot::MutexGuard;

use crate::access::{Access, KeyAdmin};
use crate::audit::{AuditEntry, AuditEvent, AuditFilter, AuditStamp};
use crate::error::{EngineError, Result};
use crate::keys;
use crate::storage::{WriteSet, Written};
use crate::tenant::TenantHandle;

/// One page of a tenant's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Set when the scan budget ran out before the page filled: continue after this sequence.
    pub resume_after: Option<u64>,
}

/// The identity a handle's writes are audited under, and how many it committed.
#[derive(Debug)]
pub(crate) struct WriteAudit {
    stamp: AuditStamp,
    committed: AtomicU64,
}

impl<A: Access> TenantHandle<A> {
    /// This handle with every write it makes audited under `stamp`: the event goes into the
    /// write's own batch. Reads through it are not audited (the caller audits those).
    pub fn audited(&self, stamp: AuditStamp) -> TenantHandle<A> {
        TenantHandle {
            state: self.state.clone(),
            audit: Some(Arc::new(WriteAudit {
                stamp,
                committed: AtomicU64::new(0),
            })),
            reader: self.reader.clone(),
            reads: self.reads.clone(),
            access: std::marker::PhantomData,
        }
    }

    /// How many writes this handle (or a clone of it) committed with their audit event.
    pub fn audited_writes(&self) -> u64 {
        self.audit
            .as_ref()
            .map_or(0, |a| a.committed.load(Ordering::Acquire))
    }

    /// Applies `set` atomically, with the handle's audit event (reporting `record_count`) in the
    /// same batch when the handle is audited. The sequence lock is held while the batch enters
    /// the log, so events are committed in sequence order, but not while the log syncs: every
    /// request of the tenant appends its audit event under that lock, and one held across an
    /// fsync made all of them wait for the disk (a slow sync, a neighbour's flood on the same
    /// disk) behind one upsert (docs/benchmarks.md, *The audit sequence lock held across a log
    /// sync*).
    pub(crate) fn commit(&self, mut set: WriteSet, record_count: u64) -> Result<()> {
        let Some(audit) = &self.audit else {
            return self.store().write(set);
        };
        let written = {
            let mut next = self.state.audit_next.lock();
            let seq = self.next_audit_sequence(&next)?;
            let event = stamped(seq, self.state.now_ms(), audit.stamp.entry(record_count));
            set.put(keys::audit_key(seq), encode_event(&event));
            // A large set is made durable right here, still under the lock, so that no later
            // event of the tenant can survive a crash that this one does not (its log is not
            // the group's: `TenantStorage::apply`).
            let written = self.store().apply(set)?;
            *next = Some(seq + 1);
            written
        };
        // Applied with its event: committed, even if the sync below fails (the call then
        // fails, and the gate records that failure in an event of its own beside this one).
        audit.committed.fetch_add(1, Ordering::Release);
        match written {
            Written::InLog => self.store().sync_log(),
            Written::Durable => Ok(()),
        }
    }

    /// The next free sequence number, read from disk on first use.
    fn next_audit_sequence(&self, next: &MutexGuard<'_, Option<u64>>) -> Result<u64> {
        match **next {
            Some(seq) => Ok(seq),
            None => match self.store().last_key(keys::audit_range())? {
                Some(k) => Ok(keys::audit_seq_of(&k)? + 1),
                None => Ok(1),
            },
        }
    }

    /// Up to `limit` events with sequence greater than `after_sequence` and time at or after
    /// `since_ms`, oldest first.
    pub fn list_audit(
        &self,
        after_sequence: Option<u64>,
        since_ms: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>> {
        let filter = AuditFilter {
            since_ms,
            ..AuditFilter::default()
        };
        Ok(self
            .list_audit_page(after_sequence, &filter, limit, usize::MAX)?
            .events)
    }

    /// Up to `limit` events after `after_sequence` that `filter` matches, reading at most
    /// `scan_budget` events: a filter that matches nothing in a long trail costs one budget,
    /// not the trail. `resume_after` is set when the budget ran out first: the sequence to
    /// continue after. A long page offers the CPU as it goes (`CpuPacer`).
    pub fn list_audit_page(
        &self,
        after_sequence: Option<u64>,
        filter: &AuditFilter,
        limit: usize,
        scan_budget: usize,
    ) -> Result<AuditPage> {
        let _g = self.enter()?;
        let start = keys::audit_key(after_sequence.map_or(0, |s| s.saturating_add(1)));
        let (_, end) = keys::audit_range();
        let mut events = Vec::new();
        let mut scanned = 0;
        let mut resume_after = None;
        let mut pacer = CpuPacer::new();
        self.store().scan((start, end), &mut |_, v| {
            pacer.step();
            let event: AuditEvent = serde_json::from_slice(v)
                .map_err(|e| EngineError::Corrupt(format!("audit event: {e}")))?;
            scanned += 1;
            let sequence = event.sequence;
            if filter.matches(&event) {
                events.push(event);
            }
            if events.len() < limit && scanned >= scan_budget {
                resume_after = Some(sequence);
                return Ok(false);
            }
            Ok(events.len() < limit)
        })?;
        Ok(AuditPage {
            events,
            resume_after,
        })
    }

    /// How long this tenant keeps audit events.
    pub fn audit_retention(&self) -> Duration {
        self.state.record.read().audit_retention_secs.map_or(
            self.state.services.config.default_audit_retention,
            Duration::from_secs,
        )
    }
}

fn stamped(sequence: u64, time_ms: u64, e: AuditEntry) -> AuditEvent {
    AuditEvent {
        sequence,
        time_ms,
        principal: e.principal,
        operation: e.operation,
        resource: e.resource,
        outcome: e.outcome,
        record_count: e.record_count,
        context: e.context,
    }
}

fn encode_event(event: &AuditEvent) -> Vec<u8> {
    serde_json::to_vec(event).expect("audit events always serialise")
}

impl TenantHandle<KeyAdmin> {
    /// Appends events (in one write) and returns them with sequence and time assigned. The write
    /// is in the WAL before this returns, so a process crash loses nothing; it is not fsynced on
    /// its own (see `TenantStorage::write_unsynced`).
    pub fn append_audit(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditEvent>> {
        let _g = self.enter()?;
        let mut next = self.state.audit_next.lock();
        let mut seq = self.next_audit_sequence(&next)?;
        let time_ms = self.state.now_ms();
        let mut set = WriteSet::default();
        let mut events = Vec::with_capacity(entries.len());
        for e in entries {
            let event = stamped(seq, time_ms, e);
            set.put(keys::audit_key(seq), encode_event(&event));
            events.push(event);
            seq += 1;
        }
        self.store().write_unsynced(set)?;
        *next = Some(seq);
        Ok(events)
    }

    /// Deletes audit events older than the retention; returns how many.
    pub fn prune_audit(&self) -> Result<usize> {
        let retention_ms = crate::clock::millis(self.audit_retention());
        let cutoff = self.state.now_ms().saturating_sub(retention_ms);
        let _g = self.enter_for_maintenance()?;
        let mut first_kept = None;
        let mut pruned = 0;
        self.store().scan(keys::audit_range(), &mut |k, v| {
            let event: AuditEvent = serde_json::from_slice(v)
                .map_err(|e| EngineError::Corrupt(format!("audit event: {e}")))?;
            if event.time_ms >= cutoff {
                first_kept = Some(k.to_vec());
                return Ok(false);
            }
            pruned += 1;
            Ok(true)
        })?;
        if pruned > 0 {
            let (start, end) = keys::audit_range();
            let mut set = WriteSet::default();
            set.delete_range((start, first_kept.unwrap_or(end)));
            self.store().write(set)?;
        }
        Ok(pruned)
    }
}
