//! `availability` mode: search latency of a collection while its index is rebuilt in the
//! background under a steady upsert load, against the same searches on the idle collection.
//! Two rebuilds of a 60,030-vector debian-minilm collection: the promotion from flat to a graph
//! (the idle baseline is then the flat collection just below its threshold), and a compaction
//! after a quarter of its records are deleted (the baseline is the graph before the deletes).
//! A search that waited for a build would show as a p99 of seconds; one that failed, as an
//! error count.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{
    CollectionSpec, Engine, EngineConfig, IndexParams, NewRecord, Query, TenantHandle,
    TenantSettings,
};
use bulkhead_formats::{Matrix, read_fvecs};
use clap::Args;

use crate::report::{percentile_us, print_json_line};

#[derive(Debug, Args)]
pub struct AvailabilityArgs {
    /// The debian-minilm directory (base.fvecs, query.fvecs).
    #[arg(long, default_value = "../shared/data/debian-minilm")]
    dataset: PathBuf,
    /// Records per second the writer upserts during the builds (batches of 10).
    #[arg(long, default_value_t = 500)]
    upserts_per_second: u64,
    /// The engine's `index-build-threads` (default: the engine's default).
    #[arg(long)]
    build_threads: Option<usize>,
    /// Searches measured on the idle collection before each build.
    #[arg(long, default_value_t = 2000)]
    idle_queries: usize,
}

const K: usize = 10;

/// The collection promoted (its threshold just at the data's size).
fn promoted() -> CollectionId {
    CollectionId::new("promoted").expect("valid")
}

/// The collection compacted (default settings: a graph from 20,000 records).
fn compacted() -> CollectionId {
    CollectionId::new("compacted").expect("valid")
}

fn record(base: &Matrix<f32>, id: usize) -> Result<NewRecord> {
    Ok(NewRecord::new(
        RecordId::new(id.to_string())?,
        base.row(id % base.rows()).to_vec(),
    ))
}

/// Latencies of searches run back to back until `until` says stop, and the errors among them.
fn search_until(
    t: &TenantHandle,
    collection: &CollectionId,
    queries: &Matrix<f32>,
    mut until: impl FnMut(usize) -> bool,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut i = 0;
    while !until(i) {
        let q = Query::new(queries.row(i % queries.rows()).to_vec(), K);
        let started = Instant::now();
        match t.query(collection, &q) {
            Ok(hits) if hits.len() == K => {}
            _ => errors += 1,
        }
        latencies.push(started.elapsed());
        i += 1;
    }
    latencies.sort_unstable();
    (latencies, errors)
}

pub fn run(args: &AvailabilityArgs) -> Result<()> {
    let base = read_fvecs(&args.dataset.join("base.fvecs"))?;
    let queries = read_fvecs(&args.dataset.join("query.fvecs"))?;
    let dir = tempfile::tempdir()?;
    let mut config = EngineConfig::new(dir.path());
    config.sync_writes = false;
    if let Some(threads) = args.build_threads {
        config.index_build_threads = threads;
    }
    let threads = config.index_build_threads;
    eprintln!("index build threads: {threads}");
    let engine = Engine::open(config)?;
    let tenant = TenantId::new("big")?;
    engine.create_tenant(&tenant, &TenantSettings::default())?;
    let t = engine.tenant(&engine.authority().admin(&tenant, "benchmark harness"))?;
    let n = base.rows();
    let next_id = AtomicUsize::new(n);

    // The promotion: the first upsert past the threshold queues it.
    let mut spec = CollectionSpec::new(base.dim, Metric::Cosine);
    spec.index = Some(IndexParams {
        flat_threshold: n,
        ..IndexParams::default()
    });
    fill(&t, &promoted(), &spec, &base)?;
    eprintln!("{n} records in, flat (threshold {n})");
    let idle = search_until(&t, &promoted(), &queries, |i| i >= args.idle_queries);
    let during = while_building(&engine, &t, &promoted(), &queries, &base, &next_id, args)?;
    report("promote", threads, &idle, &during);
    t.delete_collection(&promoted())?;

    // The compaction: deleting over a quarter of the records queues it.
    fill(
        &t,
        &compacted(),
        &CollectionSpec::new(base.dim, Metric::Cosine),
        &base,
    )?;
    ensure!(
        engine.wait_for_index_builds(Duration::from_secs(3600)),
        "the index build took over an hour"
    );
    eprintln!("{n} records in, graph built");
    let idle = search_until(&t, &compacted(), &queries, |i| i >= args.idle_queries);
    let writes_only = with_writer(&t, &compacted(), &queries, &base, &next_id, args, |i| {
        i >= 4 * args.idle_queries
    })?;
    ensure!(
        engine.index_build_stats().pending == 0,
        "the writes alone queued a build"
    );
    let gone: Vec<RecordId> = (0..n)
        .filter(|i| i % 100 < 30)
        .map(|i| RecordId::new(i.to_string()))
        .collect::<Result<_, _>>()?;
    t.delete(&compacted(), &gone)?;
    ensure!(
        engine.index_build_stats().pending > 0,
        "the deletes queued no compaction"
    );
    let during = while_building(&engine, &t, &compacted(), &queries, &base, &next_id, args)?;
    report("compact", threads, &idle, &during);
    report("none (writes only)", threads, &idle, &writes_only);
    Ok(())
}

fn fill(
    t: &TenantHandle,
    c: &CollectionId,
    spec: &CollectionSpec,
    base: &Matrix<f32>,
) -> Result<()> {
    t.create_collection(c, spec)?;
    for start in (0..base.rows()).step_by(1000) {
        let batch = (start..(start + 1000).min(base.rows()))
            .map(|i| record(base, i))
            .collect::<Result<Vec<_>>>()?;
        t.upsert(c, batch)?;
    }
    Ok(())
}

/// Searches while a writer upserts at the configured rate, from now until the engine's build
/// queue is empty; upserts one batch first, which queues the build if none is.
fn while_building(
    engine: &Engine,
    t: &TenantHandle,
    collection: &CollectionId,
    queries: &Matrix<f32>,
    base: &Matrix<f32>,
    next_id: &AtomicUsize,
    args: &AvailabilityArgs,
) -> Result<(Vec<Duration>, usize)> {
    with_writer(t, collection, queries, base, next_id, args, |_| {
        engine.index_build_stats().pending == 0
    })
}

/// Searches while a writer upserts at the configured rate, until `done` says stop (it is
/// first asked 50 ms after the writer starts).
fn with_writer(
    t: &TenantHandle,
    collection: &CollectionId,
    queries: &Matrix<f32>,
    base: &Matrix<f32>,
    next_id: &AtomicUsize,
    args: &AvailabilityArgs,
    done: impl FnMut(usize) -> bool,
) -> Result<(Vec<Duration>, usize)> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| -> Result<_> {
        let writer = s.spawn(|| -> Result<usize> {
            let per_batch = Duration::from_secs_f64(10.0 / args.upserts_per_second.max(1) as f64);
            let mut written = 0;
            while !stop.load(Ordering::Relaxed) {
                let first = next_id.fetch_add(10, Ordering::Relaxed);
                let batch = (first..first + 10)
                    .map(|i| record(base, i))
                    .collect::<Result<Vec<_>>>()?;
                t.upsert(collection, batch)?;
                written += 10;
                std::thread::sleep(per_batch);
            }
            Ok(written)
        });
        // Let the writer's first batch queue a build if one is due, then search.
        std::thread::sleep(Duration::from_millis(50));
        let during = search_until(t, collection, queries, done);
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().expect("the writer panicked")?;
        eprintln!(
            "done after {:.1} s; {written} records upserted meanwhile",
            started.elapsed().as_secs_f64()
        );
        Ok(during)
    })
}

fn report(
    build: &str,
    build_threads: usize,
    idle: &(Vec<Duration>, usize),
    during: &(Vec<Duration>, usize),
) {
    let idle_p99 = percentile_us(&idle.0, 0.99);
    let during_p99 = percentile_us(&during.0, 0.99);
    print_json_line(&[
        ("mode", "availability".into()),
        ("build", build.into()),
        ("idle_queries", idle.0.len().into()),
        ("idle_p50_us", percentile_us(&idle.0, 0.50).into()),
        ("idle_p99_us", idle_p99.into()),
        ("during_queries", during.0.len().into()),
        ("during_p50_us", percentile_us(&during.0, 0.50).into()),
        ("during_p99_us", during_p99.into()),
        ("during_max_us", percentile_us(&during.0, 1.0).into()),
        (
            "p99_ratio",
            ((during_p99 / idle_p99 * 100.0).round() / 100.0).into(),
        ),
        ("errors", (idle.1 + during.1).into()),
        ("build_threads", build_threads.into()),
    ]);
}
