//! Prometheus metrics: requests and latency by method and status code, engine gauges, and —
//! only when enabled, because tenants are unbounded — request counts per tenant.

use std::net::SocketAddr;
use std::sync::Weak;
use std::time::Duration;

use bulkhead_engine::Engine;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    tenant_requests: Option<IntCounterVec>,
    tenants: IntGauge,
}

impl Metrics {
    pub fn new(per_tenant: bool) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "bulkhead_requests_total",
                "gRPC requests by method and status code",
            ),
            &["method", "code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("bulkhead_request_duration_seconds", "gRPC request latency")
                .buckets(prometheus::exponential_buckets(0.000_05, 2.0, 18).expect("buckets")),
            &["method"],
        )
        .expect("valid metric");
        let tenants = IntGauge::new("bulkhead_tenants", "tenants in the registry").expect("valid");
        let tenant_requests = per_tenant.then(|| {
            IntCounterVec::new(
                Opts::new("bulkhead_tenant_requests_total", "gRPC requests by tenant"),
                &["tenant"],
            )
            .expect("valid metric")
        });
        registry
            .register(Box::new(requests.clone()))
            .expect("unique");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique");
        registry
            .register(Box::new(tenants.clone()))
            .expect("unique");
        if let Some(t) = &tenant_requests {
            registry.register(Box::new(t.clone())).expect("unique");
        }
        Self {
            registry,
            requests,
            latency,
            tenant_requests,
            tenants,
        }
    }

    pub fn observe(&self, method: &str, code: &str, tenant: Option<&str>, elapsed: Duration) {
        self.requests.with_label_values(&[method, code]).inc();
        self.latency
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
        if let (Some(t), Some(tenant)) = (&self.tenant_requests, tenant) {
            t.with_label_values(&[tenant]).inc();
        }
    }

    fn render(&self, engine: &Engine) -> String {
        self.tenants.set(engine.tenant_count() as i64);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }

    /// Serves `GET /metrics` on `addr` until the process ends. It holds the engine weakly: a
    /// scraper's kept-alive connection must not keep the engine from closing at shutdown.
    pub async fn serve(self, addr: SocketAddr, engine: Weak<Engine>) -> anyhow::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                let engine = engine.upgrade();
                async move {
                    match engine {
                        Some(engine) => Ok(metrics.render(&engine)),
                        None => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "metrics listening");
        axum::serve(listener, app).await?;
        Ok(())
    }
}
