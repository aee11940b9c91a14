//! The in-memory storage backend: a tenant's data is a sorted map, a group a set of such maps.
//! It exists so that the engine's guarantees (the model-based isolation test, the conformance
//! suite) are checked against a second, plainly correct implementation of the storage
//! contract: what passes on both depends on the contract, not on RocksDB's particulars.
//! Nothing is durable; the data lives as long as the engine.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{EngineError, Result};
use crate::storage::tenant_storage::{KeyRange, Op, WriteSet};

pub(crate) type Rows = BTreeMap<Vec<u8>, Vec<u8>>;

/// The tables of one group, kept while the group is closed (closing a group only drops the
/// engine's hold on it, as closing a RocksDB instance keeps its files).
#[derive(Debug, Default)]
pub(crate) struct MemoryGroup {
    tables: Mutex<BTreeMap<String, Arc<MemoryTable>>>,
}

impl MemoryGroup {
    pub fn table_names(&self) -> Vec<String> {
        self.tables.lock().keys().cloned().collect()
    }

    pub fn create(&self, name: &str) -> Result<()> {
        let mut tables = self.tables.lock();
        if tables.contains_key(name) {
            return Err(EngineError::Storage(format!("table {name} exists")));
        }
        tables.insert(name.to_owned(), Arc::default());
        Ok(())
    }

    pub fn table(&self, name: &str) -> Result<Arc<MemoryTable>> {
        self.tables
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::Storage(format!("table {name} is gone")))
    }

    /// Removes the table; stores still holding it fail from now on.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let table = self
            .tables
            .lock()
            .remove(name)
            .ok_or_else(|| EngineError::Storage(format!("table {name} is gone")))?;
        table.dropped.store(true, Ordering::Release);
        table.rows.write().clear();
        Ok(())
    }
}

/// One tenant's rows.
#[derive(Debug, Default)]
pub(crate) struct MemoryTable {
    rows: RwLock<Rows>,
    dropped: AtomicBool,
}

impl MemoryTable {
    pub fn read(&self) -> Result<RwLockReadGuard<'_, Rows>> {
        let rows = self.rows.read();
        self.check_alive()?;
        Ok(rows)
    }

    pub fn write(&self) -> Result<RwLockWriteGuard<'_, Rows>> {
        let rows = self.rows.write();
        self.check_alive()?;
        Ok(rows)
    }

    fn check_alive(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(EngineError::Storage("the table was dropped".into()));
        }
        Ok(())
    }
}

/// Applies `set` to `rows`, all of it or (a reversed range, refused as RocksDB refuses it)
/// none: the caller holds the write lock, so it is atomic.
pub(crate) fn apply(rows: &mut Rows, set: WriteSet) -> Result<()> {
    if set
        .ops
        .iter()
        .any(|op| matches!(op, Op::DeleteRange(start, end) if start > end))
    {
        return Err(EngineError::Storage(
            "a range whose end comes before its start".into(),
        ));
    }
    for op in set.ops {
        match op {
            Op::Put(k, v) => {
                rows.insert(k, v);
            }
            Op::Delete(k) => {
                rows.remove(&k);
            }
            Op::DeleteRange(start, end) => {
                let doomed: Vec<Vec<u8>> =
                    range(rows, (start, end)).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    rows.remove(&k);
                }
            }
        }
    }
    Ok(())
}

/// The rows in `[start, end)` (none if the range is empty or reversed).
pub(crate) fn range(
    rows: &Rows,
    (start, end): KeyRange,
) -> impl DoubleEndedIterator<Item = (&Vec<u8>, &Vec<u8>)> {
    let bounds = (start < end).then_some((Bound::Included(start), Bound::Excluded(end)));
    bounds.into_iter().flat_map(|b| rows.range(b))
}
