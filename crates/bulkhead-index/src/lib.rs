//! In-memory vector indexes that know nothing about tenants, collections or persistence: the
//! engine owns those concerns and hands this crate plain `u32` labels and `f32` vectors, which
//! keeps the performance-critical code small enough to reason about and benchmark in isolation.
//!
//! [`VectorIndex`] is the only entry point; it starts as an exact flat scan and, once it outgrows
//! `IndexParams::flat_threshold`, wants promotion to a hand-written HNSW graph, which its owner
//! builds in the background with [`VectorIndex::build_if_wanted`].

pub mod distance;
mod error;
mod flat;
mod hnsw;
mod hugepages;
mod index;
mod pace;
mod params;
mod prefetch;
mod quantized;
mod scratch;
mod store;
mod types;

pub use bulkhead_core::Metric;
pub use error::{IndexError, Result};
pub use index::{BuildOptions, BuildReason, BuildReport, IndexImage, MAX_DIM, VectorIndex};
pub use pace::CpuPacer;
pub use params::{IndexParams, MAX_EF, MAX_FLAT_THRESHOLD, Quantization};
pub use types::{IndexKind, Neighbor, SearchFilter};
