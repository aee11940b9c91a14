//! `sdk` mode: query throughput as an application sees it, through the Rust SDK's tenant
//! handle (deadline, credential and retry policy included), over plaintext or TLS. It is the
//! reference the Python SDK and the TLS figures are compared with, so it takes the same
//! tenant, key and collection they use: `--setup` loads them once, later runs only query.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bulkhead_client::{
    Client, CollectionSpec, Metric, Query, Record, Role, TenantClient, TenantOptions, TlsOptions,
};
use bulkhead_proto::v1 as pb;
use clap::Args;
use rand::Rng;

use crate::dataset::Dataset;
use crate::load::drive;
use crate::report::{percentile_us, print_json_line, round};

#[derive(Debug, Clone, Args)]
pub struct SdkArgs {
    #[command(flatten)]
    server: crate::address::ServerAddress,
    /// PEM CA to trust for an https:// endpoint.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Directory with base.fvecs, query.fvecs and groundtruth.ivecs.
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, default_value = "sdk-bench")]
    tenant: String,
    #[arg(long, default_value = "docs")]
    collection: String,
    /// Create the tenant (with limits far above the load), a READ key written to `--key-file`, the collection,
    /// and upsert the base vectors; then wait for the index build.
    #[arg(long)]
    setup: bool,
    /// Where the READ key's secret is written by `--setup` and read from otherwise.
    #[arg(long)]
    key_file: PathBuf,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 64)]
    ef: u32,
    /// Label of the JSON line (e.g. `plaintext`, `tls`).
    #[arg(long, default_value = "rust-sdk")]
    label: String,
}

pub fn run(args: &SdkArgs) -> Result<()> {
    let data = Dataset::load(&args.dataset)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(measure(args, data))
}

async fn connect(args: &SdkArgs) -> Result<Client> {
    let tls = TlsOptions::from_files(args.tls_ca.as_deref(), None, None)?;
    Client::builder(args.server.endpoint.clone())
        .tls(tls)
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server.endpoint))
}

async fn set_up(args: &SdkArgs, client: &Client, data: &Dataset) -> Result<()> {
    let admin = client.admin(&args.server.admin_token)?;
    // 0 would mean the server's default (1,000/s): the load must not meet a limit.
    let unlimited = TenantOptions {
        rate_limit: Some(pb::RateLimit {
            requests_per_second: 1e9,
            burst: 1_000_000_000,
            write_bytes_per_second: 1 << 40,
        }),
        ..TenantOptions::default()
    };
    admin.create_tenant(&args.tenant, &unlimited).await?;
    let key = admin
        .create_key(&args.tenant, Role::Read, None, "sdk bench")
        .await?;
    std::fs::write(&args.key_file, &key.secret)
        .with_context(|| format!("writing {}", args.key_file.display()))?;
    let writer = client.tenant(&args.tenant, &args.server.admin_token)?;
    writer
        .create_collection(
            &args.collection,
            &CollectionSpec::new(data.base.dim as u32, Metric::Cosine),
        )
        .await?;
    let records: Vec<Record> = (0..data.base.rows())
        .map(|i| Record::new(i.to_string(), data.base.row(i).to_vec()))
        .collect();
    eprintln!("sdk: upserting {} vectors", records.len());
    writer.upsert(&args.collection, &records).await?;
    wait_for_index(&writer, &args.collection).await
}

/// Polls until the collection reports an HNSW index that is not being built.
async fn wait_for_index(handle: &TenantClient, collection: &str) -> Result<()> {
    loop {
        let info = handle.collection(collection).await?;
        let ready = info
            .index
            .as_ref()
            .is_some_and(|i| i.kind == pb::IndexKind::Hnsw as i32 && !i.building);
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(args: &SdkArgs, data: Dataset) -> Result<()> {
    let client = connect(args).await?;
    if args.setup {
        set_up(args, &client, &data).await?;
    }
    let secret = std::fs::read_to_string(&args.key_file)
        .with_context(|| format!("reading {}", args.key_file.display()))?;
    let handle = client.tenant(&args.tenant, secret.trim())?;
    let queries = std::sync::Arc::new(data.queries);
    let (k, ef, collection) = (args.k, args.ef, args.collection.clone());
    let load = drive(
        args.clients,
        Duration::from_secs(args.duration_secs),
        {
            let rows = queries.rows();
            move |rng| (0, rng.random_range(0..rows))
        },
        move |_, _, q| {
            let (handle, queries, collection) =
                (handle.clone(), queries.clone(), collection.clone());
            async move {
                let query = Query::new(queries.row(q).to_vec(), k as u32).with_ef(ef);
                let hits = handle.query(&collection, &query).await?;
                hits.iter()
                    .map(|h| h.id.parse::<u64>().context("a record id that is not a row"))
                    .collect()
            }
        },
    )
    .await?;
    let found: f64 = load
        .answers
        .iter()
        .map(|a| {
            let truth = &data.truth.row(a.query)[..k];
            a.ids
                .iter()
                .filter(|id| truth.contains(&(**id as i32)))
                .count() as f64
                / k as f64
        })
        .sum();
    let qps = load.latencies.len() as f64 / load.wall.as_secs_f64();
    print_json_line(&[
        ("mode", "sdk".into()),
        ("label", args.label.clone().into()),
        ("clients", args.clients.into()),
        ("qps", round(qps, 1).into()),
        (
            "p50_us",
            round(percentile_us(&load.latencies, 0.5), 0).into(),
        ),
        (
            "p99_us",
            round(percentile_us(&load.latencies, 0.99), 0).into(),
        ),
        (
            "recall",
            round(found / load.answers.len().max(1) as f64, 4).into(),
        ),
    ]);
    Ok(())
}
