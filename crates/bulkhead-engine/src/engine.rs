//! The engine: the tenant registry, the tenant groups, and the one way into tenant data,
//! `Engine::tenant`. Tenant lifecycle (create, delete, list) is control-plane and returns only
//! registry facts; every data operation is a method of the `TenantHandle` it returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::{KeyId, TenantId};
use parking_lot::{Mutex, RwLock};

use crate::api_keys::{ApiKeyRecord, SecretHash};
use crate::clock::now_ms;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::settings::{Quota, RateLimit, TenantSettings};
use crate::storage::{GroupId, Groups, Registry, SharedResources, TenantRecord};
use crate::sweeper::Sweeper;
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

/// The registry as held in memory.
#[derive(Debug, Default)]
struct Directory {
    records: BTreeMap<TenantId, TenantRecord>,
    group_sizes: BTreeMap<GroupId, usize>,
    next_incarnation: u64,
}

impl Directory {
    fn insert(&mut self, record: TenantRecord) {
        *self.group_sizes.entry(record.group).or_default() += 1;
        self.records.insert(record.id.clone(), record);
    }

    fn remove(&mut self, id: &TenantId) -> Option<TenantRecord> {
        let record = self.records.remove(id)?;
        if let Some(n) = self.group_sizes.get_mut(&record.group) {
            *n -= 1;
        }
        Some(record)
    }

    /// The lowest group with room, or a new one.
    fn group_with_room(&self, per_group: usize) -> GroupId {
        let mut candidate = 0;
        for (group, size) in &self.group_sizes {
            if *group != candidate {
                return candidate;
            }
            if *size < per_group {
                return *group;
            }
            candidate = group + 1;
        }
        candidate
    }

    fn cf_names_in(&self, group: GroupId) -> HashSet<String> {
        self.records
            .values()
            .filter(|r| r.group == group)
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
    /// Tenants touched since start; the rest are only registry entries.
    active: Mutex<HashMap<TenantId, Arc<TenantState>>>,
    /// API keys by secret hash; mirrors the registry.
    api_keys: RwLock<HashMap<SecretHash, ApiKeyRecord>>,
    /// Serialises tenant creation and deletion.
    lifecycle: Mutex<()>,
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
        if let Some(state) = self.active.lock().get(id) {
            return Ok(state.clone());
        }
        let record = self.record(id)?;
        let db = self.groups.db(record.group, || {
            self.directory.read().cf_names_in(record.group)
        })?;
        let store = self
            .groups
            .store(db, record.cf_name(), self.config.sync_writes);
        let mut active = self.active.lock();
        let state = active
            .entry(id.clone())
            .or_insert_with(|| Arc::new(TenantState::new(record, store, self.clone())));
        Ok(state.clone())
    }

    /// Evicts the least recently used idle tenants' indexes while the loaded total exceeds the
    /// budget. `current` (the tenant just loaded) is never evicted by its own load.
    pub(crate) fn enforce_index_budget(&self, current: &TenantState) {
        let budget = self.config.index_memory_budget_bytes;
        let mut loaded: Vec<_> = self
            .active
            .lock()
            .values()
            .filter(|s| s.is_loaded())
            .cloned()
            .collect();
        let mut total: usize = loaded.iter().map(|s| s.loaded_memory_bytes()).sum();
        if total <= budget {
            return;
        }
        loaded.sort_by_key(|s| s.last_used_ms());
        for state in loaded {
            if total <= budget {
                break;
            }
            if std::ptr::eq(Arc::as_ptr(&state), current) {
                continue;
            }
            let bytes = state.loaded_memory_bytes();
            if state.try_evict() {
                total = total.saturating_sub(bytes);
                tracing::debug!(bytes, "evicted an idle tenant's indexes");
            }
        }
    }

    /// Handles of every tenant whose group is open (the sweeper's work list).
    pub(crate) fn tenants_in_open_groups(self: &Arc<Self>) -> Vec<TenantHandle> {
        let ids: Vec<_> = self
            .directory
            .read()
            .records
            .values()
            .filter(|r| self.groups.is_open(r.group))
            .map(|r| r.id.clone())
            .collect();
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
        let registry = Registry::open(&config.data_dir.join("system"), &resources)?;
        let (records, next_incarnation) = registry.load()?;
        let mut directory = Directory {
            next_incarnation,
            ..Directory::default()
        };
        let tenant_count = records.len();
        let api_keys = registry
            .load_api_keys()?
            .into_iter()
            .map(|k| (k.secret_hash, k))
            .collect();
        for r in records {
            directory.insert(r);
        }
        let shared = Arc::new(Shared {
            groups: Groups::new(groups_dir, resources),
            config,
            registry,
            directory: RwLock::new(directory),
            active: Mutex::new(HashMap::new()),
            api_keys: RwLock::new(api_keys),
            lifecycle: Mutex::new(()),
        });
        tracing::info!(
            data_dir = %shared.config.data_dir.display(),
            tenants = tenant_count,
            sync_writes = shared.config.sync_writes,
            "engine opened"
        );
        let sweeper = Sweeper::start(shared.clone());
        Ok(Self {
            shared,
            sweeper: Some(sweeper),
        })
    }

    /// The only way to a tenant's data.
    pub fn tenant(&self, id: &TenantId) -> Result<TenantHandle> {
        self.shared.state(id).map(TenantHandle::new)
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
        self.shared.registry.put(&record)?;
        let mut dir = self.shared.directory.write();
        dir.next_incarnation = incarnation + 1;
        dir.insert(record.clone());
        Ok(self.info_of(&record))
    }

    /// Deletes a tenant: waits for its running requests, removes it from the registry, drops
    /// its column family (RocksDB deletes the files) and its indexes. A tenant later created
    /// with the same id gets a new column family and sees nothing of this one.
    pub fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let _lifecycle = self.shared.lifecycle.lock();
        let state = self.shared.state(id)?;
        self.shared.registry.delete(id)?;
        self.shared.directory.write().remove(id);
        self.shared.api_keys.write().retain(|_, k| &k.tenant != id);
        self.shared.active.lock().remove(id);
        state.delete()
    }

    pub fn update_tenant(&self, id: &TenantId, settings: &TenantSettings) -> Result<TenantInfo> {
        settings.validate()?;
        let _lifecycle = self.shared.lifecycle.lock();
        let mut record = self.shared.record(id)?;
        record.audit_retention_secs = settings.audit_retention.map(|d| d.as_secs());
        record.quota = settings.quota;
        record.rate_limit = settings.rate_limit;
        self.shared.registry.put(&record)?;
        self.shared.directory.write().insert(record.clone());
        if let Some(state) = self.shared.active.lock().get(id) {
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

    fn info_of(&self, record: &TenantRecord) -> TenantInfo {
        TenantInfo {
            id: record.id.clone(),
            created_at_ms: record.created_at_ms,
            group: record.group,
            audit_retention: record.audit_retention_secs.map(Duration::from_secs),
            loaded: self
                .shared
                .active
                .lock()
                .get(&record.id)
                .is_some_and(|s| s.is_loaded()),
            group_open: self.shared.groups.is_open(record.group),
            quota: record.quota,
            rate_limit: record.rate_limit,
        }
    }
}

/// API keys: control-plane records of one tenant each.
impl Engine {
    /// Stores a new key of `record.tenant`, bound to the tenant's current incarnation.
    pub fn create_api_key(&self, mut record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let _lifecycle = self.shared.lifecycle.lock();
        record.incarnation = self.shared.record(&record.tenant)?.incarnation;
        let mut keys = self.shared.api_keys.write();
        if keys
            .values()
            .any(|k| k.tenant == record.tenant && k.key_id == record.key_id)
        {
            return Err(EngineError::KeyExists(record.key_id.clone()));
        }
        self.shared.registry.put_api_key(&record)?;
        keys.insert(record.secret_hash, record.clone());
        Ok(record)
    }

    /// The key whose secret hashes to `hash`, if its tenant still exists in the incarnation the
    /// key was issued for. Expiry and revocation are the caller's to check (`is_usable`), so it
    /// can tell them apart in its answer.
    pub fn api_key_by_hash(&self, hash: &SecretHash) -> Option<ApiKeyRecord> {
        let key = self.shared.api_keys.read().get(hash).cloned()?;
        let alive = self
            .shared
            .directory
            .read()
            .records
            .get(&key.tenant)
            .is_some_and(|t| t.incarnation == key.incarnation);
        alive.then_some(key)
    }

    /// The keys of one tenant, ordered by id.
    pub fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>> {
        self.tenant_info(tenant)?;
        let mut keys: Vec<_> = self
            .shared
            .api_keys
            .read()
            .values()
            .filter(|k| &k.tenant == tenant)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(keys)
    }

    /// Marks a key revoked; it fails authentication from then on.
    pub fn revoke_api_key(&self, tenant: &TenantId, key_id: &KeyId) -> Result<ApiKeyRecord> {
        let _lifecycle = self.shared.lifecycle.lock();
        let mut keys = self.shared.api_keys.write();
        let key = keys
            .values_mut()
            .find(|k| &k.tenant == tenant && &k.key_id == key_id)
            .ok_or_else(|| EngineError::KeyNotFound(key_id.clone()))?;
        let mut revoked = key.clone();
        revoked.revoked = true;
        self.shared.registry.put_api_key(&revoked)?;
        *key = revoked.clone();
        Ok(revoked)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.stop();
        }
        // Tenant states point back at `Shared`; clearing the map breaks the cycle so the
        // databases close.
        self.shared.active.lock().clear();
    }
}
