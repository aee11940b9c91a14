//! Per-tenant rate limits: token buckets for requests and for written bytes, one pair per
//! tenant, keyed by tenant id, so one tenant's flood drains only its own buckets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bulkhead_core::TenantId;
use bulkhead_engine::RateLimit;
use parking_lot::{Mutex, RwLock};
use tonic::Status;

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    /// Takes `n` tokens if there are enough; an unlimited bucket (rate 0) always allows.
    fn try_take(&mut self, n: f64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct TenantBuckets {
    limit: RateLimit,
    requests: Bucket,
    write_bytes: Bucket,
}

impl TenantBuckets {
    fn new(limit: RateLimit) -> Self {
        let burst = if limit.burst > 0 {
            limit.burst as f64
        } else {
            limit.requests_per_second.max(1.0)
        };
        let bytes = limit.write_bytes_per_second as f64;
        Self {
            limit,
            requests: Bucket::new(limit.requests_per_second, burst),
            // One second of bandwidth as burst.
            write_bytes: Bucket::new(bytes, bytes),
        }
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    tenants: RwLock<HashMap<TenantId, Arc<Mutex<TenantBuckets>>>>,
}

impl RateLimiter {
    /// Admits one request of `tenant` writing `write_bytes`, under `limit` (the tenant's current
    /// setting; a changed setting resets its buckets).
    pub fn admit(
        &self,
        tenant: &TenantId,
        limit: RateLimit,
        write_bytes: u64,
    ) -> Result<(), Status> {
        if limit.requests_per_second <= 0.0 && limit.write_bytes_per_second == 0 {
            return Ok(());
        }
        let buckets = self.tenants.read().get(tenant).cloned();
        let buckets = match buckets {
            Some(b) => b,
            None => self
                .tenants
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Mutex::new(TenantBuckets::new(limit))))
                .clone(),
        };
        let mut b = buckets.lock();
        if b.limit != limit {
            *b = TenantBuckets::new(limit);
        }
        if !b.requests.try_take(1.0) {
            return Err(Status::resource_exhausted(format!(
                "tenant {tenant} exceeded its rate limit of {} requests/s",
                limit.requests_per_second
            )));
        }
        if write_bytes > 0 && !b.write_bytes.try_take(write_bytes as f64) {
            return Err(Status::resource_exhausted(format!(
                "tenant {tenant} exceeded its write limit of {} bytes/s",
                limit.write_bytes_per_second
            )));
        }
        Ok(())
    }

    pub fn forget(&self, tenant: &TenantId) {
        self.tenants.write().remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rps: f64, burst: u64) -> RateLimit {
        RateLimit {
            requests_per_second: rps,
            burst,
            write_bytes_per_second: 0,
        }
    }

    #[test]
    fn burst_then_refuse_and_tenants_are_independent() {
        let l = RateLimiter::default();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        for _ in 0..5 {
            l.admit(&a, limit(0.001, 5), 0).unwrap();
        }
        let err = l.admit(&a, limit(0.001, 5), 0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        l.admit(&b, limit(0.001, 5), 0).unwrap();
        l.admit(&b, RateLimit::default(), 0).unwrap();
    }

    #[test]
    fn write_bytes_are_limited() {
        let l = RateLimiter::default();
        let a = TenantId::new("a").unwrap();
        let lim = RateLimit {
            requests_per_second: 0.0,
            burst: 0,
            write_bytes_per_second: 1000,
        };
        l.admit(&a, lim, 800).unwrap();
        assert!(l.admit(&a, lim, 800).is_err());
    }
}
