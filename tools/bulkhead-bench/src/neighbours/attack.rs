//! Starting and stopping an attack. Each attack runs on a runtime of its own: stopping it is
//! shutting that runtime down, which drops every task, stream and connection the attack made
//! at once, whatever state they are in, so nothing of it outlives its phase.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use http::HeaderValue;

use super::outcomes::Counts;
use super::{loops, streams};
use crate::dataset::Dataset;

/// The attacks, in the order they run by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Export streams held open with zero flow-control windows, never read.
    ExportStreams,
    /// The costliest reads: huge filters, top 1000 at the widest ef, audit scans, flat scans.
    HeavyReads,
    /// Upserts of 500 records, as fast as the server takes them.
    WriteFlood,
    /// API keys created and revoked in a loop.
    KeyChurn,
    /// Import streams that send a byte every two seconds and never finish.
    SlowImport,
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.to_possible_value().expect("no variant is skipped");
        f.write_str(name.get_name())
    }
}

/// What the attacks need: the attacker's collections and keys, the data, and the sizes.
pub struct Target {
    pub endpoint: String,
    /// `tenants/{attacker}`.
    pub tenant: String,
    /// `tenants/{attacker}/collections/...` of the HNSW and the flat collection.
    pub hnsw: String,
    pub flat: String,
    /// `Bearer` and the secret of each of the attacker's keys.
    pub read: HeaderValue,
    pub write: HeaderValue,
    pub admin: HeaderValue,
    pub data: Arc<Dataset>,
    /// Rows of the data set the attacker's collections hold.
    pub records: usize,
    pub streams: usize,
    pub slow_imports: usize,
    /// Records in each upsert of the write flood.
    pub flood_records: usize,
    /// Whether the write flood goes to the flat collection (else to the HNSW one).
    pub flood_flat: bool,
    /// Deadline of every call the attack makes.
    pub timeout: Duration,
    /// Whether the attack's threads run at background priority, off the lowest CPU
    /// (`--attacker-in-background`).
    pub in_background: bool,
}

/// Facts about how an attack ran (the ef it settled on, streams per connection), for the report.
pub type Notes = Vec<(&'static str, serde_json::Value)>;

/// A started attack.
#[derive(Debug)]
pub struct Running {
    runtime: tokio::runtime::Runtime,
    counts: Counts,
    notes: Notes,
}

/// Starts `scenario` and returns once it is in full force: its streams are open (or refused)
/// and its loops running.
pub fn start(scenario: Scenario, target: &Arc<Target>) -> Result<Running> {
    let in_background = target.in_background;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("attacker")
        .on_thread_start(move || {
            if in_background {
                bulkhead_engine::move_current_thread_to_background();
            }
        })
        .build()?;
    let counts = Counts::default();
    let (t, c) = (target.clone(), counts.clone());
    // Every call of an attack has the deadline, so setting up ends soon after it; this bound
    // only guards against a hang in what has none (a TCP connect to a server that stopped
    // accepting), which leaves the attack running as far as it got.
    let limit = target.timeout * 2;
    let notes = runtime.block_on(async move {
        let established = async move {
            match scenario {
                Scenario::ExportStreams => streams::exports(t, c).await,
                Scenario::SlowImport => streams::slow_imports(t, c).await,
                Scenario::HeavyReads => loops::heavy_reads(t, c).await,
                Scenario::WriteFlood => loops::write_flood(t, c).await,
                Scenario::KeyChurn => loops::key_churn(t, c).await,
            }
        };
        tokio::time::timeout(limit, established)
            .await
            .unwrap_or_else(|_| vec![("setup", "timed out".into())])
    });
    Ok(Running {
        runtime,
        counts,
        notes,
    })
}

impl Running {
    /// The attack's results so far, by outcome.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.snapshot()
    }

    /// Stops the attack and closes its connections; returns its results and notes.
    pub fn stop(self) -> (BTreeMap<String, u64>, Notes) {
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        (self.counts.snapshot(), self.notes)
    }
}
