//! One tenant's storage in the in-memory backend (see `memory`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::storage::group::Db;
use crate::storage::memory::{self, MemoryGroup, MemoryTable};
use crate::storage::tenant_storage::{KeyRange, TenantStorage, Visitor, WriteSet};

/// Rows copied out of the table per step of a scan.
const SCAN_PAGE: usize = 256;

pub(crate) struct MemoryTenantStore {
    /// The open group: held like a RocksDB store holds its database, so the group stays open
    /// while the tenant is in use.
    db: Arc<Db>,
    table: Arc<MemoryTable>,
    name: String,
}

impl std::fmt::Debug for MemoryTenantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTenantStore")
            .field("table", &self.name)
            .finish_non_exhaustive()
    }
}

impl MemoryTenantStore {
    pub fn new(db: Arc<Db>, group: &MemoryGroup, name: String) -> Result<Self> {
        let table = group.table(&name)?;
        Ok(Self { db, table, name })
    }
}

impl TenantStorage for MemoryTenantStore {
    fn write_unsynced(&self, set: WriteSet) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        memory::apply(&mut *self.table.write()?, set)
    }

    fn sync_log(&self) -> Result<()> {
        Ok(())
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let rows = self.table.read()?;
        Ok(keys.iter().map(|k| rows.get(k).cloned()).collect())
    }

    fn scan(&self, (mut start, end): KeyRange, visit: &mut Visitor<'_>) -> Result<()> {
        // A page at a time, copied out: the visitor runs without the table's lock, so it may
        // write to this very store, as it may to a RocksDB one.
        loop {
            let page: Vec<(Vec<u8>, Vec<u8>)> =
                memory::range(&*self.table.read()?, (start, end.clone()))
                    .take(SCAN_PAGE)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
            for (k, v) in &page {
                if !visit(k, v)? {
                    return Ok(());
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE => {
                    // The smallest key after `last`.
                    start = [last.as_slice(), &[0]].concat();
                }
                _ => return Ok(()),
            }
        }
    }

    fn last_key(&self, range: KeyRange) -> Result<Option<Vec<u8>>> {
        let rows = self.table.read()?;
        Ok(memory::range(&rows, range)
            .next_back()
            .map(|(k, _)| k.clone()))
    }

    fn compact(&self, _range: KeyRange) -> Result<()> {
        // Deleted rows are gone the moment they are deleted.
        self.table.read().map(drop)
    }

    fn flush(&self) -> Result<()> {
        self.table.read().map(drop)
    }

    fn size_bytes(&self) -> Result<u64> {
        let rows = self.table.read()?;
        Ok(rows.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum())
    }

    fn table_files(&self) -> Result<Vec<PathBuf>> {
        self.table.read().map(|_| Vec::new())
    }

    fn drop_all(&self) -> Result<()> {
        self.db.drop_tenant_table(&self.name)
    }

    fn touch(&self) {
        self.db.touch();
    }
}
