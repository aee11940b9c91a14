//! The victim's latency as the server timed it: its per-tenant histograms on `/metrics`
//! (`per-tenant-metrics = true`), read before and after each phase (`--metrics-endpoint`).
//!
//! Why: the harness times a request from its due time to its answer, which holds the server's
//! handling (admission, the engine pool, the engine, the audit append) and everything around
//! it: the transport on both sides, the kernel, the harness's own threads. When the server's
//! figure holds still while the harness's rises, the victim's wait is outside the handling, and
//! no change to the engine's scheduling will shorten it. The histograms' buckets double from
//! 50 µs, so a p99 here is interpolated within its bucket, as Prometheus's `histogram_quantile`
//! does: good for "it did not move", not for a tenth of a millisecond.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

const BUCKET: &str = "bulkhead_tenant_request_duration_seconds_bucket{";

/// One tenant's cumulative latency buckets per method at one instant: `(upper bound in
/// seconds, requests at or under it)`, ascending, the last one `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantHistograms {
    methods: HashMap<String, Vec<(f64, u64)>>,
}

impl TenantHistograms {
    /// Reads `tenant`'s histograms from the server's `/metrics` at `addr` (`host:port`).
    pub fn scrape(addr: &str, tenant: &str) -> Result<Self> {
        let text = get_metrics(addr)?;
        if !text.contains(BUCKET) {
            bail!(
                "{addr}/metrics has no per-tenant latency: start the server with `per-tenant-metrics = true`"
            );
        }
        Ok(Self::parse(&text, tenant))
    }

    /// The buckets of `tenant` in Prometheus text; lines of other tenants and other metrics
    /// are skipped.
    fn parse(text: &str, tenant: &str) -> Self {
        let mut methods: HashMap<String, Vec<(f64, u64)>> = HashMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(BUCKET) else {
                continue;
            };
            let Some((labels, count)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
                let len = labels[start..].find('"')?;
                Some(&labels[start..start + len])
            };
            let (Some(method), Some(of), Some(le), Ok(count)) =
                (label("method"), label("tenant"), label("le"), count.parse())
            else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse() {
                    Ok(le) => le,
                    Err(_) => continue,
                }
            };
            if of == tenant {
                methods
                    .entry(method.to_owned())
                    .or_default()
                    .push((le, count));
            }
        }
        for buckets in methods.values_mut() {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Self { methods }
    }

    /// The `q` quantile, in microseconds, of `method`'s requests since `earlier`; `None` when
    /// there were none.
    pub fn quantile_since(&self, earlier: &Self, method: &str, q: f64) -> Option<f64> {
        let now = self.methods.get(method)?;
        let before = earlier.methods.get(method);
        let counted = |i: usize, le: f64, count: u64| {
            let was = before
                .and_then(|b| b.get(i).filter(|(l, _)| *l == le))
                .map_or(0, |(_, c)| *c);
            count.saturating_sub(was)
        };
        let deltas: Vec<(f64, u64)> = now
            .iter()
            .enumerate()
            .map(|(i, &(le, count))| (le, counted(i, le, count)))
            .collect();
        let total = deltas.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for &(le, count) in &deltas {
            if count as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower.0 * 1e6);
                }
                let within = (count - lower.1) as f64;
                let fraction = if within > 0.0 {
                    (rank - lower.1 as f64) / within
                } else {
                    1.0
                };
                return Some((lower.0 + (le - lower.0) * fraction) * 1e6);
            }
            lower = (le, count);
        }
        None
    }
}

/// `GET /metrics` over plain HTTP/1.0 (the server answers it and closes), with a deadline.
fn get_metrics(addr: &str) -> Result<String> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("reading {addr}/metrics"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("{addr}/metrics: not an HTTP response"))?;
    if !head.starts_with("HTTP/1.") || head.split(' ').nth(1) != Some("200") {
        bail!(
            "{addr}/metrics answered {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(query: [u64; 4]) -> String {
        let les = ["0.0008", "0.0016", "0.0032", "+Inf"];
        let mut out = String::from("# TYPE bulkhead_tenant_request_duration_seconds histogram\n");
        for (le, count) in les.iter().zip(query) {
            out.push_str(&format!(
                "{BUCKET}method=\"RecordService/Query\",tenant=\"victim\",le=\"{le}\"}} {count}\n"
            ));
            out.push_str(&format!(
                "{BUCKET}method=\"RecordService/Query\",tenant=\"attacker\",le=\"{le}\"}} 999\n"
            ));
        }
        out
    }

    #[test]
    fn the_quantile_counts_only_the_phase_and_the_tenant() {
        let before = TenantHistograms::parse(&text([50, 100, 100, 100]), "victim");
        // 100 requests in the phase: 90 under 0.8 ms, 8 more under 1.6, 2 under 3.2.
        let after = TenantHistograms::parse(&text([140, 198, 200, 200]), "victim");
        let p99 = after
            .quantile_since(&before, "RecordService/Query", 0.99)
            .unwrap();
        assert!(
            (p99 - 2400.0).abs() < 1e-6,
            "{p99}: halfway through 1.6–3.2 ms"
        );
        let p50 = after
            .quantile_since(&before, "RecordService/Query", 0.50)
            .unwrap();
        assert!((p50 - 50.0 / 90.0 * 800.0).abs() < 1e-6, "{p50}");
    }

    #[test]
    fn a_method_without_requests_in_the_phase_has_no_quantile() {
        let same = TenantHistograms::parse(&text([1, 2, 3, 3]), "victim");
        assert_eq!(
            same.quantile_since(&same, "RecordService/Query", 0.99),
            None
        );
        assert_eq!(
            same.quantile_since(&same, "RecordService/Upsert", 0.99),
            None
        );
    }

    #[test]
    fn requests_past_the_last_bound_report_that_bound() {
        let before = TenantHistograms::default();
        let after = TenantHistograms::parse(&text([0, 0, 1, 10]), "victim");
        let p99 = after
            .quantile_since(&before, "RecordService/Query", 0.99)
            .unwrap();
        assert!((p99 - 3200.0).abs() < 1e-6, "{p99}");
    }
}
