//! `bulkhead import`: loads a file set into a collection with several requests in flight, and
//! shows progress with rate and ETA on the terminal. Vectors come from an fvecs file (row i
//! pairs with line i of the documents file), or from a `vector` field in each JSON line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bulkhead_client::{ClientError, CollectionSpec, Metric, Record};
use bulkhead_formats::{Document, read_documents, read_fvecs};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::task::JoinSet;

use super::Session;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long, env = "BULKHEAD_TENANT")]
    tenant: String,
    #[arg(long)]
    collection: String,
    /// Vectors, one fvecs row per record.
    #[arg(long)]
    fvecs: Option<PathBuf>,
    /// JSON lines (optionally .gz) with id, text, metadata, ttl_seconds and, without --fvecs,
    /// vector; other fields become metadata.
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Leave this top-level document field out of the metadata (repeatable).
    #[arg(long = "skip-field")]
    skip_fields: Vec<String>,
    /// Create the collection first (with --metric and the data's dimension).
    #[arg(long)]
    create: bool,
    #[arg(long, default_value = "cosine")]
    metric: Metric,
    /// With --create: index a metadata field, as FIELD=TYPE (see `collection create`).
    #[arg(long = "index", value_name = "FIELD=TYPE", requires = "create")]
    indexes: Vec<super::fields::IndexArg>,
    /// TTL for records that have none of their own, e.g. `7d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Import only the first N records.
    #[arg(long)]
    limit: Option<usize>,
    /// Records per request (each applied whole or not at all; a request past the server's
    /// `max-batch` or `max-message-bytes` is refused, naming the limit).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

pub async fn run(s: &Session, args: ImportArgs) -> Result<()> {
    ensure!(
        args.batch > 0 && args.concurrency > 0,
        "--batch and --concurrency must be positive"
    );
    let records = load(&args)?;
    let Some(dimension) = records.first().map(|r| r.vector.len()) else {
        bail!("nothing to import");
    };
    if let Some((i, r)) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.vector.len() != dimension)
    {
        bail!(
            "record {i} ({:?}) has dimension {}, the first has {dimension}",
            r.id,
            r.vector.len()
        );
    }
    // One request per batch, which the SDK would otherwise split: each batch applied whole or
    // not at all, as the progress and the error count it.
    let tenant = s
        .tenant(&args.tenant)?
        .with_batch_limits(args.batch, usize::MAX);
    if args.create {
        let mut spec = CollectionSpec::new(dimension as u32, args.metric);
        spec.indexed_fields = super::fields::declared(&args.indexes)?;
        match tenant.create_collection(&args.collection, &spec).await {
            Ok(_) | Err(ClientError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let total = records.len();
    let progress = progress_bar(total as u64, s.out.json);
    let started = Instant::now();
    let mut in_flight = JoinSet::new();
    let mut imported = 0u64;
    let mut failure = None;
    let mut batches = records.chunks(args.batch).map(<[Record]>::to_vec);
    loop {
        while failure.is_none() && in_flight.len() < args.concurrency {
            let Some(batch) = batches.next() else { break };
            let (tenant, collection) = (tenant.clone(), args.collection.clone());
            in_flight
                .spawn(async move { tenant.upsert_at_the_servers_pace(&collection, &batch).await });
        }
        // After a failure, the batches already sent are still awaited, so the count of what
        // went in is exact.
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        match done.context("upload task failed")? {
            Ok(n) => {
                imported += n;
                progress.inc(n);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        progress.finish_and_clear();
        return Err(anyhow::Error::new(e).context(format!(
            "import into tenants/{}/collections/{} stopped: {imported} of {total} records were imported (each batch is applied whole or not at all); rerunning the import is safe, records with the same id are replaced",
            args.tenant, args.collection
        )));
    }
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rate = imported as f64 / secs.max(1e-9);
    if s.out.json {
        println!(
            "{}",
            json!({"imported": imported, "seconds": secs, "records_per_second": rate})
        );
    } else {
        println!(
            "imported {imported} records into tenants/{}/collections/{} in {secs:.1} s ({rate:.0}/s)",
            args.tenant, args.collection
        );
    }
    Ok(())
}

/// The records to import, vectors paired with their documents.
fn load(args: &ImportArgs) -> Result<Vec<Record>> {
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut docs = match &args.docs {
        Some(p) => read_documents(p, &args.skip_fields)?,
        None => Vec::new(),
    };
    docs.truncate(limit);
    let records = match &args.fvecs {
        Some(path) => {
            let m = read_fvecs(path)?;
            let rows = m.rows().min(limit);
            if args.docs.is_some() && docs.len() != rows {
                bail!(
                    "{} has {rows} vectors but the documents file has {} lines",
                    path.display(),
                    docs.len()
                );
            }
            docs.resize_with(rows, Document::default);
            docs.into_iter()
                .enumerate()
                .map(|(row, d)| {
                    ensure!(
                        d.vector.is_none(),
                        "line {}: has a vector, and --fvecs gives one too",
                        row + 1
                    );
                    Ok(record(row, d, m.row(row).to_vec(), args.ttl))
                })
                .collect::<Result<Vec<_>>>()?
        }
        None if args.docs.is_some() => docs
            .into_iter()
            .enumerate()
            .map(|(row, mut d)| {
                let v = d.vector.take().with_context(|| {
                    format!(
                        "line {}: no vector (give --fvecs or a vector field)",
                        row + 1
                    )
                })?;
                Ok(record(row, d, v, args.ttl))
            })
            .collect::<Result<Vec<_>>>()?,
        None => bail!("give --fvecs, --docs, or both"),
    };
    Ok(records)
}

/// The record for document `row`; its id defaults to the row number.
fn record(row: usize, d: Document, vector: Vec<f32>, default_ttl: Option<Duration>) -> Record {
    let mut r = Record::new(d.id.unwrap_or_else(|| row.to_string()), vector);
    r.text = d.text;
    r.metadata = d.metadata;
    r.ttl = match d.ttl_seconds {
        Some(secs) => Some(Duration::from_secs(secs.max(0) as u64)),
        None => default_ttl,
    };
    r
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {per_sec} ETA {eta}",
        )
        .expect("valid progress template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_take_the_row_number_as_id_and_the_default_ttl() {
        let r = record(
            7,
            Document::default(),
            vec![1.0],
            Some(Duration::from_secs(5)),
        );
        assert_eq!((r.id.as_str(), r.ttl), ("7", Some(Duration::from_secs(5))));
        let d = Document {
            id: Some("x".into()),
            ttl_seconds: Some(9),
            text: Some("t".into()),
            ..Default::default()
        };
        let r = record(0, d, vec![1.0], Some(Duration::from_secs(5)));
        assert_eq!((r.id.as_str(), r.ttl), ("x", Some(Duration::from_secs(9))));
        assert_eq!(r.text.as_deref(), Some("t"));
    }
}
