//! Tenant groups: each group is one RocksDB instance (or, in the in-memory backend, one set of
//! tables) holding at most `tenants_per_group` tenant column families. Creating a column family rewrites an options file that lists every column
//! family of its instance, so bounding the instance bounds the cost of a new tenant. Groups open
//! on first use, so a restart with thousands of tenants opens nothing but the registry, and an
//! idle group closes again, so memory and file descriptors follow the working set, not the
//! tenant count.
//!
//! A group's tenants share its write-ahead log, write queue and mutex: a tenant alone in its
//! group shares none of them, which is why new tenants are spread over groups before any two
//! share one (`groups-before-sharing`), and why a store asks `Db::is_shared` before taking its
//! large writes around the log.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use rocksdb::{DBWithThreadMode, FlushOptions, MultiThreaded, Options, WriteBatch, WriteOptions};

use crate::background::at_background_priority;
use crate::clock::Clock;
use crate::error::{EngineError, Result};
use crate::storage::memory::MemoryGroup;
use crate::storage::wal_sync::WalSync;
use crate::storage::{SharedResources, StorageBackend};

pub(crate) type RawDb = DBWithThreadMode<MultiThreaded>;

/// An open group: its database, and when it was last used.
pub(crate) struct Db {
    kind: DbKind,
    /// Last time any of the group's tenants was used; idle groups are closed by age.
    last_used_ms: AtomicU64,
    clock: Clock,
    /// Tenant tables (column families) the group holds now.
    tenant_tables: AtomicUsize,
}

enum DbKind {
    /// The RocksDB instance together with the column-family options its tenants were created
    /// with. Field order matters: the database closes before the options (and the compaction
    /// filter inside them) are freed.
    RocksDb {
        raw: RawDb,
        tenant_cf: Arc<Options>,
        wal_sync: WalSync,
    },
    Memory(Arc<MemoryGroup>),
}

impl Db {
    /// The RocksDB instance (an error in the in-memory backend, which has none).
    pub fn rocks(&self) -> Result<&RawDb> {
        match &self.kind {
            DbKind::RocksDb { raw, .. } => Ok(raw),
            DbKind::Memory(_) => Err(EngineError::Storage(
                "a RocksDB store on an in-memory group".into(),
            )),
        }
    }

    pub fn touch(&self) {
        self.last_used_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
    }

    pub fn last_used_ms(&self) -> u64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    /// Writes `batch` to the group's log and memtables, unsynced: the instance's write queue is
    /// held only while the bytes enter the log. `sync_log` makes it durable.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.rocks()?.write_opt(batch, &WriteOptions::default())?;
        Ok(())
    }

    /// Writes `batch` to the memtables only, around the group's log: it is lost in a crash
    /// until a flush of its column families has put it in a table file.
    pub fn write_around_log(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.disable_wal(true);
        self.rocks()?.write_opt(batch, &options)?;
        Ok(())
    }

    /// Returns once every write to the group made before the call is on disk (see `wal_sync`).
    pub fn sync_log(&self) -> Result<()> {
        let DbKind::RocksDb { raw, wal_sync, .. } = &self.kind else {
            return Err(EngineError::Storage(
                "a RocksDB log sync on an in-memory group".into(),
            ));
        };
        wal_sync.sync_after_write(|| {
            fail::fail_point!("wal-sync:syncing");
            Ok(raw.flush_wal(true)?)
        })
    }

    /// Writes the memtables of the named column families to table files and waits for it, so
    /// that reopening the group replays no write-ahead log.
    pub fn flush_column_families(&self, cf_names: &HashSet<String>) -> Result<()> {
        let DbKind::RocksDb { raw, .. } = &self.kind else {
            return Ok(());
        };
        let handles: Vec<_> = cf_names.iter().filter_map(|n| raw.cf_handle(n)).collect();
        if handles.is_empty() {
            return Ok(());
        }
        let refs: Vec<_> = handles.iter().collect();
        raw.flush_cfs_opt(&refs, &FlushOptions::default())?;
        Ok(())
    }

    /// The group's tables in the in-memory backend; `None` for a RocksDB group.
    pub fn memory_group(&self) -> Option<&Arc<MemoryGroup>> {
        match &self.kind {
            DbKind::RocksDb { .. } => None,
            DbKind::Memory(group) => Some(group),
        }
    }

    /// Drops tenant table `name` (a column family, or a memory table): a deleted tenant's and
    /// a stray one the registry doesn't list alike.
    pub fn drop_tenant_table(&self, name: &str) -> Result<()> {
        match &self.kind {
            DbKind::RocksDb { raw, .. } => raw.drop_cf(name)?,
            DbKind::Memory(group) => group.drop_table(name)?,
        }
        let _ = self
            .tenant_tables
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        Ok(())
    }

    /// Whether another tenant's table is in the group too: then their writes share its log.
    pub fn is_shared(&self) -> bool {
        self.tenant_tables.load(Ordering::Relaxed) > 1
    }
}
pub(crate) type GroupId = u32;

const DEFAULT_CF: &str = "default";

#[derive(Default)]
struct Slot {
    db: Mutex<Option<Arc<Db>>>,
}

pub(crate) struct Groups {
    root: PathBuf,
    shared: Arc<SharedResources>,
    /// The in-memory backend's groups (kept while closed); `None` with RocksDB.
    memory: Option<Mutex<HashMap<GroupId, Arc<MemoryGroup>>>>,
    slots: Mutex<HashMap<GroupId, Arc<Slot>>>,
    open: AtomicUsize,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Groups {
    pub fn new(root: PathBuf, shared: Arc<SharedResources>, backend: StorageBackend) -> Self {
        Self {
            root,
            shared,
            memory: match backend {
                StorageBackend::RocksDb => None,
                StorageBackend::Memory => Some(Mutex::default()),
            },
            slots: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
        }
    }

    fn slot(&self, group: GroupId) -> Arc<Slot> {
        self.slots.lock().entry(group).or_default().clone()
    }

    /// The open database of `group`, opening it if needed. `expected` names the tenant column
    /// families the registry assigns to this group; any other one is debris of a create or
    /// delete interrupted by a crash, and is dropped.
    pub fn db(
        &self,
        group: GroupId,
        expected: impl FnOnce() -> HashSet<String>,
    ) -> Result<Arc<Db>> {
        let slot = self.slot(group);
        let mut guard = slot.db.lock();
        if let Some(db) = guard.as_ref() {
            return Ok(db.clone());
        }
        let (kind, existing) = match &self.memory {
            Some(groups) => {
                let tables = groups.lock().entry(group).or_default().clone();
                let existing = tables.table_names();
                (DbKind::Memory(tables), existing)
            }
            None => self.open_rocks(group)?,
        };
        let db = Db {
            kind,
            last_used_ms: AtomicU64::new(self.shared.clock.now_ms()),
            clock: self.shared.clock.clone(),
            tenant_tables: AtomicUsize::new(existing.iter().filter(|n| *n != DEFAULT_CF).count()),
        };
        fail::fail_point!("group-open:opened");
        let expected = expected();
        for name in existing
            .iter()
            .filter(|n| *n != DEFAULT_CF && !expected.contains(*n))
        {
            tracing::warn!(group, cf = %name, "dropping column family not in the tenant registry");
            db.drop_tenant_table(name)?;
        }
        let db = Arc::new(db);
        *guard = Some(db.clone());
        self.open.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            group,
            column_families = existing.len(),
            "tenant group opened"
        );
        Ok(db)
    }

    /// Opens `group`'s RocksDB instance with every column family it has.
    fn open_rocks(&self, group: GroupId) -> Result<(DbKind, Vec<String>)> {
        let path = self.root.join(group.to_string());
        let db_opts = self.shared.db_options();
        let tenant_cf = self.shared.tenant_cf_options();
        let (existing, raw) = at_background_priority(|| -> Result<_> {
            let existing = if path.join("CURRENT").exists() {
                RawDb::list_cf(&db_opts, &path)?
            } else {
                vec![DEFAULT_CF.to_owned()]
            };
            let descriptors = existing.iter().map(|name| {
                let opts = if name == DEFAULT_CF {
                    Options::default()
                } else {
                    (*tenant_cf).clone()
                };
                rocksdb::ColumnFamilyDescriptor::new(name, opts)
            });
            let raw = RawDb::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| {
                EngineError::Open(format!("{}: {}", path.display(), e.into_string()))
            })?;
            Ok((existing, raw))
        })?;
        Ok((
            DbKind::RocksDb {
                raw,
                tenant_cf,
                wal_sync: WalSync::default(),
            },
            existing,
        ))
    }

    /// Whether `group` is open. Never waits for a group being opened or closed (that takes
    /// seconds for a big group, and every request's registry read asks this): one in progress
    /// reads as closed.
    pub fn is_open(&self, group: GroupId) -> bool {
        let slot = self.slots.lock().get(&group).cloned();
        slot.is_some_and(|s| s.db.try_lock().is_some_and(|db| db.is_some()))
    }

    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The database of `group` if it is open now (never opens it).
    pub fn open_db(&self, group: GroupId) -> Option<Arc<Db>> {
        let slot = self.slots.lock().get(&group).cloned()?;
        slot.db.lock().clone()
    }

    /// The open groups with the time each was last used (skipping any being opened or closed
    /// at this moment).
    pub fn open_groups(&self) -> Vec<(GroupId, u64)> {
        let slots: Vec<_> = self
            .slots
            .lock()
            .iter()
            .map(|(g, s)| (*g, s.clone()))
            .collect();
        // A slot locked right now is being opened or closed: neither is a group to act on.
        slots
            .into_iter()
            .filter_map(|(g, s)| {
                let db = s.db.try_lock()?;
                db.as_ref().map(|db| (g, db.last_used_ms()))
            })
            .collect()
    }

    /// Closes `group` if `release` agrees. `release` runs with the group locked (so nothing can
    /// reopen it meanwhile) and hands over every other reference to the database it found
    /// (`None`: keep the group open). They are dropped after `release` has returned, so it can
    /// give up its own locks first; if a reference is left anyway the group stays open. The
    /// database is closed before this returns, so a later open never finds the previous
    /// instance still holding the directory's lock.
    pub fn close_if<R>(&self, group: GroupId, release: impl FnOnce(&Arc<Db>) -> Option<R>) -> bool {
        let Some(slot) = self.slots.lock().get(&group).cloned() else {
            return false;
        };
        let mut guard = slot.db.lock();
        let Some(db) = guard.as_ref() else {
            return false;
        };
        let Some(references) = release(db) else {
            return false;
        };
        drop(references);
        let db = guard.take().expect("checked above");
        match Arc::try_unwrap(db) {
            Ok(db) => {
                drop(db);
                self.open.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(group, "tenant group closed");
                true
            }
            Err(still_shared) => {
                *guard = Some(still_shared);
                false
            }
        }
    }

    pub fn create_tenant_cf(&self, db: &Db, cf_name: &str) -> Result<()> {
        match &db.kind {
            DbKind::RocksDb { raw, tenant_cf, .. } => raw.create_cf(cf_name, tenant_cf)?,
            DbKind::Memory(group) => group.create(cf_name)?,
        }
        db.tenant_tables.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_whether_a_group_is_open_never_waits_for_one_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::EngineConfig::new(dir.path());
        let groups = Arc::new(Groups::new(
            dir.path().join("groups"),
            Arc::new(SharedResources::new(&config)),
            StorageBackend::RocksDb,
        ));
        groups.db(0, HashSet::new).unwrap();
        assert!(groups.is_open(0));
        // Opening a big group holds its slot for seconds.
        let slot = groups.slot(1);
        let _opening = slot.db.lock();
        let (done, answer) = std::sync::mpsc::channel();
        let asking = groups.clone();
        let thread =
            std::thread::spawn(move || done.send((asking.is_open(0), asking.is_open(1))).unwrap());
        let answer = answer
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("is_open waited for a group being opened");
        assert_eq!(answer, (true, false), "one being opened reads as closed");
        // Joined, so the database closes here and not on that thread while the process exits
        // (RocksDB's static mutexes are gone by then: "pthread lock: Invalid argument").
        thread.join().unwrap();
    }
}
