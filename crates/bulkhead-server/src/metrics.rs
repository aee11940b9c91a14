//! Prometheus metrics: requests and latency by method and status code, engine gauges, and —
//! only when enabled, because tenants are unbounded — request counts and latency per tenant
//! (which tenant's requests slowed down, the question a noisy neighbour raises).

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
    tenant_latency: Option<HistogramVec>,
    tenants: IntGauge,
}

/// Latency buckets, in seconds: 50 µs doubling to about 6.5 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.000_05, 2.0, 18).expect("buckets")
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
                .buckets(latency_buckets()),
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
        let tenant_latency = per_tenant.then(|| {
            HistogramVec::new(
                HistogramOpts::new(
                    "bulkhead_tenant_request_duration_seconds",
                    "gRPC request latency by tenant and method",
                )
                .buckets(latency_buckets()),
                &["tenant", "method"],
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
        if let Some(t) = &tenant_latency {
            registry.register(Box::new(t.clone())).expect("unique");
        }
        Self {
            registry,
            requests,
            latency,
            tenant_requests,
            tenant_latency,
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
        if let (Some(t), Some(tenant)) = (&self.tenant_latency, tenant) {
            t.with_label_values(&[tenant, method])
                .observe(elapsed.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn latency_per_tenant_only_when_enabled() {
        let enabled = Metrics::new(true);
        enabled.observe(
            "RecordService/Query",
            "OK",
            Some("a"),
            Duration::from_millis(3),
        );
        enabled.observe(
            "RecordService/Query",
            "OK",
            Some("b"),
            Duration::from_micros(80),
        );
        let text = text(&enabled);
        let line = |tenant: &str, le: &str| {
            format!(
                "bulkhead_tenant_request_duration_seconds_bucket{{method=\"RecordService/Query\",tenant=\"{tenant}\",le=\"{le}\"}}"
            )
        };
        assert!(
            text.contains(&format!("{} 0", line("a", "0.0016"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1", line("a", "0.0032"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1", line("b", "0.0001"))),
            "{text}"
        );
        assert!(text.contains("bulkhead_tenant_requests_total{tenant=\"a\"} 1"));

        let disabled = Metrics::new(false);
        disabled.observe(
            "RecordService/Query",
            "OK",
            Some("a"),
            Duration::from_millis(3),
        );
        let text = self::text(&disabled);
        assert!(!text.contains("bulkhead_tenant_"), "{text}");
        assert!(
            text.contains(
                "bulkhead_request_duration_seconds_count{method=\"RecordService/Query\"} 1"
            )
        );
    }
}
