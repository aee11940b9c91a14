//! `filter` mode: recall@k and QPS of filtered queries in-process, at the selectivities given
//! (`--selectivity 0.01,0.1,0.5`). Each base row gets a synthetic integer field `bucket = row %
//! 100`; a selectivity s filters `bucket < 100·s`. The ground truth is an exact scan over the
//! rows that pass the filter, computed here, so the figure is the filter path's own recall.
//!
//! With `--acl DOCS` the collection has access control instead: each row's readers are the
//! group of its Debian section (`tenant` in debian-minilm's `docs.jsonl.gz`), and a selectivity
//! s is a user in the groups of sections holding about s of the rows (smallest sections first,
//! stopping at the one that comes closest); queries go through a handle bound to that user, so
//! the trimming is the one end users get.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bulkhead_core::{CollectionId, Metric, RecordId, TenantId, Value};
use bulkhead_engine::{
    CollectionSpec, Condition, Engine, EngineConfig, FieldType, Filter, NewRecord, Query,
    READERS_FIELD, Range, Reader, TenantHandle, TenantSettings,
};
use bulkhead_formats::read_fvecs;
use clap::Args;

use crate::report::{percentile_us, print_json_line, round};

#[derive(Debug, Args)]
pub struct FilterArgs {
    #[arg(long)]
    base: PathBuf,
    #[arg(long)]
    query: PathBuf,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Fractions of the base that pass the filter.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.1,0.5")]
    selectivity: Vec<f64>,
    /// Queries to run (the exact filtered ground truth is computed for each).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Access control per record, readers by section from this documents file (debian-minilm's
    /// docs.jsonl.gz), instead of the synthetic bucket filter.
    #[arg(long, value_name = "DOCS")]
    acl: Option<PathBuf>,
}

/// What a selectivity restricts queries by: a filter, or a handle bound to a reader.
enum Restriction {
    Filter(Filter),
    Reader(TenantHandle),
}

pub fn run(args: &FilterArgs) -> Result<()> {
    ensure!(
        args.selectivity.iter().all(|s| *s > 0.0 && *s <= 1.0),
        "selectivity must be in (0, 1]"
    );
    let base = read_fvecs(&args.base)?;
    let queries = read_fvecs(&args.query)?;
    ensure!(base.dim == queries.dim, "base and query dimensions differ");
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(EngineConfig::new(dir.path()))?;
    let tenant_id = TenantId::new("bench")?;
    engine.create_tenant(&tenant_id, &TenantSettings::default())?;
    let tenant = engine.tenant(&engine.authority().admin(&tenant_id, "benchmark harness"))?;
    let collection = CollectionId::new("docs")?;
    let sections = match &args.acl {
        Some(docs) => Some(sections_of(docs, base.rows())?),
        None => None,
    };
    let mut spec = CollectionSpec::new(base.dim, Metric::Cosine);
    spec.indexed_fields
        .insert("bucket".into(), FieldType::Integer);
    spec.access_control = sections.is_some();
    tenant.create_collection(&collection, &spec)?;
    eprintln!("filter: inserting {} vectors", base.rows());
    let started = Instant::now();
    for chunk in (0..base.rows()).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|&row| {
                let mut r = NewRecord::new(RecordId::new(row.to_string())?, base.row(row).to_vec());
                r.metadata
                    .insert("bucket".into(), Value::Int((row % 100) as i64));
                if let Some(sections) = &sections {
                    r.metadata.insert(
                        READERS_FIELD.into(),
                        Value::String(format!("group:{}", sections[row])),
                    );
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>>>()?;
        tenant.upsert(&collection, batch)?;
    }
    ensure!(
        engine.wait_for_index_builds(Duration::from_secs(3600)),
        "the index build took over an hour"
    );
    eprintln!("filter: built in {:.1} s", started.elapsed().as_secs_f64());

    let n = args.queries.min(queries.rows());
    for &s in &args.selectivity {
        let (passing, restriction, label): (Vec<bool>, Restriction, String) = match &sections {
            None => {
                let below = ((s * 100.0).round() as i64).max(1);
                let passing = (0..base.rows())
                    .map(|row| ((row % 100) as i64) < below)
                    .collect();
                let filter = Filter::condition(Condition::Range {
                    field: "bucket".into(),
                    range: Range::Integer {
                        gte: None,
                        gt: None,
                        lte: None,
                        lt: Some(below),
                    },
                });
                (passing, Restriction::Filter(filter), "filter".into())
            }
            Some(sections) => {
                let groups = sections_covering(sections, s);
                let passing = sections.iter().map(|sec| groups.contains(sec)).collect();
                let label = format!("acl ({} sections)", groups.len());
                let user = tenant.reading_as(Reader::new("bench-user", &groups));
                (passing, Restriction::Reader(user), label)
            }
        };
        let passes = |row: usize| passing[row];
        let mut hits_found = 0usize;
        let mut latencies = Vec::with_capacity(n);
        for qi in 0..n {
            let q = queries.row(qi);
            let truth = exact_top_k(&base, q, args.k, passes);
            let mut query = Query::new(q.to_vec(), args.k);
            query.ef = Some(args.ef);
            let t0 = Instant::now();
            let hits = match &restriction {
                Restriction::Filter(filter) => {
                    query.filter = Some(filter.clone());
                    tenant.query(&collection, &query)?
                }
                Restriction::Reader(user) => user.query(&collection, &query)?,
            };
            latencies.push(t0.elapsed());
            hits_found += hits
                .iter()
                .filter(|h| truth.contains(&h.id.as_str().parse::<usize>().unwrap_or(usize::MAX)))
                .count();
        }
        let total: Duration = latencies.iter().sum();
        latencies.sort();
        print_json_line(&[
            ("mode", label.as_str().into()),
            ("selectivity", s.into()),
            ("passing", passing.iter().filter(|p| **p).count().into()),
            ("k", args.k.into()),
            ("ef", args.ef.into()),
            ("queries", n.into()),
            (
                "recall",
                round(hits_found as f64 / (n * args.k) as f64, 4).into(),
            ),
            ("qps", round(n as f64 / total.as_secs_f64(), 1).into()),
            ("p50_us", round(percentile_us(&latencies, 0.5), 1).into()),
            ("p99_us", round(percentile_us(&latencies, 0.99), 1).into()),
            ("threads", 1.into()),
        ]);
    }
    Ok(())
}

/// Each row's Debian section, from the documents file's `tenant` field (row = line).
fn sections_of(docs: &std::path::Path, rows: usize) -> Result<Vec<String>> {
    let docs = bulkhead_formats::read_documents(docs, &[])?;
    ensure!(
        docs.len() == rows,
        "{} documents for {rows} vectors",
        docs.len()
    );
    docs.into_iter()
        .map(|d| match d.metadata.get("tenant") {
            Some(Value::String(section)) => Ok(section.clone()),
            _ => anyhow::bail!("a document without its section (`tenant`)"),
        })
        .collect()
}

/// Sections holding about `share` of the rows: the smallest first, stopping where the total
/// comes closest to the target.
fn sections_covering(sections: &[String], share: f64) -> Vec<String> {
    let mut sizes = std::collections::BTreeMap::<&str, usize>::new();
    for s in sections {
        *sizes.entry(s).or_default() += 1;
    }
    let mut by_size: Vec<(&str, usize)> = sizes.into_iter().collect();
    by_size.sort_by_key(|(name, n)| (*n, *name));
    let target = share * sections.len() as f64;
    let (mut chosen, mut total) = (Vec::new(), 0usize);
    for (name, n) in by_size {
        let with = total + n;
        if (with as f64 - target).abs() > (total as f64 - target).abs() && !chosen.is_empty() {
            break;
        }
        chosen.push(name.to_owned());
        total = with;
    }
    chosen
}

/// The ids of the `k` rows most similar to `q` (dot product on unit vectors) among those
/// passing `passes`.
fn exact_top_k(
    base: &bulkhead_formats::Matrix<f32>,
    q: &[f32],
    k: usize,
    passes: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = (0..base.rows())
        .filter(|r| passes(*r))
        .map(|r| (base.row(r).iter().zip(q).map(|(a, b)| a * b).sum(), r))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, r)| r).collect()
}
