//! `neighbours` mode: failure isolation under a hostile neighbour. A victim tenant keeps a
//! steady load on a running server while an attacker tenant on the same server does its worst,
//! one kind of attack at a time. The victim's p99 under attack against its p99 alone says
//! whether one tenant's abuse reaches another; its p99 after the attack, whether the server
//! recovers once the attacker is gone. A failing scenario is a finding, not an error: the run
//! exits 0 whatever it measured, and nonzero only if it couldn't set up or measure.

mod attack;
mod loops;
mod outcomes;
mod report;
mod server_latency;
mod setup;
mod streams;
mod thread_times;
mod victim;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::{Args, ValueEnum};
use http::HeaderValue;

use self::attack::{Scenario, Target};
use self::report::{PhaseFigures, ScenarioResult, ServerP99};
use self::server_latency::TenantHistograms;
use self::setup::{FLAT, HNSW, Plan};
use self::thread_times::ThreadTimes;
use self::victim::{Phase, VictimLoad};
use crate::dataset::Dataset;
use crate::report::print_json_line;

#[derive(Debug, Clone, Args)]
pub struct NeighboursArgs {
    #[command(flatten)]
    server: crate::address::ServerAddress,
    /// Directory with base.fvecs, query.fvecs and groundtruth.ivecs.
    #[arg(long)]
    dataset: PathBuf,
    /// The measured tenant (deleted and made afresh if it exists; deleted at the end).
    #[arg(long, default_value = "victim")]
    victim: String,
    /// The hostile tenant (deleted and made afresh if it exists; deleted at the end).
    #[arg(long, default_value = "attacker")]
    attacker: String,
    /// Records of the victim's collection (the data set's first rows). Keep it clear of the
    /// collection's flat threshold (20,000 by default): the upsert that crosses it builds the
    /// graph, and the victim's own queries wait for that, whatever the attacker does.
    #[arg(long, default_value_t = 30_000)]
    victim_records: usize,
    /// Records of each of the attacker's two collections [default: the whole data set].
    #[arg(long)]
    attacker_records: Option<usize>,
    /// The attacker's write limit in bytes per second, set once its records are loaded
    /// [default: the server's]. With a limit the flood outruns, `write-flood` is a flood of
    /// writes refused for it, as an attacker past its limit sends them.
    #[arg(long)]
    attacker_write_limit: Option<u64>,
    /// Victim requests per second, on a fixed schedule: 90% top-10 queries, 10% upserts.
    #[arg(long, default_value_t = 200.0)]
    victim_rate: f64,
    /// Seconds of each phase of a scenario: baseline, attack, recovery.
    #[arg(long, default_value_t = 10)]
    phase: u64,
    /// Attacks to run, comma-separated, in the order given.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Scenario::value_variants().to_vec())]
    scenarios: Vec<Scenario>,
    /// Export streams the `export-streams` attack holds open.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Import streams the `slow-import` attack trickles.
    #[arg(long, default_value_t = 64)]
    slow_imports: usize,
    /// Records in each upsert of the `write-flood` attack (about 1.6 KB each): 500 make
    /// batches the server writes around the tenant group's shared log, 150 or fewer batches
    /// that go through it.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
    flood_records: u32,
    /// Send the `write-flood` attack to the attacker's flat collection: with no graph to
    /// insert into, its pace is set by the attacker's write limit instead of graph inserts.
    #[arg(long)]
    flood_flat: bool,
    /// Seconds of quiet before each scenario, for the previous one's work to drain.
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
    /// Seconds of the victim's load, not measured, just before each baseline. The first
    /// searches of a freshly built graph read memory no query has read before, and on this
    /// VM they run up to a hundred times slower than the same search a moment later
    /// (docs/benchmarks.md, *The first searches of a fresh graph*): the victim's own first
    /// touch, which a baseline taken cold counted as its tail. 0: no warm-up.
    #[arg(long, default_value_t = 3)]
    warm_up_secs: u64,
    /// Concurrent writers loading the records.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Deadline of every call, the victim's and the attacker's.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Print the summary table to stdout, after the JSON lines (default: stderr).
    #[arg(long)]
    markdown: bool,
    /// Run the attacker's client threads at background priority, off the lowest CPU as the
    /// server's background threads are: a stand-in for a client on
    /// another machine, so that on a small machine the CPU the attacker's own client spends
    /// (decoding 1,000-hit answers) is not taken from the server and the victim's client.
    #[arg(long)]
    attacker_in_background: bool,
    /// The server's process id, when it runs on this machine (Linux): each phase then also
    /// reports how long the server's normal-priority threads waited for a CPU
    /// (`server_threads`), a figure summed over every request rather than the slowest few.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's `metrics-listen` address (`host:port`), when it runs with
    /// `per-tenant-metrics = true`: each phase then also reports the victim's query and upsert
    /// p99 as the server timed them, from its gate to the answer, so a rise the harness sees can be
    /// told apart from one in the server's handling.
    #[arg(long)]
    metrics_endpoint: Option<String>,
    /// Print each victim call slower than this many milliseconds to stderr as it finishes, with
    /// its wall-clock time and start lag, so a tail can be placed in time against the server's
    /// and the system's logs (the baseline's first calls after the settle time are where the
    /// stalls of docs/benchmarks.md were found).
    #[arg(long, value_name = "MS")]
    log_calls_slower_than_ms: Option<u64>,
}

fn bearer(secret: &str) -> Result<HeaderValue> {
    HeaderValue::try_from(format!("Bearer {secret}")).context("the key is not a valid header")
}

pub fn run(args: &NeighboursArgs) -> Result<()> {
    ensure!(
        args.victim_rate > 0.0 && args.phase > 0 && args.writers > 0 && args.victim_records > 0,
        "--victim-rate, --phase, --writers and --victim-records must be positive"
    );
    eprintln!("neighbours: reading {}", args.dataset.display());
    let data = Arc::new(Dataset::load(&args.dataset)?);
    let rows = data.base.rows();
    let attacker_records = args.attacker_records.unwrap_or(rows);
    ensure!(
        args.victim_records <= rows && (1..=rows).contains(&attacker_records),
        "the data set has {rows} rows: --victim-records and --attacker-records must be 1..={rows}"
    );
    let plan = Plan {
        endpoint: &args.server.endpoint,
        admin_token: &args.server.admin_token,
        victim: &args.victim,
        attacker: &args.attacker,
        victim_records: args.victim_records,
        attacker_records,
        attacker_write_limit: args.attacker_write_limit,
        writers: args.writers,
    };
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let keys = setup.block_on(setup::prepare(&plan, &data))?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let victim = VictimLoad {
        endpoint: args.server.endpoint.clone(),
        authorization: bearer(&keys.victim_write)?,
        collection: format!("tenants/{}/collections/{HNSW}", args.victim),
        data: data.clone(),
        records: args.victim_records,
        rate: args.victim_rate,
        timeout,
        log_slower_than: args.log_calls_slower_than_ms.map(Duration::from_millis),
    };
    let target = Arc::new(Target {
        endpoint: args.server.endpoint.clone(),
        tenant: format!("tenants/{}", args.attacker),
        hnsw: format!("tenants/{}/collections/{HNSW}", args.attacker),
        flat: format!("tenants/{}/collections/{FLAT}", args.attacker),
        read: bearer(&keys.attacker_read)?,
        write: bearer(&keys.attacker_write)?,
        admin: bearer(&keys.attacker_admin)?,
        data,
        records: attacker_records,
        streams: args.streams,
        slow_imports: args.slow_imports,
        flood_records: args.flood_records as usize,
        flood_flat: args.flood_flat,
        timeout,
        in_background: args.attacker_in_background,
    });
    let mut results = Vec::new();
    for (i, &scenario) in args.scenarios.iter().enumerate() {
        let waited = setup.block_on(setup::wait_for_index_builds(&plan, &keys))?;
        if !waited.is_zero() {
            eprintln!(
                "neighbours: index builds done after {:.1} s",
                waited.as_secs_f64()
            );
        }
        let result = measure(args, scenario, i as u64, &victim, &target)?;
        print_json_line(&result.json_fields(args.victim_rate, args.phase));
        results.push(result);
    }
    let table = report::markdown(&results);
    if args.markdown {
        print!("{table}");
    } else {
        eprint!("{table}");
    }
    setup.block_on(setup::remove(&plan))
}

/// One scenario: the victim alone, then under attack, then alone again after the attacker
/// has been stopped and its connections closed.
fn measure(
    args: &NeighboursArgs,
    scenario: Scenario,
    index: u64,
    victim: &VictimLoad,
    target: &Arc<Target>,
) -> Result<ScenarioResult> {
    let phase = Duration::from_secs(args.phase);
    std::thread::sleep(Duration::from_secs(args.settle_secs));
    if args.warm_up_secs > 0 {
        let warm_up = victim.run(Duration::from_secs(args.warm_up_secs), u64::MAX - index)?;
        eprintln!(
            "{scenario}: warm-up, {} s, {} calls, failures {:?} (not measured)",
            args.warm_up_secs,
            warm_up.latencies.len(),
            warm_up.errors.snapshot()
        );
    }
    eprintln!("{scenario}: baseline, {} s", args.phase);
    let baseline = observed(args, &|| victim.run(phase, 3 * index))?;
    eprintln!("{scenario}: starting the attack");
    let running = attack::start(scenario, target)?;
    eprintln!(
        "{scenario}: attack under way ({:?}), {} s",
        running.counts(),
        args.phase
    );
    let attack = observed(args, &|| victim.run(phase, 3 * index + 1));
    let (attacker, notes) = running.stop();
    let attack = attack?;
    eprintln!(
        "{scenario}: attack stopped ({attacker:?}); recovery, {} s",
        args.phase
    );
    let recovery = observed(args, &|| victim.run(phase, 3 * index + 2))?;
    Ok(ScenarioResult {
        scenario,
        baseline,
        attack,
        recovery,
        attacker,
        notes,
    })
}

/// The victim's figures for the phase `run` measures, with the server's thread times over it
/// (`--server-pid`) and its own timing of the victim's requests (`--metrics-endpoint`).
fn observed(args: &NeighboursArgs, run: &dyn Fn() -> Result<Phase>) -> Result<PhaseFigures> {
    let threads = args.server_pid.map(ThreadTimes::of).transpose()?;
    let histograms = |addr: &String| TenantHistograms::scrape(addr, &args.victim);
    let timed = args.metrics_endpoint.as_ref().map(histograms).transpose()?;
    let mut figures = PhaseFigures::from(&run()?);
    if let (Some(pid), Some(before)) = (args.server_pid, threads) {
        figures.server_threads = Some(ThreadTimes::of(pid)?.since(&before));
    }
    if let (Some(addr), Some(before)) = (&args.metrics_endpoint, timed) {
        let after = histograms(addr)?;
        let p99 = |method| after.quantile_since(&before, method, 0.99);
        figures.server_p99_us = Some(ServerP99 {
            query: p99(SERVER_QUERY),
            upsert: p99(SERVER_UPSERT),
        });
    }
    Ok(figures)
}

/// The methods as the server's metrics name them.
const SERVER_QUERY: &str = "RecordService/Query";
const SERVER_UPSERT: &str = "RecordService/Upsert";
