//! Only three methods carry records in their requests (Upsert, Import, the cache's Store); every
//! other request is a few KiB. tonic decodes a message on an async worker before any handler
//! runs, so a 60 MiB Query (a filter listing one value millions of times) would cost the whole
//! server tens of milliseconds of decoding per request before anything could refuse it. Bodies
//! of all other methods are cut off at `max-read-message-bytes`, as they arrive, and refused
//! as `INVALID_ARGUMENT` (see `oversize`).

use http_body_util::Limited;
use tonic::body::Body;

/// The methods whose requests may be up to `max-message-bytes`.
const RECORD_CARRYING: &[&str] = &[
    "/bulkhead.v1.RecordService/Upsert",
    "/bulkhead.v1.RecordService/Import",
    "/bulkhead.v1.SemanticCacheService/Store",
];

/// The layer's function: caps the body of every other method at `limit` bytes.
pub fn capped_at(
    limit: usize,
) -> impl Fn(http::Request<Body>) -> http::Request<Body> + Clone + Send + 'static {
    move |request: http::Request<Body>| {
        if RECORD_CARRYING.contains(&request.uri().path()) {
            request
        } else {
            request.map(|body| Body::new(Limited::new(body, limit)))
        }
    }
}
