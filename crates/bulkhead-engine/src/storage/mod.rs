//! The only module that names RocksDB. It hands out a `TenantStore` per tenant (one column family
//! bound to the database that holds it) and the system registry; nothing outside can name a
//! column family or issue a raw key against the wrong one.

mod group;
mod limits;
mod options;
mod registry;
mod store;

pub(crate) use group::{GroupId, Groups};
pub(crate) use limits::open_group_cap;
pub(crate) use options::SharedResources;
pub(crate) use registry::{Registry, TenantRecord};
pub(crate) use store::{TenantStore, WriteSet};
