//! Engine settings. Defaults are sized for the 2-core, 24 GiB machines Bulkhead is measured on
//! and for thousands of small tenants; `validate` runs before anything touches the disk.
//!
//! The same type is the engine's part of the server's config file (flattened into it, keys in
//! kebab-case with their unit: see `config_units`), so a setting has one name, one default and
//! one validation whichever way it is given. Settings that only tests and tools change (the
//! clock, the storage backend, per-column-family sizes) are not read from a file.

use std::path::PathBuf;
use std::time::Duration;

use bulkhead_index::IndexParams;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config_units::{days, default_index_build_threads, mib, secs, threads_or_default};
use crate::error::{EngineError, Result};
use crate::storage::StorageBackend;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, rename_all = "kebab-case")]
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
    /// Groups made before any two tenants share one: until there are this many, a new tenant
    /// gets a RocksDB instance of its own; after, it joins the group with the fewest tenants
    /// (up to `tenants-per-group`). Tenants of one group share its write-ahead log, write queue
    /// and mutex, so one tenant's write flood reaches the others (docs/benchmarks.md, *A group
    /// of one's own*); groups cost files and memory, so past this number they are shared.
    pub groups_before_sharing: usize,
    /// Block cache shared by every tenant and group.
    #[serde(rename = "block-cache-mib", with = "mib")]
    pub block_cache_bytes: usize,
    /// Memtable budget shared by every tenant and group (a write-buffer manager).
    #[serde(rename = "write-buffer-budget-mib", with = "mib")]
    pub write_buffer_budget_bytes: usize,
    /// Memtable size of one tenant's column family: how much of its writes gather before a
    /// flush. Small memtables made a tenant's random overwrites cost ten times their bytes in
    /// compactions (each flush's file merged with all of the tenant's records); the write-buffer
    /// budget, not this, bounds memtable memory (benchmarks.md, *Refusals told their turn, and
    /// memtables of 32 MiB*).
    #[serde(skip)]
    pub tenant_write_buffer_bytes: usize,
    /// `max_open_files` of each group's RocksDB instance.
    #[serde(skip)]
    pub max_open_files_per_group: i32,
    /// Most group instances open at once; past it the least recently used idle group closes.
    /// Lowered at open to what the process's open-files limit allows.
    pub max_open_groups: usize,
    /// A group none of whose tenants was used for this long is closed by the sweeper.
    #[serde(rename = "group-idle-close-secs", with = "secs")]
    pub group_idle_close: Duration,
    /// Closed groups the sweeper opens, sweeps and closes again per round, in turn, so expired
    /// records of idle tenants leave the disk too.
    #[serde(skip)]
    pub closed_groups_swept_per_round: usize,
    /// Memory the in-memory indexes of all tenants may use before idle tenants are evicted.
    #[serde(rename = "index-memory-budget-mib", with = "mib")]
    pub index_memory_budget_bytes: usize,
    /// How often expired records are swept and audit logs pruned.
    #[serde(rename = "sweep-interval-secs", with = "secs")]
    pub sweep_interval: Duration,
    /// Audit retention of tenants that don't set their own.
    #[serde(rename = "default-audit-retention-days", with = "days")]
    pub default_audit_retention: Duration,
    /// Index parameters of collections that don't set their own.
    #[serde(skip)]
    pub default_index: IndexParams,
    /// Longest record text, in bytes.
    #[serde(skip)]
    pub max_text_bytes: usize,
    /// Most API keys one tenant may hold, revoked ones included (each is a registry entry
    /// read at every start).
    pub max_api_keys_per_tenant: usize,
    /// Most sessions one tenant may hold, live or waiting for the sweeper.
    pub max_sessions_per_tenant: usize,
    /// Most items one session may hold.
    pub max_items_per_session: u64,
    /// Most elements of one list-valued metadata field that is indexed: each element is a
    /// posting in the tenant's memory, so a list is bounded like the record's other parts.
    pub max_indexed_list_len: usize,
    /// Threads one index build (promotion to a graph, compaction) inserts with, at background
    /// priority. Builds run one at a time, off every request path. Default: one CPU fewer than
    /// the machine has (at least one), so a build leaves a core to searches: on two cores, two
    /// build threads doubled the searches' p99 during a build, one kept it within 1.5×
    /// (docs/benchmarks.md, availability).
    #[serde(deserialize_with = "threads_or_default::deserialize")]
    pub index_build_threads: usize,
    /// A loaded collection with this many changes since its last segment gets a new one (the
    /// sweeper checks each round); activation replays at most about this many changes.
    pub segment_refresh_changes: u64,
    /// Where time comes from: TTL expiry, audit retention and timestamps, idle groups. The
    /// system clock, except in tests (`ManualClock`).
    #[serde(skip)]
    pub clock: Clock,
    /// Where tenants' data is kept: RocksDB (the default, durable) or memory (tests).
    #[serde(skip)]
    pub storage: StorageBackend,
}

impl Default for EngineConfig {
    /// The defaults, with data in `./data`.
    fn default() -> Self {
        Self::new("./data")
    }
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            sync_writes: true,
            tenants_per_group: 64,
            groups_before_sharing: 64,
            block_cache_bytes: 256 << 20,
            write_buffer_budget_bytes: 256 << 20,
            tenant_write_buffer_bytes: 32 << 20,
            max_open_files_per_group: 128,
            max_open_groups: 512,
            group_idle_close: Duration::from_secs(600),
            closed_groups_swept_per_round: 4,
            index_memory_budget_bytes: 4 << 30,
            sweep_interval: Duration::from_secs(30),
            default_audit_retention: Duration::from_secs(30 * 24 * 3600),
            default_index: IndexParams::default(),
            max_text_bytes: 1 << 20,
            max_api_keys_per_tenant: 1_000,
            max_sessions_per_tenant: 10_000,
            max_items_per_session: 10_000,
            max_indexed_list_len: 256,
            index_build_threads: default_index_build_threads(),
            segment_refresh_changes: 10_000,
            clock: Clock::system(),
            storage: StorageBackend::RocksDb,
        }
    }

    /// Checks every setting; errors name the setting as the config file spells it.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(EngineError::InvalidArgument(format!("config: {msg}")));
        if self.tenants_per_group == 0 || self.tenants_per_group > 10_000 {
            return bad("tenants-per-group must be between 1 and 10000");
        }
        if self.tenant_write_buffer_bytes < 64 << 10 {
            return bad("tenant_write_buffer_bytes must be at least 64 KiB");
        }
        if self.max_open_files_per_group < 16 && self.max_open_files_per_group != -1 {
            return bad("max_open_files_per_group must be -1 (unlimited) or at least 16");
        }
        if self.max_open_groups == 0 {
            return bad("max-open-groups must be at least 1");
        }
        if self.groups_before_sharing == 0 || self.groups_before_sharing > self.max_open_groups {
            return bad("groups-before-sharing must be between 1 and max-open-groups");
        }
        if self.group_idle_close.is_zero() {
            return bad("group-idle-close-secs must be positive");
        }
        if self.sweep_interval.is_zero() {
            return bad("sweep-interval-secs must be positive");
        }
        if self.max_api_keys_per_tenant == 0 {
            return bad("max-api-keys-per-tenant must be at least 1");
        }
        if self.max_sessions_per_tenant == 0 {
            return bad("max-sessions-per-tenant must be at least 1");
        }
        if !(1..=1_000_000).contains(&self.max_items_per_session) {
            return bad("max-items-per-session must be between 1 and 1000000");
        }
        if self.max_indexed_list_len == 0 {
            return bad("max-indexed-list-len must be at least 1");
        }
        if self.segment_refresh_changes == 0 {
            return bad("segment-refresh-changes must be at least 1");
        }
        if !(1..=256).contains(&self.index_build_threads) {
            return bad("index-build-threads must be between 1 and 256");
        }
        self.default_index.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> EngineConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let read = from_toml("");
        let defaults = EngineConfig::default();
        assert_eq!(format!("{read:?}"), format!("{defaults:?}"));
        read.validate().unwrap();
    }

    /// Keys carry their unit; the engine gets bytes and durations.
    #[test]
    fn sizes_and_times_are_read_in_the_unit_their_key_names() {
        let c = from_toml(
            "data-dir = \"/srv\"\nblock-cache-mib = 3\nwrite-buffer-budget-mib = 5\n\
             index-memory-budget-mib = 7\ngroup-idle-close-secs = 11\n\
             sweep-interval-secs = 13\ndefault-audit-retention-days = 2\n\
             tenants-per-group = 17\ngroups-before-sharing = 5\nsync-writes = false\n\
             index-build-threads = 3\n",
        );
        assert_eq!(c.data_dir, PathBuf::from("/srv"));
        assert_eq!(c.block_cache_bytes, 3 << 20);
        assert_eq!(c.write_buffer_budget_bytes, 5 << 20);
        assert_eq!(c.index_memory_budget_bytes, 7 << 20);
        assert_eq!(c.group_idle_close, Duration::from_secs(11));
        assert_eq!(c.sweep_interval, Duration::from_secs(13));
        assert_eq!(c.default_audit_retention, Duration::from_secs(2 * 86_400));
        assert_eq!(c.tenants_per_group, 17);
        assert_eq!(c.groups_before_sharing, 5);
        assert!(!c.sync_writes);
        assert_eq!(c.index_build_threads, 3);
        // Written back, each reads as the same setting.
        let again = from_toml(&toml::to_string(&c).unwrap());
        assert_eq!(format!("{again:?}"), format!("{c:?}"));
    }

    #[test]
    fn zero_build_threads_means_the_machines_default() {
        let c = from_toml("index-build-threads = 0");
        assert_eq!(c.index_build_threads, default_index_build_threads());
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let e = from_toml("sweep-interval-secs = 0").validate().unwrap_err();
        assert!(e.to_string().contains("sweep-interval-secs"), "{e}");
        for spread in [
            "groups-before-sharing = 0",
            "max-open-groups = 8\ngroups-before-sharing = 9",
        ] {
            let e = from_toml(spread).validate().unwrap_err();
            assert!(
                e.to_string().contains("groups-before-sharing"),
                "{spread}: {e}"
            );
        }
        assert!(
            from_toml("max-open-groups = 8\ngroups-before-sharing = 8")
                .validate()
                .is_ok()
        );
        assert!(toml::from_str::<EngineConfig>("block-cache-mib = -1").is_err());
        let huge = format!("block-cache-mib = {}", i64::MAX);
        assert!(toml::from_str::<EngineConfig>(&huge).is_err());
    }
}
