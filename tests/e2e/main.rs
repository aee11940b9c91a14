//! End-to-end tests: each starts the real `bulkhead` binary on a free loopback port with a
//! temporary data directory and talks gRPC to it. Compiled as one binary.

mod harness;
mod raw_body;

mod arrow;
mod auth;
mod backup;
mod cache;
mod cache_scopes;
mod cli;
mod cli_usability;
mod crud;
mod end_users;
mod failure_isolation;
mod filters;
mod isolation;
mod leakprobe;
mod lifecycle;
mod limits;
mod names;
mod operator;
mod pki;
mod readers;
mod sdk;
mod sessions;
mod tls;
mod traceability;
mod verbatim;
