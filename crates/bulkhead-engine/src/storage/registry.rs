//! The tenant registry: a small RocksDB instance of its own (`data/system`) that lists every
//! tenant, its incarnation and its group. It is read whole at start, which costs microseconds per
//! tenant, so start-up never opens tenant data.

use std::path::Path;

use bulkhead_core::TenantId;
use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::api_keys::ApiKeyRecord;
use crate::error::{EngineError, Result};
use crate::settings::{Quota, RateLimit};
use crate::storage::SharedResources;

const TENANT_PREFIX: &[u8] = b"tenant/";
const KEY_PREFIX: &[u8] = b"key/";
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
}

impl TenantRecord {
    pub fn cf_name(&self) -> String {
        format!("t/{}/{}", self.id, self.incarnation)
    }
}

pub(crate) struct Registry {
    db: DB,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn tenant_key(id: &TenantId) -> Vec<u8> {
    [TENANT_PREFIX, id.as_str().as_bytes()].concat()
}

/// `key/{tenant}/{key_id}`: the tenant segment first, so one tenant's keys are one range.
fn api_key_key(tenant: &TenantId, key: &bulkhead_core::KeyId) -> Vec<u8> {
    [
        KEY_PREFIX,
        tenant.as_str().as_bytes(),
        b"/",
        key.as_str().as_bytes(),
    ]
    .concat()
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl Registry {
    pub fn open(path: &Path, shared: &SharedResources) -> Result<Self> {
        let db = DB::open(&shared.db_options(), path)
            .map_err(|e| EngineError::Open(format!("{}: {}", path.display(), e.into_string())))?;
        Ok(Self { db })
    }

    /// Every registered tenant, and the next unused incarnation number.
    pub fn load(&self) -> Result<(Vec<TenantRecord>, u64)> {
        let mut records = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(TENANT_PREFIX, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(TENANT_PREFIX) {
                break;
            }
            let rec: TenantRecord = serde_json::from_slice(&v)
                .map_err(|e| EngineError::Corrupt(format!("tenant registry entry: {e}")))?;
            records.push(rec);
        }
        let stored_next = match self.db.get(NEXT_INCARNATION)? {
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

    /// Durably records a tenant (and that its incarnation number is used up).
    pub fn put(&self, record: &TenantRecord) -> Result<()> {
        let mut b = WriteBatch::default();
        b.put(
            tenant_key(&record.id),
            serde_json::to_vec(record).expect("registry records always serialise"),
        );
        b.put(NEXT_INCARNATION, (record.incarnation + 1).to_le_bytes());
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    /// Removes a tenant and all its API keys in one durable write.
    pub fn delete(&self, id: &TenantId) -> Result<()> {
        let mut b = WriteBatch::default();
        b.delete(tenant_key(id));
        let start = [KEY_PREFIX, id.as_str().as_bytes(), b"/"].concat();
        let end = [KEY_PREFIX, id.as_str().as_bytes(), b"0"].concat(); // '0' follows '/'
        b.delete_range(start, end);
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    pub fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let mut b = WriteBatch::default();
        b.put(
            api_key_key(&record.tenant, &record.key_id),
            serde_json::to_vec(record).expect("key records always serialise"),
        );
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    pub fn load_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(KEY_PREFIX, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(KEY_PREFIX) {
                break;
            }
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| EngineError::Corrupt(format!("API key entry: {e}")))?,
            );
        }
        Ok(out)
    }
}
