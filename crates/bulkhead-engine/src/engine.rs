//! The engine: the tenant registry, the tenant groups, and the one way into tenant data,
//! `Engine::tenant`. Tenant lifecycle (create, delete, list) is control-plane and returns only
//! registry facts; every data operation is a method of the `TenantHandle` it returns.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::{KeyId, TenantId};
use parking_lot::Mutex;

use crate::access::{Access, Authority, Grant};
use crate::api_keys::{ApiKeyRecord, SecretHash};
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::index_builds::IndexBuilds;
use crate::registry::Registry;
use crate::residency::Residency;
use crate::settings::{Quota, RateLimit, ServerShare, TenantSettings};
use crate::storage::{SharedResources, TenantRecord};
use crate::sweep_signal::Signal;
use crate::sweeper::{SweepSchedule, Sweeper};
use crate::tenant::{TenantHandle, remove_unregistered_segments};
use crate::verification_keys::VerificationKeyRecord;

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
    /// The operator's bound on end-user token lifetimes; `None`: the engine's ceiling.
    pub max_token_lifetime: Option<Duration>,
    pub share: ServerShare,
}

/// A Bulkhead storage engine over one data directory. It owns the three parts and the threads
/// that serve them: the registry (which tenants and keys exist), the residency (which tenants
/// are in memory) and, inside the residency, the tenants themselves.
#[derive(Debug)]
pub struct Engine {
    config: Arc<EngineConfig>,
    registry: Arc<Registry>,
    residency: Arc<Residency>,
    index_builds: Arc<IndexBuilds>,
    /// Serialises tenant creation and deletion (never held while waiting for a tenant's
    /// requests or for another tenant's keys).
    lifecycle: Mutex<()>,
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
        let config = Arc::new(config);
        let resources = Arc::new(SharedResources::new(&config));
        let registry = Arc::new(Registry::open(
            &config.data_dir.join("system"),
            &resources,
            config.max_api_keys_per_tenant,
            config.storage,
        )?);
        remove_unregistered_segments(&config.data_dir, &registry.incarnations())?;
        let index_builds = Arc::new(IndexBuilds::start(config.index_build_threads));
        let signal = Arc::new(Signal::default());
        let residency = Residency::new(
            config.clone(),
            registry.clone(),
            resources,
            index_builds.clone(),
            signal.clone(),
        );
        tracing::info!(
            data_dir = %config.data_dir.display(),
            tenants = registry.tenant_count(),
            sync_writes = config.sync_writes,
            tenants_per_group = config.tenants_per_group,
            groups_before_sharing = config.groups_before_sharing.min(residency.open_group_cap()),
            max_open_groups = residency.open_group_cap(),
            "engine opened"
        );
        let schedule = SweepSchedule {
            interval: config.sweep_interval,
            group_idle_close: config.group_idle_close,
            closed_groups_per_round: config.closed_groups_swept_per_round,
        };
        let sweeper = Sweeper::start(&residency, signal, schedule);
        Ok(Self {
            config,
            registry,
            residency,
            index_builds,
            lifecycle: Mutex::new(()),
            sweeper: Some(sweeper),
        })
    }

    /// The index build queue: builds wanted by writes and activations, run in the background.
    pub fn index_build_stats(&self) -> crate::IndexBuildStats {
        self.index_builds.stats()
    }

    /// Waits until no index build or segment write is queued or running; `false` if `timeout`
    /// passed first. For operators, tests and benchmarks that need a settled index.
    pub fn wait_for_index_builds(&self, timeout: std::time::Duration) -> bool {
        self.index_builds.wait_idle(timeout)
    }

    /// The only way to a tenant's data: a handle of the granted tenant with the granted
    /// access. May open the tenant's group (file I/O): callers on an async runtime try
    /// [`Engine::tenant_if_active`] first.
    pub fn tenant<A: Access>(&self, grant: &Grant<A>) -> Result<TenantHandle<A>> {
        self.residency
            .state(grant.tenant())
            .map(|state| TenantHandle::new(state).narrow())
    }

    /// A handle of the granted tenant if its group is open and it has been used since (no I/O,
    /// no waiting on another tenant's activation); `None` means `tenant` has work to do.
    pub fn tenant_if_active<A: Access>(&self, grant: &Grant<A>) -> Option<TenantHandle<A>> {
        self.residency
            .active_state(grant.tenant())
            .map(|state| TenantHandle::new(state).narrow())
    }

    /// The authority that issues grants (see `access`): whoever holds the engine authorizes.
    pub fn authority(&self) -> Authority {
        Authority::new()
    }

    pub fn create_tenant(&self, id: &TenantId, settings: &TenantSettings) -> Result<TenantInfo> {
        settings.validate()?;
        let _lifecycle = self.lifecycle.lock();
        // Never more groups apart than may be open at once (the open-files limit lowers that
        // cap at start): past it, tenants of their own groups would take turns closing them.
        let before_sharing = self
            .config
            .groups_before_sharing
            .min(self.residency.open_group_cap());
        let placement = self
            .registry
            .place(id, self.config.tenants_per_group, before_sharing)?;
        let record = TenantRecord {
            id: id.clone(),
            incarnation: placement.incarnation,
            group: placement.group,
            created_at_ms: self.config.clock.now_ms(),
            audit_retention_secs: settings.audit_retention.map(|d| d.as_secs()),
            quota: settings.quota,
            rate_limit: settings.rate_limit,
            max_token_lifetime_secs: settings.max_token_lifetime.map(|d| d.as_secs()),
            share: settings.share,
        };
        let db = self.residency.group_db(record.group)?;
        // Column family first, registry second: a crash in between leaves a column family the
        // registry doesn't list, which the next open of the group drops.
        self.residency.create_tenant_cf(&db, &record)?;
        fail::fail_point!("create-tenant:column-family-created");
        self.registry.add(&record)?;
        fail::fail_point!("create-tenant:registered");
        drop(db);
        self.residency.note_group_opened();
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
        self.registry.record(id)?;
        let key_changes = self.registry.key_mutation_lock(id);
        let serialised = key_changes.lock();
        let state = {
            let _lifecycle = self.lifecycle.lock();
            let state = self.residency.state(id)?;
            self.registry.remove(id)?;
            fail::fail_point!("delete-tenant:unregistered");
            self.residency.forget(id);
            state
        };
        drop(serialised);
        state.delete()
    }

    pub fn update_tenant(&self, id: &TenantId, settings: &TenantSettings) -> Result<TenantInfo> {
        settings.validate()?;
        let _lifecycle = self.lifecycle.lock();
        let mut record = self.registry.record(id)?;
        record.audit_retention_secs = settings.audit_retention.map(|d| d.as_secs());
        record.quota = settings.quota;
        record.rate_limit = settings.rate_limit;
        record.max_token_lifetime_secs = settings.max_token_lifetime.map(|d| d.as_secs());
        record.share = settings.share;
        self.registry.update(&record)?;
        if let Some(state) = self.residency.active_state(id) {
            state.set_record(record.clone());
        }
        Ok(self.info_of(&record))
    }

    pub fn tenant_info(&self, id: &TenantId) -> Result<TenantInfo> {
        Ok(self.info_of(&self.registry.record(id)?))
    }

    /// Up to `limit` tenants with ids greater than `after`, in id order.
    pub fn list_tenants(&self, after: Option<&TenantId>, limit: usize) -> Vec<TenantInfo> {
        self.registry
            .list(after, limit)
            .iter()
            .map(|r| self.info_of(r))
            .collect()
    }

    pub fn tenant_count(&self) -> usize {
        self.registry.tenant_count()
    }

    /// Writes every open group's memtables to table files. For a shutdown that can't drop the
    /// engine (a connection held past the grace period still references it): the process then
    /// exits without the flush `Drop` does, and the next start would replay the logs.
    pub fn flush_open_groups(&self) {
        self.residency.flush_open_groups();
    }

    /// Tenant groups whose RocksDB instance is open now.
    pub fn open_group_count(&self) -> usize {
        self.residency.open_group_count()
    }

    /// Closes every tenant group none of whose tenants was used for `idle_for` and none of
    /// whose tenants is in use now (the sweeper does this with `group_idle_close`); returns how
    /// many closed. Their tenants reopen on their next request.
    pub fn close_idle_groups(&self, idle_for: Duration) -> usize {
        self.residency.close_idle_groups(idle_for)
    }

    fn info_of(&self, record: &TenantRecord) -> TenantInfo {
        TenantInfo {
            id: record.id.clone(),
            created_at_ms: record.created_at_ms,
            group: record.group,
            audit_retention: record.audit_retention_secs.map(Duration::from_secs),
            loaded: self.residency.is_loaded(&record.id),
            group_open: self.residency.is_group_open(record.group),
            quota: record.quota,
            rate_limit: record.rate_limit,
            max_token_lifetime: record.max_token_lifetime_secs.map(Duration::from_secs),
            share: record.share,
        }
    }

    /// Authentication's view of API keys: the key whose secret hashes to `hash`, if its tenant
    /// still exists in the incarnation the key was issued for. Expiry and revocation are the
    /// caller's to check (`is_usable`), so it can tell them apart in its answer.
    pub fn api_key_by_hash(&self, hash: &SecretHash) -> Option<ApiKeyRecord> {
        self.registry.api_key_by_hash(hash)
    }

    /// Token verification's view of a tenant's keys: `tenant`'s key `key_id`, if the tenant
    /// still exists in the incarnation the key was registered for (revocation is the caller's
    /// to check). A key is found only under its own tenant. Its `max_token_lifetime_secs` is
    /// the bound in force: the key's own, lowered to its tenant's if that is lower, so an
    /// operator lowering a tenant's bound shortens the tokens of keys registered before.
    pub fn verification_key(
        &self,
        tenant: &TenantId,
        key_id: &KeyId,
    ) -> Option<VerificationKeyRecord> {
        self.registry.verification_key(tenant, key_id)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.stop();
        }
        self.index_builds.stop();
        self.residency.close_all_groups();
    }
}
