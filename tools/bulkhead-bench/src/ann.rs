//! `ann` mode: build a `VectorIndex` from a base file, then for each `ef` run every query and
//! report recall@k against the ground truth, throughput and latency percentiles.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bulkhead_index::{
    BuildOptions, IndexKind, IndexParams, MAX_FLAT_THRESHOLD, Metric, Quantization, SearchFilter,
    VectorIndex,
};
use clap::{Args, ValueEnum};

use crate::report::{percentile_us, print_json_line, round};
use bulkhead_formats::{Matrix, read_fvecs, read_ivecs};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IndexChoice {
    Hnsw,
    Flat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QuantizationArg {
    None,
    Int8,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    Cosine,
    Dot,
    L2,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Cosine => Metric::Cosine,
            MetricArg::Dot => Metric::Dot,
            MetricArg::L2 => Metric::L2,
        }
    }
}

#[derive(Debug, Args)]
pub struct AnnArgs {
    /// Base vectors (fvecs); row i gets label i.
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (fvecs).
    #[arg(long)]
    query: PathBuf,
    /// Ground-truth neighbour ids per query (ivecs), closest first.
    #[arg(long)]
    groundtruth: PathBuf,
    #[arg(long, value_enum, default_value = "cosine")]
    metric: MetricArg,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Comma-separated search beam widths.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    ef: Vec<usize>,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Threads issuing queries concurrently.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// What the graph walk compares: `int8` codes (the default of new collections) or the
    /// `none` (`f32`) vectors.
    #[arg(long, value_enum, default_value = "int8")]
    quantization: QuantizationArg,
    /// Threads building the graph (the engine's `index-build-threads`).
    #[arg(long, default_value_t = 1)]
    build_threads: usize,
    /// `hnsw` builds the graph over all vectors; `flat` never builds one.
    #[arg(long, value_enum, default_value = "hnsw")]
    index: IndexChoice,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

struct Dataset {
    base: Matrix<f32>,
    queries: Matrix<f32>,
    truth: Matrix<i32>,
}

fn load(args: &AnnArgs) -> Result<Dataset> {
    let base = read_fvecs(&args.base)?;
    let queries = read_fvecs(&args.query)?;
    let truth = read_ivecs(&args.groundtruth)?;
    ensure!(
        queries.dim == base.dim,
        "query dimension {} differs from base dimension {}",
        queries.dim,
        base.dim
    );
    ensure!(
        truth.rows() >= queries.rows(),
        "ground truth has {} rows for {} queries",
        truth.rows(),
        queries.rows()
    );
    ensure!(
        args.k >= 1 && args.k <= truth.dim,
        "--k {} must be in 1..={} (ground-truth depth)",
        args.k,
        truth.dim
    );
    let n = base.rows();
    for q in 0..queries.rows() {
        if let Some(&bad) = truth.row(q)[..args.k]
            .iter()
            .find(|&&id| id < 0 || id as usize >= n)
        {
            bail!("ground truth row {q} refers to id {bad}, base has {n} vectors");
        }
    }
    ensure!(!args.ef.is_empty(), "--ef needs at least one value");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    ensure!(
        (1..=256).contains(&args.build_threads),
        "--build-threads must be between 1 and 256"
    );
    ensure!(
        u32::try_from(n).is_ok(),
        "base has {n} vectors, more than u32 labels allow"
    );
    Ok(Dataset {
        base,
        queries,
        truth,
    })
}

fn build(args: &AnnArgs, base: &Matrix<f32>) -> Result<(VectorIndex, Duration)> {
    let flat_threshold = match args.index {
        IndexChoice::Hnsw => 0,
        IndexChoice::Flat => MAX_FLAT_THRESHOLD,
    };
    ensure!(
        base.rows() <= flat_threshold || matches!(args.index, IndexChoice::Hnsw),
        "too many vectors for --index flat"
    );
    let params = IndexParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef[0].max(1),
        flat_threshold,
        quantization: match args.quantization {
            QuantizationArg::None => Quantization::None,
            QuantizationArg::Int8 => Quantization::Int8,
        },
        ..IndexParams::default()
    };
    let index = VectorIndex::new(base.dim, args.metric.into(), params)?;
    let n = base.rows();
    let start = Instant::now();
    for i in 0..n {
        index
            .insert(i as u32, base.row(i))
            .with_context(|| format!("inserting base row {i}"))?;
    }
    eprintln!(
        "  loaded {n} vectors ({:.1} s); building with {} thread(s)",
        start.elapsed().as_secs_f64(),
        args.build_threads
    );
    let step = (n / 10).max(1);
    let next_report = AtomicUsize::new(step);
    let progress = |done: usize, total: usize| {
        if done >= next_report.load(Ordering::Relaxed) {
            next_report.store(done + step, Ordering::Relaxed);
            eprintln!(
                "  linked {done}/{total} ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
        }
    };
    index.build_if_wanted(&BuildOptions {
        threads: args.build_threads,
        progress: Some(&progress),
        cancel: None,
    })?;
    Ok((index, start.elapsed()))
}

/// What one pass over the queries produced, indexed by query.
struct Pass {
    results: Vec<Vec<u32>>,
    latencies: Vec<Duration>,
    wall: Duration,
}

/// One answered query: its index, returned labels and latency.
type Answer = (usize, Vec<u32>, Duration);

/// Runs all queries on `threads` threads, each thread taking the next unanswered query.
fn run_queries(
    index: &VectorIndex,
    queries: &Matrix<f32>,
    k: usize,
    ef: usize,
    threads: usize,
) -> Result<Pass> {
    let nq = queries.rows();
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let parts: Vec<Result<Vec<Answer>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let q = next.fetch_add(1, Ordering::Relaxed);
                        if q >= nq {
                            return Ok(out);
                        }
                        let t = Instant::now();
                        let res =
                            index.search(queries.row(q), k, Some(ef), SearchFilter::default())?;
                        let took = t.elapsed();
                        out.push((q, res.into_iter().map(|n| n.label).collect(), took));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("query thread panicked"))
            .collect()
    });
    let wall = start.elapsed();
    let mut results = vec![Vec::new(); nq];
    let mut latencies = vec![Duration::ZERO; nq];
    for part in parts {
        for (q, labels, took) in part? {
            results[q] = labels;
            latencies[q] = took;
        }
    }
    Ok(Pass {
        results,
        latencies,
        wall,
    })
}

fn recall_at_k(results: &[Vec<u32>], truth: &Matrix<i32>, k: usize) -> f64 {
    let total: usize = results
        .iter()
        .enumerate()
        .map(|(q, got)| {
            let want: HashSet<u32> = truth.row(q)[..k].iter().map(|&id| id as u32).collect();
            got.iter().take(k).filter(|l| want.contains(l)).count()
        })
        .sum();
    total as f64 / (results.len() * k) as f64
}

pub fn run(args: &AnnArgs) -> Result<()> {
    eprintln!(
        "loading {} / {} / {}",
        args.base.display(),
        args.query.display(),
        args.groundtruth.display()
    );
    let data = load(args)?;
    eprintln!(
        "base {} x {}, {} queries, ground truth depth {}",
        data.base.rows(),
        data.base.dim,
        data.queries.rows(),
        data.truth.dim
    );
    let (index, build_time) = build(args, &data.base)?;
    let name = match index.kind() {
        IndexKind::Hnsw => "hnsw",
        IndexKind::Flat => "flat",
    };
    let bytes_per_vector = index.memory_bytes() / data.base.rows().max(1);
    eprintln!(
        "built {name} index in {:.2} s with {} thread(s), ~{:.1} MiB, {bytes_per_vector} bytes/vector",
        build_time.as_secs_f64(),
        args.build_threads,
        index.memory_bytes() as f64 / (1024.0 * 1024.0)
    );
    if !args.json {
        println!(
            "{:<6} {:>5} {:>4} {:>8} {:>10} {:>9} {:>9} {:>8} {:>7} {:>7} {:>9}",
            "index",
            "ef",
            "k",
            "recall",
            "qps",
            "p50_us",
            "p99_us",
            "build_s",
            "threads",
            "b_thr",
            "bytes/vec"
        );
    }
    for &ef in &args.ef {
        let Pass {
            results,
            latencies: mut lat,
            wall,
        } = run_queries(&index, &data.queries, args.k, ef, args.threads)?;
        lat.sort_unstable();
        let recall = recall_at_k(&results, &data.truth, args.k);
        let qps = results.len() as f64 / wall.as_secs_f64();
        let (p50, p99) = (percentile_us(&lat, 0.50), percentile_us(&lat, 0.99));
        let build_s = build_time.as_secs_f64();
        if args.json {
            // Built by hand to keep the field order of the documented format.
            let fields = [
                ("index", serde_json::json!(name)),
                ("ef", ef.into()),
                ("k", args.k.into()),
                ("recall", round(recall, 4).into()),
                ("qps", round(qps, 1).into()),
                ("p50_us", round(p50, 1).into()),
                ("p99_us", round(p99, 1).into()),
                ("build_s", round(build_s, 2).into()),
                ("threads", args.threads.into()),
                ("build_threads", args.build_threads.into()),
                ("bytes_per_vector", bytes_per_vector.into()),
                (
                    "quantization",
                    format!("{:?}", args.quantization).to_lowercase().into(),
                ),
            ];
            print_json_line(&fields);
        } else {
            println!(
                "{name:<6} {ef:>5} {:>4} {recall:>8.4} {qps:>10.1} {p50:>9.1} {p99:>9.1} {build_s:>8.2} {:>7} {:>7} {bytes_per_vector:>9}",
                args.k, args.threads, args.build_threads
            );
        }
    }
    Ok(())
}
