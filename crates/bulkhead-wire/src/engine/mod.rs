//! The engine's request and result types on the wire (the `engine` feature): what the server
//! hands the engine is built here, from fields each checked on the way in.

mod collections;
mod filter;
mod records;
mod sessions;
mod tenants;

pub use collections::{collection_spec, collection_to_pb, field_type, field_type_to_pb};
pub use filter::{MAX_DEPTH, MAX_IN_VALUES, MAX_NODES, filter};
pub use records::{
    hit_to_pb, new_record, record_from_row, stored_record_to_pb, stored_record_to_row,
};
pub use sessions::{
    memory_to_pb, new_memory, recall, recalled_to_pb, sequence_token, session_spec, session_to_pb,
};
pub use tenants::{quota, rate_limit, server_share, tenant_to_pb};
