//! `activation` mode: how long a big tenant takes, from a process start, to answer its first
//! query, and how good that first answer is. One tenant holds one collection of `--rows`
//! vectors: the debian-minilm base itself, or (past its 60,030 rows) its rows again with a
//! little seeded noise, so a million-vector collection keeps the data's structure. The data
//! directory is populated once (build and segment included), then each measurement restarts
//! a child process (`activation-probe`) on it, with the page cache warm, or cold: every file
//! of the data directory evicted with `posix_fadvise(DONTNEED)` first (the container may not
//! drop caches globally; pages another process maps would stay, and none does). The same
//! restarts also time the first page of an export of the cold tenant, which must not load any
//! index.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{
    CollectionSpec, Engine, EngineConfig, IndexKind, NewRecord, Query, TenantSettings,
};
use bulkhead_formats::{Matrix, read_fvecs};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::report::print_json_line;

#[derive(Debug, Args)]
pub struct ActivationArgs {
    /// The debian-minilm directory (base.fvecs, query.fvecs).
    #[arg(long, default_value = "../shared/data/debian-minilm")]
    dataset: PathBuf,
    /// Vectors in the collection; past the base's rows, base rows again with noise.
    #[arg(long, default_value_t = 60_030)]
    rows: usize,
    /// Data directory; populated unless it already holds the tenant (then reused).
    #[arg(long)]
    data_dir: PathBuf,
    /// Restarts measured per page-cache state.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long)]
    rows: usize,
    #[arg(long)]
    data_dir: PathBuf,
    /// Which of the data set's queries to ask.
    #[arg(long)]
    query: usize,
    /// Read the first export page (256 records, as `Export` sends) instead of querying.
    #[arg(long)]
    export: bool,
}

const NOISE: f32 = 0.02;
const BATCH: usize = 1000;
const K: usize = 10;

fn tenant() -> TenantId {
    TenantId::new("big").expect("valid")
}

fn docs() -> CollectionId {
    CollectionId::new("docs").expect("valid")
}

/// Row `i` of the collection.
fn row(base: &Matrix<f32>, i: usize) -> Vec<f32> {
    let mut v = base.row(i % base.rows()).to_vec();
    if i >= base.rows() {
        let mut rng = StdRng::seed_from_u64(i as u64);
        for x in &mut v {
            *x += rng.random_range(-NOISE..NOISE);
        }
    }
    v
}

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.index_memory_budget_bytes = 64 << 30;
    c
}

pub fn run(args: &ActivationArgs) -> Result<()> {
    ensure!(
        args.rows > 0 && args.runs > 0,
        "--rows and --runs must be positive"
    );
    let base = read_fvecs(&args.dataset.join("base.fvecs"))?;
    let queries = read_fvecs(&args.dataset.join("query.fvecs"))?;
    populate(args, &base)?;
    let segment_bytes = dir_bytes(&args.data_dir.join("segments"))?;
    eprintln!("segment files: {:.1} MiB", segment_bytes as f64 / 1048576.0);
    for cache in ["warm", "cold"] {
        for run in 0..args.runs {
            let query = run * 97 % queries.rows();
            if cache == "cold" {
                evict(&args.data_dir)?;
            } else {
                warm(&args.data_dir)?;
            }
            let probe = run_probe(args, &["--query", &query.to_string()])?;
            let truth = exact_top_k(&base, args.rows, queries.row(query));
            let answered: Vec<u64> = probe["ids"]
                .as_array()
                .context("ids")?
                .iter()
                .filter_map(|v| v.as_u64())
                .collect();
            let recall = answered.iter().filter(|id| truth.contains(id)).count() as f64 / K as f64;
            let export = probe_export(args, cache)?;
            print_json_line(&[
                ("mode", "activation".into()),
                ("rows", args.rows.into()),
                ("page_cache", cache.into()),
                ("run", run.into()),
                ("open_ms", probe["open_ms"].clone()),
                ("first_answer_ms", probe["first_answer_ms"].clone()),
                ("first_query_ms", probe["first_query_ms"].clone()),
                ("index", probe["index"].clone()),
                ("recall_at_10", recall.into()),
                (
                    "segment_mib",
                    (segment_bytes as f64 / 1048576.0).round().into(),
                ),
                ("export_first_page_ms", export["first_page_ms"].clone()),
                ("export_left_tenant_cold", export["left_cold"].clone()),
            ]);
        }
    }
    Ok(())
}

/// A restarted process reading the first export page, after setting the page cache to `cache`.
fn probe_export(args: &ActivationArgs, cache: &str) -> Result<serde_json::Value> {
    if cache == "cold" {
        evict(&args.data_dir)?;
    }
    run_probe(args, &["--export", "--query", "0"])
}

/// Runs `activation-probe` with `extra` arguments in a new process; returns what it printed.
fn run_probe(args: &ActivationArgs, extra: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new(std::env::current_exe()?)
        .arg("activation-probe")
        .args(extra)
        .arg("--dataset")
        .arg(&args.dataset)
        .args(["--rows", &args.rows.to_string(), "--data-dir"])
        .arg(&args.data_dir)
        .output()
        .context("running the probe")?;
    ensure!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The restarted process: opens the engine and answers one query (or reads the first export
/// page); prints one JSON object.
pub fn probe(args: &ProbeArgs) -> Result<()> {
    if args.export {
        let started = Instant::now();
        let engine = Engine::open(config(&args.data_dir))?;
        let t = engine.tenant(&engine.authority().admin(&tenant(), "benchmark harness"))?;
        let spec = t.collection_spec(&docs())?;
        let page = t.scan_records(&docs(), None, 256)?;
        let first_page_ms = ms(started.elapsed());
        ensure!(page.len() == 256 && spec.dimension == page[0].vector.len());
        let left_cold = !engine.tenant_info(&tenant())?.loaded;
        println!(
            "{}",
            serde_json::json!({ "first_page_ms": first_page_ms, "left_cold": left_cold })
        );
        return Ok(());
    }
    let queries = read_fvecs(&args.dataset.join("query.fvecs"))?;
    let q = queries.row(args.query).to_vec();
    let started = Instant::now();
    let engine = Engine::open(config(&args.data_dir))?;
    let open_ms = ms(started.elapsed());
    let t = engine.tenant(&engine.authority().admin(&tenant(), "benchmark harness"))?;
    let query_started = Instant::now();
    let hits = t.query(&docs(), &Query::new(q, K))?;
    let first_query_ms = ms(query_started.elapsed());
    let first_answer_ms = ms(started.elapsed());
    let index = match t.get_collection(&docs())?.index.kind {
        IndexKind::Flat => "flat",
        IndexKind::Hnsw => "hnsw",
    };
    let ids: Vec<u64> = hits
        .iter()
        .filter_map(|h| h.id.as_str().parse().ok())
        .collect();
    ensure!(
        hits.len() == K,
        "the first query returned {} hits",
        hits.len()
    );
    println!(
        "{}",
        serde_json::json!({
            "open_ms": open_ms,
            "first_query_ms": first_query_ms,
            "first_answer_ms": first_answer_ms,
            "index": index,
            "ids": ids,
            "rows": args.rows,
        })
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Creates the tenant and its collection, ingests, and waits for the graph and its segment.
fn populate(args: &ActivationArgs, base: &Matrix<f32>) -> Result<()> {
    let mut config = config(&args.data_dir);
    config.sync_writes = false;
    let engine = Engine::open(config)?;
    if engine
        .tenant(&engine.authority().admin(&tenant(), "benchmark harness"))
        .is_ok()
    {
        let t = engine.tenant(&engine.authority().admin(&tenant(), "benchmark harness"))?;
        let records = t.get_collection(&docs())?.records;
        ensure!(
            records == args.rows as u64,
            "{} holds {records} records, not --rows {}: use another --data-dir",
            args.data_dir.display(),
            args.rows
        );
        eprintln!("reusing {} ({records} records)", args.data_dir.display());
        return Ok(());
    }
    engine.create_tenant(&tenant(), &TenantSettings::default())?;
    let t = engine.tenant(&engine.authority().admin(&tenant(), "benchmark harness"))?;
    t.create_collection(&docs(), &CollectionSpec::new(base.dim, Metric::Cosine))?;
    let started = Instant::now();
    for start in (0..args.rows).step_by(BATCH) {
        let batch = (start..(start + BATCH).min(args.rows))
            .map(|i| Ok(NewRecord::new(RecordId::new(i.to_string())?, row(base, i))))
            .collect::<Result<Vec<_>>>()?;
        t.upsert(&docs(), batch)?;
        if (start / BATCH) % 100 == 99 {
            eprintln!(
                "  ingested {}/{} ({:.0} s)",
                start + BATCH,
                args.rows,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "ingested {} rows in {:.1} s; building the graph and its segment",
        args.rows,
        started.elapsed().as_secs_f64()
    );
    let build = Instant::now();
    ensure!(
        engine.wait_for_index_builds(Duration::from_secs(4 * 3600)),
        "the graph and its segment took over four hours"
    );
    // Anything written after the segment the build wrote.
    t.write_segments()?;
    t.flush()?;
    eprintln!(
        "graph and segment ready in {:.1} s",
        build.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Exact top-k row numbers of `q` among the collection's `rows` (cosine on unit vectors).
fn exact_top_k(base: &Matrix<f32>, rows: usize, q: &[f32]) -> Vec<u64> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let qn = norm(q);
    let mut scored: Vec<(f32, u64)> = (0..rows)
        .map(|i| {
            let v = row(base, i);
            let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
            (-dot / (norm(&v) * qn), i as u64)
        })
        .collect();
    scored.select_nth_unstable_by(K - 1, |a, b| a.0.total_cmp(&b.0));
    scored.truncate(K);
    scored.into_iter().map(|(_, i)| i).collect()
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    Ok(files(dir)?
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum())
}

/// Evicts every file of `dir` from the page cache.
fn evict(dir: &Path) -> Result<()> {
    for f in files(dir)? {
        let file = std::fs::File::open(&f)?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .with_context(|| format!("evicting {}", f.display()))?;
    }
    Ok(())
}

/// Reads every file of `dir`, so the page cache holds it.
fn warm(dir: &Path) -> Result<()> {
    for f in files(dir)? {
        let mut file = std::fs::File::open(&f)?;
        std::io::copy(&mut file, &mut std::io::sink())?;
    }
    Ok(())
}
