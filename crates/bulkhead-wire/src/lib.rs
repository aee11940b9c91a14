//! Every conversion between a wire message and a Bulkhead type, in one crate, so the server,
//! the SDK and the fuzz bodies read and write a value, a record or a filter in exactly one way,
//! and every field the network sends is validated once, with an error naming the field.
//!
//! Two layers: the shared one (values, metadata, ids, times) that the SDK uses too, and the
//! engine's request and result types behind the `engine` feature, which only the server and
//! the fuzz bodies turn on: the SDK never links the engine. The server maps [`WireError`] to
//! `INVALID_ARGUMENT` in its one status mapping; the SDK reports it as an invalid response.
#![forbid(unsafe_code)]

mod error;
mod ids;
mod retry_pushback;
mod time;
mod values;

#[cfg(feature = "engine")]
pub mod engine;

pub use error::{Result, WireError};
pub use ids::record_ids;
pub use retry_pushback::{
    RETRY_PUSHBACK_TRAILER, retry_pushback_from_trailer, retry_pushback_to_trailer,
};
pub use time::{
    positive_seconds, system_time_from_pb, system_time_to_pb, timestamp_from_ms, timestamp_to_ms,
};
pub use values::{
    metadata_from_pb, metadata_to_pb, metric_from_pb, metric_to_pb, role_to_pb, value_from_pb,
    value_to_pb,
};
