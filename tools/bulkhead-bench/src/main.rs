//! Command-line benchmark driver. It measures the index in-process, on the same fvecs/ivecs
//! files and with the same JSON output as `tools/hnswlib_bench.py`, so the two can be compared
//! line by line.

mod ann;
mod vecs;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bulkhead-bench", about = "Benchmarks for Bulkhead indexes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recall and throughput of an in-memory index on an ANN dataset.
    Ann(ann::AnnArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ann(args) => ann::run(&args),
    }
}
