//! The tenant registry: a small RocksDB instance of its own (`data/system`) that lists every
//! tenant, its incarnation and its group. It is read whole at start, which costs microseconds per
//! tenant, so start-up never opens tenant data.

use std::path::Path;

use bulkhead_core::TenantId;
use parking_lot::Mutex;
use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api_keys::ApiKeyRecord;
use crate::error::{EngineError, Result};
use crate::settings::{Quota, RateLimit, ServerShare};
use crate::storage::memory::{self, Rows};
use crate::storage::tenant_storage::{Op, WriteSet};
use crate::storage::{SharedResources, StorageBackend};
use crate::verification_keys::{MAX_TOKEN_LIFETIME_SECS, VerificationKeyRecord};

const TENANT_PREFIX: &[u8] = b"tenant/";
const KEY_PREFIX: &[u8] = b"key/";
const VERIFICATION_KEY_PREFIX: &[u8] = b"vkey/";
const NEXT_INCARNATION: &[u8] = b"next-incarnation";

/// What the registry knows of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TenantRecord {
    pub id: TenantId,
    /// Unique per creation: a re-created tenant gets a new column family, never the old one.
    pub incarnation: u64,
    pub group: u32,
    pub created_at_ms: u64,
    pub audit_retention_secs: Option<u64>,
    #[serde(default)]
    pub quota: Quota,
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// The operator's bound on the lifetime of the tenant's end-user tokens, in seconds.
    #[serde(default)]
    pub max_token_lifetime_secs: Option<u64>,
    /// The tenant's share of the server's shared resources; absent in records written before
    /// shares existed (the server's settings).
    #[serde(default)]
    pub share: ServerShare,
}

impl TenantRecord {
    pub fn cf_name(&self) -> String {
        format!("t/{}/{}", self.id, self.incarnation)
    }

    /// The longest lifetime any end-user token of the tenant may have.
    pub fn token_lifetime_bound_secs(&self) -> u64 {
        self.max_token_lifetime_secs
            .unwrap_or(MAX_TOKEN_LIFETIME_SECS)
    }
}

/// The registry's durable half: the system database's reads and synced writes (or, in the
/// in-memory backend, a sorted map).
pub(crate) struct RegistryStore {
    kv: Kv,
}

enum Kv {
    RocksDb(DB),
    Memory(Mutex<Rows>),
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore").finish_non_exhaustive()
    }
}

fn tenant_key(id: &TenantId) -> Vec<u8> {
    [TENANT_PREFIX, id.as_str().as_bytes()].concat()
}

/// `{prefix}{tenant}/{key_id}`: the tenant segment first, so one tenant's keys are one range.
fn tenant_key_entry(prefix: &[u8], tenant: &TenantId, key: &bulkhead_core::KeyId) -> Vec<u8> {
    [
        prefix,
        tenant.as_str().as_bytes(),
        b"/",
        key.as_str().as_bytes(),
    ]
    .concat()
}

/// `[start, end)` of one tenant's entries under `prefix`.
fn tenant_key_range(prefix: &[u8], tenant: &TenantId) -> (Vec<u8>, Vec<u8>) {
    let start = [prefix, tenant.as_str().as_bytes(), b"/"].concat();
    let end = [prefix, tenant.as_str().as_bytes(), b"0"].concat(); // '0' follows '/'
    (start, end)
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl RegistryStore {
    pub fn open(path: &Path, shared: &SharedResources, backend: StorageBackend) -> Result<Self> {
        let kv = match backend {
            StorageBackend::Memory => Kv::Memory(Mutex::default()),
            StorageBackend::RocksDb => {
                Kv::RocksDb(DB::open(&shared.db_options(), path).map_err(|e| {
                    EngineError::Open(format!("{}: {}", path.display(), e.into_string()))
                })?)
            }
        };
        Ok(Self { kv })
    }

    /// Every registered tenant, and the next unused incarnation number.
    pub fn load(&self) -> Result<(Vec<TenantRecord>, u64)> {
        let records: Vec<TenantRecord> =
            self.decode_entries(TENANT_PREFIX, "tenant registry entry")?;
        let stored_next = match self.get(NEXT_INCARNATION)? {
            Some(v) => u64::from_le_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| EngineError::Corrupt("incarnation counter".into()))?,
            ),
            None => 1,
        };
        let max_seen = records.iter().map(|r| r.incarnation + 1).max().unwrap_or(1);
        Ok((records, stored_next.max(max_seen)))
    }

    /// Durably records a new tenant, and that its incarnation number (the newest) is used up.
    pub fn create(&self, record: &TenantRecord) -> Result<()> {
        let mut set = Self::tenant_entry(record);
        set.put(
            NEXT_INCARNATION.to_vec(),
            (record.incarnation + 1).to_le_bytes().to_vec(),
        );
        self.write(set)
    }

    /// Durably records a tenant's changed settings. The incarnation counter is left alone: an
    /// older tenant's number would lower it, and after a restart a deleted tenant's number
    /// (its keys, its segment directory) could be handed out again.
    pub fn update(&self, record: &TenantRecord) -> Result<()> {
        self.write(Self::tenant_entry(record))
    }

    fn tenant_entry(record: &TenantRecord) -> WriteSet {
        let mut set = WriteSet::default();
        set.put(
            tenant_key(&record.id),
            serde_json::to_vec(record).expect("registry records always serialise"),
        );
        set
    }

    /// Removes a tenant, all its API keys and all its verification keys in one durable write.
    pub fn delete(&self, id: &TenantId) -> Result<()> {
        let mut set = WriteSet::default();
        set.delete(tenant_key(id));
        set.delete_range(tenant_key_range(KEY_PREFIX, id));
        set.delete_range(tenant_key_range(VERIFICATION_KEY_PREFIX, id));
        self.write(set)
    }

    pub fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let mut set = WriteSet::default();
        set.put(
            tenant_key_entry(KEY_PREFIX, &record.tenant, &record.key_id),
            serde_json::to_vec(record).expect("key records always serialise"),
        );
        self.write(set)
    }

    pub fn load_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.decode_entries(KEY_PREFIX, "API key entry")
    }

    pub fn put_verification_key(&self, record: &VerificationKeyRecord) -> Result<()> {
        let mut set = WriteSet::default();
        set.put(
            tenant_key_entry(VERIFICATION_KEY_PREFIX, &record.tenant, &record.key_id),
            serde_json::to_vec(record).expect("key records always serialise"),
        );
        self.write(set)
    }

    pub fn load_verification_keys(&self) -> Result<Vec<VerificationKeyRecord>> {
        self.decode_entries(VERIFICATION_KEY_PREFIX, "verification key entry")
    }

    /// Applies `set` in one synced write.
    fn write(&self, set: WriteSet) -> Result<()> {
        match &self.kv {
            Kv::RocksDb(db) => {
                let mut batch = WriteBatch::default();
                for op in set.ops {
                    match op {
                        Op::Put(k, v) => batch.put(k, v),
                        Op::Delete(k) => batch.delete(k),
                        Op::DeleteRange(s, e) => batch.delete_range(s, e),
                    }
                }
                db.write_opt(batch, &synced())?;
            }
            Kv::Memory(rows) => memory::apply(&mut rows.lock(), set)?,
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match &self.kv {
            Kv::RocksDb(db) => Ok(db.get(key)?),
            Kv::Memory(rows) => Ok(rows.lock().get(key).cloned()),
        }
    }

    /// The values of every key starting with `prefix`, in key order, each decoded as it is
    /// read (a start reads 100,000 tenants: their raw bytes are never all held at once).
    fn decode_entries<T: DeserializeOwned>(&self, prefix: &[u8], what: &str) -> Result<Vec<T>> {
        let decode = |v: &[u8]| {
            serde_json::from_slice(v).map_err(|e| EngineError::Corrupt(format!("{what}: {e}")))
        };
        let mut out = Vec::new();
        match &self.kv {
            Kv::RocksDb(db) => {
                for item in db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
                    let (k, v) = item?;
                    if !k.starts_with(prefix) {
                        break;
                    }
                    out.push(decode(&v)?);
                }
            }
            Kv::Memory(rows) => {
                let rows = rows.lock();
                for (k, v) in rows.range(prefix.to_vec()..) {
                    if !k.starts_with(prefix) {
                        break;
                    }
                    out.push(decode(v)?);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use bulkhead_core::{KeyId, Role};

    use super::*;
    use crate::EngineConfig;

    fn open(dir: &Path) -> RegistryStore {
        RegistryStore::open(
            dir,
            &SharedResources::new(&EngineConfig::new(dir)),
            StorageBackend::RocksDb,
        )
        .unwrap()
    }

    fn tenant(id: &str, incarnation: u64) -> TenantRecord {
        TenantRecord {
            id: TenantId::new(id).unwrap(),
            incarnation,
            group: 0,
            created_at_ms: 1,
            audit_retention_secs: None,
            max_token_lifetime_secs: None,
            share: ServerShare::default(),
            quota: Quota::default(),
            rate_limit: RateLimit::default(),
        }
    }

    fn key(tenant: &str, id: &str, hash: u8) -> ApiKeyRecord {
        ApiKeyRecord {
            tenant: TenantId::new(tenant).unwrap(),
            key_id: KeyId::new(id).unwrap(),
            role: Role::Write,
            secret_hash: [hash; 32],
            description: format!("{tenant}/{id}"),
            created_at_ms: 2,
            expires_at_ms: None,
            revoked: false,
            incarnation: 1,
        }
    }

    fn sorted_keys(registry: &RegistryStore) -> Vec<ApiKeyRecord> {
        let mut keys = registry.load_api_keys().unwrap();
        keys.sort_by(|a, b| (&a.tenant, &a.key_id).cmp(&(&b.tenant, &b.key_id)));
        keys
    }

    /// Tenants and keys are read back whole after a reopen, and deleting a tenant removes its
    /// own keys only: not those of a tenant whose id it prefixes (`a` and `ab`), nor of one
    /// whose id sorts right next to it (`a-b`).
    #[test]
    fn a_deleted_tenant_takes_exactly_its_own_keys_and_reopening_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ab, a_b) = (tenant("a", 3), tenant("ab", 1), tenant("a-b", 2));
        let keys = [
            key("a", "k1", 1),
            key("a", "k2", 2),
            key("ab", "k1", 3),
            key("a-b", "k1", 4),
        ];
        {
            let registry = open(dir.path());
            for t in [&ab, &a_b, &a] {
                registry.create(t).unwrap();
            }
            for k in &keys {
                registry.put_api_key(k).unwrap();
            }
        }
        let registry = open(dir.path());
        let (mut tenants, next) = registry.load().unwrap();
        tenants.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(tenants, [a.clone(), a_b.clone(), ab.clone()]);
        assert_eq!(next, 4, "after the highest incarnation used");
        let mut want = keys.to_vec();
        want.sort_by(|x, y| (&x.tenant, &x.key_id).cmp(&(&y.tenant, &y.key_id)));
        assert_eq!(sorted_keys(&registry), want);

        registry.delete(&a.id).unwrap();
        drop(registry);
        let registry = open(dir.path());
        let (mut tenants, next) = registry.load().unwrap();
        tenants.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(tenants, [a_b, ab]);
        assert_eq!(
            next, 4,
            "a deleted tenant's incarnation is never handed out again"
        );
        let left: Vec<_> = sorted_keys(&registry)
            .into_iter()
            .map(|k| k.description)
            .collect();
        assert_eq!(left, ["a-b/k1", "ab/k1"]);
    }

    /// Within one instance (the in-memory backend has no other), on both backends: tenants,
    /// keys and the counter are read back from their own prefixes, and deleting a tenant takes
    /// its keys and no neighbour's.
    #[test]
    fn both_backends_read_back_what_they_stored() {
        for backend in [StorageBackend::RocksDb, StorageBackend::Memory] {
            let dir = tempfile::tempdir().unwrap();
            let registry = RegistryStore::open(
                dir.path(),
                &SharedResources::new(&EngineConfig::new(dir.path())),
                backend,
            )
            .unwrap();
            assert_eq!(registry.load().unwrap(), (vec![], 1), "{backend:?}");
            let (a, ab) = (tenant("a", 1), tenant("ab", 2));
            registry.create(&a).unwrap();
            registry.create(&ab).unwrap();
            registry.put_api_key(&key("a", "k1", 1)).unwrap();
            registry.put_api_key(&key("ab", "k1", 2)).unwrap();
            assert_eq!(
                registry.load().unwrap(),
                (vec![a, ab.clone()], 3),
                "{backend:?}"
            );
            assert_eq!(sorted_keys(&registry).len(), 2, "{backend:?}");
            registry.delete(&TenantId::new("a").unwrap()).unwrap();
            assert_eq!(registry.load().unwrap(), (vec![ab], 3), "{backend:?}");
            let left: Vec<_> = sorted_keys(&registry)
                .into_iter()
                .map(|k| k.description)
                .collect();
            assert_eq!(left, ["ab/k1"], "{backend:?}");
        }
    }

    /// Updating an older tenant never lowers the counter; without the stored counter (a
    /// registry written before it existed) the next incarnation still follows every tenant's.
    #[test]
    fn the_next_incarnation_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let registry = open(dir.path());
        let mut old = tenant("old", 2);
        registry.create(&old).unwrap();
        registry.create(&tenant("new", 7)).unwrap();
        registry.delete(&TenantId::new("new").unwrap()).unwrap();
        old.quota.max_records = 10;
        registry.update(&old).unwrap();
        drop(registry);
        let registry = open(dir.path());
        let (tenants, next) = registry.load().unwrap();
        assert_eq!(tenants, [old]);
        assert_eq!(next, 8, "7 was the deleted tenant's");

        registry.create(&tenant("b", 9)).unwrap();
        let mut set = WriteSet::default();
        set.delete(NEXT_INCARNATION.to_vec());
        registry.write(set).unwrap();
        assert_eq!(registry.load().unwrap().1, 10);
    }
}
