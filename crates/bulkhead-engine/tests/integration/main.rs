//! Engine integration tests, compiled as one binary to keep link time down.

mod common;
mod crash;
mod crud;
#[cfg(feature = "failpoints")]
mod failpoints;
mod filters;
mod groups;
mod index_builds;
mod isolation;
mod model;
mod readers;
mod registry;
mod restart;
mod segments;
mod semantic_cache;
mod sessions;
mod ttl;
mod verification_keys;
