//! `tenants` mode: the many-tenant scale figures. Populates `--count` tenants with
//! `--per-tenant` vectors each, then restarts the engine in a fresh child process (so memory
//! figures are the reopened process's alone) and measures there: reopen time, time to the first
//! served query and to a warm working set of `--touch` tenants, resident memory, the first query
//! of a cold tenant, hot tenants' query latency while cold tenants are being activated, and the
//! cost of creating more tenants at that scale.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{CollectionSpec, Engine, EngineConfig, NewRecord, Query, TenantSettings};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::report::{percentile_us, print_json_line, round};

#[derive(Debug, Clone, Args)]
pub struct TenantsArgs {
    /// Tenants to create.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Vectors per tenant.
    #[arg(long, default_value_t = 100)]
    per_tenant: usize,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Tenants touched (queried) after the restart.
    #[arg(long, default_value_t = 100)]
    touch: usize,
    /// Tenant column families per RocksDB instance (default: the engine's).
    #[arg(long)]
    tenants_per_group: Option<usize>,
    /// Seconds hot tenants are queried, alone and then while cold tenants are activated.
    #[arg(long, default_value_t = 5)]
    hot_phase_secs: u64,
    /// Data directory; reused if it already holds the tenants. Default: a temporary directory,
    /// deleted afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// Hidden mode: the restarted process.
#[derive(Debug, Clone, Args)]
pub struct ReopenArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    dim: usize,
    #[arg(long)]
    touch: usize,
    #[arg(long)]
    tenants_per_group: usize,
    #[arg(long)]
    hot_phase_secs: u64,
}

fn tenant_id(i: usize) -> TenantId {
    TenantId::new(format!("t{i:06}")).expect("valid id")
}

fn docs() -> CollectionId {
    CollectionId::new("docs").expect("valid id")
}

fn unit_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn config(dir: &Path, tenants_per_group: usize, sync: bool) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.tenants_per_group = tenants_per_group;
    // Groups filled one after another, so tenant `i` is in group `i / tenants_per_group`, as the
    // cold order below and the recorded figures assume.
    c.groups_before_sharing = 1;
    c.sync_writes = sync;
    c
}

fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing from /proc/self/status")?;
    Ok(kb / 1024.0)
}

/// Creates tenants `start..count`; returns the per-tenant creation latencies.
fn populate(engine: &Engine, start: usize, args: &TenantsArgs) -> Result<Vec<Duration>> {
    let mut create = Vec::with_capacity(args.count - start);
    let began = Instant::now();
    let spec = CollectionSpec::new(args.dim, Metric::Cosine);
    for i in start..args.count {
        let id = tenant_id(i);
        let t0 = Instant::now();
        engine.create_tenant(&id, &TenantSettings::default())?;
        create.push(t0.elapsed());
        let handle = engine.tenant(&engine.authority().admin(&id, "benchmark harness"))?;
        handle.create_collection(&docs(), &spec)?;
        let mut rng = StdRng::seed_from_u64(i as u64);
        let records = (0..args.per_tenant)
            .map(|j| {
                NewRecord::new(
                    RecordId::new(format!("r{j}")).expect("valid"),
                    unit_vector(&mut rng, args.dim),
                )
            })
            .collect();
        handle.upsert(&docs(), records)?;
        let done = i + 1 - start;
        if done.is_multiple_of(500) || i + 1 == args.count {
            let rate = done as f64 / began.elapsed().as_secs_f64();
            let eta = (args.count - i - 1) as f64 / rate;
            eprintln!(
                "populate: {}/{} tenants, {rate:.0} tenants/s, ETA {eta:.0} s",
                i + 1,
                args.count
            );
        }
    }
    Ok(create)
}

pub fn run(args: &TenantsArgs) -> Result<()> {
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    if args.per_tenant == 0 || args.count == 0 {
        bail!("--count and --per-tenant must be positive");
    }
    let tenants_per_group = args
        .tenants_per_group
        .unwrap_or(EngineConfig::new(&dir).tenants_per_group);
    let populate_started = Instant::now();
    let mut create = {
        // Bulk population doesn't fsync each batch; the restart below reads it all back.
        let engine = Engine::open(config(&dir, tenants_per_group, false))?;
        let existing = engine.tenant_count();
        if existing > args.count {
            bail!(
                "{} already holds {existing} tenants, more than --count",
                dir.display()
            );
        }
        eprintln!(
            "populate: {existing} tenants already present in {}",
            dir.display()
        );
        populate(&engine, existing, args)?
    };
    let populate_s = populate_started.elapsed().as_secs_f64();
    create.sort_unstable();

    eprintln!("restarting in a child process");
    let out = Command::new(std::env::current_exe()?)
        .arg("tenants-reopen")
        .arg("--data-dir")
        .arg(&dir)
        .args(["--count", &args.count.to_string()])
        .args(["--dim", &args.dim.to_string()])
        .args(["--touch", &args.touch.to_string()])
        .args(["--tenants-per-group", &tenants_per_group.to_string()])
        .args(["--hot-phase-secs", &args.hot_phase_secs.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the reopen child")?;
    if !out.status.success() {
        bail!("reopen child failed: {}", out.status);
    }
    let reopened: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("child output: {}", String::from_utf8_lossy(&out.stdout)))?;
    let field = |k: &str| reopened.get(k).cloned().unwrap_or(serde_json::Value::Null);
    let fields = [
        ("mode", serde_json::json!("tenants")),
        ("tenants", args.count.into()),
        ("per_tenant", args.per_tenant.into()),
        ("dim", args.dim.into()),
        ("tenants_per_group", tenants_per_group.into()),
        ("populate_s", round(populate_s, 1).into()),
        (
            "create_p50_ms",
            round(percentile_us(&create, 0.5) / 1e3, 2).into(),
        ),
        (
            "create_p99_ms",
            round(percentile_us(&create, 0.99) / 1e3, 2).into(),
        ),
        ("touched", args.touch.into()),
    ];
    let fields: Vec<_> = fields
        .into_iter()
        .chain(REOPEN_FIELDS.iter().map(|k| (*k, field(k))))
        .collect();
    if args.json {
        print_json_line(&fields);
    } else {
        for (k, v) in fields {
            println!("{k:<26} {v}");
        }
    }
    Ok(())
}

fn time_ms(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t0 = Instant::now();
    f()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

/// The figures the restarted process reports, in output order.
const REOPEN_FIELDS: &[&str] = &[
    "reopen_s",
    "first_served_s",
    "rss_after_reopen_mib",
    "cold_query_ms",
    "cold_query_open_group_ms",
    "warm_s",
    "rss_after_touch_mib",
    "open_groups_after_touch",
    "hot_p99_alone_us",
    "hot_p99_busy_neighbour_us",
    "hot_p99_activating_us",
    "hot_p99_ratio",
    "hot_runqueue_wait_alone_ms",
    "hot_runqueue_wait_busy_neighbour_ms",
    "hot_runqueue_wait_activating_ms",
    "activations",
    "activations_per_s",
    "create_more_p50_ms",
    "create_more_p99_ms",
];

/// Hot tenants queried in turn on one thread during the latency phases.
const HOT_TENANTS: usize = 8;

/// The restarted process: reports its figures as one JSON object on stdout.
pub fn reopen(args: &ReopenArgs) -> Result<()> {
    let t0 = Instant::now();
    let engine = Engine::open(config(&args.data_dir, args.tenants_per_group, true))?;
    let reopen_s = t0.elapsed().as_secs_f64();
    let rss_after_reopen = rss_mib()?;
    anyhow::ensure!(
        engine.tenant_count() >= args.count,
        "tenants missing after reopen"
    );
    eprintln!(
        "reopened {} tenants in {reopen_s:.3} s",
        engine.tenant_count()
    );

    let mut rng = StdRng::seed_from_u64(7);
    let query = Query::new(unit_vector(&mut rng, args.dim), 10);
    let first_query = |i: usize| -> Result<()> {
        let hits = engine
            .tenant(
                &engine
                    .authority()
                    .grant::<bulkhead_engine::Read>(&tenant_id(i)),
            )?
            .query(&docs(), &query)?;
        anyhow::ensure!(!hits.is_empty(), "tenant {i} returned nothing");
        Ok(())
    };
    // A cold tenant whose group is closed too, then a cold tenant in the now open group.
    let cold = args.count / 2;
    let cold_query_ms = time_ms(|| first_query(cold))?;
    let first_served_s = t0.elapsed().as_secs_f64();
    let cold_query_open_group_ms = time_ms(|| first_query(cold + 1))?;
    let touched: BTreeSet<usize> = (0..args.touch)
        .map(|_| rng.random_range(0..args.count))
        .collect();
    for &i in &touched {
        first_query(i)?;
    }
    let warm_s = t0.elapsed().as_secs_f64();
    let rss_after_touch = rss_mib()?;
    let open_groups_after_touch = engine.open_group_count();
    eprintln!(
        "working set of {} tenants warm after {warm_s:.2} s",
        args.touch
    );

    let hot: Vec<usize> = touched.iter().copied().take(HOT_TENANTS).collect();
    anyhow::ensure!(!hot.is_empty(), "--touch must be at least 1");
    let phase = Duration::from_secs(args.hot_phase_secs);
    let alone = hot_latencies(&engine, &hot, &query, phase)?;
    let busy_neighbour = with_busy_neighbour(|| hot_latencies(&engine, &hot, &query, phase))?;
    let stop = AtomicBool::new(false);
    let (activating, (activations, activating_for)) = std::thread::scope(|s| {
        let activator = s.spawn(|| -> Result<(usize, Duration)> {
            let began = Instant::now();
            let mut n = 0;
            for i in cold_order(args.count, args.tenants_per_group) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if !touched.contains(&i) && i != cold && i != cold + 1 {
                    first_query(i)?;
                    n += 1;
                }
            }
            Ok((n, began.elapsed()))
        });
        let latencies = hot_latencies(&engine, &hot, &query, phase);
        stop.store(true, Ordering::Relaxed);
        let activations = activator
            .join()
            .map_err(|_| anyhow::anyhow!("activator panicked"))?;
        Ok::<_, anyhow::Error>((latencies?, activations?))
    })?;
    let hot_p99_alone = percentile_us(&alone.latencies, 0.99);
    let hot_p99_activating = percentile_us(&activating.latencies, 0.99);
    let hot_p99_busy_neighbour = percentile_us(&busy_neighbour.latencies, 0.99);
    let waited_ms = |p: &HotPhase| round(p.runqueue_wait.as_secs_f64() * 1e3, 1);
    eprintln!(
        "hot p99 {hot_p99_alone:.1} µs alone, {hot_p99_busy_neighbour:.1} µs beside a memory-bound \
         thread, {hot_p99_activating:.1} µs during {activations} cold activations"
    );

    let mut create_more = Vec::new();
    for i in 0..20 {
        let id = TenantId::new(format!("extra-{}-{i}", std::process::id()))?;
        let t = Instant::now();
        engine.create_tenant(&id, &TenantSettings::default())?;
        create_more.push(t.elapsed());
        engine.delete_tenant(&id)?;
    }
    create_more.sort_unstable();

    print_json_line(&[
        ("reopen_s", round(reopen_s, 3).into()),
        ("first_served_s", round(first_served_s, 3).into()),
        ("rss_after_reopen_mib", round(rss_after_reopen, 1).into()),
        ("cold_query_ms", round(cold_query_ms, 2).into()),
        (
            "cold_query_open_group_ms",
            round(cold_query_open_group_ms, 2).into(),
        ),
        ("warm_s", round(warm_s, 3).into()),
        ("rss_after_touch_mib", round(rss_after_touch, 1).into()),
        ("open_groups_after_touch", open_groups_after_touch.into()),
        ("hot_p99_alone_us", round(hot_p99_alone, 1).into()),
        (
            "hot_p99_busy_neighbour_us",
            round(hot_p99_busy_neighbour, 1).into(),
        ),
        ("hot_p99_activating_us", round(hot_p99_activating, 1).into()),
        (
            "hot_p99_ratio",
            round(hot_p99_activating / hot_p99_alone.max(1.0), 2).into(),
        ),
        ("hot_runqueue_wait_alone_ms", waited_ms(&alone).into()),
        (
            "hot_runqueue_wait_busy_neighbour_ms",
            waited_ms(&busy_neighbour).into(),
        ),
        (
            "hot_runqueue_wait_activating_ms",
            waited_ms(&activating).into(),
        ),
        ("activations", activations.into()),
        (
            "activations_per_s",
            round(activations as f64 / activating_for.as_secs_f64(), 1).into(),
        ),
        (
            "create_more_p50_ms",
            round(percentile_us(&create_more, 0.5) / 1e3, 2).into(),
        ),
        (
            "create_more_p99_ms",
            round(percentile_us(&create_more, 0.99) / 1e3, 2).into(),
        ),
    ]);
    Ok(())
}

/// Every tenant once, one per group in turn (group 0's first, group 1's first, …), so while
/// groups are closed nearly every activation opens one.
fn cold_order(count: usize, per_group: usize) -> impl Iterator<Item = usize> {
    let groups = count.div_ceil(per_group);
    (0..groups * per_group)
        .map(move |k| (k % groups) * per_group + k / groups)
        .filter(move |i| *i < count)
}

/// Runs `measure` while another thread streams through 64 MiB of memory, doing nothing with
/// the engine: the control for the activation phase, showing what any busy neighbour on the
/// other core costs the hot thread (shared last-level cache and memory bandwidth).
fn with_busy_neighbour<T>(measure: impl FnOnce() -> Result<T>) -> Result<T> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut from = vec![1u8; 32 << 20];
            let mut to = vec![0u8; 32 << 20];
            while !stop.load(Ordering::Relaxed) {
                to.copy_from_slice(&from);
                std::mem::swap(&mut from, &mut to);
                std::hint::black_box(&to);
            }
        });
        let result = measure();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// One hot phase: sorted query latencies, and how long the querying thread sat runnable but
/// without a CPU (from `/proc/thread-self/schedstat`), which tells CPU contention apart from
/// waiting on the engine.
struct HotPhase {
    latencies: Vec<Duration>,
    runqueue_wait: Duration,
}

/// Time this thread has spent waiting on a run queue (Linux schedstat, second field).
fn runqueue_wait() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .context("malformed /proc/thread-self/schedstat")?;
    Ok(Duration::from_nanos(ns))
}

/// Queries `hot` tenants in turn for `phase`.
fn hot_latencies(
    engine: &Engine,
    hot: &[usize],
    query: &Query,
    phase: Duration,
) -> Result<HotPhase> {
    let mut latencies = Vec::new();
    let waited_before = runqueue_wait()?;
    let began = Instant::now();
    for &i in hot.iter().cycle() {
        if began.elapsed() >= phase {
            break;
        }
        let t = Instant::now();
        engine
            .tenant(
                &engine
                    .authority()
                    .grant::<bulkhead_engine::Read>(&tenant_id(i)),
            )?
            .query(&docs(), query)?;
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();
    Ok(HotPhase {
        latencies,
        runqueue_wait: runqueue_wait()?.saturating_sub(waited_before),
    })
}
