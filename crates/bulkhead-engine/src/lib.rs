//! Bulkhead's storage engine: each tenant is one RocksDB column family plus its own in-memory
//! vector indexes, and the only way to data is a [`TenantHandle`] from [`Engine::tenant`].
//!
//! Contract: no public function reaches data of two tenants, or of a tenant without its
//! handle; a write returns only once it is in the write-ahead log; an expired record is never
//! returned. This crate is the only one that names RocksDB and must not depend on the network
//! layer. See `docs/architecture.md` for the key layout and data flow.
#![forbid(unsafe_code)]

mod access;
mod api_keys;
mod audit;
mod background;
mod cache_fields;
mod change_log;
mod clock;
mod codec;
mod collection;
mod config;
mod config_units;
mod disk_pacing;
mod engine;
mod error;
mod fault;
mod fields;
mod filter;
mod index_budget;
mod index_builds;
mod key_table;
mod keys;
mod readers;
mod record;
mod registry;
mod residency;
mod segment;
mod session;
mod settings;
mod storage;
mod sweep_signal;
mod sweeper;
mod tenant;
mod verification_keys;

pub use access::{Access, Authority, CanWrite, Grant, KeyAdmin, Read, Write};
pub use api_keys::{ApiKeyRecord, SecretHash};
pub use audit::{
    AuditContext, AuditEntry, AuditEvent, AuditFilter, AuditStamp, MAX_AUDITED_READ_IDS,
};
pub use background::{move_current_thread_to_background, use_the_clear_core};
pub use bulkhead_index::{IndexKind, IndexParams, Quantization};
pub use clock::{Clock, ManualClock};
pub use collection::{
    BuildSettings, CachePolicy, CollectionKind, CollectionSpec, EndUserCacheScope,
    MAX_BUILD_THREADS,
};
pub use config::EngineConfig;
pub use engine::{Engine, TenantInfo};
pub use error::{EngineError, Result};
pub use fields::FieldType;
pub use filter::{Condition, Filter, Range};
pub use index_builds::IndexBuildStats;
pub use readers::{MAX_READERS_PER_RECORD, PUBLIC, READERS_FIELD, Reader};
pub use record::{Hit, Include, NewRecord, Query, StoredRecord};
pub use session::{
    HistoryPage, MAX_APPEND_BATCH, MAX_HISTORY_PAGE, MAX_RECALL_TOP_K, MAX_SESSION_LIFETIME,
    MAX_SESSION_PAGE, MemoryItem, MemoryKind, NewMemory, Recall, Recalled, SessionInfo,
    SessionPage, SessionSpec,
};
pub use settings::{
    MAX_ENGINE_THREADS, MAX_OPEN_STREAMS, MAX_REQUESTS_IN_FLIGHT, MAX_WRITE_BYTES_IN_FLIGHT, Quota,
    RateLimit, ServerShare, TenantSettings,
};
pub use storage::StorageBackend;
pub use tenant::{
    AuditPage, CacheEntry, CacheHit, CacheLookup, CacheScope, CacheSettings, CacheTarget,
    CollectionInfo, IndexStatus, MAX_TOP_K, SessionHandle, TenantHandle, TenantHold, TenantStats,
};
pub use verification_keys::{
    MAX_TOKEN_LIFETIME_SECS, MAX_VERIFICATION_KEYS_PER_TENANT, VerificationKeyRecord,
};
