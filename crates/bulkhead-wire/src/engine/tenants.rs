//! Tenant settings in, tenant descriptions out.

use std::time::Duration;

use bulkhead_engine::{Quota, RateLimit, ServerShare, TenantInfo};
use bulkhead_proto::v1 as pb;

use crate::error::{Result, WireError};
use crate::time::timestamp_from_ms;

/// `v` as a count, refused below zero, naming `field`.
fn non_negative(field: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| WireError::invalid(format!("{field} must be >= 0")))
}

/// A quota; unset means no limits.
pub fn quota(q: Option<pb::Quota>) -> Result<Quota> {
    let q = q.unwrap_or_default();
    Ok(Quota {
        max_collections: non_negative("quota.max_collections", q.max_collections)?,
        max_records: non_negative("quota.max_records", q.max_records)?,
        max_stored_bytes: non_negative("quota.max_stored_bytes", q.max_stored_bytes)?,
    })
}

/// A rate limit; unset means the server's defaults.
pub fn rate_limit(r: Option<pb::RateLimit>) -> Result<RateLimit> {
    let r = r.unwrap_or_default();
    if !r.requests_per_second.is_finite() || r.requests_per_second < 0.0 {
        return Err(WireError::invalid(
            "rate_limit.requests_per_second must be a finite number >= 0",
        ));
    }
    Ok(RateLimit {
        requests_per_second: r.requests_per_second,
        burst: non_negative("rate_limit.burst", r.burst)?,
        write_bytes_per_second: non_negative(
            "rate_limit.write_bytes_per_second",
            r.write_bytes_per_second,
        )?,
    })
}

/// A share of the server; unset (or 0 in a field) means the server's settings.
pub fn server_share(s: Option<pb::ServerShare>) -> Result<ServerShare> {
    let s = s.unwrap_or_default();
    Ok(ServerShare {
        requests_in_flight: non_negative("share.requests_in_flight", s.requests_in_flight)?,
        open_streams: non_negative("share.open_streams", s.open_streams)?,
        engine_threads: non_negative("share.engine_threads", s.engine_threads)?,
        write_bytes_in_flight: non_negative(
            "share.write_bytes_in_flight",
            s.write_bytes_in_flight,
        )?,
    })
}

pub fn tenant_to_pb(t: &TenantInfo, default_retention: Duration) -> pb::Tenant {
    pb::Tenant {
        name: format!("tenants/{}", t.id),
        create_time: Some(timestamp_from_ms(t.created_at_ms)),
        quota: Some(pb::Quota {
            max_collections: t.quota.max_collections as i64,
            max_records: t.quota.max_records as i64,
            max_stored_bytes: t.quota.max_stored_bytes as i64,
        }),
        rate_limit: Some(pb::RateLimit {
            requests_per_second: t.rate_limit.requests_per_second,
            burst: t.rate_limit.burst as i64,
            write_bytes_per_second: t.rate_limit.write_bytes_per_second as i64,
        }),
        audit_retention_seconds: t.audit_retention.unwrap_or(default_retention).as_secs() as i64,
        state: match (t.loaded, t.group_open) {
            (true, _) => pb::TenantState::Hot,
            (false, true) => pb::TenantState::Warm,
            (false, false) => pb::TenantState::Cold,
        } as i32,
        group: t.group,
        // Absent while every field is the server's setting.
        share: (t.share != ServerShare::default()).then_some(pb::ServerShare {
            requests_in_flight: t.share.requests_in_flight as i64,
            open_streams: t.share.open_streams as i64,
            engine_threads: t.share.engine_threads as i64,
            write_bytes_in_flight: t.share.write_bytes_in_flight as i64,
        }),
        max_token_lifetime_seconds: t
            .max_token_lifetime
            .map_or(bulkhead_engine::MAX_TOKEN_LIFETIME_SECS, |d| d.as_secs())
            as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_non_finite_limits_are_refused_naming_the_field() {
        let q = pb::Quota {
            max_records: -1,
            ..Default::default()
        };
        assert_eq!(
            quota(Some(q)).unwrap_err().to_string(),
            "quota.max_records must be >= 0"
        );
        assert_eq!(quota(None), Ok(Quota::default()));
        for rps in [f64::NAN, f64::INFINITY, -1.0] {
            let r = pb::RateLimit {
                requests_per_second: rps,
                ..Default::default()
            };
            assert!(rate_limit(Some(r)).is_err(), "{rps}");
        }
        let r = pb::RateLimit {
            burst: -2,
            ..Default::default()
        };
        assert_eq!(
            rate_limit(Some(r)).unwrap_err().to_string(),
            "rate_limit.burst must be >= 0"
        );
        let ok = pb::RateLimit {
            requests_per_second: 0.0,
            burst: 0,
            write_bytes_per_second: 5,
        };
        assert_eq!(rate_limit(Some(ok)).unwrap().write_bytes_per_second, 5);
        let s = pb::ServerShare {
            open_streams: -1,
            ..Default::default()
        };
        assert_eq!(
            server_share(Some(s)).unwrap_err().to_string(),
            "share.open_streams must be >= 0"
        );
        assert_eq!(server_share(None), Ok(ServerShare::default()));
        let s = pb::ServerShare {
            requests_in_flight: 3,
            open_streams: 2,
            engine_threads: 1,
            write_bytes_in_flight: 4 << 20,
        };
        assert_eq!(
            server_share(Some(s)),
            Ok(ServerShare {
                requests_in_flight: 3,
                open_streams: 2,
                engine_threads: 1,
                write_bytes_in_flight: 4 << 20,
            })
        );
        let s = pb::ServerShare {
            write_bytes_in_flight: -1,
            ..Default::default()
        };
        assert_eq!(
            server_share(Some(s)).unwrap_err().to_string(),
            "share.write_bytes_in_flight must be >= 0"
        );
    }
}
