//! `bulkhead collection ...`: a tenant's collections.

use std::time::Duration;

use anyhow::Result;
use bulkhead_client::proto as pb;
use bulkhead_client::{CollectionSpec, Metric};
use clap::Subcommand;
use serde_json::json;

use super::Session;
use super::fields::{self, IndexArg};
use super::output::{Rows, time};

#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// Create a collection.
    Create {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        collection: String,
        #[arg(long)]
        dimension: u32,
        /// cosine, dot or l2.
        #[arg(long, default_value = "cosine")]
        metric: Metric,
        /// TTL of records upserted without one, e.g. `1h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        default_ttl: Option<Duration>,
        /// Index a metadata field for `query --where`, as FIELD=TYPE with TYPE keyword,
        /// integer, float or bool (repeatable).
        #[arg(long = "index", value_name = "FIELD=TYPE")]
        indexes: Vec<IndexArg>,
        /// Access control per record: records name their readers in `_readers`
        /// (user:ID, group:ID or public), and end users' tokens read only their own.
        #[arg(long)]
        access_control: bool,
        /// Each read's audit event lists the ids it returned (who saw which record, when).
        #[arg(long)]
        audit_reads: bool,
        #[command(flatten)]
        hnsw: HnswArgs,
    },
    /// List a tenant's collections.
    List {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
    },
    /// Show one collection.
    Get {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        collection: String,
    },
    /// Delete a collection and its records.
    Delete {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        collection: String,
    },
}

/// Index parameters; omitted ones keep the server's defaults.
#[derive(Debug, clap::Args)]
pub struct HnswArgs {
    #[arg(long)]
    m: Option<u32>,
    #[arg(long)]
    ef_construction: Option<u32>,
    #[arg(long)]
    ef_search: Option<u32>,
    /// Records below which search is an exact scan.
    #[arg(long)]
    flat_threshold: Option<u32>,
    /// What the graph walk compares (results are always ranked exactly).
    #[arg(long, value_enum)]
    quantization: Option<QuantizationArg>,
    /// Threads the collection's background builds use (0: the server's).
    #[arg(long)]
    build_threads: Option<u32>,
    /// Keep the index in a segment file that restarts load (on, the default) or rebuild it
    /// from the records on every activation (off).
    #[arg(long, value_enum)]
    segments: Option<SegmentsArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SegmentsArg {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QuantizationArg {
    /// The float vectors.
    None,
    /// One byte per dimension; the server's default.
    Int8,
}

impl HnswArgs {
    fn params(&self) -> Option<pb::HnswParams> {
        let given = [
            self.m,
            self.ef_construction,
            self.ef_search,
            self.flat_threshold,
        ];
        let quantization = self.quantization.map(|q| match q {
            QuantizationArg::None => pb::Quantization::None,
            QuantizationArg::Int8 => pb::Quantization::Int8,
        });
        let segments = self.segments.map(|s| match s {
            SegmentsArg::On => pb::SegmentPolicy::SegmentsOn,
            SegmentsArg::Off => pb::SegmentPolicy::SegmentsOff,
        });
        let any = given.iter().any(Option::is_some)
            || quantization.is_some()
            || segments.is_some()
            || self.build_threads.is_some();
        any.then(|| pb::HnswParams {
            m: self.m.unwrap_or(0),
            ef_construction: self.ef_construction.unwrap_or(0),
            ef_search: self.ef_search.unwrap_or(0),
            flat_threshold: self.flat_threshold.unwrap_or(0),
            quantization: quantization.unwrap_or(pb::Quantization::Unspecified) as i32,
            build_threads: self.build_threads.unwrap_or(0),
            segments: segments.unwrap_or(pb::SegmentPolicy::Unspecified) as i32,
        })
    }
}

pub async fn run(s: &Session, command: CollectionCommand) -> Result<()> {
    match command {
        CollectionCommand::Create {
            tenant,
            collection,
            dimension,
            metric,
            default_ttl,
            indexes,
            access_control,
            audit_reads,
            hnsw,
        } => {
            let mut spec = CollectionSpec::new(dimension, metric);
            spec.default_ttl = default_ttl;
            spec.hnsw = hnsw.params();
            spec.indexed_fields = fields::declared(&indexes)?;
            spec.access_control = access_control;
            spec.audit_reads = audit_reads;
            let c = s
                .tenant(&tenant)?
                .create_collection(&collection, &spec)
                .await?;
            s.out.one(&rows([c]));
        }
        CollectionCommand::List { tenant } => {
            s.out.list(&rows(s.tenant(&tenant)?.collections().await?));
        }
        CollectionCommand::Get { tenant, collection } => {
            s.out
                .one(&rows([s.tenant(&tenant)?.collection(&collection).await?]));
        }
        CollectionCommand::Delete { tenant, collection } => {
            s.tenant(&tenant)?.delete_collection(&collection).await?;
            s.out.done(
                "deleted",
                &format!("tenants/{tenant}/collections/{collection}"),
            );
        }
    }
    Ok(())
}

/// `FLAT` or `HNSW`, with `building` while a promotion or compaction runs.
fn index_state(index: Option<&pb::IndexStatus>) -> Option<String> {
    let index = index?;
    let kind = pb::IndexKind::try_from(index.kind).map_or("UNKNOWN", |k| k.as_str_name());
    Some(if index.building {
        format!("{kind} (building)")
    } else {
        kind.to_owned()
    })
}

pub fn rows(collections: impl IntoIterator<Item = pb::Collection>) -> Rows {
    let mut r = Rows::new(&[
        "name",
        "dimension",
        "metric",
        "records",
        "default_ttl_seconds",
        "create_time",
        "indexed_fields",
        "index",
        "segment_time",
    ]);
    for c in collections {
        let metric = pb::Metric::try_from(c.metric).map_or("UNKNOWN", |m| m.as_str_name());
        r.push(vec![
            json!(c.name),
            json!(c.dimension),
            json!(metric),
            json!(c.record_count),
            json!(c.default_ttl_seconds),
            time(c.create_time.as_ref()),
            fields::to_json(&c),
            json!(index_state(c.index.as_ref())),
            time(c.index.as_ref().and_then(|i| i.segment_time.as_ref())),
        ]);
    }
    r
}
