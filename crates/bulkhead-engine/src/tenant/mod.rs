//! `TenantHandle`: the only way to a tenant's data. A handle wraps exactly one tenant's state
//! (its column family and its indexes) and can only be obtained from `Engine::tenant` with a
//! grant (see `access`), so every read, write and search is scoped to one tenant by
//! construction, and what the handle may do is the grant's access. There is no function in this
//! crate that takes two tenants, and none that reaches data without a handle.
//!
//! ```compile_fail,E0451
//! // A handle can't be forged: its fields are private and it has no public constructor.
//! let forged: bulkhead_engine::TenantHandle = bulkhead_engine::TenantHandle {
//!     state: todo!(),
//!     audit: None,
//!     reader: None,
//!     reads: None,
//!     access: std::marker::PhantomData,
//! };
//! ```
//!
//! ```compile_fail,E0599
//! // Reaching data always needs a handle; the engine has no query method of its own.
//! fn leak(engine: &bulkhead_engine::Engine, c: &bulkhead_core::CollectionId) {
//!     let _ = engine.query(c, &bulkhead_engine::Query::new(vec![1.0], 10));
//! }
//! ```
//!
//! ```compile_fail,E0308
//! // A bare tenant id opens nothing: the engine wants a grant.
//! fn open(engine: &bulkhead_engine::Engine, t: &bulkhead_core::TenantId) {
//!     let _ = engine.tenant::<bulkhead_engine::Read>(t);
//! }
//! ```
//!
//! ```compile_fail,E0451
//! // Only an `Authority` issues grants; a handler can't make one up.
//! fn forge(t: bulkhead_core::TenantId) -> bulkhead_engine::Grant<bulkhead_engine::Write> {
//!     bulkhead_engine::Grant { tenant: t, access: std::marker::PhantomData }
//! }
//! ```
//!
//! ```compile_fail,E0599
//! // A READ handle has no writes.
//! fn write(t: &bulkhead_engine::TenantHandle<bulkhead_engine::Read>, c: &bulkhead_core::CollectionId) {
//!     let _ = t.upsert(c, Vec::new());
//! }
//! ```
//!
//! ```compile_fail,E0599
//! // Key operations exist only on a key-admin handle, not on a WRITE one.
//! fn mint(t: &bulkhead_engine::TenantHandle<bulkhead_engine::Write>, k: bulkhead_engine::ApiKeyRecord) {
//!     let _ = t.create_api_key(k);
//! }
//! ```
//!
//! ```compile_fail,E0515
//! // A request's hold on its tenant can't outlive the handle it came from (so it can't be
//! // kept past the request, blocking a deletion forever).
//! fn keep(t: bulkhead_engine::TenantHandle) -> bulkhead_engine::TenantHold<'static> {
//!     t.hold().unwrap()
//! }
//! ```
//!
//! The same calls with the right access compile, so each test above fails for the rule it
//! names and nothing else:
//!
//! ```no_run
//! use bulkhead_engine::{ApiKeyRecord, Engine, KeyAdmin, Query, Read, Write};
//! fn allowed(engine: &Engine, t: &bulkhead_core::TenantId, c: &bulkhead_core::CollectionId, k: ApiKeyRecord) {
//!     let authority = engine.authority();
//!     let reader = engine.tenant(&authority.grant::<Read>(t)).unwrap();
//!     let _ = reader.query(c, &Query::new(vec![1.0], 10));
//!     let writer = engine.tenant(&authority.grant::<Write>(t)).unwrap();
//!     let _ = writer.upsert(c, Vec::new());
//!     let admin = engine.tenant(&authority.grant::<KeyAdmin>(t)).unwrap();
//!     let _ = admin.create_api_key(k);
//! }
//! ```

mod api_keys;
mod audit_log;
mod collections;
mod export;
mod load;
mod persist;
mod read_log;
mod records;
mod semantic_cache;
mod sessions;
mod sweep;
mod verification_keys;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bulkhead_core::{CollectionId, TenantId};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::access::{Access, KeyAdmin};
use crate::collection::{CollectionMeta, LiveCollection};
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::index_budget::IndexBudget;
use crate::index_builds::{IndexBuilds, Work};
use crate::readers::Reader;
use crate::registry::Registry;
use crate::storage::{TenantRecord, TenantStorage};

pub use audit_log::AuditPage;
pub use collections::{CollectionInfo, IndexStatus};
pub(crate) use persist::remove_unregistered_segments;
pub use records::MAX_TOP_K;
pub use semantic_cache::{
    CacheEntry, CacheHit, CacheLookup, CacheScope, CacheSettings, CacheTarget,
};
pub use sessions::SessionHandle;
pub(crate) use sweep::Maintained;

/// Access to one tenant, with what it may do in its type (`A`, see `access`). Cheap to clone;
/// every clone addresses the same single tenant. `TenantHandle` alone is the engine's own
/// full-access handle.
#[derive(Debug, Clone)]
pub struct TenantHandle<A: Access = KeyAdmin> {
    state: Arc<TenantState>,
    /// Set on a handle made by [`TenantHandle::audited`]: its writes carry their audit event.
    audit: Option<Arc<audit_log::WriteAudit>>,
    /// Set on a handle made by [`TenantHandle::reading_as`]: in an access-controlled
    /// collection it sees only what its reader may read, and writes nothing.
    reader: Option<Arc<Reader>>,
    /// Set on a handle made by [`TenantHandle::logging_reads`]: collects the ids its reads
    /// return in collections that record them.
    reads: Option<Arc<read_log::ReadLog>>,
    access: PhantomData<fn() -> A>,
}

/// A tenant held for one request (see [`TenantHandle::hold`]).
#[must_use = "the tenant is held only while the guard lives"]
#[derive(Debug)]
pub struct TenantHold<'a> {
    _gate: RwLockReadGuard<'a, bool>,
}

/// Per-tenant figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantStats {
    pub collections: usize,
    /// Unexpired records across all collections.
    pub records: u64,
    /// Bytes on disk and in memtables of the tenant's column family.
    pub bytes: u64,
    /// Approximate memory of the tenant's loaded indexes (0 while cold).
    pub index_bytes: u64,
}

/// The loaded (in-memory) part of a tenant: its collections and their indexes.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    collections: RwLock<HashMap<CollectionId, Arc<LiveCollection>>>,
}

impl Loaded {
    fn memory_bytes(&self) -> usize {
        self.collections
            .read()
            .values()
            .map(|c| c.index.memory_bytes() + c.slots.read().len() * 96)
            .sum()
    }
}

/// What a tenant reaches of the engine around it. One per engine, shared by every tenant
/// state; it holds nothing of any tenant, so sharing it shares no tenant's data.
#[derive(Debug)]
pub(crate) struct TenantServices {
    pub config: Arc<EngineConfig>,
    /// Where the tenant's API keys are kept.
    pub registry: Arc<Registry>,
    pub index_budget: IndexBudget,
    pub index_builds: Arc<IndexBuilds>,
}

#[derive(Debug)]
pub(crate) struct TenantState {
    record: RwLock<TenantRecord>,
    store: Box<dyn TenantStorage>,
    services: Arc<TenantServices>,
    /// Held shared by every operation, exclusively by deletion and eviction: a tenant can't be
    /// deleted or evicted under a running request. `true` once deleted.
    gate: RwLock<bool>,
    /// `None` while cold. Loading happens under this lock, so concurrent first requests wait
    /// for one load instead of racing.
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// Next audit sequence number; read from disk on first use.
    audit_next: Mutex<Option<u64>>,
    /// The tenant's session lock, with the count of its stored sessions (read from disk on
    /// first use; see `sessions`).
    sessions: Mutex<Option<usize>>,
    last_used_ms: AtomicU64,
    /// This tenant's share of the engine's loaded-index total, as last counted.
    counted_index_bytes: AtomicUsize,
}

impl TenantState {
    pub(crate) fn new(
        record: TenantRecord,
        store: Box<dyn TenantStorage>,
        services: Arc<TenantServices>,
    ) -> Self {
        let now = services.config.clock.now_ms();
        Self {
            record: RwLock::new(record),
            store,
            services,
            gate: RwLock::new(false),
            loaded: Mutex::new(None),
            audit_next: Mutex::new(None),
            sessions: Mutex::new(None),
            last_used_ms: AtomicU64::new(now),
            counted_index_bytes: AtomicUsize::new(0),
        }
    }

    /// Sets this tenant's share of the loaded-index total to `bytes`; returns the new total.
    fn count_index_bytes(&self, bytes: usize) -> usize {
        let before = self.counted_index_bytes.swap(bytes, Ordering::Relaxed);
        self.services.index_budget.count(bytes, before)
    }

    /// Brings this tenant's share of the loaded-index total up to date; returns the new total.
    pub(crate) fn recount_index_bytes(&self) -> usize {
        self.count_index_bytes(self.loaded_memory_bytes())
    }

    pub(crate) fn id(&self) -> TenantId {
        self.record.read().id.clone()
    }

    /// After this tenant's indexes loaded or grew: recounts them, and evicts idle tenants if the
    /// total is now over the budget.
    pub(crate) fn index_grew(&self) {
        let total = self.recount_index_bytes();
        self.services.index_budget.grew(total, self.incarnation());
    }

    /// Now, by the engine's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.services.config.clock.now_ms()
    }

    /// Unique per tenant creation (a re-created tenant of the same id has another).
    pub(crate) fn incarnation(&self) -> u64 {
        self.record.read().incarnation
    }

    pub(crate) fn last_used_ms(&self) -> u64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    /// Whether the indexes are in memory. Never waits: the `loaded` lock is held for the whole
    /// of an activation, and registry reads about this tenant (from any request) must not wait
    /// on it; an activation in progress reads as not loaded.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
            .try_lock()
            .is_some_and(|loaded| loaded.is_some())
    }

    /// The memory of the loaded indexes; while an activation (or another holder of the lock)
    /// is in progress, the figure last counted, rather than waiting for it.
    pub(crate) fn loaded_memory_bytes(&self) -> usize {
        match self.loaded.try_lock() {
            Some(loaded) => loaded.as_ref().map_or(0, |l| l.memory_bytes()),
            None => self.counted_index_bytes.load(Ordering::Relaxed),
        }
    }

    /// Drops the in-memory indexes if no request is using the tenant; they are rebuilt from
    /// RocksDB on next use. Returns the bytes released, or `None` if the tenant was in use or
    /// not loaded.
    pub(crate) fn try_evict(&self) -> Option<usize> {
        let _exclusive = self.gate.try_write()?;
        self.loaded.lock().take()?;
        let bytes = self.counted_index_bytes.load(Ordering::Relaxed);
        self.count_index_bytes(0);
        Some(bytes)
    }

    /// Waits for running requests, then marks the tenant deleted and drops its column family.
    pub(crate) fn delete(&self) -> Result<()> {
        let mut deleted = self.gate.write();
        *deleted = true;
        self.loaded.lock().take();
        self.count_index_bytes(0);
        self.store.drop_all()?;
        fail::fail_point!("delete-tenant:column-family-dropped");
        let segments = self.segment_dir();
        crate::disk_pacing::remove_dir_all(&segments)
            .map_err(|e| EngineError::Storage(format!("{}: {e}", segments.display())))
    }
}

impl Drop for TenantState {
    /// A state goes when its group closes or its tenant is deleted; its indexes leave the total.
    fn drop(&mut self) {
        self.count_index_bytes(0);
    }
}

impl<A: Access> TenantHandle<A> {
    pub fn id(&self) -> TenantId {
        self.state.id()
    }

    /// Queues the build `col`'s index wants (promotion or compaction), if any, for the
    /// engine's build thread; the caller never waits for it.
    fn build_later_if_wanted(&self, col: &Arc<LiveCollection>) {
        if col.index.wanted_build().is_some() {
            self.state
                .services
                .index_builds
                .schedule(&self.state, col, Work::Build);
        }
    }

    /// Whether both handles are for the same tenant incarnation (a deleted and re-created
    /// tenant of the same id is another partition). Compares identities only; reads no data.
    pub fn is_same_partition<B: Access>(&self, other: &TenantHandle<B>) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Keeps the tenant for as long as the returned guard lives: it can't be deleted or its
    /// indexes evicted meanwhile, so a request that makes several calls on the handle sees
    /// one tenant from the first call to the last, never a deletion landing between two of
    /// them. Fails if the tenant is already deleted. A deletion waits for the guard, so it is
    /// for synchronous engine work only, never held while waiting on a client.
    pub fn hold(&self) -> Result<TenantHold<'_>> {
        self.enter().map(|gate| TenantHold { _gate: gate })
    }

    /// This handle bound to `reader`: in collections with access control it reads only the
    /// records `reader` is among the readers of, and writes nothing. There is no way back: no
    /// method unbinds a handle, and clones and narrowed copies keep the reader.
    pub fn reading_as(&self, reader: Reader) -> Self {
        Self {
            state: self.state.clone(),
            audit: self.audit.clone(),
            reader: Some(Arc::new(reader)),
            reads: self.reads.clone(),
            access: PhantomData,
        }
    }

    /// The reader this handle is bound to, in a collection with these settings (`None` where
    /// access is not controlled: there the handle reads what the tenant holds).
    fn reader_in(&self, collection: &CollectionMeta) -> Option<&Reader> {
        self.reader
            .as_deref()
            .filter(|_| collection.access_control && !crate::fault::SKIP_READER_CHECK)
    }

    /// Refuses a write by a reader-bound handle where records carry their readers.
    fn writable_by_handle(&self, collection: &CollectionMeta, id: &CollectionId) -> Result<()> {
        if self.reader_in(collection).is_some() {
            return Err(EngineError::NotPermitted(format!(
                "collection {id} controls access per record; its readers write nothing"
            )));
        }
        Ok(())
    }

    /// Enters the tenant for one operation; fails if it was deleted meanwhile.
    fn enter(&self) -> Result<RwLockReadGuard<'_, bool>> {
        let guard = self.enter_for_maintenance()?;
        self.state
            .last_used_ms
            .store(self.state.now_ms(), Ordering::Relaxed);
        self.state.store.touch();
        Ok(guard)
    }

    /// Enters the tenant for background maintenance, which doesn't count as use: sweeping an
    /// idle tenant must not keep its indexes loaded or its group open.
    fn enter_for_maintenance(&self) -> Result<RwLockReadGuard<'_, bool>> {
        let guard = self.state.gate.read_recursive();
        if *guard {
            return Err(EngineError::TenantNotFound(self.id()));
        }
        Ok(guard)
    }

    fn store(&self) -> &dyn TenantStorage {
        self.state.store.as_ref()
    }

    pub fn stats(&self) -> Result<TenantStats> {
        let _g = self.enter()?;
        let loaded = self.loaded()?;
        let now = self.state.now_ms();
        let collections = loaded.collections.read();
        let records = collections
            .values()
            .map(|c| c.slots.read().live_count(now) as u64)
            .sum();
        Ok(TenantStats {
            collections: collections.len(),
            records,
            bytes: self.store().size_bytes()?,
            index_bytes: loaded.memory_bytes() as u64,
        })
    }
}

impl TenantState {
    pub(crate) fn set_record(&self, record: TenantRecord) {
        *self.record.write() = record;
    }
}

impl TenantHandle<KeyAdmin> {
    pub(crate) fn new(state: Arc<TenantState>) -> Self {
        Self {
            state,
            audit: None,
            reader: None,
            reads: None,
            access: PhantomData,
        }
    }

    /// This handle with less access: what the gate hands a request of role `B`. Only the full
    /// handle narrows, so no handle can be widened.
    pub fn narrow<B: Access>(&self) -> TenantHandle<B> {
        TenantHandle {
            state: self.state.clone(),
            audit: self.audit.clone(),
            reader: self.reader.clone(),
            reads: self.reads.clone(),
            access: PhantomData,
        }
    }

    /// Writes the tenant's memtables to table files.
    pub fn flush(&self) -> Result<()> {
        let _g = self.enter()?;
        self.store().flush()
    }

    /// Paths of the table files holding this tenant's data (for operators and deletion checks).
    pub fn table_files(&self) -> Result<Vec<PathBuf>> {
        let _g = self.enter()?;
        self.store().table_files()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use bulkhead_core::TenantId;

    use crate::{Engine, EngineConfig, TenantSettings};

    /// Runs `check` on another thread; fails if it doesn't return within 10 s (it waited).
    fn without_waiting<T: Send + 'static>(check: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || done.send(check()).unwrap());
        result
            .recv_timeout(Duration::from_secs(10))
            .expect("the call waited on another tenant's activation")
    }

    #[test]
    fn registry_reads_never_wait_on_an_activation_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let engine = std::sync::Arc::new(Engine::open(EngineConfig::new(dir.path())).unwrap());
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        for id in [&a, &b] {
            engine
                .create_tenant(id, &TenantSettings::default())
                .unwrap();
        }
        let activating = engine
            .tenant(&engine.authority().admin(&a, "tenant test"))
            .unwrap();
        // An activation holds this lock for as long as it rebuilds the tenant's indexes.
        let _held = activating.state.loaded.lock();
        let (e, a2, b2) = (engine.clone(), a.clone(), b.clone());
        let (info_a, info_b) =
            without_waiting(move || (e.tenant_info(&a2).unwrap(), e.tenant_info(&b2).unwrap()));
        assert!(
            !info_a.loaded,
            "an activation in progress reads as not loaded"
        );
        assert!(info_b.group_open);
    }
}
