//! RocksDB tuning for thousands of column families: one block cache and one write-buffer budget
//! for the whole process, memtables that take memory in small blocks but grow large for a
//! tenant that writes a lot, bounded open files, and the TTL compaction filter on every tenant
//! column family.

use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, Env, Options, WriteBufferManager, compaction_filter::Decision,
};

use crate::background::start_threads_off_the_clear_core;
use crate::clock::{Clock, is_expired};
use crate::codec::{EXPIRED_MARKER, peek_expiry};
use crate::config::EngineConfig;
use crate::keys::RECORD;

/// RocksDB's flush and compaction threads, shared by every instance of the process (the split
/// RocksDB itself makes of two background jobs).
const FLUSH_THREADS: i32 = 1;
const COMPACTION_THREADS: i32 = 1;

/// How much of a table file being written may wait in the page cache before RocksDB starts
/// writing it out (RocksDB's tuning guide suggests 1 MB).
const TABLE_BYTES_PER_SYNC: u64 = 1 << 20;

/// What a memtable allocates at a time: what RocksDB chose for the 2 MiB memtables of before
/// (an eighth of their size). Left to RocksDB it would follow the memtable size to 1 MiB, and
/// every tenant written to since its last flush would hold that much.
const ARENA_BLOCK_BYTES: usize = 256 << 10;

/// Memory pools shared by every RocksDB instance of the process.
pub(crate) struct SharedResources {
    /// The engine's clock: the TTL compaction filter and group idle times read it.
    pub clock: Clock,
    cache: Cache,
    write_buffers: WriteBufferManager,
    max_open_files: i32,
    /// One options object for every tenant column family. RocksDB keeps pointing at the
    /// compaction filter it owns after `create_cf` returns, so it must live as long as every
    /// database that uses it: each group holds an `Arc` of it.
    tenant_cf: Arc<Options>,
    /// RocksDB's environment with its compaction threads at low CPU priority, so compactions
    /// yield to requests (flushes keep normal priority: starving them would stall writes).
    env: Option<Env>,
}

impl std::fmt::Debug for SharedResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedResources").finish_non_exhaustive()
    }
}

impl SharedResources {
    pub fn new(config: &EngineConfig) -> Self {
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            config.write_buffer_budget_bytes,
            false,
            cache.clone(),
        );
        let tenant_cf = Arc::new(tenant_cf_options(
            &cache,
            config.tenant_write_buffer_bytes,
            config.clock.clone(),
        ));
        let env = match Env::new() {
            Ok(mut env) => {
                env.lower_thread_pool_cpu_priority();
                // Started now, off the core kept clear for requests, rather than by whichever
                // thread first asks for a flush or compaction; they inherit that.
                start_threads_off_the_clear_core(|| {
                    env.set_high_priority_background_threads(FLUSH_THREADS);
                    env.set_low_priority_background_threads(COMPACTION_THREADS);
                });
                Some(env)
            }
            Err(e) => {
                tracing::warn!(error = %e, "RocksDB environment: compactions keep normal priority");
                None
            }
        };
        Self {
            clock: config.clock.clone(),
            cache,
            write_buffers,
            max_open_files: config.max_open_files_per_group,
            tenant_cf,
            env,
        }
    }

    /// Options of a RocksDB instance (the registry or a tenant group).
    pub fn db_options(&self) -> Options {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_max_open_files(self.max_open_files);
        o.set_write_buffer_manager(&self.write_buffers);
        // With many column families the WAL can only be recycled once every one of them has
        // flushed; a cap forces flushes of stale memtables instead of growing the WAL forever.
        o.set_max_total_wal_size(64 << 20);
        o.set_keep_log_file_num(2);
        o.set_max_background_jobs(FLUSH_THREADS + COMPACTION_THREADS);
        o.set_stats_dump_period_sec(0);
        // Table files written by flushes and compactions go to the disk a mebibyte at a time
        // instead of all at once when RocksDB syncs the finished file: synced whole, a flood's
        // compactions held the disk for up to ~10 ms at a time, and other tenants' log syncs
        // waited behind them (benchmarks.md, *Table files written to disk as they grow*).
        o.set_bytes_per_sync(TABLE_BYTES_PER_SYNC);
        o.set_block_based_table_factory(&table_options(&self.cache));
        if let Some(env) = &self.env {
            o.set_env(env);
        }
        o
    }

    /// Options of every tenant's column family.
    pub fn tenant_cf_options(&self) -> Arc<Options> {
        self.tenant_cf.clone()
    }
}

fn tenant_cf_options(cache: &Cache, write_buffer_bytes: usize, clock: Clock) -> Options {
    let mut o = Options::default();
    o.set_write_buffer_size(write_buffer_bytes);
    o.set_arena_block_size(ARENA_BLOCK_BYTES);
    o.set_max_write_buffer_number(2);
    o.set_target_file_size_base(16 << 20);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_block_based_table_factory(&table_options(cache));
    o.set_compaction_filter(
        "bulkhead-ttl",
        move |level: u32, key: &[u8], value: &[u8]| ttl_filter(level, key, value, clock.now_ms()),
    );
    o
}

fn table_options(cache: &Cache) -> BlockBasedOptions {
    let mut t = BlockBasedOptions::default();
    t.set_block_cache(cache);
    t.set_cache_index_and_filter_blocks(true);
    t.set_pin_l0_filter_and_index_blocks_in_cache(true);
    t
}

/// Backstop for the sweeper: an expired record met during compaction is replaced by a marker.
/// The marker (not a removal) keeps shadowing any older version of the key in lower levels,
/// which a plain removal could bring back.
fn ttl_filter(_level: u32, key: &[u8], value: &[u8], now: u64) -> Decision {
    if key.first() == Some(&RECORD)
        && let Some(exp) = peek_expiry(value)
        && is_expired(exp, now)
    {
        return Decision::Change(&EXPIRED_MARKER);
    }
    Decision::Keep
}

#[cfg(test)]
mod tests {
    use bulkhead_core::{CollectionId, Metadata, RecordId};
    use rocksdb::compaction_filter::Decision;

    use super::ttl_filter;
    use crate::codec::{EXPIRED_MARKER, encode};
    use crate::keys;

    fn is_marked(d: &Decision) -> bool {
        matches!(d, Decision::Change(v) if *v == &EXPIRED_MARKER[..])
    }

    /// The filter on its own: an expired record becomes the marker; a live record, one that
    /// never expires, a marker, garbage, and any key that is not a record are kept as they are.
    #[test]
    fn the_ttl_filter_marks_expired_records_and_keeps_everything_else() {
        let now = 1_800_000_000_000;
        let (docs, id) = (
            CollectionId::new("docs").unwrap(),
            RecordId::new("a").unwrap(),
        );
        let record = keys::record_key(&docs, &id);
        let value = |expires_at_ms| encode(expires_at_ms, &[1.0, 2.0], Some("t"), &Metadata::new());
        let expired = value(now - 1_000);

        assert!(is_marked(&ttl_filter(0, &record, &expired, now)), "expired");
        assert!(
            is_marked(&ttl_filter(3, &record, &value(1), now)),
            "expired long ago, any level"
        );
        for (what, v) in [
            ("live", value(now + 3_600_000)),
            ("never expires", value(0)),
            ("already a marker", EXPIRED_MARKER.to_vec()),
            ("garbage", vec![7, 1, 2]),
            ("empty", Vec::new()),
        ] {
            assert!(
                matches!(ttl_filter(0, &record, &v, now), Decision::Keep),
                "{what}"
            );
        }
        // Only record keys are judged: the same expired bytes under any other prefix stay.
        for other in [
            keys::meta_key(&docs),
            keys::expiry_key(now - 1_000, &docs, &id),
            vec![keys::AUDIT, 0, 0, 0, 0, 0, 0, 0, 1],
            vec![keys::CHANGE],
        ] {
            assert!(
                matches!(ttl_filter(0, &other, &expired, now), Decision::Keep),
                "{other:?}"
            );
        }
    }
}
