//! Engine settings. Defaults are sized for the 2-core, 24 GiB machines Bulkhead is measured on
//! and for thousands of small tenants; `validate` runs before anything touches the disk.

use std::path::PathBuf;
use std::time::Duration;

use bulkhead_index::IndexParams;

use crate::error::{EngineError, Result};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Directory holding `system/` (tenant registry) and `groups/{n}/` (tenant data).
    pub data_dir: PathBuf,
    /// `true` (default): every acknowledged write has been fsynced to the write-ahead log, so it
    /// survives power loss. `false`: the WAL is written before acknowledging but left to the OS
    /// to flush, which survives a process crash (`kill -9`) but not a machine crash.
    pub sync_writes: bool,
    /// Most tenant column families in one RocksDB instance. Creating a column family rewrites an
    /// options file listing all of them, so this bounds the cost of creating a tenant.
    pub tenants_per_group: usize,
    /// Block cache shared by every tenant and group.
    pub block_cache_bytes: usize,
    /// Memtable budget shared by every tenant and group (a write-buffer manager).
    pub write_buffer_budget_bytes: usize,
    /// Memtable size of one tenant's column family.
    pub tenant_write_buffer_bytes: usize,
    /// `max_open_files` of each group's RocksDB instance.
    pub max_open_files_per_group: i32,
    /// Memory the in-memory indexes of all tenants may use before idle tenants are evicted.
    pub index_memory_budget_bytes: usize,
    /// How often expired records are swept and audit logs pruned.
    pub sweep_interval: Duration,
    /// Audit retention of tenants that don't set their own.
    pub default_audit_retention: Duration,
    /// Index parameters of collections that don't set their own.
    pub default_index: IndexParams,
    /// Longest record text, in bytes.
    pub max_text_bytes: usize,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            sync_writes: true,
            tenants_per_group: 256,
            block_cache_bytes: 256 << 20,
            write_buffer_budget_bytes: 256 << 20,
            tenant_write_buffer_bytes: 2 << 20,
            max_open_files_per_group: 256,
            index_memory_budget_bytes: 4 << 30,
            sweep_interval: Duration::from_secs(30),
            default_audit_retention: Duration::from_secs(30 * 24 * 3600),
            default_index: IndexParams::default(),
            max_text_bytes: 1 << 20,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| {
            Err(EngineError::InvalidArgument(format!(
                "engine config: {msg}"
            )))
        };
        if self.tenants_per_group == 0 || self.tenants_per_group > 10_000 {
            return bad("tenants_per_group must be between 1 and 10000");
        }
        if self.tenant_write_buffer_bytes < 64 << 10 {
            return bad("tenant_write_buffer_bytes must be at least 64 KiB");
        }
        if self.max_open_files_per_group < 16 && self.max_open_files_per_group != -1 {
            return bad("max_open_files_per_group must be -1 (unlimited) or at least 16");
        }
        if self.sweep_interval.is_zero() {
            return bad("sweep_interval must be positive");
        }
        self.default_index.validate()?;
        Ok(())
    }
}
