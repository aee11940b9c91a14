//! `server` mode: end-to-end figures against a running server over gRPC — ingest throughput,
//! then query QPS, latency percentiles and recall under `--clients` concurrent callers —
//! single-tenant, or with the 59 Debian sections as tenants and Zipf-skewed popularity. With
//! `--in-process` the same data and load also run against an engine in this process, for the
//! gRPC overhead; the two modes then take turns for `--rounds` rounds, so that a drift in the
//! speed of a shared machine falls on both, and the QPS ratio is reported per round. With
//! `--flood` a rate-limited tenant is flooded while another is measured.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{
    CollectionSpec, Engine, EngineConfig, NewRecord, Query, TenantHandle, TenantSettings,
};
use bulkhead_proto::v1 as pb;
use clap::{Args, ValueEnum};
use http::HeaderValue;
use rand::Rng;
use tonic::Request;
use tonic::transport::Channel;

use crate::dataset::{Dataset, sections, tenant_for_section};
use crate::load::{LoadResult, drive};
use crate::parallel::parallel;
use crate::report::{percentile_us, print_json_line, round};
use crate::unary::{UnaryCaller, method};

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    server: crate::address::ServerAddress,
    /// Directory with base.fvecs, query.fvecs, groundtruth.ivecs and docs.jsonl.gz.
    #[arg(long)]
    dataset: PathBuf,
    /// One tenant per Debian section (59), queried with Zipf-skewed popularity.
    #[arg(long)]
    tenants_from_sections: bool,
    /// Concurrent callers.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Length of each query phase, e.g. 30s or 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// HNSW search breadth of every query.
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Records per Upsert.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Client the query load calls through.
    #[arg(long, value_enum, default_value_t = GrpcClient::H2)]
    grpc_client: GrpcClient,
    /// Also run the same ingest and load against an engine inside this process.
    #[arg(long)]
    in_process: bool,
    /// Query phases per mode; with `--in-process` the two modes alternate, round by round.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Seconds to wait after the ingests before querying, so the flushes and compactions they
    /// started don't fall on the first rounds.
    #[arg(long, default_value_t = 0)]
    settle_secs: u64,
    /// Also measure a quiet tenant's latency while a rate-limited tenant is flooded.
    #[arg(long)]
    flood: bool,
    #[arg(long)]
    json: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("invalid duration unit in {s:?}; use ms, s or m")),
    }
}

/// Which base rows each tenant holds, largest tenant first.
struct Layout {
    tenants: Vec<String>,
    rows: Vec<Vec<usize>>,
    /// Zipf weights (cumulative) over `tenants`.
    cumulative: Vec<f64>,
}

fn layout(args: &ServerArgs, data: &Dataset) -> Result<Layout> {
    let n = data.base.rows();
    let run = std::process::id();
    let mut groups: Vec<(String, Vec<usize>)> = if args.tenants_from_sections {
        let mut by: HashMap<String, Vec<usize>> = HashMap::new();
        for (row, s) in sections(&args.dataset, n)?.into_iter().enumerate() {
            by.entry(s).or_default().push(row);
        }
        by.into_iter()
            .map(|(s, rows)| (format!("{}-{run}", tenant_for_section(&s)), rows))
            .collect()
    } else {
        vec![(format!("bench-{run}"), (0..n).collect())]
    };
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let mut acc = 0.0;
    let cumulative = (0..groups.len())
        .map(|r| {
            acc += 1.0 / (r + 1) as f64;
            acc
        })
        .collect();
    let (tenants, rows) = groups.into_iter().unzip();
    Ok(Layout {
        tenants,
        rows,
        cumulative,
    })
}

impl Layout {
    fn pick(&self, rng: &mut rand::rngs::StdRng, queries: usize) -> (usize, usize) {
        let total = *self.cumulative.last().expect("at least one tenant");
        let x = rng.random_range(0.0..total);
        let t = self
            .cumulative
            .partition_point(|c| *c < x)
            .min(self.tenants.len() - 1);
        (t, rng.random_range(0..queries))
    }
}

fn authed<T>(secret: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {secret}").parse().expect("ASCII secret"),
    );
    r
}

/// The gRPC client the query load calls through.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GrpcClient {
    /// One write per call (see `unary.rs`), like grpc-go and grpc-core clients.
    H2,
    /// tonic's generated client: three writes per call.
    Tonic,
}

#[derive(Clone)]
enum Caller {
    H2(Arc<UnaryCaller>),
    Tonic(Channel),
}

async fn connect(endpoint: &str) -> Result<Channel> {
    Channel::from_shared(endpoint.to_owned())?
        .connect()
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

struct Remote {
    channel: Channel,
    admin: String,
    /// WRITE key per tenant, same order as the layout.
    keys: Vec<String>,
}

async fn setup_remote(args: &ServerArgs, layout: &Layout, dim: usize) -> Result<Remote> {
    let channel = connect(&args.server.endpoint).await?;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    let mut keys_api = pb::key_service_client::KeyServiceClient::new(channel.clone());
    let mut colls = pb::collection_service_client::CollectionServiceClient::new(channel.clone());
    let mut keys = Vec::new();
    for t in &layout.tenants {
        admin
            .create_tenant(authed(
                &args.server.admin_token,
                pb::CreateTenantRequest {
                    tenant_id: t.clone(),
                    ..Default::default()
                },
            ))
            .await?;
        let key = keys_api
            .create_api_key(authed(
                &args.server.admin_token,
                pb::CreateApiKeyRequest {
                    parent: format!("tenants/{t}"),
                    role: pb::Role::Write as i32,
                    ttl_seconds: None,
                    description: "bulkhead-bench".into(),
                },
            ))
            .await?
            .into_inner()
            .secret;
        colls
            .create_collection(authed(
                &key,
                pb::CreateCollectionRequest {
                    parent: format!("tenants/{t}"),
                    collection_id: "docs".into(),
                    dimension: dim as u32,
                    metric: pb::Metric::Cosine as i32,
                    ..Default::default()
                },
            ))
            .await?;
        keys.push(key);
    }
    Ok(Remote {
        channel,
        admin: args.server.admin_token.clone(),
        keys,
    })
}

/// Waits until every tenant's collection past its flat threshold is served by its graph:
/// promotion runs in the background after the ingest, and a measurement taken before it ends
/// would time exact scans. Ingest time includes this wait.
async fn wait_for_remote_graphs(layout: &Layout, remote: &Remote) -> Result<()> {
    let mut colls =
        pb::collection_service_client::CollectionServiceClient::new(remote.channel.clone());
    for (t, key) in layout.tenants.iter().zip(&remote.keys) {
        loop {
            let c = colls
                .get_collection(authed(
                    key,
                    pb::GetCollectionRequest {
                        name: format!("tenants/{t}/collections/docs"),
                    },
                ))
                .await?
                .into_inner();
            let threshold = c.hnsw.as_ref().map_or(0, |h| u64::from(h.flat_threshold));
            let index = c.index.unwrap_or_default();
            let graph_ready = index.kind == pb::IndexKind::Hnsw as i32 && !index.building;
            if graph_ready || c.record_count <= threshold {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// [`wait_for_remote_graphs`] for the in-process engine.
async fn wait_for_local_builds(engine: &Engine) {
    while engine.index_build_stats().pending > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every (tenant, batch of rows) to ingest.
fn batches(layout: &Layout, batch: usize) -> Vec<(usize, Vec<usize>)> {
    layout
        .rows
        .iter()
        .enumerate()
        .flat_map(|(t, rows)| rows.chunks(batch).map(move |c| (t, c.to_vec())))
        .collect()
}

fn row_vector(data: &Dataset, row: usize) -> Vec<f32> {
    data.base.row(row).to_vec()
}

async fn ingest_remote(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Layout,
    remote: &Remote,
) -> Result<Duration> {
    let keys = remote.keys.clone();
    let tenants = layout.tenants.clone();
    let channel = remote.channel.clone();
    let data = data.clone();
    parallel(
        args.clients,
        batches(layout, args.batch),
        move |(t, rows)| {
            let mut client = pb::record_service_client::RecordServiceClient::new(channel.clone());
            let records = rows
                .iter()
                .map(|&r| pb::Record {
                    id: r.to_string(),
                    vector: row_vector(&data, r),
                    ..Default::default()
                })
                .collect();
            let req = authed(
                &keys[t],
                pb::UpsertRequest {
                    collection: format!("tenants/{}/collections/docs", tenants[t]),
                    records,
                },
            );
            async move {
                upsert_waiting_out_pushback(&mut client, req).await?;
                Ok(())
            }
        },
    )
    .await
}

/// Sends `req`, and again after each refusal that names a wait (`grpc-retry-pushback-ms`): a
/// server's write limits, or its shared write budget while several tenants load at once, may
/// pace the ingest.
async fn upsert_waiting_out_pushback(
    client: &mut pb::record_service_client::RecordServiceClient<Channel>,
    req: Request<pb::UpsertRequest>,
) -> Result<(), tonic::Status> {
    let (metadata, extensions, message) = req.into_parts();
    loop {
        let attempt = Request::from_parts(metadata.clone(), extensions.clone(), message.clone());
        let refusal = match client.upsert(attempt).await {
            Ok(_) => return Ok(()),
            Err(refusal) => refusal,
        };
        // The SDK's reading of the refusal: its code and the trailer's wait.
        match bulkhead_client::ClientError::from(refusal.clone()) {
            bulkhead_client::ClientError::ResourceExhausted {
                retry_after: Some(wait),
                ..
            } => tokio::time::sleep(wait.max(Duration::from_millis(10))).await,
            _ => return Err(refusal),
        }
    }
}

async fn ingest_local(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Layout,
    handles: &[TenantHandle],
) -> Result<Duration> {
    let handles = handles.to_vec();
    let data = data.clone();
    parallel(
        args.clients,
        batches(layout, args.batch),
        move |(t, rows)| {
            let handle = handles[t].clone();
            let data = data.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let records = rows
                        .iter()
                        .map(|&r| {
                            NewRecord::new(
                                RecordId::new(r.to_string()).expect("valid"),
                                row_vector(&data, r),
                            )
                        })
                        .collect();
                    handle.upsert(&CollectionId::new("docs").expect("valid"), records)
                })
                .await??;
                Ok(())
            }
        },
    )
    .await
}

/// Exact top-k row ids of `query` among `rows` (cosine on unit vectors = dot product).
fn exact_top_k(data: &Dataset, rows: &[usize], query: usize, k: usize) -> Vec<u64> {
    let q = data.queries.row(query);
    let mut scored: Vec<(f32, usize)> = rows
        .iter()
        .map(|&r| {
            (
                bulkhead_index::distance::distance(Metric::Cosine, q, data.base.row(r)),
                r,
            )
        })
        .collect();
    let k = k.min(scored.len());
    scored.select_nth_unstable_by(k.saturating_sub(1), |a, b| a.0.total_cmp(&b.0));
    scored.truncate(k);
    scored.iter().map(|(_, r)| *r as u64).collect()
}

/// Mean recall@k over the distinct (tenant, query) pairs answered.
fn recall(data: &Dataset, layout: &Layout, load: &LoadResult, k: usize) -> f64 {
    let single = layout.tenants.len() == 1;
    let mut seen = HashSet::new();
    let (mut hit, mut total) = (0usize, 0usize);
    for a in &load.answers {
        if !seen.insert((a.tenant, a.query)) || seen.len() > 2000 {
            continue;
        }
        let truth: Vec<u64> = if single {
            data.truth
                .row(a.query)
                .iter()
                .take(k)
                .map(|&i| i as u64)
                .collect()
        } else {
            exact_top_k(data, &layout.rows[a.tenant], a.query, k)
        };
        let truth: HashSet<u64> = truth.into_iter().collect();
        hit += a.ids.iter().take(k).filter(|id| truth.contains(id)).count();
        total += truth.len();
    }
    if total == 0 {
        0.0
    } else {
        hit as f64 / total as f64
    }
}

fn report(
    args: &ServerArgs,
    mode: &str,
    phase: &str,
    layout: &Layout,
    fields: Vec<(&str, serde_json::Value)>,
) {
    let mut all = vec![
        ("mode", serde_json::json!(mode)),
        ("phase", serde_json::json!(phase)),
        ("tenants", layout.tenants.len().into()),
        ("clients", args.clients.into()),
    ];
    all.extend(fields);
    if args.json {
        print_json_line(&all);
    } else {
        let text: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{}", text.join(" "));
    }
}

fn ingest_fields(vectors: usize, took: Duration) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("vectors", vectors.into()),
        ("seconds", round(took.as_secs_f64(), 2).into()),
        (
            "vectors_per_s",
            round(vectors as f64 / took.as_secs_f64(), 1).into(),
        ),
    ]
}

fn query_fields(
    load: &LoadResult,
    args: &ServerArgs,
    recall: f64,
) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("k", args.k.into()),
        ("ef", args.ef.into()),
        ("queries", load.latencies.len().into()),
        ("qps", round(qps(load), 1).into()),
        (
            "p50_us",
            round(percentile_us(&load.latencies, 0.50), 1).into(),
        ),
        (
            "p95_us",
            round(percentile_us(&load.latencies, 0.95), 1).into(),
        ),
        (
            "p99_us",
            round(percentile_us(&load.latencies, 0.99), 1).into(),
        ),
        ("recall", round(recall, 4).into()),
    ]
}

async fn query_remote(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Arc<Layout>,
    remote: &Remote,
    duration: Duration,
    clients: usize,
) -> Result<LoadResult> {
    // One connection per caller, as separate application processes would hold.
    let mut callers = Vec::with_capacity(clients);
    for _ in 0..clients {
        callers.push(match args.grpc_client {
            GrpcClient::H2 => {
                Caller::H2(Arc::new(UnaryCaller::connect(&args.server.endpoint).await?))
            }
            GrpcClient::Tonic => Caller::Tonic(connect(&args.server.endpoint).await?),
        });
    }
    let keys = remote.keys.clone();
    let authorization = remote
        .keys
        .iter()
        .map(|k| HeaderValue::try_from(format!("Bearer {k}")).context("ASCII secret"))
        .collect::<Result<Vec<_>>>()?;
    let collections: Vec<String> = layout
        .tenants
        .iter()
        .map(|t| format!("tenants/{t}/collections/docs"))
        .collect();
    let (data2, layout2, k, ef) = (data.clone(), layout.clone(), args.k as u32, args.ef as u32);
    let nq = data.queries.rows();
    drive(
        clients,
        duration,
        move |rng| layout2.pick(rng, nq),
        move |c, t, q| {
            let request = pb::QueryRequest {
                collection: collections[t].clone(),
                vector: data2.queries.row(q).to_vec(),
                top_k: k,
                ef,
                ..Default::default()
            };
            let (caller, authorization) = (callers[c].clone(), authorization[t].clone());
            let key = keys[t].clone();
            async move {
                let reply: pb::QueryResponse = match caller {
                    Caller::H2(h2) => h2.call(method::QUERY, &authorization, &request).await?,
                    Caller::Tonic(channel) => {
                        pb::record_service_client::RecordServiceClient::new(channel)
                            .query(authed(&key, request))
                            .await?
                            .into_inner()
                    }
                };
                reply
                    .hits
                    .iter()
                    .map(|h| h.id.parse::<u64>().context("non-numeric id"))
                    .collect()
            }
        },
    )
    .await
}

async fn query_local(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Arc<Layout>,
    handles: &[TenantHandle],
) -> Result<LoadResult> {
    let handles = handles.to_vec();
    let (data2, layout2, k, ef) = (data.clone(), layout.clone(), args.k, args.ef);
    let nq = data.queries.rows();
    drive(
        args.clients,
        args.duration,
        move |rng| layout2.pick(rng, nq),
        move |_, t, q| {
            let handle = handles[t].clone();
            let mut query = Query::new(data2.queries.row(q).to_vec(), k);
            query.ef = Some(ef);
            async move {
                let hits = tokio::task::spawn_blocking(move || {
                    handle.query(&CollectionId::new("docs").expect("valid"), &query)
                })
                .await??;
                hits.iter()
                    .map(|h| h.id.as_str().parse::<u64>().context("non-numeric id"))
                    .collect()
            }
        },
    )
    .await
}

/// Quiet tenant's latency with and without a flood of a rate-limited second tenant.
async fn flood(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Arc<Layout>,
    remote: &Remote,
) -> Result<()> {
    let quiet_clients = (args.clients / 4).max(1);
    let phase = args.duration / 2;
    let alone = query_remote(args, data, layout, remote, phase, quiet_clients).await?;
    let noisy = format!("noisy-{}", std::process::id());
    let mut admin = pb::admin_service_client::AdminServiceClient::new(remote.channel.clone());
    admin
        .create_tenant(authed(
            &remote.admin,
            pb::CreateTenantRequest {
                tenant_id: noisy.clone(),
                rate_limit: Some(pb::RateLimit {
                    requests_per_second: 200.0,
                    burst: 200,
                    write_bytes_per_second: 0,
                }),
                ..Default::default()
            },
        ))
        .await?;
    let channel = remote.channel.clone();
    let (admin_token, noisy_name) = (remote.admin.clone(), noisy.clone());
    let flooders = drive(
        args.clients,
        phase,
        |_| (0, 0),
        move |_, _, _| {
            let mut c =
                pb::collection_service_client::CollectionServiceClient::new(channel.clone());
            let req = authed(
                &admin_token,
                pb::ListCollectionsRequest {
                    parent: format!("tenants/{noisy_name}"),
                    ..Default::default()
                },
            );
            async move {
                // Refusals are the point of the flood: count them as answered.
                let _ = c.list_collections(req).await;
                Ok(Vec::new())
            }
        },
    );
    let (under_flood, flooded) = tokio::join!(
        query_remote(args, data, layout, remote, phase, quiet_clients),
        flooders
    );
    let (under_flood, flooded) = (under_flood?, flooded?);
    admin
        .delete_tenant(authed(
            &remote.admin,
            pb::DeleteTenantRequest {
                name: format!("tenants/{noisy}"),
            },
        ))
        .await?;
    let p99 = |l: &LoadResult| percentile_us(&l.latencies, 0.99);
    report(
        args,
        "server",
        "flood",
        layout,
        vec![
            ("quiet_clients", quiet_clients.into()),
            ("flood_clients", args.clients.into()),
            (
                "flood_requests_per_s",
                round(
                    flooded.latencies.len() as f64 / flooded.wall.as_secs_f64(),
                    1,
                )
                .into(),
            ),
            ("quiet_p99_alone_us", round(p99(&alone), 1).into()),
            ("quiet_p99_flooded_us", round(p99(&under_flood), 1).into()),
            (
                "p99_ratio",
                round(p99(&under_flood) / p99(&alone).max(1.0), 2).into(),
            ),
        ],
    );
    Ok(())
}

pub fn run(args: &ServerArgs) -> Result<()> {
    ensure!(
        args.clients > 0 && args.batch > 0 && args.rounds > 0,
        "--clients, --batch and --rounds must be positive"
    );
    // One thread drives every caller: the harness shares the cores with the server it measures,
    // and a single event loop spends the least CPU per request (no wake-ups across threads).
    // In-process calls still run on the blocking pool, one thread per concurrent caller.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// The in-process engine of `--in-process`, with the same tenants and data as the server.
struct Local {
    handles: Vec<TenantHandle>,
    _engine: Engine,
    _dir: tempfile::TempDir,
}

async fn setup_local(
    args: &ServerArgs,
    data: &Arc<Dataset>,
    layout: &Arc<Layout>,
    dim: usize,
) -> Result<Local> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(EngineConfig::new(dir.path()))?;
    let mut handles = Vec::new();
    for t in &layout.tenants {
        let id = TenantId::new(t.clone())?;
        engine.create_tenant(&id, &TenantSettings::default())?;
        let h = engine.tenant(&engine.authority().admin(&id, "benchmark harness"))?;
        h.create_collection(
            &CollectionId::new("docs")?,
            &CollectionSpec::new(dim, Metric::Cosine),
        )?;
        handles.push(h);
    }
    eprintln!("in-process: ingesting");
    let ingest = ingest_local(args, data, layout, &handles).await?;
    wait_for_local_builds(&engine).await;
    report(
        args,
        "in-process",
        "ingest",
        layout,
        ingest_fields(data.base.rows(), ingest),
    );
    Ok(Local {
        handles,
        _engine: engine,
        _dir: dir,
    })
}

async fn run_async(args: &ServerArgs) -> Result<()> {
    eprintln!("loading {}", args.dataset.display());
    let data = Arc::new(Dataset::load(&args.dataset)?);
    let layout = Arc::new(layout(args, &data)?);
    let dim = data.base.dim;

    eprintln!("server: creating {} tenant(s)", layout.tenants.len());
    let remote = setup_remote(args, &layout, dim).await?;
    let ingest = ingest_remote(args, &data, &layout, &remote).await?;
    wait_for_remote_graphs(&layout, &remote).await?;
    report(
        args,
        "server",
        "ingest",
        &layout,
        ingest_fields(data.base.rows(), ingest),
    );
    let local = match args.in_process {
        true => Some(setup_local(args, &data, &layout, dim).await?),
        false => None,
    };
    if args.settle_secs > 0 {
        eprintln!("waiting {} s for the ingests to settle", args.settle_secs);
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    }
    // The two modes take turns, so a drift in the machine's speed (a shared VM) falls on both.
    let (mut server_qps, mut local_qps) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        eprintln!(
            "round {round}/{}: server: querying for {:?}",
            args.rounds, args.duration
        );
        let load = query_remote(args, &data, &layout, &remote, args.duration, args.clients).await?;
        server_qps.push(report_round(args, "server", round, &data, &layout, &load));
        if let Some(local) = &local {
            eprintln!(
                "round {round}: in-process: querying for {:?}",
                args.duration
            );
            let load = query_local(args, &data, &layout, &local.handles).await?;
            local_qps.push(report_round(
                args,
                "in-process",
                round,
                &data,
                &layout,
                &load,
            ));
        }
    }
    if !local_qps.is_empty() {
        report(
            args,
            "server/in-process",
            "qps-ratio",
            &layout,
            ratio_fields(&server_qps, &local_qps),
        );
    }
    if args.flood {
        flood(args, &data, &layout, &remote).await?;
    }
    let mut admin = pb::admin_service_client::AdminServiceClient::new(remote.channel.clone());
    for t in &layout.tenants {
        admin
            .delete_tenant(authed(
                &remote.admin,
                pb::DeleteTenantRequest {
                    name: format!("tenants/{t}"),
                },
            ))
            .await?;
    }
    Ok(())
}

/// The per-round QPS ratios (min, median, max) and the ratio of the two modes' mean QPS.
fn ratio_fields(server: &[f64], local: &[f64]) -> Vec<(&'static str, serde_json::Value)> {
    let mut ratios: Vec<f64> = server.iter().zip(local).map(|(s, l)| s / l).collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    let median = (ratios[(n - 1) / 2] + ratios[n / 2]) / 2.0;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    vec![
        ("rounds", n.into()),
        ("min", round(ratios[0], 3).into()),
        ("median", round(median, 3).into()),
        ("max", round(ratios[n - 1], 3).into()),
        ("server_mean_qps", round(mean(server), 1).into()),
        ("in_process_mean_qps", round(mean(local), 1).into()),
        (
            "mean_qps_ratio",
            round(mean(server) / mean(local), 3).into(),
        ),
    ]
}

/// Reports one mode's query phase of `round`; returns its QPS.
fn report_round(
    args: &ServerArgs,
    mode: &str,
    round: usize,
    data: &Dataset,
    layout: &Layout,
    load: &LoadResult,
) -> f64 {
    let r = recall(data, layout, load, args.k);
    let mut fields = vec![("round", round.into())];
    fields.extend(query_fields(load, args, r));
    report(args, mode, "query", layout, fields);
    qps(load)
}

fn qps(load: &LoadResult) -> f64 {
    load.latencies.len() as f64 / load.wall.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(fields: &[(&str, serde_json::Value)], name: &str) -> f64 {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .unwrap()
            .1
            .as_f64()
            .unwrap()
    }

    #[test]
    fn the_median_of_an_even_count_of_rounds_averages_the_middle_two() {
        let f = ratio_fields(&[6.0, 7.0, 5.0, 8.0], &[10.0; 4]);
        assert_eq!(field(&f, "min"), 0.5);
        assert_eq!(field(&f, "median"), 0.65);
        assert_eq!(field(&f, "max"), 0.8);
        assert_eq!(field(&f, "mean_qps_ratio"), 0.65);
        let odd = ratio_fields(&[6.0, 9.0, 5.0], &[10.0, 10.0, 10.0]);
        assert_eq!(field(&odd, "median"), 0.6);
    }

    #[test]
    fn the_mean_ratio_weighs_rounds_by_their_qps() {
        let f = ratio_fields(&[5.0, 10.0], &[10.0, 10.0]);
        assert_eq!(field(&f, "mean_qps_ratio"), 0.75);
        let f = ratio_fields(&[5.0, 5.0], &[5.0, 15.0]);
        assert_eq!(field(&f, "mean_qps_ratio"), 0.5);
        assert_eq!(field(&f, "median"), 0.667);
    }
}
