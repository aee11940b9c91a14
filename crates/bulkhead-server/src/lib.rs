//! The Bulkhead gRPC server: a thin layer over the engine that parses, authenticates and maps.
//! Every RPC goes through [`gate::Gate`], which binds the caller to one tenant before the
//! engine is touched; the engine makes every storage decision. This crate never names RocksDB
//! or a column family.
#![forbid(unsafe_code)]

mod admin_token;
mod admission;
mod audit_writer;
mod auth;
pub mod config;
mod end_user;
mod end_user_tokens;
mod fault;
mod gate;
mod limits;
mod metrics;
mod principal;
mod services;
mod shared_writes;
mod small_requests;
mod status;
mod tls;
mod tokens;
mod trace_context;
mod transport_refusals;
mod undecoded;
mod write_admission;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bulkhead_engine::Engine;
use bulkhead_proto::v1 as pb;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub use config::ServerConfig;

/// How long shutdown waits for finished connections' tasks to let go of the engine.
const ENGINE_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// HTTP/2 flow-control window of each request stream, in bytes (see `serve`).
const STREAM_WINDOW_BYTES: u32 = 256 << 10;

/// HTTP/2 flow-control window of each connection, in bytes: sixteen streams' worth.
const CONNECTION_WINDOW_BYTES: u32 = 4 << 20;

/// The engine once every other reference is gone, waiting up to `wait`: connection tasks that
/// served their last request drop their handles a moment after the server future resolves, so
/// checking once would find them on every clean shutdown. Still shared after `wait`: `Err`.
async fn sole_owner<T>(mut engine: Arc<T>, wait: Duration) -> Result<T, Arc<T>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match Arc::try_unwrap(engine) {
            Ok(engine) => return Ok(engine),
            Err(shared) if tokio::time::Instant::now() >= deadline => return Err(shared),
            Err(shared) => engine = shared,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `service` checking each caller's credential from the headers, before tonic decodes the
/// message: every service with tenant data goes behind it.
fn authenticated<S>(
    gate: Arc<gate::Gate>,
    service: S,
) -> tonic::service::interceptor::InterceptedService<
    S,
    impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
> {
    tonic::service::interceptor::InterceptedService::new(
        service,
        move |request: tonic::Request<()>| {
            gate.authenticate_headers(request.metadata())?;
            Ok(request)
        },
    )
}

/// Runs the server until `shutdown` resolves, then drains in-flight requests and closes the
/// engine (everything acknowledged is already in the WAL).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    // The certificate is loaded before the port is bound: a bad key must leave no trace either.
    let tls = config.tls().server_config()?;
    let tls_enabled = tls.is_some();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .context("loading the TLS certificate and key")?;
    }
    // Bind before anything touches the data directory: a port in use must leave no trace.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let admin_token = admin_token::resolve(&config)?;
    let engine = Arc::new(
        tokio::task::spawn_blocking({
            let ec = config.engine.clone();
            move || Engine::open(ec)
        })
        .await?
        .context("opening the data directory")?,
    );
    let metrics = metrics::Metrics::new(config.per_tenant_metrics);
    if let Some(addr) = config.metrics_listen {
        let m = metrics.clone();
        let e = Arc::downgrade(&engine);
        tokio::spawn(async move {
            if let Err(err) = m.serve(addr, e).await {
                tracing::error!(error = %err, "metrics server failed");
            }
        });
    }
    let tokens = config.jwt_hs256_secret.as_ref().map(|secret| {
        tracing::info!("tenant tokens (HS256 JWTs) accepted");
        tokens::TokenVerifier::hs256(secret.expose_secret().as_bytes())
    });
    let pool =
        admission::FairPool::new(config.engine_pool()).context("starting the engine pool")?;
    let shares = config.default_shares();
    let rates = limits::RateDefaults {
        tenant: bulkhead_engine::RateLimit {
            requests_per_second: config.default_requests_per_second,
            burst: config.default_burst,
            write_bytes_per_second: config.default_write_bytes_per_second,
        },
        principal_share: config.principal_rate_share,
        shared_write_bytes_per_second: config.shared_write_bytes_per_second,
    };
    let gate = Arc::new(gate::Gate::new(
        engine.clone(),
        admin_token.expose_secret(),
        tokens,
        metrics,
        pool,
        shares,
        rates,
    ));
    let streams = services::StreamLimits {
        idle: Duration::from_secs(config.stream_idle_timeout_secs),
        total: Duration::from_secs(config.stream_timeout_secs),
    };
    let max = config.max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::record_service_server::RecordServiceServer<services::RecordApi>>()
        .await;
    // Both reflection versions: grpcurl before 1.8.8, Python's grpc_reflection client and many
    // GUI tools speak only v1alpha. Health is registered too, so `Health/Check` resolves.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(bulkhead_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .context("building the reflection service")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building the v1alpha reflection service")?;

    let local = listener.local_addr()?;
    if fault::SKIP_TENANT_CHECK {
        tracing::error!("FAULT-INJECTION BUILD: keys are not checked against the path's tenant");
    }
    if fault::SKIP_READER_CHECK {
        tracing::error!("FAULT-INJECTION BUILD: end users read records whatever their readers");
    }
    if !tls_enabled && !local.ip().is_loopback() {
        tracing::warn!(
            addr = %local,
            "serving PLAINTEXT gRPC on a non-loopback address (insecure-plaintext): keys and \
             records cross the network unencrypted"
        );
    }
    tracing::info!(
        addr = %local,
        tls = tls_enabled,
        client_certificates = config.tls_client_ca.is_some(),
        data_dir = %config.engine.data_dir.display(),
        "bulkhead listening"
    );

    let default_retention = config.engine.default_audit_retention;
    // Shutdown: stop accepting, let in-flight requests finish, but don't wait forever for
    // clients that keep idle connections open.
    // A watch, not a Notify: the signal may come before either waiter is first polled, and a
    // watch remembers it where `notify_waiters` would wake no one.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        // Err only if the sender is gone without stopping, which `shutdown` never does.
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let drained = stopped(stop_rx.clone());
    let grace_expired = async {
        stopped(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    let server = builder
        .timeout(Duration::from_secs(config.request_timeout_secs))
        .max_concurrent_streams(Some(config.max_streams_per_connection))
        // A fixed flow-control window per stream: what a request refused from its first bytes
        // (over a size or write limit, and held until its turn) can push at the server before
        // it is answered. Windows grown to each connection's bandwidth-delay product (hyper's
        // adaptive window) grew past whole 785 KB messages on a flood's busy connections, and
        // the server took in ~9 MB/s of refused bytes on its request threads; at 256 KiB a
        // flat import is no slower (docs/benchmarks.md, *The disk shared between tenants'
        // writes*). The connection's window lets several streams fill theirs at once.
        .http2_adaptive_window(Some(false))
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .layer(tower::util::MapResponseLayer::new(
            transport_refusals::as_invalid_argument,
        ))
        .layer(tower::util::MapRequestLayer::new(
            small_requests::capped_at(config.max_read_message_bytes.min(max)),
        ))
        .layer(write_admission::WriteAdmissionLayer::new(gate.clone(), max))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(authenticated(
            gate.clone(),
            pb::admin_service_server::AdminServiceServer::new(services::AdminApi {
                gate: gate.clone(),
                default_retention,
            })
            .max_decoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::key_service_server::KeyServiceServer::new(services::KeyApi { gate: gate.clone() })
                .max_decoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::collection_service_server::CollectionServiceServer::new(services::CollectionApi {
                gate: gate.clone(),
            })
            .max_decoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::record_service_server::RecordServiceServer::new(services::RecordApi {
                gate: gate.clone(),
                max_batch: config.max_batch,
                max_top_k: config.max_top_k,
                max_message_bytes: max,
                streams,
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::semantic_cache_service_server::SemanticCacheServiceServer::new(
                services::CacheApi { gate: gate.clone() },
            )
            .max_decoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::memory_service_server::MemoryServiceServer::new(services::MemoryApi {
                gate: gate.clone(),
            })
            .max_decoding_message_size(max),
        ))
        .add_service(authenticated(
            gate.clone(),
            pb::audit_service_server::AuditServiceServer::new(services::AuditApi {
                gate: gate.clone(),
            })
            .max_decoding_message_size(max),
        ))
        // Nagle's algorithm on accepted sockets costs a delayed-ACK round (tens of ms) on small
        // responses; the incoming stream has to disable it itself.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            drained,
        );
    tokio::select! {
        served = server => served.context("serving gRPC")?,
        // Clients that pool connections keep them open (hyper#4170): routine, nothing lost.
        () = grace_expired => tracing::info!(
            grace_secs = grace.as_secs(),
            "connections still open after the grace period; closing them"
        ),
    }
    tracing::info!("drained; closing the engine");
    drop(gate);
    match sole_owner(engine, ENGINE_RELEASE_WAIT).await {
        Ok(engine) => tokio::task::spawn_blocking(move || drop(engine)).await?,
        Err(engine) => {
            let flushing = engine.clone();
            tokio::task::spawn_blocking(move || flushing.flush_open_groups()).await?;
            tracing::info!(
                references = Arc::strong_count(&engine) - 1,
                "connections held past the grace period still reference the engine; its groups are flushed and it closes with the process"
            );
        }
    }
    tracing::info!("bulkhead stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_late_references_but_not_forever() {
        let engine = Arc::new("engine".to_owned());
        let late = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(late);
        });
        assert_eq!(
            sole_owner(engine, Duration::from_secs(10)).await.unwrap(),
            "engine"
        );

        let engine = Arc::new(());
        let _kept = engine.clone();
        let still_shared = sole_owner(engine, Duration::from_millis(30))
            .await
            .unwrap_err();
        assert_eq!(Arc::strong_count(&still_shared), 2);
    }

    /// A signal that arrives before the server's waiters are first polled must still stop it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_already_signalled_when_serving_starts_still_stops_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: Some("unit-admin-token-0123456789".into()),
            ..ServerConfig::default()
        };
        config.engine.data_dir = dir.path().join("data");
        let served = tokio::time::timeout(
            Duration::from_secs(60),
            serve(config, std::future::ready(())),
        )
        .await
        .expect("the server stopped");
        served.unwrap();
    }
}
