//! The formats records travel in: files Bulkhead imports from and benchmarks with, and the
//! Arrow batches of bulk import and export. The CLI's `import` and the
//! benchmark harness read the same files; keeping the parsing here means one set of input
//! checks, each error naming the file, row or line and field at fault.
#![forbid(unsafe_code)]

mod arrow;
mod error;
mod ipc_limits;
mod jsonl;
mod vecs;

pub use arrow::{
    BatchDecoder, RecordRow, StreamEncoder, encode_stream, read_stream, record_schema,
};
pub use error::{FormatError, Result};
pub use jsonl::{Document, metadata_from_json, metadata_to_json, read_documents};
pub use vecs::{Matrix, read_fvecs, read_ivecs};
