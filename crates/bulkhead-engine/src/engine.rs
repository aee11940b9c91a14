//! The engine: the tenant registry, the tenant groups, and the one way into tenant data,
//! `Engine::tenant`. Tenant lifecycle (create, delete, list) is control-plane and returns only
//! registry facts; every data operation is a method of the `TenantHandle` it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulkhead_core::{KeyId, TenantId};
use parking_lot::{Mutex, RwLock};

use crate::access::{Access, Authority, Grant};
use crate::api_keys::{ApiKeyRecord, SecretHash};
use crate::clock::now_ms;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::index_builds::IndexBuilds;
use crate::key_table::KeyTable;
use crate::settings::{Quota, RateLimit, TenantSettings};
use crate::storage::{GroupId, Groups, Registry, SharedResources, TenantRecord, open_group_cap};
use crate::sweeper::{Signal, Sweeper};
use crate::tenant::{TenantHandle, TenantState};

/// Registry facts about a tenant (no data).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantInfo {
    pub id: TenantId,
    pub created_at_ms: u64,
    /// The tenant group (RocksDB instance) holding the tenant's column family.
    pub group: u32,
    /// `None`: the engine's default retention applies.
    pub audit_retention: Option<Duration>,
    /// Whether the tenant's indexes are in memory now.
    pub loaded: bool,
    /// Whether the RocksDB instance of the tenant's group is open now.
    pub group_open: bool,
    pub quota: Quota,
    pub rate_limit: RateLimit,
}

/// The registry as held in memory, indexed by group too so that work on one group (opening,
/// closing, sweeping) costs its own tenants, not the whole registry.
#[derive(Debug, Default)]
struct Directory {
    records: BTreeMap<TenantId, TenantRecord>,
    members: BTreeMap<GroupId, BTreeSet<TenantId>>,
    next_incarnation: u64,
}

impl Directory {
    /// Adds `record`, or replaces the entry of the same tenant.
    fn insert(&mut self, record: TenantRecord) {
        self.members
            .entry(record.group)
            .or_default()
            .insert(record.id.clone());
        self.records.insert(record.id.clone(), record);
    }

    fn remove(&mut self, id: &TenantId) -> Option<TenantRecord> {
        let record = self.records.remove(id)?;
        if let Some(members) = self.members.get_mut(&record.group) {
            members.remove(id);
            if members.is_empty() {
                self.members.remove(&record.group);
            }
        }
        Some(record)
    }

    /// The lowest group with room, or a new one.
    fn group_with_room(&self, per_group: usize) -> GroupId {
        let mut candidate = 0;
        for (group, members) in &self.members {
            if *group != candidate {
                return candidate;
            }
            if members.len() < per_group {
                return *group;
            }
            candidate = group + 1;
        }
        candidate
    }

    fn members_of(&self, group: GroupId) -> Vec<TenantId> {
        self.members
            .get(&group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn cf_names_in(&self, group: GroupId) -> HashSet<String> {
        self.members
            .get(&group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.records.get(id))
            .map(TenantRecord::cf_name)
            .collect()
    }
}

/// State shared by the engine, its tenant handles and the sweeper.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: EngineConfig,
    registry: Registry,
    groups: Groups,
    directory: RwLock<Directory>,
    /// Tenants used since their group opened; the rest are only registry entries. Read on
    /// every request, written only on activation, group close and deletion.
    active: RwLock<HashMap<TenantId, Arc<TenantState>>>,
    /// API keys; mirrors the registry.
    api_keys: KeyTable,
    /// Serialises tenant creation and deletion (never held while waiting for a tenant's
    /// requests or for another tenant's keys).
    lifecycle: Mutex<()>,
    /// Most groups open at once (`max_open_groups` fitted to the open-files limit).
    open_group_cap: usize,
    /// Memory of every loaded tenant's indexes, as last counted.
    loaded_index_bytes: AtomicUsize,
    /// Wakes the sweeper thread for work requests shouldn't wait for.
    signal: Arc<Signal>,
    /// Index builds wanted by writes and activations, run off the request path.
    pub index_builds: IndexBuilds,
}

impl Shared {
    /// The registry entry of `id`.
    fn record(&self, id: &TenantId) -> Result<TenantRecord> {
        self.directory
            .read()
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::TenantNotFound(id.clone()))
    }

    fn state(self: &Arc<Self>, id: &TenantId) -> Result<Arc<TenantState>> {
        if let Some(state) = self.active.read().get(id) {
            return Ok(state.clone());
        }
        let record = self.record(id)?;
        let db = self.groups.db(record.group, || {
            self.directory.read().cf_names_in(record.group)
        })?;
        let store = self
            .groups
            .store(db, record.cf_name(), self.config.sync_writes);
        let state = self
            .active
            .write()
            .entry(id.clone())
            .or_insert_with(|| Arc::new(TenantState::new(record.clone(), store, self.clone())))
            .clone();
        self.note_group_opened();
        Ok(state)
    }

    /// Closes `group`'s RocksDB instance if none of its tenants is in use: no request, sweep or
    /// handle holds one. Their states (and loaded indexes) are dropped with it; the next request
    /// reopens the group and waits for that, it never fails for it.
    pub(crate) fn close_group(&self, group: GroupId) -> bool {
        // Flushed first, outside every lock, so the next open replays no log; a write that
        // lands in between is in the log and replayed, so nothing depends on this.
        self.flush_group(group);
        self.groups.close_if(group, |db| {
            let registered = self.directory.read().members_of(group);
            let mut active = self.active.write();
            let members: Vec<TenantId> = registered
                .into_iter()
                .filter(|id| active.contains_key(id))
                .collect();
            // The map holds the only reference to an unused state, and each state's store
            // holds one reference to the database besides the group's own.
            let unused = members.iter().all(|id| Arc::strong_count(&active[id]) == 1);
            if !unused || Arc::strong_count(db) != 1 + members.len() {
                return None;
            }
            // Taken out under the lock, freed (indexes and all) after it: requests looking up
            // other tenants don't wait for that.
            let states: Vec<Arc<TenantState>> =
                members.iter().filter_map(|id| active.remove(id)).collect();
            Some(states)
        })
    }

    /// Closes every open group unused for at least `idle_for`; returns how many closed.
    pub(crate) fn close_idle_groups(&self, idle_for: Duration) -> usize {
        let cutoff = now_ms().saturating_sub(idle_for.as_millis() as u64);
        self.groups
            .open_groups()
            .into_iter()
            .filter(|(_, last_used)| *last_used <= cutoff)
            .filter(|(group, _)| self.close_group(*group))
            .count()
    }

    /// After a group may have opened: past the cap, asks the sweeper thread to close some.
    fn note_group_opened(&self) {
        if self.groups.open_count() > self.open_group_cap {
            self.signal.over_group_cap();
        }
    }

    /// While more groups than the cap are open, closes the least recently used idle ones.
    /// Groups in use stay open, so the cap can be exceeded briefly under load rather than
    /// failing a request.
    pub(crate) fn enforce_open_group_cap(&self) {
        let mut open = self.groups.open_groups();
        if open.len() <= self.open_group_cap {
            return;
        }
        let mut excess = open.len() - self.open_group_cap;
        open.sort_by_key(|(_, last_used)| *last_used);
        for (group, _) in open {
            if excess == 0 {
                break;
            }
            if self.close_group(group) {
                excess -= 1;
            }
        }
        if excess > 0 {
            tracing::debug!(excess, "more tenant groups open than the cap: all in use");
        }
    }

    /// Writes the memtables of an open group's tenants to table files.
    fn flush_group(&self, group: GroupId) {
        let Some(db) = self.groups.open_db(group) else {
            return;
        };
        let names = self.directory.read().cf_names_in(group);
        if let Err(e) = db.flush_column_families(&names) {
            tracing::warn!(group, error = %e, "flushing a tenant group before closing it");
        }
    }

    /// Opens a closed group, sweeps its tenants and closes it again; returns the records and
    /// audit events removed. Skips (returning zeros) a group that is open meanwhile.
    pub(crate) fn sweep_closed_group(self: &Arc<Self>, group: GroupId) -> Result<(usize, usize)> {
        if self.groups.is_open(group) {
            return Ok((0, 0));
        }
        let (mut records, mut events) = (0, 0);
        let members = self.directory.read().members_of(group);
        for id in members {
            let tenant = match self.state(&id) {
                Ok(state) => TenantHandle::new(state),
                Err(EngineError::TenantNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let (r, e) = tenant.maintain()?;
            records += r;
            events += e;
        }
        self.close_group(group);
        Ok((records, events))
    }

    /// Groups holding tenants that are closed now, in id order.
    pub(crate) fn closed_groups(&self) -> Vec<GroupId> {
        let groups: Vec<GroupId> = self.directory.read().members.keys().copied().collect();
        groups
            .into_iter()
            .filter(|g| !self.groups.is_open(*g))
            .collect()
    }

    /// Moves the loaded-index total by `add` minus `remove` bytes; returns the new total.
    pub(crate) fn count_index_bytes(&self, add: usize, remove: usize) -> usize {
        let after_add = self.loaded_index_bytes.fetch_add(add, Ordering::Relaxed) + add;
        self.loaded_index_bytes.fetch_sub(remove, Ordering::Relaxed);
        after_add.saturating_sub(remove)
    }

    /// Evicts the least recently used idle tenants' indexes while the loaded total exceeds the
    /// budget. `current` (the tenant just loaded) is never evicted by its own load. The total is
    /// kept as tenants load and unload, so a load under the budget costs no scan of the
    /// tenants; the sweeper recounts it each round, as indexes grow with writes.
    pub(crate) fn enforce_index_budget(&self, current: Option<&TenantState>) {
        let budget = self.config.index_memory_budget_bytes;
        if self.loaded_index_bytes.load(Ordering::Relaxed) <= budget {
            return;
        }
        let active: Vec<_> = self.active.read().values().cloned().collect();
        let mut loaded: Vec<_> = active.into_iter().filter(|s| s.is_loaded()).collect();
        loaded.sort_by_key(|s| s.last_used_ms());
        for state in loaded {
            if self.loaded_index_bytes.load(Ordering::Relaxed) <= budget {
                break;
            }
            if current.is_some_and(|c| std::ptr::eq(Arc::as_ptr(&state), c)) {
                continue;
            }
            if let Some(bytes) = state.try_evict() {
                tracing::debug!(bytes, "evicted an idle tenant's indexes");
            }
        }
    }

    /// Recounts every loaded tenant's index memory, then enforces the budget.
    pub(crate) fn recount_index_bytes(&self) {
        let active: Vec<_> = self.active.read().values().cloned().collect();
        for state in active {
            state.recount_index_bytes();
        }
        self.enforce_index_budget(None);
    }

    /// Handles of every tenant whose group is open (the sweeper's work list).
    pub(crate) fn tenants_in_open_groups(self: &Arc<Self>) -> Vec<TenantHandle> {
        // Through the group index: the open groups' members, not a pass over every registered
        // tenant with a group lookup each (which waited on any group being opened, with the
        // registry read-locked).
        let open = self.groups.open_groups();
        let ids: Vec<TenantId> = {
            let directory = self.directory.read();
            open.iter()
                .flat_map(|(group, _)| directory.members_of(*group))
                .collect()
        };
        ids.iter()
            .filter_map(|id| self.state(id).ok().map(TenantHandle::new))
            .collect()
    }
}

/// A Bulkhead storage engine over one data directory.
#[derive(Debug)]
pub struct Engine {
    shared: Arc<Shared>,
    sweeper: Option<Sweeper>,
}

impl Engine {
    /// Opens (creating if needed) the engine in `config.data_dir`. Only the tenant registry is
    /// read; tenant groups open on first use and tenant indexes load on first request.
    pub fn open(config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let groups_dir = config.data_dir.join("groups");
        std::fs::create_dir_all(&groups_dir)
            .map_err(|e| EngineError::Open(format!("{}: {e}", groups_dir.display())))?;
        let resources = Arc::new(SharedResources::new(&config));
        let open_group_cap = open_group_cap(&config);
        let registry = Registry::open(&config.data_dir.join("system"), &resources)?;
        let (records, next_incarnation) = registry.load()?;
        let mut directory = Directory {
            next_incarnation,
            ..Directory::default()
        };
        let tenant_count = records.len();
        let api_keys = KeyTable::new(registry.load_api_keys()?);
        for r in records {
            directory.insert(r);
        }
        let config_build_threads = config.index_build_threads;
        let shared = Arc::new(Shared {
            groups: Groups::new(groups_dir, resources),
            config,
            registry,
            directory: RwLock::new(directory),
            active: RwLock::new(HashMap::new()),
            api_keys,
            lifecycle: Mutex::new(()),
            open_group_cap,
            loaded_index_bytes: AtomicUsize::new(0),
            signal: Arc::new(Signal::default()),
            index_builds: IndexBuilds::start(config_build_threads),
        });
        tracing::info!(
            data_dir = %shared.config.data_dir.display(),
            tenants = tenant_count,
            sync_writes = shared.config.sync_writes,
            tenants_per_group = shared.config.tenants_per_group,
            max_open_groups = open_group_cap,
            "engine opened"
        );
        let sweeper = Sweeper::start(shared.clone(), shared.signal.clone());
        Ok(Self {
            shared,
            sweeper: Some(sweeper),
        })
    }

    /// The index build queue: builds wanted by writes and activations, run in the background.
    pub fn index_build_stats(&self) -> crate::IndexBuildStats {
        self.shared.index_builds.stats()
    }

    /// Waits until no index build or segment write is queued or running; `false` if `timeout`
    /// passed first. For operators, tests and benchmarks that need a settled index.
    pub fn wait_for_index_builds(&self, timeout: std::time::Duration) -> bool {
        self.shared.index_builds.wait_idle(timeout)
    }

    /// The only way to a tenant's data: a handle of the granted tenant with the granted
    /// access. May open the tenant's group (file I/O): callers on an async runtime try
    /// [`Engine::tenant_if_active`] first.
    pub fn tenant<A: Access>(&self, grant: &Grant<A>) -> Result<TenantHandle<A>> {
        self.shared
            .state(grant.tenant())
            .map(|state| TenantHandle::new(state).narrow())
    }

    /// A handle of the granted tenant if its group is open and it has been used since (no I/O,
    /// no waiting on another tenant's activation); `None` means `tenant` has work to do.
    pub fn tenant_if_active<A: Access>(&self, grant: &Grant<A>) -> Option<TenantHandle<A>> {
        self.shared
            .active
            .read()
            .get(grant.tenant())
            .cloned()
            .map(|state| TenantHandle::new(state).narrow())
    }

    /// The authority that issues grants (see `access`): whoever holds the engine authorizes.
    pub fn authority(&self) -> Authority {
        Authority::new()
    }

    pub fn create_tenant(&self, id: &TenantId, settings: &TenantSettings) -> Result<TenantInfo> {
        settings.validate()?;
        let _lifecycle = self.shared.lifecycle.lock();
        let (group, incarnation) = {
            let dir = self.shared.directory.read();
            if dir.records.contains_key(id) {
                return Err(EngineError::TenantExists(id.clone()));
            }
            (
                dir.group_with_room(self.shared.config.tenants_per_group),
                dir.next_incarnation,
            )
        };
        let record = TenantRecord {
            id: id.clone(),
            incarnation,
            group,
            created_at_ms: now_ms(),
            audit_retention_secs: settings.audit_retention.map(|d| d.as_secs()),
            quota: settings.quota,
            rate_limit: settings.rate_limit,
        };
        let db = self
            .shared
            .groups
            .db(group, || self.shared.directory.read().cf_names_in(group))?;
        // Column family first, registry second: a crash in between leaves a column family the
        // registry doesn't list, which the next open of the group drops.
        self.shared
            .groups
            .create_tenant_cf(&db, &record.cf_name())?;
        self.shared.registry.create(&record)?;
        {
            let mut dir = self.shared.directory.write();
            dir.next_incarnation = incarnation + 1;
            dir.insert(record.clone());
        }
        drop(db);
        self.shared.note_group_opened();
        Ok(self.info_of(&record))
    }

    /// Deletes a tenant: removes it from the registry (from then on no new request finds it),
    /// then waits for its running requests, drops its column family (RocksDB deletes the files)
    /// and its indexes. The wait is outside the lifecycle lock, so a tenant with slow requests
    /// delays only its own deletion. A tenant later created with the same id gets a new column
    /// family and sees nothing of this one.
    pub fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        // Held until the keys are gone: a key being created either finishes first (and the
        // registry delete takes it along) or finds no tenant, never lands after the delete.
        // (Looked up first so a missing id leaves no lock behind.)
        self.shared.record(id)?;
        let key_changes = self.shared.api_keys.mutation_lock(id);
        let serialised = key_changes.lock();
        let state = {
            let _lifecycle = self.shared.lifecycle.lock();
            let state = self.shared.state(id)?;
            self.shared.registry.delete(id)?;
            self.shared.directory.write().remove(id);
            self.shared.active.write().remove(id);
            state
        };
        self.shared.api_keys.remove_tenant(id);
        drop(serialised);
        state.delete()
    }

    pub fn update_tenant(&self, id: &TenantId, settings: &TenantSettings) -> Result<TenantInfo> {
        settings.validate()?;
        let _lifecycle = self.shared.lifecycle.lock();
        let mut record = self.shared.record(id)?;
        record.audit_retention_secs = settings.audit_retention.map(|d| d.as_secs());
        record.quota = settings.quota;
        record.rate_limit = settings.rate_limit;
        self.shared.registry.update(&record)?;
        self.shared.directory.write().insert(record.clone());
        if let Some(state) = self.shared.active.read().get(id) {
            state.set_record(record.clone());
        }
        Ok(self.info_of(&record))
    }

    pub fn tenant_info(&self, id: &TenantId) -> Result<TenantInfo> {
        Ok(self.info_of(&self.shared.record(id)?))
    }

    /// Up to `limit` tenants with ids greater than `after`, in id order.
    pub fn list_tenants(&self, after: Option<&TenantId>, limit: usize) -> Vec<TenantInfo> {
        let dir = self.shared.directory.read();
        let range = match after {
            Some(a) => dir.records.range((
                std::ops::Bound::Excluded(a.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => dir.records.range(..),
        };
        range.take(limit).map(|(_, r)| self.info_of(r)).collect()
    }

    pub fn tenant_count(&self) -> usize {
        self.shared.directory.read().records.len()
    }

    /// Tenant groups whose RocksDB instance is open now.
    /// Writes every open group's memtables to table files. For a shutdown that can't drop the
    /// engine (a connection held past the grace period still references it): the process then
    /// exits without the flush `Drop` does, and the next start would replay the logs.
    pub fn flush_open_groups(&self) {
        for (group, _) in self.shared.groups.open_groups() {
            self.shared.flush_group(group);
        }
    }

    pub fn open_group_count(&self) -> usize {
        self.shared.groups.open_count()
    }

    /// Closes every tenant group none of whose tenants was used for `idle_for` and none of
    /// whose tenants is in use now (the sweeper does this with `group_idle_close`); returns how
    /// many closed. Their tenants reopen on their next request.
    pub fn close_idle_groups(&self, idle_for: Duration) -> usize {
        self.shared.close_idle_groups(idle_for)
    }

    fn info_of(&self, record: &TenantRecord) -> TenantInfo {
        TenantInfo {
            id: record.id.clone(),
            created_at_ms: record.created_at_ms,
            group: record.group,
            audit_retention: record.audit_retention_secs.map(Duration::from_secs),
            loaded: self
                .shared
                .active
                .read()
                .get(&record.id)
                .is_some_and(|s| s.is_loaded()),
            group_open: self.shared.groups.is_open(record.group),
            quota: record.quota,
            rate_limit: record.rate_limit,
        }
    }
}

/// Authentication's view of API keys.
impl Engine {
    /// The key whose secret hashes to `hash`, if its tenant still exists in the incarnation the
    /// key was issued for. Expiry and revocation are the caller's to check (`is_usable`), so it
    /// can tell them apart in its answer.
    pub fn api_key_by_hash(&self, hash: &SecretHash) -> Option<ApiKeyRecord> {
        let key = self.shared.api_keys.by_hash(hash)?;
        let alive = self
            .shared
            .directory
            .read()
            .records
            .get(&key.tenant)
            .is_some_and(|t| t.incarnation == key.incarnation);
        alive.then_some(key)
    }
}

/// API keys: control-plane records of one tenant each, changed only through the tenant's
/// handle (`TenantHandle::create_api_key` and the rest).
impl Shared {
    /// Stores a new key of `record.tenant`, bound to the tenant's current incarnation. A tenant
    /// holds at most `max_api_keys_per_tenant` keys, revoked ones included.
    pub(crate) fn create_api_key(&self, mut record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let lock = self.api_keys.mutation_lock(&record.tenant);
        let _serialised = lock.lock();
        record.incarnation = self.record(&record.tenant)?.incarnation;
        let keys = &self.api_keys;
        if keys.get(&record.tenant, &record.key_id).is_some() {
            return Err(EngineError::KeyExists(record.key_id.clone()));
        }
        let cap = self.config.max_api_keys_per_tenant;
        let held = keys.count(&record.tenant);
        if held >= cap {
            return Err(EngineError::QuotaExceeded(format!(
                "tenant {} holds {held} API keys (revoked ones included), the limit is {cap}",
                record.tenant
            )));
        }
        self.registry.put_api_key(&record)?;
        keys.put(record.clone());
        Ok(record)
    }

    /// The keys of one tenant, ordered by id.
    pub(crate) fn list_api_keys(&self, tenant: &TenantId) -> Vec<ApiKeyRecord> {
        self.api_keys.of_tenant(tenant)
    }

    /// Marks a key revoked; it fails authentication from then on.
    pub(crate) fn revoke_api_key(&self, tenant: &TenantId, key_id: &KeyId) -> Result<ApiKeyRecord> {
        let lock = self.api_keys.mutation_lock(tenant);
        let _serialised = lock.lock();
        let mut revoked = self
            .api_keys
            .get(tenant, key_id)
            .ok_or_else(|| EngineError::KeyNotFound(key_id.clone()))?;
        revoked.revoked = true;
        self.registry.put_api_key(&revoked)?;
        self.api_keys.put(revoked.clone());
        Ok(revoked)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.stop();
        }
        self.shared.index_builds.stop();
        // Tenant states point back at `Shared`; clearing the map breaks the cycle so the
        // databases close. Each group is flushed as it closes, so the next start replays no
        // write-ahead log.
        self.shared.active.write().clear();
        for (group, _) in self.shared.groups.open_groups() {
            self.shared.close_group(group);
        }
    }
}
