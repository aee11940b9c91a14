//! The API keys held in memory: by secret hash for authentication (read on every request), and
//! by tenant for the tenant's own key operations. Mutations of one tenant's keys are serialised
//! by that tenant's own lock, and the synced registry write happens under it, never under the
//! table's lock: a tenant creating and revoking keys in a loop delays only its own key calls,
//! not the authentication of every other tenant.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bulkhead_core::{KeyId, TenantId};
use parking_lot::{Mutex, RwLock};

use crate::api_keys::{ApiKeyRecord, SecretHash};

#[derive(Debug, Default)]
struct Entries {
    by_hash: HashMap<SecretHash, ApiKeyRecord>,
    by_tenant: HashMap<TenantId, BTreeMap<KeyId, SecretHash>>,
}

#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    entries: RwLock<Entries>,
    /// One lock per tenant with keys being changed; taken before `entries`, never the reverse.
    mutations: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
}

impl KeyTable {
    pub fn new(records: impl IntoIterator<Item = ApiKeyRecord>) -> Self {
        let table = Self::default();
        {
            let mut entries = table.entries.write();
            for r in records {
                entries.insert(r);
            }
        }
        table
    }

    /// The lock serialising changes to `tenant`'s keys.
    pub fn mutation_lock(&self, tenant: &TenantId) -> Arc<Mutex<()>> {
        self.mutations
            .lock()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    pub fn by_hash(&self, hash: &SecretHash) -> Option<ApiKeyRecord> {
        self.entries.read().by_hash.get(hash).cloned()
    }

    /// `tenant`'s keys, ordered by id.
    pub fn of_tenant(&self, tenant: &TenantId) -> Vec<ApiKeyRecord> {
        let entries = self.entries.read();
        entries
            .by_tenant
            .get(tenant)
            .into_iter()
            .flat_map(|keys| keys.values())
            .filter_map(|hash| entries.by_hash.get(hash).cloned())
            .collect()
    }

    pub fn get(&self, tenant: &TenantId, key_id: &KeyId) -> Option<ApiKeyRecord> {
        let entries = self.entries.read();
        let hash = entries.by_tenant.get(tenant)?.get(key_id)?;
        entries.by_hash.get(hash).cloned()
    }

    /// How many keys (revoked ones included) `tenant` holds.
    pub fn count(&self, tenant: &TenantId) -> usize {
        self.entries
            .read()
            .by_tenant
            .get(tenant)
            .map_or(0, BTreeMap::len)
    }

    /// Adds or replaces a key (same tenant and id).
    pub fn put(&self, record: ApiKeyRecord) {
        self.entries.write().insert(record);
    }

    pub fn remove_tenant(&self, tenant: &TenantId) {
        let mut entries = self.entries.write();
        if let Some(keys) = entries.by_tenant.remove(tenant) {
            for hash in keys.values() {
                entries.by_hash.remove(hash);
            }
        }
        drop(entries);
        self.mutations.lock().remove(tenant);
    }
}

impl Entries {
    fn insert(&mut self, record: ApiKeyRecord) {
        let previous = self
            .by_tenant
            .entry(record.tenant.clone())
            .or_default()
            .insert(record.key_id.clone(), record.secret_hash);
        if let Some(old) = previous.filter(|old| *old != record.secret_hash) {
            self.by_hash.remove(&old);
        }
        self.by_hash.insert(record.secret_hash, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::Role;

    fn key(tenant: &str, id: &str, hash: u8) -> ApiKeyRecord {
        ApiKeyRecord {
            tenant: TenantId::new(tenant).unwrap(),
            key_id: id.parse().unwrap(),
            role: Role::Read,
            secret_hash: [hash; 32],
            description: String::new(),
            created_at_ms: 0,
            expires_at_ms: None,
            revoked: false,
            incarnation: 0,
        }
    }

    #[test]
    fn keys_are_found_by_hash_and_by_tenant_and_leave_with_their_tenant() {
        let table = KeyTable::new([key("a", "k1", 1), key("a", "k2", 2), key("b", "k1", 3)]);
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        assert_eq!(table.count(&a), 2);
        assert_eq!(table.by_hash(&[3; 32]).unwrap().tenant, b);
        let ids: Vec<_> = table.of_tenant(&a).into_iter().map(|k| k.key_id).collect();
        assert_eq!(ids, ["k1".parse().unwrap(), "k2".parse().unwrap()]);
        let mut revoked = key("a", "k1", 1);
        revoked.revoked = true;
        table.put(revoked);
        assert!(table.get(&a, &"k1".parse().unwrap()).unwrap().revoked);
        assert!(
            table.by_hash(&[1; 32]).unwrap().revoked,
            "same secret, record replaced"
        );
        assert_eq!(table.count(&a), 2);
        // A key put again with another secret: the old secret no longer finds anything.
        table.put(key("a", "k2", 9));
        assert!(
            table.by_hash(&[2; 32]).is_none(),
            "the replaced secret still authenticates"
        );
        assert_eq!(
            table.by_hash(&[9; 32]).unwrap().key_id,
            "k2".parse().unwrap()
        );
        assert_eq!(table.count(&a), 2);
        table.remove_tenant(&a);
        assert!(table.by_hash(&[1; 32]).is_none());
        assert_eq!(table.count(&a), 0);
        assert_eq!(table.count(&b), 1);
    }

    #[test]
    fn a_tenants_key_changes_share_one_lock_and_other_tenants_have_their_own() {
        let table = KeyTable::default();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let held = table.mutation_lock(&a);
        let _guard = held.lock();
        assert!(
            table.mutation_lock(&a).try_lock().is_none(),
            "a's changes wait"
        );
        assert!(table.mutation_lock(&b).try_lock().is_some(), "b's don't");
    }
}
