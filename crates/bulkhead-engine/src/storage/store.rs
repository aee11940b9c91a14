//! One tenant's column family, owned together with the database that holds it. A `TenantStore`
//! can only address its own column family: writes are collected in a `WriteSet` of plain keys
//! and bound to the column family only inside `write`, so there is no way to aim a batch at
//! another tenant.

use std::path::PathBuf;
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};

use crate::error::{EngineError, Result};
use crate::storage::group::Db;

pub(crate) struct TenantStore {
    db: Arc<Db>,
    cf_name: String,
    sync: bool,
}

impl std::fmt::Debug for TenantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStore")
            .field("cf", &self.cf_name)
            .finish_non_exhaustive()
    }
}

/// Mutations to apply atomically to one tenant's column family.
#[derive(Debug, Default)]
pub(crate) struct WriteSet {
    ops: Vec<Op>,
}

#[derive(Debug)]
enum Op {
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

    pub fn delete_range(&mut self, (start, end): (Vec<u8>, Vec<u8>)) {
        self.ops.push(Op::DeleteRange(start, end));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl TenantStore {
    pub fn new(db: Arc<Db>, cf_name: String, sync: bool) -> Self {
        Self { db, cf_name, sync }
    }

    /// Marks the tenant's group as in use now (idle groups are closed by age).
    pub fn touch(&self) {
        self.db.touch();
    }

    fn cf(&self) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(&self.cf_name)
            .ok_or_else(|| EngineError::Storage(format!("column family {} is gone", self.cf_name)))
    }

    /// Applies `set` atomically; returns once it is in the write-ahead log (and fsynced when the
    /// engine is configured to sync).
    pub fn write(&self, set: WriteSet) -> Result<()> {
        self.write_with(set, self.sync)
    }

    /// Like `write`, but never waits for an fsync: the write is in the WAL, in the OS's hands,
    /// which survives a process crash; the next synced write makes it durable against power loss
    /// too. For the audit trail, which is appended on every request.
    pub fn write_unsynced(&self, set: WriteSet) -> Result<()> {
        self.write_with(set, false)
    }

    fn write_with(&self, set: WriteSet, sync: bool) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        let cf = self.cf()?;
        let mut batch = WriteBatch::default();
        for op in set.ops {
            match op {
                Op::Put(k, v) => batch.put_cf(&cf, k, v),
                Op::Delete(k) => batch.delete_cf(&cf, k),
                Op::DeleteRange(s, e) => batch.delete_range_cf(&cf, s, e),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    pub fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let cf = self.cf()?;
        self.db
            .batched_multi_get_cf(&cf, keys, false)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    /// Visits `[start, end)` in key order until `visit` returns `false`.
    pub fn scan(
        &self,
        (start, end): (Vec<u8>, Vec<u8>),
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let cf = self.cf()?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        ro.fill_cache(false);
        for item in self
            .db
            .iterator_cf_opt(&cf, ro, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// The greatest key in `[start, end)`.
    pub fn last_key(&self, (start, end): (Vec<u8>, Vec<u8>)) -> Result<Option<Vec<u8>>> {
        let cf = self.cf()?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        let mut it = self
            .db
            .iterator_cf_opt(&cf, ro, IteratorMode::From(&end, Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                Ok((k.as_ref() < end.as_slice()).then(|| k.to_vec()))
            }
            None => Ok(None),
        }
    }

    /// Asks RocksDB to compact `[start, end)` now, so deleted and expired data leaves the disk.
    pub fn compact(&self, (start, end): (Vec<u8>, Vec<u8>)) -> Result<()> {
        self.db
            .compact_range_cf(&self.cf()?, Some(start), Some(end));
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush_cf(&self.cf()?)?;
        Ok(())
    }

    /// Bytes on disk and in memtables for this column family.
    pub fn size_bytes(&self) -> Result<u64> {
        let cf = self.cf()?;
        let sst = self
            .db
            .property_int_value_cf(&cf, "rocksdb.total-sst-files-size")?
            .unwrap_or(0);
        let mem = self
            .db
            .property_int_value_cf(&cf, "rocksdb.cur-size-all-mem-tables")?
            .unwrap_or(0);
        Ok(sst + mem)
    }

    /// The table files of this column family.
    pub fn table_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.db.path().to_path_buf();
        Ok(self
            .db
            .live_files()?
            .into_iter()
            .filter(|f| f.column_family_name == self.cf_name)
            .map(|f| dir.join(f.name.trim_start_matches('/')))
            .collect())
    }

    /// Drops this tenant's column family; RocksDB deletes its files once no reader holds them.
    pub fn drop_column_family(&self) -> Result<()> {
        self.db.drop_cf(&self.cf_name)?;
        Ok(())
    }
}
