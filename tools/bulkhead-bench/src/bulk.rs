//! Bulk throughput against a running server: the debian-minilm set imported as an Arrow IPC
//! stream into a flat collection and into one that builds HNSW, then exported back. The stream
//! is encoded before the clock starts, so the figures are the server's (and the wire's), not
//! the encoder's.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use bulkhead_client::proto as pb;
use bulkhead_client::{Client, ClientError, CollectionSpec, Metric, TenantOptions};
use bulkhead_formats::{RecordRow, encode_stream, read_documents, read_fvecs};
use clap::Args;

use crate::report::{print_json_line, round};

#[derive(Debug, Args)]
pub struct BulkArgs {
    #[command(flatten)]
    server: crate::address::ServerAddress,
    /// Directory with base.fvecs and docs.jsonl.gz.
    #[arg(long)]
    dataset: PathBuf,
    /// Records per Arrow record batch: at most the server's `max-batch` (1,000 by default),
    /// which an import's batches are held to like an Upsert's.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Skip the HNSW import (it takes about 30 s on two cores).
    #[arg(long)]
    no_hnsw: bool,
    /// Seconds to wait between the imports and the export, so the export reads a settled
    /// collection rather than racing the server's flush and compaction of the import.
    #[arg(long, default_value_t = 0)]
    settle_secs: u64,
    /// Tenant to create for the run (deleted at the end).
    #[arg(long, default_value = "bench-bulk")]
    tenant: String,
}

pub fn run(args: &BulkArgs) -> Result<()> {
    ensure!(args.batch > 0, "--batch must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &BulkArgs) -> Result<()> {
    eprintln!("bulk: reading {}", args.dataset.display());
    let base = read_fvecs(&args.dataset.join("base.fvecs"))?;
    let docs = read_documents(&args.dataset.join("docs.jsonl.gz"), &[])?;
    ensure!(
        docs.len() == base.rows(),
        "docs and vectors differ in count"
    );
    let rows: Vec<RecordRow> = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| RecordRow {
            id: d.id.unwrap_or_else(|| i.to_string()),
            vector: base.row(i).to_vec(),
            text: d.text,
            metadata: d.metadata,
            ttl_seconds: None,
        })
        .collect();
    let ipc = encode_stream(rows.chunks(args.batch), base.dim)?;
    eprintln!(
        "bulk: {} records, {} MiB of Arrow IPC",
        rows.len(),
        ipc.len() >> 20
    );

    let client = Client::builder(args.server.endpoint.clone())
        .timeout(std::time::Duration::from_secs(600))
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server.endpoint))?;
    let admin = client.admin(&args.server.admin_token)?;
    match admin.delete_tenant(&args.tenant).await {
        Ok(()) | Err(ClientError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    admin
        .create_tenant(&args.tenant, &TenantOptions::default())
        .await?;
    let tenant = client.tenant(&args.tenant, &args.server.admin_token)?;
    let flat = CollectionSpec::new(base.dim as u32, Metric::Cosine).with_hnsw(pb::HnswParams {
        flat_threshold: 10_000_000,
        ..Default::default()
    });
    let mut layouts = vec![("flat", flat)];
    if !args.no_hnsw {
        layouts.push(("hnsw", CollectionSpec::new(base.dim as u32, Metric::Cosine)));
    }
    for (index, spec) in layouts {
        tenant.create_collection(index, &spec).await?;
        eprintln!("bulk: importing into the {index} collection");
        let started = Instant::now();
        let imported = tenant.import_arrow(index, &ipc).await?.imported;
        let secs = started.elapsed().as_secs_f64();
        print_json_line(&[
            ("mode", "bulk".into()),
            ("phase", "import".into()),
            ("index", index.into()),
            ("batch", args.batch.into()),
            ("vectors", imported.into()),
            ("seconds", round(secs, 2).into()),
            ("vectors_per_s", round(imported as f64 / secs, 1).into()),
        ]);
    }
    if args.settle_secs > 0 {
        eprintln!(
            "bulk: waiting {} s for the import to settle",
            args.settle_secs
        );
        tokio::time::sleep(std::time::Duration::from_secs(args.settle_secs)).await;
    }
    eprintln!("bulk: exporting the flat collection");
    // The receiving buffer is written once before the clock starts, so the harness's own
    // first-touch page faults on 125 MB are not counted as export time.
    let mut exported = vec![1u8; ipc.len() + (1 << 20)];
    let mut received = 0;
    let started = Instant::now();
    let bytes = tenant
        .export_arrow("flat", |chunk| {
            let end = received + chunk.len();
            if end > exported.len() {
                exported.resize(end, 0);
            }
            exported[received..end].copy_from_slice(chunk);
            received = end;
            Ok(())
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    exported.truncate(received);
    let mut count = 0usize;
    bulkhead_formats::read_stream(&exported[..], base.dim, usize::MAX, |batch| {
        count += batch.len();
        Ok(())
    })?;
    ensure!(
        count == rows.len(),
        "exported {count} records, imported {}",
        rows.len()
    );
    print_json_line(&[
        ("mode", "bulk".into()),
        ("phase", "export".into()),
        ("index", "flat".into()),
        ("vectors", count.into()),
        ("bytes", bytes.into()),
        ("seconds", round(secs, 2).into()),
        ("vectors_per_s", round(count as f64 / secs, 1).into()),
    ]);
    admin.delete_tenant(&args.tenant).await?;
    Ok(())
}
