//! Engine errors. Each variant says whose fault it is, so the server can map it to a status code
//! in one exhaustive match without guessing.

use bulkhead_core::{CollectionId, CoreError, KeyId, RecordId, SessionId, TenantId};
use bulkhead_index::IndexError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Caller's fault: an input failed validation.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// Caller's fault: a request field is unacceptable for a reason the core types don't cover.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Caller's fault: one record of a batch is invalid; nothing of the batch was written.
    #[error("record {index} of the batch: {source}")]
    InvalidRecord {
        index: usize,
        #[source]
        source: CoreError,
    },
    /// Caller's fault: the tenant does not exist (or was deleted while the request ran).
    #[error("tenant {0} not found")]
    TenantNotFound(TenantId),
    /// Caller's fault: a tenant with this id already exists.
    #[error("tenant {0} already exists")]
    TenantExists(TenantId),
    /// Caller's fault: the collection does not exist in this tenant.
    #[error("collection {0} not found")]
    CollectionNotFound(CollectionId),
    /// Caller's fault: a collection with this id already exists in this tenant.
    #[error("collection {0} already exists")]
    CollectionExists(CollectionId),
    /// Caller's fault: the session does not exist, ended or expired.
    #[error("session {0} not found (it may have ended or expired)")]
    SessionNotFound(SessionId),
    /// Caller's fault: a live session with this id already exists in this tenant.
    #[error("session {0} already exists")]
    SessionExists(SessionId),
    /// Caller's fault: the session already holds an item with this id.
    #[error("memory item {0} already exists in this session")]
    MemoryExists(RecordId),
    /// Caller's fault: a cache operation named a collection that is not a semantic cache.
    /// What the handle's access can't do, e.g. an end user's write where records carry
    /// readers.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    #[error("{0} is a collection of records, not a semantic cache")]
    NotACache(CollectionId),
    /// Caller's fault: no API key of this id in this tenant.
    #[error("API key {0} not found")]
    KeyNotFound(KeyId),
    /// Caller's fault: an API key of this id already exists in this tenant.
    #[error("API key {0} already exists")]
    KeyExists(KeyId),
    /// Caller's fault: the write would take the tenant past one of its quotas.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Ours (or the environment's): the storage layer failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Transient: the storage was busy, timed out or is shutting down; a retry may succeed.
    #[error("storage busy: {0}")]
    Busy(String),
    /// Ours: stored bytes could not be decoded; the data directory is damaged or foreign.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Ours: the in-memory index refused an operation the engine had validated.
    #[error("index error: {0}")]
    Index(#[from] IndexError),
    /// The environment's: the data directory is unusable (permissions, another process holds the lock).
    #[error("cannot open data directory: {0}")]
    Open(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
