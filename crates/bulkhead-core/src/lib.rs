//! Bulkhead's domain types, validated at the boundary.
//!
//! Everything a request names (tenant, collection, key, record, vector, metadata) is parsed into
//! one of these types before any other crate sees it, so the engine and server never handle an
//! unvalidated identifier. This crate does no I/O and must not depend on storage or network
//! crates.
#![forbid(unsafe_code)]

mod error;
mod ids;
mod metadata;
mod metric;
mod record;
mod resource;
mod role;

pub use error::{CoreError, Result};
pub use ids::{CollectionId, KeyId, MAX_ID_LEN, SessionId, TenantId};
pub use metadata::{
    MAX_METADATA_BYTES, MAX_METADATA_KEY_BYTES, MAX_METADATA_KEYS, Metadata, Value,
    validate_metadata,
};
pub use metric::Metric;
pub use record::{
    MAX_DIMENSION, MAX_RECORD_ID_BYTES, RecordId, validate_dimension, validate_vector,
};
pub use resource::{
    CacheName, CollectionName, KeyName, SessionName, TenantName, VerificationKeyName,
};
pub use role::Role;
