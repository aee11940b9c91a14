//! Rate limits: token buckets for requests and for written bytes, one pair per tenant, keyed by
//! tenant id, so one tenant's flood drains only its own buckets; and inside each tenant, a
//! request bucket per principal (API key, token subject) holding a share of the tenant's rate,
//! so one runaway key can't lock its tenant's other callers out. A tenant without limits of its
//! own gets the server's defaults: no tenant is unlimited unless an operator says so. Beside
//! other active tenants, a tenant's write bucket also runs no faster than its part of the
//! server's shared write budget (`shared_writes`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_core::TenantId;
use bulkhead_engine::RateLimit;
use bulkhead_wire::{
    RETRY_PUSHBACK_TRAILER, retry_pushback_from_trailer, retry_pushback_to_trailer,
};
use parking_lot::{Mutex, RwLock};
use tonic::Status;

use crate::shared_writes::{SharedWrites, TenantWrites, WritePart};

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
    /// When the bucket will have refilled for every caller refused so far and told to come
    /// back, in the order they were refused ([`Bucket::turn_after_refusal`]).
    promised_until: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            updated: Instant::now(),
            promised_until: Instant::now(),
        }
    }

    /// Takes `n` tokens if there are enough; an unlimited bucket (rate 0) always allows. A
    /// take larger than the whole bucket (one message bigger than a second of bandwidth) passes
    /// when the bucket is full and leaves it in debt, so it is slowed, not refused forever.
    fn try_take(&mut self, n: f64) -> bool {
        if !self.allows(n) {
            return false;
        }
        if self.rate > 0.0 {
            self.tokens -= n;
        }
        true
    }

    /// After a take of `n` tokens was refused (just after [`Bucket::allows`]): how long the
    /// caller should wait for its turn. That is when the bucket can give `n` tokens to it after
    /// it has given them to every caller refused before it and still waiting, so a tenant's
    /// concurrent callers are told to come back one after another, at the rate the limit admits.
    /// Telling each only when the bucket would next hold its tokens sent them all back at that
    /// moment, to be refused again but one: sixteen loops of 785 KB upserts past an 8 MiB/s
    /// limit came back about 130 times a second, each pushing its whole message at the server
    /// (docs/benchmarks.md, *Refusals told their turn, and memtables of 32 MiB*). The queue
    /// reaches at most a full bucket's refill ahead: a caller that never comes back holds back
    /// the others that long at most.
    fn turn_after_refusal(&mut self, n: f64) -> Duration {
        let n = n.min(self.capacity);
        let now = self.updated;
        let mut turn = now + self.time_until(n);
        if self.promised_until > now {
            // The callers ahead take what the bucket holds then; this one's comes after.
            let after_the_queue = self.promised_until + Duration::from_secs_f64(n / self.rate);
            let furthest = now + Duration::from_secs_f64(self.capacity / self.rate);
            turn = turn.max(after_the_queue.min(furthest));
        }
        self.promised_until = turn;
        turn - now
    }

    /// After a take of `n` tokens was refused: how long until the bucket holds them, whoever
    /// else waits. What a paced stream waits (`RateLimiter::take_write_bytes`): it comes back
    /// each second to recheck its caller, and a turn would put it behind its own last one.
    fn time_until(&self, n: f64) -> Duration {
        Duration::from_secs_f64(((n.min(self.capacity) - self.tokens) / self.rate).max(0.0))
    }

    /// Runs the bucket at `rate` (0: unlimited) with `capacity` as its burst from now on. A
    /// larger burst is added to what the bucket holds (a tenant left alone on the server
    /// writes at once at its own limit, whatever it owed under its part of the shared budget);
    /// a smaller one caps it. A bucket that was unlimited starts full.
    fn set_rate(&mut self, rate: f64, capacity: f64) {
        if rate == self.rate && capacity == self.capacity {
            return;
        }
        self.allows(0.0);
        let was_unlimited = self.rate <= 0.0;
        let grown = (capacity - self.capacity).max(0.0);
        self.rate = rate;
        self.capacity = capacity;
        self.tokens = if was_unlimited {
            capacity
        } else {
            (self.tokens + grown).min(capacity)
        };
        self.updated = Instant::now();
    }

    /// Whether `n` tokens could be taken now, taking none.
    fn allows(&mut self, n: f64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        self.tokens >= n.min(self.capacity)
    }
}

#[derive(Debug)]
struct TenantBuckets {
    limit: RateLimit,
    requests: Bucket,
    write_bytes: Bucket,
    principals: HashMap<String, Bucket>,
    /// Its use of the shared write budget; kept when the limit changes.
    writes: TenantWrites,
}

/// Principals whose buckets a tenant keeps; past it, full (idle) ones are dropped.
const PRINCIPALS_KEPT: usize = 256;

impl TenantBuckets {
    fn new(limit: RateLimit) -> Self {
        let bytes = limit.write_bytes_per_second as f64;
        Self {
            limit,
            requests: Bucket::new(limit.requests_per_second, burst_of(limit)),
            // One second of bandwidth as burst.
            write_bytes: Bucket::new(bytes, bytes),
            principals: HashMap::new(),
            writes: TenantWrites::default(),
        }
    }

    /// Sets the write bucket's rate for this moment: the tenant's own write limit (a second of
    /// it as burst), or its part of the shared budget where that is less, with a second of the
    /// whole budget as burst: a tenant that has been quiet may write that much at once beside
    /// the others (a batch just after a neighbour's import, say), and a flood is held to its
    /// part from then on. Returns the part when it is what binds, for the refusal to name.
    fn pace_writes(&mut self, part: Option<WritePart>) -> Option<WritePart> {
        let own = self.limit.write_bytes_per_second as f64;
        let binding = part.filter(|p| own <= 0.0 || p.bytes_per_second < own);
        let (rate, burst) = binding.map_or((own, own), |p| {
            (p.bytes_per_second, p.bytes_per_second.max(p.budget as f64))
        });
        self.write_bytes.set_rate(rate, burst);
        binding
    }

    fn principal(&mut self, name: &str, share: f64) -> &mut Bucket {
        if !self.principals.contains_key(name) && self.principals.len() >= PRINCIPALS_KEPT {
            self.principals.retain(|_, b| b.tokens < b.capacity);
        }
        let limit = self.limit;
        self.principals.entry(name.to_owned()).or_insert_with(|| {
            Bucket::new(
                limit.requests_per_second * share,
                (burst_of(limit) * share).max(1.0),
            )
        })
    }
}

fn burst_of(limit: RateLimit) -> f64 {
    if limit.burst > 0 {
        limit.burst as f64
    } else {
        limit.requests_per_second.max(1.0)
    }
}

/// The server-wide side of rate limiting (see `ServerConfig`).
#[derive(Debug, Clone, Copy)]
pub struct RateDefaults {
    /// Applies, field by field, where a tenant's own setting is 0 (unset).
    pub tenant: RateLimit,
    /// The share of its tenant's request rate one principal may use, in (0, 1].
    pub principal_share: f64,
    /// Written bytes/s tenants share while two or more are active (0: none).
    pub shared_write_bytes_per_second: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    defaults: RateDefaults,
    tenants: RwLock<HashMap<TenantId, Arc<Mutex<TenantBuckets>>>>,
    shared_writes: SharedWrites,
}

impl RateLimiter {
    pub fn new(defaults: RateDefaults) -> Self {
        Self {
            defaults,
            tenants: RwLock::default(),
            shared_writes: SharedWrites::new(defaults.shared_write_bytes_per_second),
        }
    }

    /// Whether nothing limits `limit`'s tenant: no rate, and nothing on its writes.
    fn unlimited(&self, limit: RateLimit) -> bool {
        limit.requests_per_second <= 0.0 && self.writes_unlimited(limit)
    }

    /// Whether nothing limits the writes of `limit`'s tenant: no write limit of its own and no
    /// shared budget.
    fn writes_unlimited(&self, limit: RateLimit) -> bool {
        limit.write_bytes_per_second == 0 && !self.shared_writes.is_on()
    }

    /// Counts the tenant of `b` active now and sets its write bucket's pace: its own limit, or
    /// its part of the shared budget where that binds (returned, for a refusal to name).
    fn pace_writes(&self, b: &mut TenantBuckets) -> Option<WritePart> {
        let part = self.shared_writes.part_of(&mut b.writes, Instant::now());
        b.pace_writes(part)
    }

    /// The limit `tenant` runs under: its own setting, with the server's default for each
    /// field it leaves at 0.
    pub fn effective(&self, own: RateLimit) -> RateLimit {
        let d = self.defaults.tenant;
        let rps_set = own.requests_per_second > 0.0;
        RateLimit {
            requests_per_second: if rps_set {
                own.requests_per_second
            } else {
                d.requests_per_second
            },
            burst: match (own.burst, rps_set) {
                (0, true) => 0,
                (0, false) => d.burst,
                (b, _) => b,
            },
            write_bytes_per_second: if own.write_bytes_per_second > 0 {
                own.write_bytes_per_second
            } else {
                d.write_bytes_per_second
            },
        }
    }

    /// Admits one request of `principal` in `tenant` writing `write_bytes`, under `own` (the
    /// tenant's current setting; a changed setting resets its buckets).
    pub fn admit(
        &self,
        tenant: &TenantId,
        principal: &str,
        own: RateLimit,
        write_bytes: u64,
    ) -> Result<(), Status> {
        let limit = self.effective(own);
        if self.unlimited(limit) {
            return Ok(());
        }
        let buckets = self.buckets(tenant, limit);
        let mut b = buckets.lock();
        let binding = self.pace_writes(&mut b);
        let share = self.defaults.principal_share;
        if share < 1.0 {
            let own = b.principal(principal, share);
            if !own.try_take(1.0) {
                let wait = own.turn_after_refusal(1.0);
                return Err(pushed_back(
                    over_share(tenant, principal, limit, share),
                    wait,
                ));
            }
        }
        if !b.requests.try_take(1.0) {
            let wait = b.requests.turn_after_refusal(1.0);
            return Err(pushed_back(over_rate(tenant, limit), wait));
        }
        let bytes = write_bytes as f64;
        if write_bytes > 0 && !b.write_bytes.try_take(bytes) {
            let wait = b.write_bytes.turn_after_refusal(bytes);
            return Err(pushed_back(over_write_pace(tenant, limit, binding), wait));
        }
        self.shared_writes.spent(&mut b.writes, write_bytes);
        Ok(())
    }

    /// The refusal `admit` would give now to every write of `principal` in `tenant` of at
    /// least `bytes` bytes (1: of any size), taking nothing from the buckets: lets a write be
    /// refused before its message is read (`write_admission`).
    pub fn refuses_writes_of(
        &self,
        tenant: &TenantId,
        principal: &str,
        own: RateLimit,
        bytes: u64,
    ) -> Option<Status> {
        let limit = self.effective(own);
        if self.unlimited(limit) {
            return None;
        }
        let buckets = self.tenants.read().get(tenant).cloned()?;
        let mut b = buckets.lock();
        if b.limit != limit {
            return None;
        }
        let binding = self.pace_writes(&mut b);
        let share = self.defaults.principal_share;
        if share < 1.0
            && let Some(own) = b.principals.get_mut(principal)
            && !own.allows(1.0)
        {
            let wait = own.turn_after_refusal(1.0);
            return Some(pushed_back(
                over_share(tenant, principal, limit, share),
                wait,
            ));
        }
        if !b.requests.allows(1.0) {
            let wait = b.requests.turn_after_refusal(1.0);
            return Some(pushed_back(over_rate(tenant, limit), wait));
        }
        // A write is admitted once the bucket holds its size or is full, so a bucket that
        // can't give `bytes` refuses every larger write too.
        let bytes = bytes.max(1) as f64;
        if !b.write_bytes.allows(bytes) {
            let wait = b.write_bytes.turn_after_refusal(bytes);
            return Some(pushed_back(over_write_pace(tenant, limit, binding), wait));
        }
        None
    }

    /// Takes `bytes` from `tenant`'s write bucket if it can give them now; otherwise how long
    /// until it can, taking nothing. What paces a stream's writes (`Gate::pay_for_stream_writes`)
    /// where a unary write is refused. Without a write limit, takes nothing and never waits.
    pub fn take_write_bytes(
        &self,
        tenant: &TenantId,
        own: RateLimit,
        bytes: u64,
    ) -> Result<(), Duration> {
        let limit = self.effective(own);
        if self.writes_unlimited(limit) || bytes == 0 {
            return Ok(());
        }
        let buckets = self.buckets(tenant, limit);
        let mut b = buckets.lock();
        self.pace_writes(&mut b);
        if !b.write_bytes.try_take(bytes as f64) {
            return Err(b.write_bytes.time_until(bytes as f64));
        }
        self.shared_writes.spent(&mut b.writes, bytes);
        Ok(())
    }

    /// `tenant`'s buckets under `limit`; a changed limit starts them afresh.
    fn buckets(&self, tenant: &TenantId, limit: RateLimit) -> Arc<Mutex<TenantBuckets>> {
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
        {
            let mut b = buckets.lock();
            if b.limit != limit {
                let writes = std::mem::take(&mut b.writes);
                *b = TenantBuckets::new(limit);
                b.writes = writes;
            }
        }
        buckets
    }

    pub fn forget(&self, tenant: &TenantId) {
        self.tenants.write().remove(tenant);
    }
}

/// `status` telling its client to wait `wait` before trying again: until its turn at the
/// bucket that refused the call ([`RETRY_PUSHBACK_TRAILER`]).
pub fn pushed_back(mut status: Status, wait: Duration) -> Status {
    let value = tonic::metadata::MetadataValue::from(retry_pushback_to_trailer(wait));
    status.metadata_mut().insert(RETRY_PUSHBACK_TRAILER, value);
    status
}

/// How long a refusal told its client to wait ([`pushed_back`]), if it did.
pub fn pushback_of(status: &Status) -> Option<Duration> {
    let value = status
        .metadata()
        .get(RETRY_PUSHBACK_TRAILER)?
        .to_str()
        .ok()?;
    retry_pushback_from_trailer(value)
}

fn over_share(tenant: &TenantId, principal: &str, limit: RateLimit, share: f64) -> Status {
    Status::resource_exhausted(format!(
        "{principal} exceeded its share of tenant {tenant}'s rate limit ({:.1} of {} requests/s)",
        limit.requests_per_second * share,
        limit.requests_per_second
    ))
}

fn over_rate(tenant: &TenantId, limit: RateLimit) -> Status {
    Status::resource_exhausted(format!(
        "tenant {tenant} exceeded its rate limit of {} requests/s",
        limit.requests_per_second
    ))
}

/// The refusal of a write past what its tenant may write now: its own limit, or (`binding`)
/// its part of the shared budget.
fn over_write_pace(tenant: &TenantId, limit: RateLimit, binding: Option<WritePart>) -> Status {
    match binding {
        None => Status::resource_exhausted(format!(
            "tenant {tenant} exceeded its write limit of {} bytes/s",
            limit.write_bytes_per_second
        )),
        Some(part) => Status::resource_exhausted(format!(
            "tenant {tenant} exceeded its part of the server's shared write budget \
             ({:.0} of {} bytes/s while {} tenants are active)",
            part.bytes_per_second, part.budget, part.active_tenants
        )),
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

    /// A write limit of `bytes` per second and no request limit.
    fn write_limit(bytes: u64) -> RateLimit {
        RateLimit {
            requests_per_second: 0.0,
            burst: 0,
            write_bytes_per_second: bytes,
        }
    }

    fn limiter(share: f64) -> RateLimiter {
        RateLimiter::new(RateDefaults {
            tenant: RateLimit::default(),
            principal_share: share,
            shared_write_bytes_per_second: 0,
        })
    }

    /// A stream's bytes are taken when the bucket holds them (or is full, for more than a
    /// second's worth), and otherwise the wait until it will is told, taking nothing; another
    /// tenant's bucket is untouched.
    #[test]
    fn write_bytes_are_taken_when_the_bucket_can_give_them_or_the_wait_is_told() {
        let l = limiter(1.0);
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        let limited = write_limit(1000);
        l.take_write_bytes(&a, limited, 600).unwrap();
        let wait = l.take_write_bytes(&a, limited, 600).unwrap_err();
        assert!(
            wait > Duration::from_millis(100) && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        // More than the whole bucket: waits for it to be full, then leaves it in debt. A paced
        // stream is told its own wait, whatever turns refused callers were told.
        l.admit(&a, "k", limited, 600).unwrap_err();
        let wait = l.take_write_bytes(&a, limited, 5000).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(600),
            "{wait:?}"
        );
        std::thread::sleep(wait);
        l.take_write_bytes(&a, limited, 5000).unwrap();
        let wait = l.take_write_bytes(&a, limited, 1).unwrap_err();
        assert!(wait > Duration::from_millis(3900), "{wait:?}");
        l.take_write_bytes(&b, limited, 1000).unwrap();
        // Unlimited, or nothing to pay: never waits.
        l.take_write_bytes(&a, write_limit(0), u64::MAX).unwrap();
        l.take_write_bytes(&a, limited, 0).unwrap();
    }

    #[test]
    fn burst_then_refuse_and_tenants_are_independent() {
        let l = limiter(1.0);
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        for _ in 0..5 {
            l.admit(&a, "k", limit(0.001, 5), 0).unwrap();
        }
        let err = l.admit(&a, "k", limit(0.001, 5), 0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        l.admit(&b, "k", limit(0.001, 5), 0).unwrap();
        l.admit(&b, "k", RateLimit::default(), 0).unwrap();
    }

    #[test]
    fn one_principal_gets_its_share_and_leaves_the_rest_to_the_others() {
        let l = limiter(0.5);
        let a = TenantId::new("a").unwrap();
        for _ in 0..5 {
            l.admit(&a, "runaway", limit(0.001, 10), 0).unwrap();
        }
        let err = l.admit(&a, "runaway", limit(0.001, 10), 0).unwrap_err();
        assert!(
            err.message().contains("runaway exceeded its share"),
            "{err:?}"
        );
        l.admit(&a, "other", limit(0.001, 10), 0)
            .expect("another key of the tenant still gets in");
    }

    #[test]
    fn write_bytes_are_limited_and_a_message_bigger_than_the_bucket_is_slowed_not_refused() {
        let l = limiter(1.0);
        let a = TenantId::new("a").unwrap();
        let lim = write_limit(1000);
        l.admit(&a, "k", lim, 800).unwrap();
        assert!(l.admit(&a, "k", lim, 800).is_err());
        let b = TenantId::new("b").unwrap();
        l.admit(&b, "k", lim, 5000)
            .expect("a full bucket lets one big message through");
        assert!(l.admit(&b, "k", lim, 1).is_err(), "and is in debt after it");
    }

    #[test]
    fn every_write_is_refused_only_while_the_bucket_cannot_admit_one_and_peeking_takes_nothing() {
        let l = limiter(0.5);
        let a = TenantId::new("a").unwrap();
        let lim = write_limit(1000);
        assert!(
            l.refuses_writes_of(&a, "k", lim, 1).is_none(),
            "never wrote"
        );
        for _ in 0..10 {
            assert!(l.refuses_writes_of(&a, "k", lim, 1).is_none());
        }
        l.admit(&a, "k", lim, 1000)
            .expect("peeking took nothing from the full bucket");
        l.admit(&a, "k", lim, 10_000).unwrap_err();
        let b = TenantId::new("b").unwrap();
        l.admit(&b, "k", lim, 10_000).unwrap();
        let refused = l
            .refuses_writes_of(&b, "k", lim, 1)
            .expect("a bucket in debt admits no write of any size");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            refused.message(),
            l.admit(&b, "k", lim, 1).unwrap_err().message()
        );
    }

    #[test]
    fn a_write_bigger_than_what_the_bucket_holds_is_refused_and_a_smaller_one_is_not() {
        let l = limiter(1.0);
        let a = TenantId::new("a").unwrap();
        let lim = write_limit(1000);
        l.admit(&a, "k", lim, 600).unwrap();
        assert!(l.refuses_writes_of(&a, "k", lim, 300).is_none());
        assert!(l.refuses_writes_of(&a, "k", lim, 500).is_some());
        assert!(
            l.refuses_writes_of(&a, "k", lim, 50_000).is_some(),
            "nor is a write bigger than the whole bucket admitted before it is full"
        );
        l.admit(&a, "k", lim, 500).unwrap_err();
        l.admit(&a, "k", lim, 300).unwrap();
    }

    #[test]
    fn a_principal_or_tenant_out_of_requests_is_refused_every_write() {
        let l = limiter(0.5);
        let a = TenantId::new("a").unwrap();
        for _ in 0..5 {
            l.admit(&a, "runaway", limit(0.001, 10), 0).unwrap();
        }
        let refused = l
            .refuses_writes_of(&a, "runaway", limit(0.001, 10), 1)
            .expect("the key used its share");
        assert!(refused.message().contains("its share"), "{refused:?}");
        assert!(
            l.refuses_writes_of(&a, "other", limit(0.001, 10), 1)
                .is_none()
        );
        for _ in 0..5 {
            l.admit(&a, "other", limit(0.001, 10), 0).unwrap();
        }
        let refused = l
            .refuses_writes_of(&a, "third", limit(0.001, 10), 1)
            .expect("the tenant used its rate");
        assert!(refused.message().contains("its rate limit"), "{refused:?}");
    }

    fn within(status: &Status, low: u64, high: u64) {
        let wait = pushback_of(status).expect("the refusal names a wait");
        assert!(
            wait >= Duration::from_millis(low) && wait <= Duration::from_millis(high),
            "{wait:?} not in {low}..={high} ms"
        );
    }

    /// A raised rate adds its larger burst to what the bucket holds, even in debt; a lowered
    /// one caps it; an unlimited bucket given a rate starts full.
    #[test]
    fn a_raised_rate_adds_its_larger_burst_and_a_lowered_one_caps_it() {
        let mut b = Bucket::new(100.0, 100.0);
        assert!(b.try_take(1000.0), "from full, in debt");
        b.set_rate(10_000.0, 10_000.0);
        assert!(b.try_take(5_000.0), "the larger burst is there at once");
        b.set_rate(50.0, 50.0);
        assert!(b.tokens <= 50.0, "{}", b.tokens);
        let mut unlimited = Bucket::new(0.0, 0.0);
        unlimited.set_rate(100.0, 100.0);
        assert!(unlimited.try_take(100.0));
        assert!(!unlimited.try_take(1.0));
    }

    /// Beside others, a tenant's writes refill at its part of the budget, with a second of the
    /// whole budget as burst; its own write limit binds where it is lower.
    #[test]
    fn beside_others_a_quiet_tenant_may_write_a_second_of_the_whole_budget_at_once() {
        let part = WritePart {
            bytes_per_second: 250.0,
            active_tenants: 4,
            budget: 1000,
        };
        let mut b = TenantBuckets::new(RateLimit::default());
        assert_eq!(b.pace_writes(Some(part)), Some(part));
        assert!(b.write_bytes.try_take(1000.0));
        assert!(!b.write_bytes.allows(1.0));
        assert_eq!(b.write_bytes.rate, 250.0);
        let mut own = TenantBuckets::new(write_limit(100));
        assert_eq!(own.pace_writes(Some(part)), None);
        assert_eq!(
            (own.write_bytes.rate, own.write_bytes.capacity),
            (100.0, 100.0)
        );
    }

    /// Alone, a tenant without a write limit writes as much as it likes; beside another
    /// active tenant, it is paced to its part of the shared budget, refused with that budget
    /// named, while the other still writes; its own limit binds where that is lower; an Import
    /// is paced the same way.
    #[test]
    fn beside_another_active_tenant_a_writer_is_paced_to_its_part_of_the_shared_budget() {
        let l = RateLimiter::new(RateDefaults {
            tenant: RateLimit::default(),
            principal_share: 1.0,
            shared_write_bytes_per_second: 1000,
        });
        let (flood, quiet) = (
            TenantId::new("flood").unwrap(),
            TenantId::new("quiet").unwrap(),
        );
        let unset = RateLimit::default();
        for _ in 0..10 {
            l.admit(&flood, "k", unset, 100_000).unwrap();
        }
        l.admit(&quiet, "k", unset, 0).unwrap();
        // Its part starts full; a write bigger than it passes and leaves it in debt.
        l.admit(&flood, "k", unset, 100_000).unwrap();
        let refused = l.admit(&flood, "k", unset, 10).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("shared write budget")
                && refused.message().contains("2 tenants are active"),
            "{}",
            refused.message()
        );
        assert!(pushback_of(&refused).is_some());
        assert!(l.refuses_writes_of(&flood, "k", unset, 1).is_some());
        assert!(l.take_write_bytes(&flood, unset, 10).is_err());
        l.admit(&quiet, "k", unset, 400).unwrap();
        // A write limit of its own below its part is what the refusal names.
        let own = write_limit(100);
        l.admit(&quiet, "k", own, 100).unwrap();
        let refused = l.admit(&quiet, "k", own, 100).unwrap_err();
        assert!(
            refused.message().contains("its write limit of 100 bytes/s"),
            "{}",
            refused.message()
        );
    }

    /// Callers refused while others wait are told to come back after them, one write's refill
    /// apart, and never later than the bucket takes to refill from empty; once the turns told
    /// have passed, a refusal is told its own wait again. A caller that comes back at its turn
    /// is admitted.
    #[test]
    fn refused_callers_are_told_turns_one_after_another() {
        let l = limiter(1.0);
        let a = TenantId::new("a").unwrap();
        let bytes = write_limit(1000);
        l.admit(&a, "k", bytes, 1000).unwrap();
        // The bucket is empty: 250 bytes refill in 250 ms.
        within(&l.admit(&a, "k", bytes, 250).unwrap_err(), 200, 250);
        within(&l.refuses_writes_of(&a, "k", bytes, 250).unwrap(), 450, 500);
        let third = l.admit(&a, "k", bytes, 250).unwrap_err();
        within(&third, 700, 750);
        within(&l.admit(&a, "k", bytes, 250).unwrap_err(), 950, 1000);
        within(&l.admit(&a, "k", bytes, 250).unwrap_err(), 950, 1000);
        std::thread::sleep(pushback_of(&third).unwrap());
        l.admit(&a, "k", bytes, 250)
            .expect("the bucket holds a write again by the third turn");

        let b = TenantId::new("b").unwrap();
        l.admit(&b, "k", bytes, 1000).unwrap();
        let first = l.admit(&b, "k", bytes, 100).unwrap_err();
        within(&first, 50, 100);
        std::thread::sleep(pushback_of(&first).unwrap() + Duration::from_millis(100));
        within(&l.admit(&b, "k", bytes, 300).unwrap_err(), 50, 100);
    }

    /// Each refusal (the first while no other waits) names how long until the bucket that
    /// refused it could admit the call: a
    /// write short of bytes, a tenant out of requests, a key out of its share.
    #[test]
    fn a_refusal_tells_how_long_until_its_bucket_could_admit_it() {
        let l = limiter(0.5);
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        let bytes = write_limit(1000);
        l.admit(&a, "k", bytes, 600).unwrap();
        // Each tenant's first refusal, so that no caller refused before it is waiting.
        let spent_600 = |name: &str| {
            let tenant = TenantId::new(name).unwrap();
            l.admit(&tenant, "k", bytes, 600).unwrap();
            tenant
        };
        within(&l.admit(&a, "k", bytes, 600).unwrap_err(), 150, 200);
        within(
            &l.refuses_writes_of(&spent_600("a2"), "k", bytes, 900)
                .unwrap(),
            450,
            500,
        );
        // A write bigger than the bucket waits for it to be full, not for its own size.
        within(
            &l.refuses_writes_of(&spent_600("a3"), "k", bytes, 50_000)
                .unwrap(),
            550,
            600,
        );

        let requests = limit(2.0, 4);
        for _ in 0..2 {
            l.admit(&b, "one", requests, 0).unwrap();
            l.admit(&b, "two", requests, 0).unwrap();
        }
        let over_share = l.admit(&b, "one", requests, 0).unwrap_err();
        assert!(over_share.message().contains("its share"), "{over_share:?}");
        within(&over_share, 900, 1000);
        let over_rate = l.admit(&b, "three", requests, 0).unwrap_err();
        assert!(over_rate.message().contains("rate limit"), "{over_rate:?}");
        within(&over_rate, 400, 500);
    }

    #[test]
    fn a_pushback_reads_back_as_written_in_whole_milliseconds() {
        let status = pushed_back(
            Status::resource_exhausted("x"),
            Duration::from_micros(1_500),
        );
        assert_eq!(
            status.metadata().get(RETRY_PUSHBACK_TRAILER).unwrap(),
            "1",
            "the trailer gRPC clients read"
        );
        assert_eq!(pushback_of(&status), Some(Duration::from_millis(1)));
        let rewritten = pushed_back(status, Duration::ZERO);
        assert_eq!(pushback_of(&rewritten), Some(Duration::ZERO), "replaced");
        assert_eq!(pushback_of(&Status::resource_exhausted("x")), None);
    }

    #[test]
    fn unset_fields_take_the_servers_defaults() {
        let l = RateLimiter::new(RateDefaults {
            tenant: RateLimit {
                requests_per_second: 100.0,
                burst: 200,
                write_bytes_per_second: 1 << 20,
            },
            principal_share: 1.0,
            shared_write_bytes_per_second: 0,
        });
        assert_eq!(l.effective(RateLimit::default()).requests_per_second, 100.0);
        assert_eq!(l.effective(RateLimit::default()).burst, 200);
        let own = l.effective(limit(5.0, 0));
        assert_eq!((own.requests_per_second, own.burst), (5.0, 0));
        assert_eq!(own.write_bytes_per_second, 1 << 20);
    }
}
