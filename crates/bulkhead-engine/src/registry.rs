//! The registry: which tenants exist, in which incarnation and group, their API keys and the
//! keys they verify their end users' tokens with, held
//! in memory and written through to the system database (`storage::RegistryStore`). It owns the
//! control-plane facts and nothing of tenant data or residency, so authentication, placement
//! and the tenant lifecycle read it without touching a tenant group. (The directory is indexed
//! by group too, so work on one group costs its own tenants, not the whole registry.)

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use bulkhead_core::{KeyId, TenantId};
use parking_lot::{Mutex, RwLock};

use crate::api_keys::{ApiKeyRecord, SecretHash};
use crate::error::{EngineError, Result};
use crate::key_table::KeyTable;
use crate::storage::{GroupId, RegistryStore, SharedResources, StorageBackend, TenantRecord};
use crate::verification_keys::{
    DEFAULT_TOKEN_LIFETIME_SECS, MAX_VERIFICATION_KEYS_PER_TENANT, VerificationKeyRecord,
    VerificationKeys,
};

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

    /// The group a new tenant goes to: a new one while fewer than `before_sharing` groups hold
    /// tenants, then the one with the fewest tenants below `per_group` (the lowest of those),
    /// and a new one again once every group is full.
    fn group_for_new_tenant(&self, per_group: usize, before_sharing: usize) -> GroupId {
        if self.members.len() >= before_sharing
            && let Some((group, _)) = self
                .members
                .iter()
                .filter(|(_, members)| members.len() < per_group)
                .min_by_key(|(group, members)| (members.len(), **group))
        {
            return *group;
        }
        self.lowest_unused_group()
    }

    fn lowest_unused_group(&self) -> GroupId {
        let mut candidate = 0;
        for group in self.members.keys() {
            if *group != candidate {
                break;
            }
            candidate += 1;
        }
        candidate
    }
}

#[derive(Debug)]
pub(crate) struct Registry {
    store: RegistryStore,
    directory: RwLock<Directory>,
    /// API keys; mirrors the store.
    api_keys: KeyTable,
    /// End-user token verification keys; mirrors the store. Changed under the tenant's key
    /// mutation lock, like its API keys.
    verification_keys: RwLock<VerificationKeys>,
    max_api_keys_per_tenant: usize,
}

/// Where a new tenant goes: its group and incarnation (see `Registry::place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub group: GroupId,
    pub incarnation: u64,
}

impl Registry {
    /// Reads the whole registry from the system database at `path`.
    pub fn open(
        path: &Path,
        resources: &SharedResources,
        max_api_keys_per_tenant: usize,
        backend: StorageBackend,
    ) -> Result<Self> {
        let store = RegistryStore::open(path, resources, backend)?;
        let (records, next_incarnation) = store.load()?;
        let mut directory = Directory {
            next_incarnation,
            ..Directory::default()
        };
        for r in records {
            directory.insert(r);
        }
        let api_keys = KeyTable::new(store.load_api_keys()?);
        let verification_keys = VerificationKeys::new(store.load_verification_keys()?);
        Ok(Self {
            store,
            directory: RwLock::new(directory),
            api_keys,
            verification_keys: RwLock::new(verification_keys),
            max_api_keys_per_tenant,
        })
    }

    /// The entry of `id`.
    pub fn record(&self, id: &TenantId) -> Result<TenantRecord> {
        self.directory
            .read()
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::TenantNotFound(id.clone()))
    }

    pub fn tenant_count(&self) -> usize {
        self.directory.read().records.len()
    }

    /// Up to `limit` entries with ids greater than `after`, in id order.
    pub fn list(&self, after: Option<&TenantId>, limit: usize) -> Vec<TenantRecord> {
        let dir = self.directory.read();
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        dir.records
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The tenants placed in `group`, in id order.
    pub fn members_of(&self, group: GroupId) -> Vec<TenantId> {
        self.directory
            .read()
            .members
            .get(&group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The column families `group` must have: one per tenant placed in it.
    pub fn cf_names_in(&self, group: GroupId) -> HashSet<String> {
        let dir = self.directory.read();
        dir.members
            .get(&group)
            .into_iter()
            .flatten()
            .filter_map(|id| dir.records.get(id))
            .map(TenantRecord::cf_name)
            .collect()
    }

    /// The incarnation of every registered tenant.
    pub fn incarnations(&self) -> HashSet<u64> {
        let dir = self.directory.read();
        dir.records.values().map(|r| r.incarnation).collect()
    }

    /// Groups holding at least one tenant, in id order.
    pub fn groups(&self) -> Vec<GroupId> {
        self.directory.read().members.keys().copied().collect()
    }

    /// Where a new tenant `id` would go (`Directory::group_for_new_tenant`), and the next
    /// incarnation. Callers serialise `place` and `add` (the engine's lifecycle lock), so no
    /// two tenants get one incarnation.
    pub fn place(
        &self,
        id: &TenantId,
        per_group: usize,
        before_sharing: usize,
    ) -> Result<Placement> {
        let dir = self.directory.read();
        if dir.records.contains_key(id) {
            return Err(EngineError::TenantExists(id.clone()));
        }
        Ok(Placement {
            group: dir.group_for_new_tenant(per_group, before_sharing),
            incarnation: dir.next_incarnation,
        })
    }

    /// Registers a tenant placed by `place` (a synced write).
    pub fn add(&self, record: &TenantRecord) -> Result<()> {
        self.store.create(record)?;
        let mut dir = self.directory.write();
        dir.next_incarnation = record.incarnation + 1;
        dir.insert(record.clone());
        Ok(())
    }

    /// Replaces a tenant's entry (its settings; never its group or incarnation).
    pub fn update(&self, record: &TenantRecord) -> Result<()> {
        self.store.update(record)?;
        self.directory.write().insert(record.clone());
        Ok(())
    }

    /// Removes a tenant and its keys: from now on no request finds it, no key of it
    /// authenticates and no token signed by its keys verifies. The caller holds the tenant's key mutation lock (`key_mutation_lock`).
    pub fn remove(&self, id: &TenantId) -> Result<()> {
        self.store.delete(id)?;
        self.directory.write().remove(id);
        self.api_keys.remove_tenant(id);
        self.verification_keys.write().remove_tenant(id);
        Ok(())
    }

    /// The lock serialising changes to `tenant`'s keys (and its removal).
    pub fn key_mutation_lock(&self, tenant: &TenantId) -> Arc<Mutex<()>> {
        self.api_keys.mutation_lock(tenant)
    }
}

/// API keys: control-plane records of one tenant each. The engine changes them only through the
/// tenant's handle (`TenantHandle::create_api_key` and the rest), authentication reads them by
/// hash.
impl Registry {
    /// The key whose secret hashes to `hash`, if its tenant still exists in the incarnation the
    /// key was issued for. Expiry and revocation are the caller's to check (`is_usable`), so it
    /// can tell them apart in its answer.
    pub fn api_key_by_hash(&self, hash: &SecretHash) -> Option<ApiKeyRecord> {
        let key = self.api_keys.by_hash(hash)?;
        let alive = self
            .directory
            .read()
            .records
            .get(&key.tenant)
            .is_some_and(|t| t.incarnation == key.incarnation);
        alive.then_some(key)
    }

    /// Stores a new key of `record.tenant`, bound to the tenant's current incarnation. A tenant
    /// holds at most `max_api_keys_per_tenant` keys, revoked ones included.
    pub fn create_api_key(&self, mut record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let lock = self.api_keys.mutation_lock(&record.tenant);
        let _serialised = lock.lock();
        record.incarnation = self.record(&record.tenant)?.incarnation;
        let keys = &self.api_keys;
        if keys.get(&record.tenant, &record.key_id).is_some() {
            return Err(EngineError::KeyExists(record.key_id.clone()));
        }
        let cap = self.max_api_keys_per_tenant;
        let held = keys.count(&record.tenant);
        if held >= cap {
            return Err(EngineError::QuotaExceeded(format!(
                "tenant {} holds {held} API keys (revoked ones included), the limit is {cap}",
                record.tenant
            )));
        }
        self.store.put_api_key(&record)?;
        keys.put(record.clone());
        Ok(record)
    }

    /// The keys of one tenant, ordered by id.
    pub fn list_api_keys(&self, tenant: &TenantId) -> Vec<ApiKeyRecord> {
        self.api_keys.of_tenant(tenant)
    }

    /// Marks a key revoked; it fails authentication from then on.
    pub fn revoke_api_key(&self, tenant: &TenantId, key_id: &KeyId) -> Result<ApiKeyRecord> {
        let lock = self.api_keys.mutation_lock(tenant);
        let _serialised = lock.lock();
        let mut revoked = self
            .api_keys
            .get(tenant, key_id)
            .ok_or_else(|| EngineError::KeyNotFound(key_id.clone()))?;
        revoked.revoked = true;
        self.store.put_api_key(&revoked)?;
        self.api_keys.put(revoked.clone());
        Ok(revoked)
    }
}

/// End-user token verification keys: the engine changes them only through the tenant's
/// key-admin handle; token verification reads them by tenant and key id.
impl Registry {
    /// `tenant`'s key `key_id`, if the tenant still exists in the incarnation the key was
    /// registered for. Revocation is the caller's to check, so it can say so.
    pub fn verification_key(
        &self,
        tenant: &TenantId,
        key_id: &KeyId,
    ) -> Option<VerificationKeyRecord> {
        let mut key = self.verification_keys.read().get(tenant, key_id).cloned()?;
        let bound = self
            .directory
            .read()
            .records
            .get(tenant)
            .filter(|t| t.incarnation == key.incarnation)?
            .token_lifetime_bound_secs();
        key.max_token_lifetime_secs = key.max_token_lifetime_secs.min(bound);
        Some(key)
    }

    /// Registers a key of `record.tenant`, bound to the tenant's current incarnation. A tenant
    /// holds at most `MAX_VERIFICATION_KEYS_PER_TENANT`, revoked ones included. A key's token
    /// lifetime of 0 means the default (an hour, or the tenant's bound if shorter); one above
    /// the tenant's bound is refused.
    pub fn add_verification_key(
        &self,
        mut record: VerificationKeyRecord,
    ) -> Result<VerificationKeyRecord> {
        let lock = self.api_keys.mutation_lock(&record.tenant);
        let _serialised = lock.lock();
        let tenant = self.record(&record.tenant)?;
        let bound = tenant.token_lifetime_bound_secs();
        if record.max_token_lifetime_secs == 0 {
            record.max_token_lifetime_secs = DEFAULT_TOKEN_LIFETIME_SECS.min(bound);
        }
        record.validate()?;
        if record.max_token_lifetime_secs > bound {
            return Err(EngineError::InvalidArgument(format!(
                "max_token_lifetime_seconds is {} but tenant {} allows end-user tokens at most \
                 {bound} s (its max_token_lifetime, set by the operator)",
                record.max_token_lifetime_secs, record.tenant
            )));
        }
        record.incarnation = tenant.incarnation;
        let held = self.verification_keys.read().of_tenant(&record.tenant);
        if held.iter().any(|k| k.key_id == record.key_id) {
            return Err(EngineError::KeyExists(record.key_id.clone()));
        }
        if held.len() >= MAX_VERIFICATION_KEYS_PER_TENANT {
            return Err(EngineError::QuotaExceeded(format!(
                "tenant {} holds {} verification keys (revoked ones included), the limit is \
                 {MAX_VERIFICATION_KEYS_PER_TENANT}",
                record.tenant,
                held.len()
            )));
        }
        self.store.put_verification_key(&record)?;
        self.verification_keys.write().put(record.clone());
        Ok(record)
    }

    /// The verification keys of one tenant, ordered by id.
    pub fn list_verification_keys(&self, tenant: &TenantId) -> Vec<VerificationKeyRecord> {
        self.verification_keys.read().of_tenant(tenant)
    }

    /// Marks a key revoked: no token it signed verifies from then on, however long it has
    /// left to live.
    pub fn revoke_verification_key(
        &self,
        tenant: &TenantId,
        key_id: &KeyId,
    ) -> Result<VerificationKeyRecord> {
        let lock = self.api_keys.mutation_lock(tenant);
        let _serialised = lock.lock();
        let mut revoked = self
            .verification_keys
            .read()
            .get(tenant, key_id)
            .cloned()
            .ok_or_else(|| EngineError::KeyNotFound(key_id.clone()))?;
        revoked.revoked = true;
        self.store.put_verification_key(&revoked)?;
        self.verification_keys.write().put(revoked.clone());
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places `count` tenants one after another, as `create_tenant` does; their groups in order.
    fn place_all(dir: &mut Directory, count: usize, per_group: usize, before: usize) -> Vec<u32> {
        (0..count)
            .map(|_| {
                let group = dir.group_for_new_tenant(per_group, before);
                dir.insert(TenantRecord {
                    id: TenantId::new(format!("t{}", dir.records.len())).unwrap(),
                    incarnation: 0,
                    group,
                    created_at_ms: 0,
                    audit_retention_secs: None,
                    quota: Default::default(),
                    rate_limit: Default::default(),
                    max_token_lifetime_secs: None,
                    share: Default::default(),
                });
                group
            })
            .collect()
    }

    #[test]
    fn tenants_get_groups_of_their_own_until_there_are_enough_then_the_emptiest() {
        let mut dir = Directory::default();
        assert_eq!(place_all(&mut dir, 3, 4, 3), [0, 1, 2], "one each");
        assert_eq!(
            place_all(&mut dir, 7, 4, 3),
            [0, 1, 2, 0, 1, 2, 0],
            "then the fewest tenants first, the lowest group of those"
        );
        assert_eq!(
            place_all(&mut dir, 3, 4, 3),
            [1, 2, 3],
            "a new group once all are full"
        );
    }

    #[test]
    fn sharing_from_the_first_group_fills_one_group_at_a_time() {
        let mut dir = Directory::default();
        assert_eq!(place_all(&mut dir, 5, 2, 1), [0, 0, 1, 1, 2]);
    }

    #[test]
    fn a_group_emptied_by_deletions_is_the_first_new_one_again() {
        let mut dir = Directory::default();
        place_all(&mut dir, 3, 4, 3);
        let first = dir.members[&0].iter().next().unwrap().clone();
        dir.remove(&first);
        assert_eq!(
            dir.group_for_new_tenant(4, 3),
            0,
            "group 0 holds nobody: fewer than three groups hold tenants"
        );
        assert_eq!(
            dir.group_for_new_tenant(4, 2),
            1,
            "two do: the emptiest shares"
        );
    }
}
