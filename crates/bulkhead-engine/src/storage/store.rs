//! One tenant's column family, owned together with the database that holds it: the RocksDB
//! implementation of `TenantStorage`. A store can only address its own column family; the
//! `WriteSet` it is given is bound to it only inside `write`.
//!
//! A group's tenants share one write-ahead log, and an fsync of it carries every byte written
//! to it before: under a neighbour's flood of 785 KB upserts, a tenant's one-record upserts
//! waited for the flood's batches to reach the disk with theirs (docs/benchmarks.md, *Large
//! writes around the shared log*). So in a group shared with other tenants, a durable set of
//! `LARGE_WRITE_BYTES` or more skips the log: it goes to the memtables only and is made durable
//! by flushing the tenant's own column family to a table file (synced, like the manifest that
//! records it) before the write returns. RocksDB holds the flush back while the column family
//! has too many level-0 files, so a tenant writing large batches waits for its own compactions
//! instead of stalling the group's writes. A tenant alone in its group writes through the log,
//! which is its own: a flush per write there only costs it (and the disk) more
//! (docs/benchmarks.md, *A group of one's own*).

use std::path::PathBuf;
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::error::{EngineError, Result};
use crate::storage::group::{Db, RawDb};
use crate::storage::tenant_storage::{KeyRange, Op, TenantStorage, Visitor, WriteSet, Written};

/// Durable writes of at least this many bytes go around the group's log when it is shared.
const LARGE_WRITE_BYTES: usize = 256 << 10;

pub(crate) struct RocksTenantStore {
    db: Arc<Db>,
    cf_name: String,
    sync: bool,
}

impl std::fmt::Debug for RocksTenantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksTenantStore")
            .field("cf", &self.cf_name)
            .finish_non_exhaustive()
    }
}

impl RocksTenantStore {
    /// The store of column family `cf_name` of `db`; an error if there is none.
    pub fn open(db: Arc<Db>, cf_name: String, sync: bool) -> Result<Self> {
        let store = Self { db, cf_name, sync };
        store.cf()?;
        Ok(store)
    }

    fn raw(&self) -> Result<&RawDb> {
        self.db.rocks()
    }

    fn cf(&self) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.raw()?
            .cf_handle(&self.cf_name)
            .ok_or_else(|| EngineError::Storage(format!("column family {} is gone", self.cf_name)))
    }

    /// `set` bound to this store's column family.
    fn batch(&self, cf: &Arc<BoundColumnFamily<'_>>, set: WriteSet) -> WriteBatch {
        let mut batch = WriteBatch::default();
        for op in set.ops {
            match op {
                Op::Put(k, v) => batch.put_cf(cf, k, v),
                Op::Delete(k) => batch.delete_cf(cf, k),
                Op::DeleteRange(s, e) => batch.delete_range_cf(cf, s, e),
            }
        }
        batch
    }
}

impl TenantStorage for RocksTenantStore {
    fn apply(&self, set: WriteSet) -> Result<Written> {
        if set.is_empty() {
            return Ok(Written::Durable);
        }
        let cf = self.cf()?;
        let batch = self.batch(&cf, set);
        if !self.sync || batch.size_in_bytes() < LARGE_WRITE_BYTES || !self.db.is_shared() {
            self.db.write(batch)?;
            return Ok(Written::InLog);
        }
        self.db.write_around_log(batch)?;
        self.raw()?.flush_cf(&cf)?;
        Ok(Written::Durable)
    }

    fn write_unsynced(&self, set: WriteSet) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        let cf = self.cf()?;
        self.db.write(self.batch(&cf, set))
    }

    fn sync_log(&self) -> Result<()> {
        if self.sync {
            self.db.sync_log()?;
        }
        Ok(())
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let cf = self.cf()?;
        self.raw()?
            .batched_multi_get_cf(&cf, keys, false)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    fn scan(&self, (start, end): KeyRange, visit: &mut Visitor<'_>) -> Result<()> {
        let cf = self.cf()?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        ro.fill_cache(false);
        for item in
            self.raw()?
                .iterator_cf_opt(&cf, ro, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, (start, end): KeyRange) -> Result<Option<Vec<u8>>> {
        let cf = self.cf()?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        // Both bounds on the iterator: seeking back from `end` itself would stop at a key equal
        // to `end` and report nothing rather than the key before it.
        ro.set_iterate_upper_bound(end);
        match self
            .raw()?
            .iterator_cf_opt(&cf, ro, IteratorMode::End)
            .next()
        {
            Some(item) => Ok(Some(item?.0.to_vec())),
            None => Ok(None),
        }
    }

    /// Asks RocksDB to compact the range now, so deleted and expired data leaves the disk.
    fn compact(&self, (start, end): KeyRange) -> Result<()> {
        self.raw()?
            .compact_range_cf(&self.cf()?, Some(start), Some(end));
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.raw()?.flush_cf(&self.cf()?)?;
        Ok(())
    }

    /// Bytes on disk and in memtables for this column family.
    fn size_bytes(&self) -> Result<u64> {
        let cf = self.cf()?;
        let raw = self.raw()?;
        let sst = raw
            .property_int_value_cf(&cf, "rocksdb.total-sst-files-size")?
            .unwrap_or(0);
        let mem = raw
            .property_int_value_cf(&cf, "rocksdb.cur-size-all-mem-tables")?
            .unwrap_or(0);
        Ok(sst + mem)
    }

    fn table_files(&self) -> Result<Vec<PathBuf>> {
        let raw = self.raw()?;
        let dir = raw.path().to_path_buf();
        Ok(raw
            .live_files()?
            .into_iter()
            .filter(|f| f.column_family_name == self.cf_name)
            .map(|f| dir.join(f.name.trim_start_matches('/')))
            .collect())
    }

    /// Drops this tenant's column family; RocksDB deletes its files once no reader holds them.
    fn drop_all(&self) -> Result<()> {
        self.db.drop_tenant_table(&self.cf_name)
    }

    fn touch(&self) {
        self.db.touch();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::EngineConfig;
    use crate::storage::{Groups, SharedResources, StorageBackend};

    /// A set of one put whose batch is `bytes` long in `store`'s column family.
    fn set_of_batch_bytes(store: &RocksTenantStore, bytes: usize) -> WriteSet {
        let one_put = |value_len: usize| {
            let mut set = WriteSet::default();
            set.put(b"k".to_vec(), vec![b'v'; value_len]);
            set
        };
        let measured = |value_len: usize| {
            let cf = store.cf().unwrap();
            store.batch(&cf, one_put(value_len)).size_in_bytes()
        };
        // The batch's overhead (header, key, lengths) is the same for values of a similar size.
        let probe = bytes / 2;
        let value_len = bytes - (measured(probe) - probe);
        assert_eq!(measured(value_len), bytes, "overhead measured wrong");
        one_put(value_len)
    }

    #[test]
    fn in_a_shared_group_a_synced_batch_of_the_large_size_goes_around_the_log_and_one_byte_less_into_it()
     {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig::new(dir.path());
        let groups = Groups::new(
            dir.path().join("groups"),
            Arc::new(SharedResources::new(&config)),
            StorageBackend::RocksDb,
        );
        let db = groups.db(0, HashSet::new).unwrap();
        groups.create_tenant_cf(&db, "t/a/1").unwrap();
        groups.create_tenant_cf(&db, "t/b/2").unwrap();
        let store = RocksTenantStore::open(db.clone(), "t/a/1".to_owned(), true).unwrap();
        let at = set_of_batch_bytes(&store, LARGE_WRITE_BYTES);
        assert_eq!(store.apply(at).unwrap(), Written::Durable);
        let below = set_of_batch_bytes(&store, LARGE_WRITE_BYTES - 1);
        assert_eq!(store.apply(below).unwrap(), Written::InLog);

        // Alone in the group, the log is the tenant's own: even a large write goes into it.
        db.drop_tenant_table("t/b/2").unwrap();
        let at = set_of_batch_bytes(&store, LARGE_WRITE_BYTES);
        assert_eq!(store.apply(at).unwrap(), Written::InLog);
    }
}
