//! `tenants` mode: the many-tenant scale figures. Populates `--count` tenants with
//! `--per-tenant` vectors each, then restarts the engine in a fresh child process (so memory
//! figures are the reopened process's alone) and measures reopen time, resident memory after
//! reopen and after touching `--touch` tenants, the first query of a cold tenant, and the cost
//! of creating more tenants at that scale.

use std::path::{Path, PathBuf};
use std::process::Command;
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
    /// Tenant column families per RocksDB instance.
    #[arg(long, default_value_t = 256)]
    tenants_per_group: usize,
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
        let handle = engine.tenant(&id)?;
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
    let populate_started = Instant::now();
    let mut create = {
        // Bulk population doesn't fsync each batch; the restart below reads it all back.
        let engine = Engine::open(config(&dir, args.tenants_per_group, false))?;
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
        .args(["--tenants-per-group", &args.tenants_per_group.to_string()])
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
        ("tenants_per_group", args.tenants_per_group.into()),
        ("populate_s", round(populate_s, 1).into()),
        (
            "create_p50_ms",
            round(percentile_us(&create, 0.5) / 1e3, 2).into(),
        ),
        (
            "create_p99_ms",
            round(percentile_us(&create, 0.99) / 1e3, 2).into(),
        ),
        ("reopen_s", field("reopen_s")),
        ("rss_after_reopen_mib", field("rss_after_reopen_mib")),
        ("cold_query_ms", field("cold_query_ms")),
        (
            "cold_query_open_group_ms",
            field("cold_query_open_group_ms"),
        ),
        ("touched", args.touch.into()),
        ("rss_after_touch_mib", field("rss_after_touch_mib")),
        ("create_more_p50_ms", field("create_more_p50_ms")),
        ("create_more_p99_ms", field("create_more_p99_ms")),
    ];
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
        let hits = engine.tenant(&tenant_id(i))?.query(&docs(), &query)?;
        anyhow::ensure!(!hits.is_empty(), "tenant {i} returned nothing");
        Ok(())
    };
    // A cold tenant whose group is closed too, then a cold tenant in the now open group.
    let cold = args.count / 2;
    let cold_query_ms = time_ms(|| first_query(cold))?;
    let cold_query_open_group_ms = time_ms(|| first_query(cold + 1))?;
    for _ in 0..args.touch {
        first_query(rng.random_range(0..args.count))?;
    }
    let rss_after_touch = rss_mib()?;

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
        ("rss_after_reopen_mib", round(rss_after_reopen, 1).into()),
        ("cold_query_ms", round(cold_query_ms, 2).into()),
        (
            "cold_query_open_group_ms",
            round(cold_query_open_group_ms, 2).into(),
        ),
        ("rss_after_touch_mib", round(rss_after_touch, 1).into()),
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
