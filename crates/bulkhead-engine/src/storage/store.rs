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
        // Both bounds on the iterator: seeking back from `end` itself would stop at a key equal
        // to `end` and report nothing rather than the key before it.
        ro.set_iterate_upper_bound(end);
        match self.db.iterator_cf_opt(&cf, ro, IteratorMode::End).next() {
            Some(item) => Ok(Some(item?.0.to_vec())),
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::EngineConfig;
    use crate::storage::{Groups, SharedResources};

    /// Two tenants' stores in one group (one RocksDB instance), as the engine makes them.
    fn two_tenants(dir: &std::path::Path) -> (TenantStore, TenantStore) {
        let groups = Groups::new(
            dir.join("groups"),
            Arc::new(SharedResources::new(&EngineConfig::new(dir))),
        );
        let db = groups.db(0, HashSet::new).unwrap();
        for cf in ["t/a/1", "t/b/2"] {
            groups.create_tenant_cf(&db, cf).unwrap();
        }
        (
            groups.store(db.clone(), "t/a/1".into(), false),
            groups.store(db, "t/b/2".into(), false),
        )
    }

    fn keys_of(store: &TenantStore) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        store
            .scan((Vec::new(), vec![0xff]), |k, _| {
                keys.push(k.to_vec());
                Ok(true)
            })
            .unwrap();
        keys
    }

    /// The same keys written, read, range-deleted and compacted through one tenant's store
    /// never touch the other's, though both live in one database.
    #[test]
    fn a_store_reads_and_writes_its_own_column_family_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_tenants(dir.path());
        let value = |byte: u8| vec![byte; 4096];
        for (store, byte) in [(&a, b'a'), (&b, b'b')] {
            let mut set = WriteSet::default();
            for key in [&b"k1"[..], b"k2", b"k3"] {
                set.put(key.to_vec(), value(byte));
            }
            store.write(set).unwrap();
            assert!(
                store.size_bytes().unwrap() >= 3 * 4096,
                "counts its memtable"
            );
        }
        let got = b.multi_get(&[b"k1".to_vec(), b"k9".to_vec()]).unwrap();
        assert_eq!(got, [Some(value(b'b')), None]);

        let mut set = WriteSet::default();
        set.delete(b"k1".to_vec());
        set.delete_range((b"k2".to_vec(), b"k3".to_vec()));
        a.write(set).unwrap();
        a.compact((Vec::new(), vec![0xff])).unwrap();
        assert_eq!(keys_of(&a), [b"k3".to_vec()]);
        assert_eq!(
            keys_of(&b),
            [b"k1".to_vec(), b"k2".to_vec(), b"k3".to_vec()]
        );
        a.drop_column_family().unwrap();
        assert!(a.multi_get(&[b"k3".to_vec()]).is_err(), "gone");
        assert_eq!(keys_of(&b).len(), 3);
    }

    #[test]
    fn the_last_key_of_a_range_excludes_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_tenants(dir.path());
        let mut set = WriteSet::default();
        for key in [&b"k1"[..], b"k2", b"m"] {
            set.put(key.to_vec(), Vec::new());
        }
        a.write(set).unwrap();
        let last = |store: &TenantStore, start: &[u8], end: &[u8]| {
            store.last_key((start.to_vec(), end.to_vec())).unwrap()
        };
        assert_eq!(last(&a, b"k", b"m"), Some(b"k2".to_vec()));
        assert_eq!(last(&a, b"k", b"k2"), Some(b"k1".to_vec()));
        assert_eq!(last(&a, b"l", b"m"), None, "only the end itself");
        assert_eq!(last(&a, b"a", b"k"), None);
        assert_eq!(last(&b, b"k", b"n"), None, "the other tenant's store");
    }
}
