//! The storage contract, one file per capability, each test run on both backends (RocksDB and
//! memory): whatever the engine relies on of its storage is written down here, and a backend
//! that passes these serves the engine the same way. The engine's own suites (the model-based
//! isolation test among them) run on both backends too.

mod lifecycle;
mod ranges;
mod reads_and_writes;
mod scans;
mod separation;
mod size;

use std::collections::HashSet;
use std::sync::Arc;

use crate::EngineConfig;
use crate::storage::{
    Groups, SharedResources, StorageBackend, TenantStorage, WriteSet, open_tenant_store,
};

pub(super) const BACKENDS: [StorageBackend; 2] = [StorageBackend::RocksDb, StorageBackend::Memory];

const TENANT_A: &str = "t/a/1";
const TENANT_B: &str = "t/b/2";

/// Two tenants' storage in one group, as the engine makes them.
pub(super) struct TwoTenants {
    pub backend: StorageBackend,
    pub a: Box<dyn TenantStorage>,
    pub b: Box<dyn TenantStorage>,
    groups: Groups,
    _dir: tempfile::TempDir,
}

impl TwoTenants {
    pub fn new(backend: StorageBackend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig::new(dir.path());
        let groups = Groups::new(
            dir.path().join("groups"),
            Arc::new(SharedResources::new(&config)),
            backend,
        );
        let db = groups.db(0, HashSet::new).unwrap();
        for name in [TENANT_A, TENANT_B] {
            groups.create_tenant_cf(&db, name).unwrap();
        }
        let (a, b) = stores(&groups, backend);
        Self {
            backend,
            a,
            b,
            groups,
            _dir: dir,
        }
    }

    /// Tenant A's storage again, with its writes synced (`sync_writes`, the engine's default;
    /// `a` and `b` skip the syncs to keep the suite fast).
    pub fn a_synced(&self) -> Box<dyn TenantStorage> {
        open_tenant_store(
            self.groups.db(0, HashSet::new).unwrap(),
            TENANT_A.to_owned(),
            true,
        )
        .unwrap()
    }

    /// Closes the group (with no store left holding it) and opens it again, as the engine does
    /// with an idle group; `expected` are the tenants the registry still lists.
    pub fn reopen_group(self, expected: &[&str]) -> ReopenedGroup {
        let Self {
            backend,
            a,
            b,
            groups,
            _dir,
        } = self;
        drop((a, b));
        assert!(groups.close_if(0, |_| Some(())), "{backend:?}: closes");
        let expected: HashSet<String> = expected.iter().map(|s| s.to_string()).collect();
        groups.db(0, || expected).unwrap();
        ReopenedGroup {
            backend,
            groups,
            _dir,
        }
    }

    /// `reopen_group` with both tenants listed, and their stores.
    pub fn reopen(self) -> Self {
        let group = self.reopen_group(&[TENANT_A, TENANT_B]);
        let (a, b) = stores(&group.groups, group.backend);
        Self {
            backend: group.backend,
            a,
            b,
            groups: group.groups,
            _dir: group._dir,
        }
    }
}

/// A group opened again (see `TwoTenants::reopen_group`).
pub(super) struct ReopenedGroup {
    pub backend: StorageBackend,
    groups: Groups,
    _dir: tempfile::TempDir,
}

impl ReopenedGroup {
    pub fn store(&self, name: &str) -> crate::error::Result<Box<dyn TenantStorage>> {
        open_store(&self.groups, name)
    }
}

/// The store of tenant table `name` in group 0, as the engine opens it.
fn open_store(groups: &Groups, name: &str) -> crate::error::Result<Box<dyn TenantStorage>> {
    open_tenant_store(groups.db(0, HashSet::new)?, name.to_owned(), false)
}

fn stores(
    groups: &Groups,
    backend: StorageBackend,
) -> (Box<dyn TenantStorage>, Box<dyn TenantStorage>) {
    let open = |name: &str| {
        open_store(groups, name).unwrap_or_else(|e| panic!("{backend:?}: {name}: {e}"))
    };
    (open(TENANT_A), open(TENANT_B))
}

pub(super) fn put(store: &dyn TenantStorage, pairs: &[(&[u8], &[u8])]) {
    let mut set = WriteSet::default();
    for (k, v) in pairs {
        set.put(k.to_vec(), v.to_vec());
    }
    store.write(set).unwrap();
}

/// Every key of the store, in order.
pub(super) fn keys_of(store: &dyn TenantStorage) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    store
        .scan((Vec::new(), vec![0xff; 8]), &mut |k, _| {
            keys.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
    keys
}

pub(super) fn bytes(keys: &[&str]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}
