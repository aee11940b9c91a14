//! Command-line benchmark driver. `ann` measures the index in-process, on the same fvecs/ivecs
//! files and with the same JSON output as `tools/hnswlib_bench.py`, so the two can be compared
//! line by line; `server` measures a running server end to end; `bulk` its Arrow import and export; `tenants` measures the engine at many-tenant scale; `neighbours` measures how
//! well a running server keeps one tenant's abuse from reaching another; `activation` how fast
//! a big tenant answers after a restart. Progress goes to
//! stderr, results to stdout.

mod activation;
mod address;
mod ann;
mod availability;
mod bulk;
mod dataset;
mod filter;
mod load;
mod neighbours;
mod parallel;
mod report;
mod sdk;
mod server;
mod tenants;
mod unary;

use clap::{Parser, Subcommand};

/// The server's allocator, so in-process and end-to-end figures compare like with like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "bulkhead-bench", about = "Benchmarks for Bulkhead")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recall and throughput of an in-memory index on an ANN dataset.
    Ann(ann::AnnArgs),
    /// End-to-end ingest and query figures against a running server.
    Server(server::ServerArgs),
    /// Recall and QPS of filtered queries in-process at several selectivities.
    Filter(filter::FilterArgs),
    /// Arrow bulk import (flat and HNSW collections) and export against a running server.
    Bulk(bulk::BulkArgs),
    /// Failure isolation: a tenant's latency and errors while another attacks the server.
    Neighbours(neighbours::NeighboursArgs),
    /// Many-tenant scale: reopen time, memory, cold-tenant first query, tenant creation.
    Tenants(tenants::TenantsArgs),
    /// Search latency while a collection's index is rebuilt in the background, vs idle.
    Availability(availability::AvailabilityArgs),
    /// Query throughput through the Rust SDK (plaintext or TLS), the Python SDK's reference.
    Sdk(sdk::SdkArgs),
    /// A big tenant's first answer after a restart, warm and cold page cache.
    Activation(activation::ActivationArgs),
    /// The restarted process of `activation` (internal).
    #[command(hide = true)]
    ActivationProbe(activation::ProbeArgs),
    /// The restarted process of `tenants` (internal).
    #[command(hide = true)]
    TenantsReopen(tenants::ReopenArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ann(args) => ann::run(&args),
        Command::Server(args) => server::run(&args),
        Command::Bulk(args) => bulk::run(&args),
        Command::Filter(args) => filter::run(&args),
        Command::Neighbours(args) => neighbours::run(&args),
        Command::Tenants(args) => tenants::run(&args),
        Command::TenantsReopen(args) => tenants::reopen(&args),
        Command::Activation(args) => activation::run(&args),
        Command::Availability(args) => availability::run(&args),
        Command::Sdk(args) => sdk::run(&args),
        Command::ActivationProbe(args) => activation::probe(&args),
    }
}
