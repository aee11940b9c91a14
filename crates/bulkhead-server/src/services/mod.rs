//! gRPC service implementations. Each handler converts its message, hands the engine call to
//! the gate (which authenticates, authorizes, limits and audits), and converts the answer.

mod admin;
mod audit;
mod bulk;
mod cache;
mod collections;
mod keys;
mod memory;
mod records;

pub use admin::AdminApi;
pub use audit::AuditApi;
pub use bulk::StreamLimits;
pub use cache::CacheApi;
pub use collections::CollectionApi;
pub use keys::KeyApi;
pub use memory::MemoryApi;
pub use records::RecordApi;

/// Decodes an opaque page token (the last item of the previous page).
fn page_token(token: &str) -> Result<Option<String>, tonic::Status> {
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(token.to_owned()))
}

/// A page size from the wire: 0 means the default, values above the maximum are capped.
fn page_size(requested: i32, default: usize, max: usize) -> Result<usize, tonic::Status> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(tonic::Status::invalid_argument("page_size must be >= 0")),
        n => Ok((n as usize).min(max)),
    }
}
