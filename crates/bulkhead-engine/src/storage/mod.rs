//! The only module that names RocksDB. It hands out one `TenantStorage` per tenant (a column
//! family bound to the database that holds it, or an in-memory table) and the system registry;
//! nothing outside can name a column family or issue a raw key against the wrong one.

#[cfg(test)]
mod conformance;
mod group;
mod limits;
mod memory;
mod memory_store;
mod options;
mod registry;
mod store;
mod tenant_storage;
mod wal_sync;

use std::sync::Arc;

pub(crate) use group::{Db, GroupId, Groups};
pub(crate) use limits::open_group_cap;
pub(crate) use options::SharedResources;
pub(crate) use registry::{RegistryStore, TenantRecord};
pub(crate) use tenant_storage::{TenantStorage, WriteSet, Written};

/// Where tenants' data is kept (`EngineConfig::storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageBackend {
    /// RocksDB instances under the data directory: durable.
    #[default]
    RocksDb,
    /// Sorted maps in memory, gone with the engine: for tests, which run the engine's
    /// guarantees against both backends.
    Memory,
}

/// The storage of the tenant whose column family is `cf_name` in the open group `db`.
pub(crate) fn open_tenant_store(
    db: Arc<Db>,
    cf_name: String,
    sync: bool,
) -> crate::error::Result<Box<dyn TenantStorage>> {
    match db.memory_group().cloned() {
        None => Ok(Box::new(store::RocksTenantStore::open(db, cf_name, sync)?)),
        Some(group) => Ok(Box::new(memory_store::MemoryTenantStore::new(
            db, &group, cf_name,
        )?)),
    }
}

impl From<rocksdb::Error> for crate::error::EngineError {
    fn from(e: rocksdb::Error) -> Self {
        let kind = e.kind();
        engine_error(kind, e.into_string())
    }
}

/// RocksDB's errors by kind, not flattened to a string: damaged data, a busy or closing
/// database and a failed disk are answered differently (and only the first is corruption).
fn engine_error(kind: rocksdb::ErrorKind, message: String) -> crate::error::EngineError {
    use crate::error::EngineError;
    use rocksdb::ErrorKind;
    match kind {
        ErrorKind::Corruption => EngineError::Corrupt(message),
        ErrorKind::Busy
        | ErrorKind::TryAgain
        | ErrorKind::TimedOut
        | ErrorKind::Incomplete
        | ErrorKind::ShutdownInProgress => EngineError::Busy(message),
        _ => EngineError::Storage(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EngineError;
    use rocksdb::ErrorKind;

    #[test]
    fn storage_errors_keep_their_kind() {
        let of = |kind| engine_error(kind, "m".into());
        assert!(matches!(of(ErrorKind::Corruption), EngineError::Corrupt(m) if m == "m"));
        for transient in [
            ErrorKind::Busy,
            ErrorKind::TryAgain,
            ErrorKind::TimedOut,
            ErrorKind::Incomplete,
            ErrorKind::ShutdownInProgress,
        ] {
            assert!(matches!(of(transient), EngineError::Busy(_)));
        }
        for failure in [
            ErrorKind::IOError,
            ErrorKind::NotSupported,
            ErrorKind::Unknown,
        ] {
            assert!(matches!(of(failure), EngineError::Storage(_)));
        }
    }
}
