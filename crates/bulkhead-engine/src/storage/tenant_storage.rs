//! What the engine needs of one tenant's storage, as a trait: the RocksDB column family
//! (`store::RocksTenantStore`) and the in-memory table (`memory_store::MemoryTenantStore`) implement
//! it, the conformance suite (`conformance/`) holds both to the same behaviour, and the tenant
//! module sees nothing else. A `TenantStorage` addresses exactly one tenant: writes are
//! collected as plain keys in a `WriteSet` and bound to the tenant only inside `write`, so there
//! is no way to aim a batch at another tenant.

use std::path::PathBuf;

use crate::error::Result;

/// A half-open key range `[start, end)`. A reversed one (end before start) is refused.
pub(crate) type KeyRange = (Vec<u8>, Vec<u8>);

/// What a scan calls with each key and value; `Ok(false)` stops it.
pub(crate) type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

pub(crate) trait TenantStorage: Send + Sync + std::fmt::Debug {
    /// Applies `set` atomically; returns once it is durable as the engine is configured (in
    /// the write-ahead log, fsynced when `sync_writes`).
    fn write(&self, set: WriteSet) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        match self.apply(set)? {
            Written::InLog => self.sync_log(),
            Written::Durable => Ok(()),
        }
    }

    /// The first step of `write`, for a caller that orders its writes under a lock of its own
    /// and syncs after letting go of it: applies `set` atomically and says how far it went.
    /// Usually into the log, unsynced, as `write_unsynced`; but a set large enough that
    /// neighbours' syncs would carry it is made durable here, apart from the log (RocksDB:
    /// see `store.rs`).
    fn apply(&self, set: WriteSet) -> Result<Written> {
        self.write_unsynced(set)?;
        Ok(Written::InLog)
    }

    /// Like `write`, but never waits for an fsync: the write survives a process crash, and the
    /// next synced write (or `sync_log`) makes it durable against power loss too. For the audit
    /// trail, which is appended on every request, and for writers that must not hold a lock
    /// while the disk syncs.
    fn write_unsynced(&self, set: WriteSet) -> Result<()>;

    /// Returns once every write this storage made before the call is durable as the engine is
    /// configured: fsynced when `sync_writes`, else at once.
    fn sync_log(&self) -> Result<()>;

    /// The values of `keys`, in order (`None`: absent).
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Visits the range in key order until `visit` returns `false` or an error (returned).
    fn scan(&self, range: KeyRange, visit: &mut Visitor<'_>) -> Result<()>;

    /// The greatest key in the range.
    fn last_key(&self, range: KeyRange) -> Result<Option<Vec<u8>>>;

    /// Reclaims the space of deleted and expired data in the range now.
    fn compact(&self, range: KeyRange) -> Result<()>;

    /// Moves buffered writes to durable files (a no-op where there are none).
    fn flush(&self) -> Result<()>;

    /// Bytes the tenant's data takes, buffers included.
    fn size_bytes(&self) -> Result<u64>;

    /// The files holding the tenant's data (none in memory).
    fn table_files(&self) -> Result<Vec<PathBuf>>;

    /// Removes the tenant's data; every later call fails.
    fn drop_all(&self) -> Result<()>;

    /// Marks the tenant's group as in use now (idle groups are closed by age).
    fn touch(&self);
}

/// How far `TenantStorage::apply` took a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// In the log: it survives a crash of the process; `sync_log` makes it durable.
    InLog,
    /// Durable as the engine is configured, nothing left to sync.
    Durable,
}

/// Mutations to apply atomically to one tenant's storage.
#[derive(Debug, Default)]
pub(crate) struct WriteSet {
    pub(super) ops: Vec<Op>,
}

#[derive(Debug)]
pub(super) enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
}

impl WriteSet {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }

    pub fn delete_range(&mut self, (start, end): KeyRange) {
        self.ops.push(Op::DeleteRange(start, end));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
