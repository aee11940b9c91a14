//! Residency: which tenants are in memory now. Tenant groups (RocksDB instances) open on first
//! use and close when idle or past the open-group cap; a tenant's state (and with it its loaded
//! indexes) lives while its group is open, and its indexes go earlier when the index memory
//! budget needs room. The residency owns those states; the registry (which tenants exist and
//! where) is read, never changed, here.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bulkhead_core::TenantId;
use parking_lot::RwLock;

use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::index_budget::{Evict, IndexBudget};
use crate::index_builds::IndexBuilds;
use crate::registry::Registry;
use crate::storage::{
    Db, GroupId, Groups, SharedResources, TenantRecord, open_group_cap, open_tenant_store,
};
use crate::sweep_signal::Signal;
use crate::tenant::{Maintained, TenantHandle, TenantServices, TenantState};

#[derive(Debug)]
pub(crate) struct Residency {
    config: Arc<EngineConfig>,
    registry: Arc<Registry>,
    groups: Groups,
    /// Tenants used since their group opened; the rest are only registry entries. Read on
    /// every request, written only on activation, group close and deletion.
    active: RwLock<HashMap<TenantId, Arc<TenantState>>>,
    /// What each tenant state is given of the engine around it.
    services: Arc<TenantServices>,
    /// Most groups open at once (`max_open_groups` fitted to the open-files limit).
    open_group_cap: usize,
    /// Wakes the sweeper thread for work requests shouldn't wait for.
    signal: Arc<Signal>,
}

impl Residency {
    pub fn new(
        config: Arc<EngineConfig>,
        registry: Arc<Registry>,
        resources: Arc<SharedResources>,
        index_builds: Arc<IndexBuilds>,
        signal: Arc<Signal>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak: &Weak<Self>| {
            let evictor: Weak<dyn Evict> = weak.clone();
            let services = Arc::new(TenantServices {
                config: config.clone(),
                registry: registry.clone(),
                index_budget: IndexBudget::new(config.index_memory_budget_bytes, evictor),
                index_builds,
            });
            Self {
                groups: Groups::new(config.data_dir.join("groups"), resources, config.storage),
                open_group_cap: open_group_cap(&config),
                config,
                registry,
                active: RwLock::new(HashMap::new()),
                services,
                signal,
            }
        })
    }

    pub fn open_group_cap(&self) -> usize {
        self.open_group_cap
    }

    /// The state of tenant `id`, opening its group if needed.
    pub fn state(&self, id: &TenantId) -> Result<Arc<TenantState>> {
        if let Some(state) = self.active_state(id) {
            return Ok(state);
        }
        let record = self.registry.record(id)?;
        let db = self.group_db(record.group)?;
        let store = open_tenant_store(db, record.cf_name(), self.config.sync_writes)?;
        let state = self
            .active
            .write()
            .entry(id.clone())
            .or_insert_with(|| Arc::new(TenantState::new(record, store, self.services.clone())))
            .clone();
        self.note_group_opened();
        Ok(state)
    }

    /// The state of tenant `id` if it is active (no I/O, no waiting on an activation).
    pub fn active_state(&self, id: &TenantId) -> Option<Arc<TenantState>> {
        self.active.read().get(id).cloned()
    }

    /// Takes a deleted tenant's state out: its next lookup finds the registry without it.
    pub fn forget(&self, id: &TenantId) {
        self.active.write().remove(id);
    }

    /// `group`'s database, opened with the column families of the tenants placed in it.
    pub fn group_db(&self, group: GroupId) -> Result<Arc<Db>> {
        self.groups.db(group, || self.registry.cf_names_in(group))
    }

    /// Creates a new tenant's column family in its (open) group.
    pub fn create_tenant_cf(&self, db: &Db, record: &TenantRecord) -> Result<()> {
        self.groups.create_tenant_cf(db, &record.cf_name())
    }

    pub fn is_loaded(&self, id: &TenantId) -> bool {
        self.active.read().get(id).is_some_and(|s| s.is_loaded())
    }

    pub fn is_group_open(&self, group: GroupId) -> bool {
        self.groups.is_open(group)
    }

    pub fn open_group_count(&self) -> usize {
        self.groups.open_count()
    }

    /// Closes `group`'s RocksDB instance if none of its tenants is in use: no request, sweep or
    /// handle holds one. Their states (and loaded indexes) are dropped with it; the next request
    /// reopens the group and waits for that, it never fails for it.
    pub fn close_group(&self, group: GroupId) -> bool {
        // Flushed first, outside every lock, so the next open replays no log; a write that
        // lands in between is in the log and replayed, so nothing depends on this.
        self.flush_group(group);
        fail::fail_point!("group-close:flushed");
        self.groups.close_if(group, |db| {
            let registered = self.registry.members_of(group);
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
    pub fn close_idle_groups(&self, idle_for: Duration) -> usize {
        let cutoff = self
            .config
            .clock
            .now_ms()
            .saturating_sub(idle_for.as_millis() as u64);
        self.groups
            .open_groups()
            .into_iter()
            .filter(|(_, last_used)| *last_used <= cutoff)
            .filter(|(group, _)| self.close_group(*group))
            .count()
    }

    /// Closes every open group it can (at shutdown: each is flushed as it closes, so the next
    /// start replays no write-ahead log).
    pub fn close_all_groups(&self) {
        self.active.write().clear();
        for (group, _) in self.groups.open_groups() {
            self.close_group(group);
        }
    }

    /// After a group may have opened: past the cap, asks the sweeper thread to close some.
    pub fn note_group_opened(&self) {
        if self.groups.open_count() > self.open_group_cap {
            self.signal.over_group_cap();
        }
    }

    /// While more groups than the cap are open, closes the least recently used idle ones.
    /// Groups in use stay open, so the cap can be exceeded briefly under load rather than
    /// failing a request.
    pub fn enforce_open_group_cap(&self) {
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
    pub fn flush_group(&self, group: GroupId) {
        let Some(db) = self.groups.open_db(group) else {
            return;
        };
        let names = self.registry.cf_names_in(group);
        if let Err(e) = db.flush_column_families(&names) {
            tracing::warn!(group, error = %e, "flushing a tenant group before closing it");
        }
    }

    /// Writes every open group's memtables to table files.
    pub fn flush_open_groups(&self) {
        for (group, _) in self.groups.open_groups() {
            self.flush_group(group);
        }
    }

    /// Opens a closed group, sweeps its tenants and closes it again; returns what it removed.
    /// Skips (removing nothing) a group that is open meanwhile.
    pub fn sweep_closed_group(&self, group: GroupId) -> Result<Maintained> {
        let mut removed = Maintained::default();
        if self.groups.is_open(group) {
            return Ok(removed);
        }
        for id in self.registry.members_of(group) {
            let tenant = match self.state(&id) {
                Ok(state) => TenantHandle::new(state),
                Err(EngineError::TenantNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            removed += tenant.maintain()?;
        }
        self.close_group(group);
        Ok(removed)
    }

    /// Groups holding tenants that are closed now, in id order.
    pub fn closed_groups(&self) -> Vec<GroupId> {
        self.registry
            .groups()
            .into_iter()
            .filter(|g| !self.groups.is_open(*g))
            .collect()
    }

    /// Recounts every loaded tenant's index memory, then enforces the budget.
    pub fn recount_index_bytes(&self) {
        let active: Vec<_> = self.active.read().values().cloned().collect();
        for state in active {
            state.recount_index_bytes();
        }
        self.evict_to_budget(None);
    }

    /// Handles of every tenant whose group is open (the sweeper's work list).
    pub fn tenants_in_open_groups(&self) -> Vec<TenantHandle> {
        // Through the group index: the open groups' members, not a pass over every registered
        // tenant with a group lookup each (which waited on any group being opened, with the
        // registry read-locked).
        let ids: Vec<TenantId> = self
            .groups
            .open_groups()
            .into_iter()
            .flat_map(|(group, _)| self.registry.members_of(group))
            .collect();
        ids.iter()
            .filter_map(|id| self.state(id).ok().map(TenantHandle::new))
            .collect()
    }
}

impl Evict for Residency {
    /// The loaded total is kept as tenants load and unload, so a load under the budget costs
    /// no scan of the tenants; the sweeper recounts it each round, as indexes grow with writes.
    fn evict_to_budget(&self, keep: Option<u64>) {
        let budget = &self.services.index_budget;
        if !budget.is_exceeded() {
            return;
        }
        let active: Vec<_> = self.active.read().values().cloned().collect();
        let mut loaded: Vec<_> = active.into_iter().filter(|s| s.is_loaded()).collect();
        loaded.sort_by_key(|s| s.last_used_ms());
        for state in loaded {
            if !budget.is_exceeded() {
                break;
            }
            if keep == Some(state.incarnation()) {
                continue;
            }
            if let Some(bytes) = state.try_evict() {
                tracing::debug!(bytes, "evicted an idle tenant's indexes");
            }
        }
    }
}
