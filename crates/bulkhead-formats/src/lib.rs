//! Readers for the files Bulkhead imports from and benchmarks with. The CLI's `import` and the
//! benchmark harness read the same files; keeping the parsing here means one set of input
//! checks, each error naming the file, row or line and field at fault.
#![forbid(unsafe_code)]

mod error;
mod jsonl;
mod vecs;

pub use error::{FormatError, Result};
pub use jsonl::{Document, parse_document, read_documents};
pub use vecs::{Matrix, parse_vecs, read_fvecs, read_ivecs};
