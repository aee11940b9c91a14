//! The one path every RPC takes: authenticate, parse the resource name, authorize the caller
//! for that tenant, admit it within the tenant's share (requests in flight, rate limits of the
//! tenant and of the caller), run the engine call off the async runtime on the fair engine
//! pool, then audit and measure the outcome. Handlers only convert messages; every decision about
//! who may touch which tenant is made here, once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bulkhead_core::{
    CacheName, CollectionId, CollectionName, CoreError, KeyName, Role, SessionName, TenantId,
    TenantName, VerificationKeyName,
};
use bulkhead_engine::{
    Access, AuditContext, AuditEntry, AuditStamp, Authority, CollectionKind, Engine, Reader,
    ServerShare, TenantHandle,
};
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::Instrument;

use crate::admission::{FairPool, JobKind, JobPanicked, Refusals, Slot, TenantSlots};
use crate::audit_writer::{AuditWriter, append_logged};
use crate::auth::Authenticator;
use crate::end_user::{EndUser, Reach};
use crate::fault;
use crate::limits::{RateDefaults, RateLimiter, pushback_of, pushed_back};
use crate::metrics::Metrics;
use crate::principal::{Principal, TenantCaller};
use crate::status::{code_name, core_status, engine_status};
use crate::tokens::TokenVerifier;
use crate::trace_context::audit_context;

/// Numbers requests in log lines, so the lines of one request can be found together: every
/// line logged for a request carries a `request` span with this number, its method and (once
/// its resource is parsed) tenant.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

fn next_request_id() -> u64 {
    NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)
}

/// A resource name that names exactly one tenant.
pub trait TenantResource: Sized + Send + 'static {
    fn parse(name: &str) -> Result<Self, CoreError>;
    fn tenant(&self) -> &TenantId;
    /// What inside the tenant the name reaches, which an end-user token must grant.
    fn reach(&self) -> Reach<'_> {
        Reach::Tenant
    }
}

impl TenantResource for TenantName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl TenantResource for CollectionName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Records(&self.collection)
    }
}

impl TenantResource for CacheName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Cache(&self.cache)
    }
}

impl TenantResource for KeyName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

impl TenantResource for SessionName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Session(&self.session)
    }
}

impl TenantResource for VerificationKeyName {
    fn parse(name: &str) -> Result<Self, CoreError> {
        name.parse()
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// What one tenant-scoped call may use: the parsed resource and its tenant's handle. For calls
/// that write, the handle is audited: each write it makes carries its audit event.
#[derive(Debug)]
pub struct Scope<N, A: Access> {
    pub name: N,
    pub tenant: TenantHandle<A>,
}

/// The result of an engine call and the record count its audit event reports.
pub type Counted<R> = Result<(R, u64), Status>;

/// A tenant's share of the server: the server's settings (see `ServerConfig`), or the tenant's
/// own where its `share` sets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    pub requests_in_flight: usize,
    pub open_streams: usize,
    /// Normal-priority engine-pool threads.
    pub engine_threads: usize,
    /// Bytes of writes the server receives at once for the tenant's callers, each held from its
    /// first bytes until it is answered.
    pub write_bytes_in_flight: usize,
}

impl Shares {
    /// These defaults overridden by `own`'s non-zero fields.
    pub fn with(self, own: ServerShare) -> Self {
        let or = |own: u64, default: usize| match own {
            0 => default,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Self {
            requests_in_flight: or(own.requests_in_flight, self.requests_in_flight),
            open_streams: or(own.open_streams, self.open_streams),
            engine_threads: or(own.engine_threads, self.engine_threads),
            write_bytes_in_flight: or(own.write_bytes_in_flight, self.write_bytes_in_flight),
        }
    }
}

#[derive(Debug)]
pub struct Gate {
    engine: Arc<Engine>,
    /// Issues the grants the gate opens tenants with; nothing else in the server holds it.
    authority: Authority,
    audit: AuditWriter,
    auth: Authenticator,
    limits: RateLimiter,
    metrics: Metrics,
    pool: FairPool,
    shares: Shares,
    in_flight: TenantSlots,
    streams: TenantSlots,
    write_bytes: TenantSlots,
    over_limit: Refusals,
}

impl Gate {
    pub fn new(
        engine: Arc<Engine>,
        admin_token: &str,
        tokens: Option<TokenVerifier>,
        metrics: Metrics,
        pool: FairPool,
        shares: Shares,
        rates: RateDefaults,
    ) -> Self {
        Self {
            auth: Authenticator::new(engine.clone(), admin_token, tokens),
            audit: AuditWriter::default(),
            authority: engine.authority(),
            engine,
            limits: RateLimiter::new(rates),
            metrics,
            pool,
            shares,
            in_flight: TenantSlots::new("requests in flight"),
            streams: TenantSlots::new("open streams"),
            write_bytes: TenantSlots::new(
                "bytes of writes in flight (share.write_bytes_in_flight, by default the server's tenant-write-bytes-in-flight)",
            ),
            over_limit: Refusals::default(),
        }
    }

    pub fn limits(&self) -> &RateLimiter {
        &self.limits
    }

    /// `tenant`'s share of the server, as its settings are now.
    pub fn shares_of(&self, tenant: &TenantId) -> Result<Shares, Status> {
        let info = self.engine.tenant_info(tenant).map_err(engine_status)?;
        Ok(self.shares.with(info.share))
    }

    /// A slot for one long-lived stream (import, export) of a tenant with `shares`, held until
    /// the stream ends; a tenant at its limit is refused.
    pub fn open_stream(&self, tenant: &TenantId, shares: &Shares) -> Result<Slot, Status> {
        self.streams.try_take(tenant, shares.open_streams)
    }

    /// Authenticates a request from its headers alone, before its message is read: a caller
    /// without a valid credential can't make the server decode (up to `max-message-bytes` of)
    /// anything. Which tenant it may reach is decided later, in `tenant_call`.
    pub fn authenticate_headers(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let started = Instant::now();
        self.auth
            .authenticate(metadata, now_ms())
            .map(drop)
            .map_err(|status| {
                tracing::warn!(reason = status.message(), "unauthenticated request");
                self.finish_status(BEFORE_DECODING, None, started, status)
            })
    }

    /// What the gate can tell of a write of `bytes` bytes to `resource` by `method` (both read
    /// from the message's first bytes: an Upsert, a cache Store, a memory Append) before the
    /// rest of its message is read.
    ///
    /// [`UnreadWrite::Refused`] when the usual path would refuse it for what it is (a
    /// malformed name, another tenant's resource, too weak a role, an end user reaching past
    /// its grant: `INVALID_ARGUMENT` or `PERMISSION_DENIED`, audited as such, however far over
    /// its limits the caller is), and when the caller's tenant can't admit it: a write past the
    /// bytes of writes its tenant may have in flight, out of requests, or short of `bytes` in
    /// its write bucket (audited and pushed back like every over-limit refusal). The message,
    /// up to `max-message-bytes`, is then neither received whole nor decoded on a request
    /// thread.
    ///
    /// `hold`: the write is one the server will receive (within `max-message-bytes`).
    /// [`UnreadWrite::Admissible`] then holds its `bytes` of its tenant's
    /// `tenant-write-bytes-in-flight` until dropped: the caller keeps it until the write is
    /// answered, so the messages a tenant's callers have the server receive at once, small or
    /// large, and however slowly they send them, are bounded.
    ///
    /// [`UnreadWrite::Undecided`], to read the message and decide as usual: the credential is
    /// missing or bad (refused there before the message is read), the caller is the operator,
    /// or the tenant is gone.
    ///
    /// Its log lines are a request's like the usual path's (an admitted write's call is logged
    /// under a number of its own).
    #[tracing::instrument(name = "request", skip_all, fields(id = next_request_id(), method = method, tenant = tracing::field::Empty))]
    pub async fn check_unread_write<N: TenantResource>(
        &self,
        headers: &http::HeaderMap,
        method: &'static str,
        resource: &str,
        bytes: u64,
        hold: bool,
    ) -> UnreadWrite {
        let started = Instant::now();
        let metadata = MetadataMap::from_headers(headers.clone());
        let Ok(principal) = self.auth.authenticate(&metadata, now_ms()) else {
            return UnreadWrite::Undecided;
        };
        let Principal::Tenant(caller) = &principal else {
            return UnreadWrite::Undecided;
        };
        let context = audit_context(&principal, &metadata);
        if let Err(refusal) = self
            .authorize_resource::<N>(&principal, &context, method, resource, Role::Write)
            .await
        {
            return UnreadWrite::Refused(self.finish_status(method, None, started, refusal));
        }
        let Ok(info) = self.engine.tenant_info(&caller.tenant) else {
            return UnreadWrite::Undecided;
        };
        let held = if hold {
            let count = usize::try_from(bytes).unwrap_or(usize::MAX);
            let limit = self.shares.with(info.share).write_bytes_in_flight;
            self.write_bytes
                .try_take_many(&caller.tenant, count, limit)
                .map(Some)
        } else {
            Ok(None)
        };
        let refusal = match held {
            Ok(held) => match self.limits.refuses_writes_of(
                &caller.tenant,
                &principal.audit_name(),
                info.rate_limit,
                bytes,
            ) {
                None => return UnreadWrite::Admissible(held),
                Some(status) => status,
            },
            Err(status) => status,
        };
        let event = |tenant| Audit {
            tenant,
            principal: principal.audit_name(),
            context,
            method,
            resource: audit_resource(resource),
        };
        let status = self.refuse_over_limit(&caller.tenant, event, refusal).await;
        UnreadWrite::Refused(self.finish_status(
            method,
            Some(caller.tenant.as_str()),
            started,
            status,
        ))
    }

    /// Waits until `tenant`'s write bucket can pay for `bytes` a stream brought, then takes
    /// them: an Import is paced to its tenant's write limit where a unary write past it is
    /// refused, so a file bigger than the limit allows at the client's speed is imported
    /// slower, not cut off part-way. The wait holds no thread (meanwhile the handler reads no
    /// further message, so the client's flow-control window fills and it stops sending), and
    /// checks the caller of `metadata` and re-reads the tenant's limit each second, so a key
    /// revoked meanwhile ends it. `RESOURCE_EXHAUSTED` if the bytes can't be paid for by
    /// `deadline` (the stream's end).
    pub async fn pay_for_stream_writes(
        &self,
        metadata: &MetadataMap,
        tenant: &TenantId,
        bytes: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), Status> {
        const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);
        loop {
            self.still_authorized(metadata, tenant, Role::Write)?;
            let info = self.engine.tenant_info(tenant).map_err(engine_status)?;
            let wait = match self.limits.take_write_bytes(tenant, info.rate_limit, bytes) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            let paid_at = tokio::time::Instant::now() + wait;
            if deadline.checked_duration_since(paid_at).is_none() {
                let limit = self.limits.effective(info.rate_limit);
                return Err(Status::resource_exhausted(format!(
                    "tenant {tenant}'s write limit of {} bytes/s can't take this stream's next \
                     {bytes} bytes before the stream's time is up",
                    limit.write_bytes_per_second
                )));
            }
            tokio::time::sleep(wait.min(RECHECK)).await;
        }
    }

    /// Whether the caller of `metadata` is still allowed `needed` on `tenant`: a key revoked
    /// or expired while its stream is open ends the stream.
    pub fn still_authorized(
        &self,
        metadata: &MetadataMap,
        tenant: &TenantId,
        needed: Role,
    ) -> Result<(), Status> {
        let principal = self.auth.authenticate(metadata, now_ms())?;
        authorize(&principal, tenant, needed)
    }

    /// Runs engine work of `tenant` on the engine pool, in the tenant's turn and within its
    /// `shares`: a call's body, or one step of a stream (an export page). A panic in it is
    /// `INTERNAL`.
    pub async fn on_engine_pool<R: Send + 'static>(
        &self,
        tenant: &TenantId,
        shares: &Shares,
        kind: JobKind,
        work: impl FnOnce() -> Result<R, Status> + Send + 'static,
    ) -> Result<R, Status> {
        // The request's span follows its work onto the pool, so what the engine call logs
        // names the request, its method and tenant.
        let span = tracing::Span::current();
        self.pool
            .run(tenant, shares.engine_threads, kind, move || {
                span.in_scope(work)
            })
            .await
            .unwrap_or_else(|JobPanicked| {
                tracing::error!(tenant = %tenant, "engine work panicked");
                Err(Status::internal("request task failed"))
            })
    }

    /// Runs a call on the tenant named by `resource`, for callers holding at least `A::ROLE`
    /// (the admin token always qualifies). `write_bytes` feeds the tenant's write-rate limit;
    /// past [`BULK_WRITE_BYTES`] the call's engine work is bulk work to the engine pool.
    ///
    /// Once admitted, the call runs to its end, audit event included, in a task of its own:
    /// a client that cancels (a deadline, a reset stream) stops waiting for the answer but
    /// can't leave a committed write or a finished read unaudited.
    pub async fn tenant_call<N: TenantResource, A: Access, R: Send + 'static>(
        self: &Arc<Self>,
        metadata: &MetadataMap,
        method: &'static str,
        resource: &str,
        write_bytes: u64,
        body: impl FnOnce(Scope<N, A>) -> Counted<R> + Send + 'static,
    ) -> Result<R, Status> {
        self.call_on_tenant(
            job_kind_of_write(write_bytes),
            metadata,
            method,
            resource,
            write_bytes,
            body,
        )
        .await
    }

    /// `tenant_call` for work that is bulk whatever its message's size: an import's batches,
    /// whose bytes were charged as they arrived.
    pub async fn bulk_tenant_call<N: TenantResource, A: Access, R: Send + 'static>(
        self: &Arc<Self>,
        metadata: &MetadataMap,
        method: &'static str,
        resource: &str,
        body: impl FnOnce(Scope<N, A>) -> Counted<R> + Send + 'static,
    ) -> Result<R, Status> {
        self.call_on_tenant(JobKind::Bulk, metadata, method, resource, 0, body)
            .await
    }

    #[tracing::instrument(name = "request", skip_all, fields(id = next_request_id(), method = method, tenant = tracing::field::Empty, trace_id = tracing::field::Empty))]
    async fn call_on_tenant<N: TenantResource, A: Access, R: Send + 'static>(
        self: &Arc<Self>,
        kind: JobKind,
        metadata: &MetadataMap,
        method: &'static str,
        resource: &str,
        write_bytes: u64,
        body: impl FnOnce(Scope<N, A>) -> Counted<R> + Send + 'static,
    ) -> Result<R, Status> {
        let needed = A::ROLE;
        let started = Instant::now();
        let principal = match self.auth.authenticate(metadata, now_ms()) {
            Ok(p) => p,
            Err(status) => {
                tracing::warn!(
                    method,
                    resource,
                    reason = status.message(),
                    "unauthenticated request"
                );
                return Err(self.finish_status(method, None, started, status));
            }
        };
        let context = audit_context(&principal, metadata);
        if let Some(trace) = &context.trace_id {
            tracing::Span::current().record("trace_id", trace.as_str());
        }
        let name = match self
            .authorize_resource::<N>(&principal, &context, method, resource, needed)
            .await
        {
            Ok(name) => name,
            Err(status) => return Err(self.finish_status(method, None, started, status)),
        };
        let tenant_id = name.tenant().clone();
        let call = Call {
            tenant_id: tenant_id.clone(),
            principal,
            context,
            method,
            resource: audit_resource(resource),
            write_bytes,
            kind,
        };
        let gate = self.clone();
        let result = tokio::spawn(
            async move { gate.run_on_tenant(call, name, body).await }
                .instrument(tracing::Span::current()),
        )
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, method, "request task failed");
            Err(Status::internal("request task failed"))
        });
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        self.metrics.observe(
            method,
            code_name(code),
            Some(tenant_id.as_str()),
            started.elapsed(),
        );
        result
    }

    /// `resource` parsed and checked against `principal`'s tenant and role. A malformed name
    /// is `INVALID_ARGUMENT`, another tenant's (or too weak a role) `PERMISSION_DENIED`; either
    /// refusal is counted and audited in the caller's own tenant.
    async fn authorize_resource<N: TenantResource>(
        &self,
        principal: &Principal,
        context: &AuditContext,
        method: &'static str,
        resource: &str,
        needed: Role,
    ) -> Result<N, Status> {
        let name = match N::parse(resource) {
            Ok(n) => {
                tracing::Span::current().record("tenant", n.tenant().as_str());
                n
            }
            Err(e) => {
                tracing::info!(
                    method,
                    resource = %audit_resource(resource),
                    principal = %principal.audit_name(),
                    "malformed resource name"
                );
                return Err(self
                    .refuse(principal, context, method, resource, core_status(e))
                    .await);
            }
        };
        if let Err(status) = may_reach(principal, &name, method, needed) {
            tracing::warn!(
                method,
                resource = %audit_resource(resource),
                principal = %principal.audit_name(),
                "permission denied"
            );
            return Err(self
                .refuse(principal, context, method, resource, status)
                .await);
        }
        Ok(name)
    }

    /// A resource named by a later message of a stream already admitted (an import that names
    /// a collection again): checked like the first message's, so naming another tenant's
    /// collection mid-stream is `PERMISSION_DENIED` and audited, not just a mismatch.
    #[tracing::instrument(name = "request", skip_all, fields(id = next_request_id(), method = method, tenant = tracing::field::Empty))]
    pub async fn authorize_stream_resource<N: TenantResource>(
        &self,
        metadata: &MetadataMap,
        method: &'static str,
        resource: &str,
        needed: Role,
    ) -> Result<N, Status> {
        let principal = self.auth.authenticate(metadata, now_ms())?;
        let context = audit_context(&principal, metadata);
        self.authorize_resource(&principal, &context, method, resource, needed)
            .await
    }

    async fn run_on_tenant<N: TenantResource, A: Access, R: Send + 'static>(
        self: Arc<Self>,
        call: Call,
        name: N,
        body: impl FnOnce(Scope<N, A>) -> Counted<R> + Send + 'static,
    ) -> Result<R, Status> {
        let info = self
            .engine
            .tenant_info(&call.tenant_id)
            .map_err(engine_status)?;
        let principal = call.principal.audit_name();
        let shares = self.shares.with(info.share);
        // A tenant's rate limit is its own callers' budget. The operator reading a tenant (its
        // trail, an export for a backup) is not charged to it, so a tenant that floods can still
        // be looked into; the operator's writes are, as the write limit guards the disk every
        // tenant shares (a restore runs under it). Both still hold a slot of the tenant's.
        let charged = !(matches!(call.principal, Principal::Admin) && A::ROLE == Role::Read);
        let admitted = self
            .in_flight
            .try_take(&call.tenant_id, shares.requests_in_flight)
            .and_then(|slot| {
                if !charged {
                    return Ok(slot);
                }
                self.limits
                    .admit(
                        &call.tenant_id,
                        &principal,
                        info.rate_limit,
                        call.write_bytes,
                    )
                    .map(|()| slot)
            });
        let tenant = self.handle(&call.tenant_id).await?;
        let mut audit = Audit {
            tenant: tenant.clone(),
            principal,
            context: call.context,
            method: call.method,
            resource: call.resource,
        };
        let _in_flight = match admitted {
            Ok(slot) => slot,
            Err(status) => {
                return Err(self
                    .refuse_over_limit(&call.tenant_id, |_| audit, status)
                    .await);
            }
        };
        // Calls that may write get a handle whose writes carry their audit event.
        let writer = (A::ROLE != Role::Read).then(|| {
            tenant.audited(AuditStamp {
                principal: audit.principal.clone(),
                operation: call.method.to_owned(),
                resource: audit.resource.clone(),
                context: audit.context.clone(),
            })
        });
        // Reads collect the ids they return where the collection records them (`audit_reads`).
        let handle = writer.clone().unwrap_or_else(|| tenant.logging_reads());
        let scope = Scope {
            name,
            // The request's handle can do what its role can, no more; an end user's reads only
            // what it is among the readers of, where records carry readers.
            tenant: match end_user_of(&call.principal) {
                Some(user) => handle.reading_as(reader_of(user)).narrow(),
                None => handle.narrow(),
            },
        };
        // The tenant is held for the whole of the call's engine work: a deletion can't land
        // between two of its operations (it waits for the call, which never waits on a client).
        let held = scope.tenant.clone();
        let reads = scope.tenant.clone();
        let end_user_collection = match (end_user_of(&call.principal), scope.name.reach()) {
            (Some(_), Reach::Records(collection)) => Some(collection.clone()),
            _ => None,
        };
        // The call's audit event is appended by the job itself, on the engine pool: an append
        // can wait in its tenant group's write queue behind another tenant's synced write,
        // which must cost only this call's thread, never a runtime worker.
        let method = call.method;
        self.on_engine_pool(&call.tenant_id, &shares, call.kind, move || {
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let _whole_call = held.hold().map_err(engine_status)?;
                if let Some(collection) = &end_user_collection {
                    refuse_cache_to_end_user(&held, collection)?;
                }
                body(scope)
            }));
            let outcome = ran.unwrap_or_else(|_| {
                tracing::error!(method, "engine work panicked");
                Err(Status::internal("request task failed"))
            });
            audit.context.read_ids = reads.take_read_ids();
            let audited = writer.is_some_and(|w| w.audited_writes() > 0);
            match &outcome {
                // Its writes carried their own events.
                Ok(_) if audited => {}
                Ok((_, count)) => audit.append_here(tonic::Code::Ok, *count),
                Err(status) => audit.append_here(status.code(), 0),
            }
            outcome.map(|(r, _)| r)
        })
        .await
    }

    /// `id`'s handle. Opening a closed group is file I/O: it goes to the blocking pool, so an
    /// async worker never waits on it.
    async fn handle(&self, id: &TenantId) -> Result<TenantHandle, Status> {
        // Full access: the gate appends audit events for every role; the request gets a
        // narrowed copy of its role (`run_on_tenant`).
        let grant = self
            .authority
            .admin(id, "the gate: activation and the audit trail");
        if let Some(handle) = self.engine.tenant_if_active(&grant) {
            return Ok(handle);
        }
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.tenant(&grant))
            .await
            .map_err(|_| Status::internal("request task failed"))?
            .map_err(engine_status)
    }

    /// Runs an admin-only call (tenant lifecycle). A tenant key is refused, and the refusal is
    /// audited in the key's own tenant.
    #[tracing::instrument(name = "request", skip_all, fields(id = next_request_id(), method = method))]
    pub async fn admin_call<R: Send + 'static>(
        self: &Arc<Self>,
        metadata: &MetadataMap,
        method: &'static str,
        resource: &str,
        body: impl FnOnce(&Engine) -> Result<R, Status> + Send + 'static,
    ) -> Result<R, Status> {
        let started = Instant::now();
        let principal = match self.auth.authenticate(metadata, now_ms()) {
            Ok(p) => p,
            Err(status) => return Err(self.finish_status(method, None, started, status)),
        };
        if let Principal::Tenant(caller) = &principal {
            let status = Status::permission_denied("this method needs the admin token");
            tracing::warn!(method, principal = %caller.name, "permission denied");
            let context = audit_context(&principal, metadata);
            let status = self
                .refuse(&principal, &context, method, resource, status)
                .await;
            return Err(self.finish_status(method, None, started, status));
        }
        let admin_context = audit_context(&principal, metadata);
        let gate = self.clone();
        let resource = resource.to_owned();
        // In a task of its own, like tenant calls: the audit event is written even if the
        // caller goes away.
        let result = tokio::spawn(async move {
            let engine = gate.engine.clone();
            let result = tokio::task::spawn_blocking(move || body(&engine))
                .await
                .map_err(|_| Status::internal("request task failed"))
                .and_then(|r| r);
            let code = result
                .as_ref()
                .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
            // Control calls are audited in the tenant they concern, when it exists afterwards.
            if let Ok(name) = resource.parse::<TenantName>()
                && let Ok(tenant) = gate.handle(&name.tenant).await
            {
                Audit {
                    tenant,
                    principal: Principal::Admin.audit_name(),
                    context: admin_context,
                    method,
                    resource: audit_resource(&resource),
                }
                .write(&gate.audit, code, 0)
                .await;
            }
            result
        })
        .await
        .unwrap_or_else(|_| Err(Status::internal("request task failed")));
        let code = result
            .as_ref()
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        self.metrics
            .observe(method, code_name(code), None, started.elapsed());
        result
    }

    /// Answers a refused attempt by a key: it counts against the rate limit of the key's own
    /// tenant (so refused calls can't be used to flood the server or the audit trail past the
    /// tenant's limit; over it, the answer is `RESOURCE_EXHAUSTED`), and is written into that
    /// tenant's audit trail. Admins have no tenant; their refusals are only logged.
    async fn refuse(
        &self,
        principal: &Principal,
        context: &AuditContext,
        method: &'static str,
        resource: &str,
        status: Status,
    ) -> Status {
        let Principal::Tenant(key) = principal else {
            return status;
        };
        let info = match self.engine.tenant_info(&key.tenant) {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(error = %e, "cannot audit a refused request");
                return status;
            }
        };
        let event = |tenant| Audit {
            tenant,
            principal: principal.audit_name(),
            context: context.clone(),
            method,
            resource: audit_resource(resource),
        };
        if let Err(limited) = self
            .limits
            .admit(&key.tenant, &key.name, info.rate_limit, 0)
        {
            return self.refuse_over_limit(&key.tenant, event, limited).await;
        }
        match self.handle(&key.tenant).await {
            Ok(tenant) => event(tenant).write(&self.audit, status.code(), 0).await,
            Err(e) => tracing::error!(error = %e.message(), "cannot audit a refused request"),
        }
        status
    }

    /// Answers a request refused for its tenant's limits: counted, audited at most once a second
    /// with the number refused since ([`Refusals`]), and sent back only once its turn has come
    /// (the wait its refusal names, [`pushback_of`]: when the limit could admit it after the
    /// callers refused before it), held between
    /// [`OVER_LIMIT_PUSHBACK`] and [`LONGEST_PUSHBACK`]. A flood past the limits so costs its
    /// tenant's trail one event a second, and a client looping on refusals is slowed to about
    /// the rate its limit admits, without holding a thread or a slot.
    async fn refuse_over_limit(
        &self,
        tenant: &TenantId,
        event: impl FnOnce(TenantHandle) -> Audit,
        status: Status,
    ) -> Status {
        if let Some(refusals) = self.over_limit.count(tenant, now_ms()) {
            match self.handle(tenant).await {
                Ok(handle) => {
                    event(handle)
                        .write(&self.audit, status.code(), refusals)
                        .await
                }
                Err(e) => tracing::error!(error = %e.message(), "cannot audit a refused request"),
            }
        }
        let wait = pushback_of(&status);
        let hold = wait
            .unwrap_or_default()
            .clamp(OVER_LIMIT_PUSHBACK, LONGEST_PUSHBACK);
        tokio::time::sleep(hold).await;
        match wait {
            // What is left of the wait once the refusal is sent.
            Some(wait) => pushed_back(status, wait.saturating_sub(hold)),
            None => status,
        }
    }

    fn finish_status(
        &self,
        method: &'static str,
        tenant: Option<&str>,
        started: Instant,
        status: Status,
    ) -> Status {
        self.metrics
            .observe(method, code_name(status.code()), tenant, started.elapsed());
        status
    }
}

/// How long a request over its tenant's limits waits for its refusal. The wait holds no thread
/// and no slot, but a client flooding in a loop (each call sent when the last one returned) is
/// slowed to a few calls a second per connection instead of costing the server tens of
/// thousands of refusals a second.
const OVER_LIMIT_PUSHBACK: std::time::Duration = std::time::Duration::from_millis(100);

/// The longest a refusal is held: past a write limit a client looping on 785 KB upserts at a
/// 256 KiB/s limit was refused about 110 times a second at [`OVER_LIMIT_PUSHBACK`], each
/// refused stream pushing up to its flow-control window of body at the server's request
/// threads; held until its bucket could admit it, it tries about once a second, and many
/// such clients of one tenant are told turns one after another (`limits`). Longer holds would
/// only keep streams open; the rest of the wait goes back in the refusal's trailer.
const LONGEST_PUSHBACK: std::time::Duration = std::time::Duration::from_secs(1);

/// The method name metrics give requests refused before their message was decoded.
const BEFORE_DECODING: &str = "(refused before decoding)";

/// A write message larger than this is bulk work to the engine pool: it carries tens of records
/// (about 40 of 384 dimensions), each a graph insert of 0.1–0.5 ms, so its work takes tens of
/// milliseconds of CPU.
const BULK_WRITE_BYTES: u64 = 64 << 10;

/// Whether a write of `write_bytes` is bulk work ([`BULK_WRITE_BYTES`]): also the writes whose
/// messages are decoded on the engine pool (`undecoded`).
pub(crate) fn is_bulk_write(write_bytes: u64) -> bool {
    write_bytes > BULK_WRITE_BYTES
}

/// The engine pool's kind of a call that writes `write_bytes` (0 for calls that write nothing).
fn job_kind_of_write(write_bytes: u64) -> JobKind {
    if is_bulk_write(write_bytes) {
        JobKind::Bulk
    } else {
        JobKind::Request
    }
}

/// What a write's first bytes tell the gate ([`Gate::check_unread_write`]).
#[derive(Debug)]
pub enum UnreadWrite {
    /// Over its tenant's limits: the answer, sent before the rest of the message is read.
    Refused(Status),
    /// Its caller may make it, and its tenant can admit it now (the usual path still decides,
    /// and takes what it costs). A large write holds its bytes of its tenant's in-flight share
    /// until this is dropped.
    Admissible(Option<Slot>),
    /// Left to the usual path, which reads the message and decides.
    Undecided,
}

/// One admitted tenant call, as the gate runs and audits it.
struct Call {
    tenant_id: TenantId,
    principal: Principal,
    context: AuditContext,
    method: &'static str,
    /// Already escaped and bounded by [`audit_resource`].
    resource: String,
    write_bytes: u64,
    kind: JobKind,
}

/// Whether `principal` may act on `tenant` with `needed` rights. A key of another tenant gets
/// the same answer whether or not `tenant` exists, so keys can't probe for tenants.
fn authorize(principal: &Principal, tenant: &TenantId, needed: Role) -> Result<(), Status> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Tenant(caller) if &caller.tenant != tenant && !fault::SKIP_TENANT_CHECK => Err(
            Status::permission_denied("these credentials belong to another tenant"),
        ),
        Principal::Tenant(caller) if !caller.role.allows(needed) => {
            Err(Status::permission_denied(format!(
                "these credentials have role {}, the method needs {needed}",
                caller.role
            )))
        }
        Principal::Tenant(_) => Ok(()),
    }
}

/// Whether `principal` may call `method` on `name` with role `needed`: its tenant and role,
/// and within its tenant, for an end user, only what its token grants.
fn may_reach<N: TenantResource>(
    principal: &Principal,
    name: &N,
    method: &str,
    needed: Role,
) -> Result<(), Status> {
    authorize(principal, name.tenant(), needed)?;
    end_user_of(principal).map_or(Ok(()), |user| user.may(method, name.reach()))
}

/// The end user a principal speaks for, if it is one.
fn end_user_of(principal: &Principal) -> Option<&EndUser> {
    match principal {
        Principal::Tenant(TenantCaller {
            end_user: Some(user),
            ..
        }) => Some(user),
        _ => None,
    }
}

/// The reader an end user's reads are bound to: its user, groups and session.
fn reader_of(user: &EndUser) -> Reader {
    let reader = Reader::new(&user.subject, &user.groups);
    match &user.session {
        Some(session) => reader.in_session(session),
        None => reader,
    }
}

/// A semantic cache's entries are per-user answers the cache scopes; its collection read as
/// records would serve one user's answers to another, so end users never reach it.
fn refuse_cache_to_end_user<A: Access>(
    tenant: &TenantHandle<A>,
    collection: &CollectionId,
) -> Result<(), Status> {
    let spec = tenant.collection_spec(collection).map_err(engine_status)?;
    if spec.kind == CollectionKind::SemanticCache {
        return Err(Status::permission_denied(
            "end-user tokens don't reach a semantic cache's collection",
        ));
    }
    Ok(())
}

/// One audit event about to be written to one tenant's log.
struct Audit {
    tenant: TenantHandle,
    principal: String,
    context: AuditContext,
    method: &'static str,
    /// Already escaped and bounded by [`audit_resource`].
    resource: String,
}

/// Longest resource string kept in an audit event or a log line, in bytes.
const MAX_AUDITED_RESOURCE_BYTES: usize = 512;

/// The resource as sent, made safe to store and display: control characters escaped (a NUL or
/// newline can't forge a second line in a trail viewer) and cut to a bounded length.
fn audit_resource(resource: &str) -> String {
    let mut out = String::with_capacity(resource.len().min(MAX_AUDITED_RESOURCE_BYTES));
    for c in resource.chars() {
        let kept = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > MAX_AUDITED_RESOURCE_BYTES {
            out.truncate(kept);
            out.push('…');
            break;
        }
    }
    out
}

impl Audit {
    fn entry(self, code: tonic::Code, record_count: u64) -> (TenantHandle, AuditEntry) {
        let entry = AuditEntry {
            principal: self.principal,
            operation: self.method.to_owned(),
            resource: self.resource,
            outcome: code_name(code).to_owned(),
            record_count,
            context: self.context,
        };
        (self.tenant, entry)
    }

    /// From a runtime worker: through the writer, which never blocks the worker for long.
    async fn write(self, writer: &AuditWriter, code: tonic::Code, record_count: u64) {
        let (tenant, entry) = self.entry(code, record_count);
        writer.append(tenant, entry).await;
    }

    /// On a thread that may block (the call's engine-pool job): appended there and then.
    fn append_here(self, code: tonic::Code, record_count: u64) {
        let (tenant, entry) = self.entry(code, record_count);
        append_logged(&tenant, vec![entry]);
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_engine::Write;

    fn key(tenant: &str, role: Role) -> Principal {
        Principal::Tenant(TenantCaller {
            tenant: TenantId::new(tenant).unwrap(),
            role,
            name: "k1".into(),
            end_user: None,
        })
    }

    /// One record of 384 dimensions is ~1.6 KB, the write-flood's 500 of them 785 KB.
    #[test]
    fn a_write_of_tens_of_records_is_bulk_work_and_one_record_is_not() {
        for (bytes, kind) in [
            (0, JobKind::Request),
            (1_600, JobKind::Request),
            (64 * 1024, JobKind::Request),
            (64 * 1024 + 1, JobKind::Bulk),
            (785_830, JobKind::Bulk),
        ] {
            assert_eq!(job_kind_of_write(bytes), kind, "{bytes} bytes");
        }
    }

    #[test]
    fn audited_resources_are_escaped_and_bounded() {
        assert_eq!(audit_resource("tenants/a"), "tenants/a");
        assert_eq!(audit_resource("tenants/a\0b\nc"), "tenants/a\\u{0}b\\nc");
        let long = audit_resource(&"é".repeat(1000));
        assert!(long.len() <= MAX_AUDITED_RESOURCE_BYTES + '…'.len_utf8());
        assert!(long.ends_with('…'));
        // An odd byte count never lands on the (even) bound: it is cut all the same.
        let odd = audit_resource(&format!("a{}", "é".repeat(1000)));
        assert_eq!(odd.len(), MAX_AUDITED_RESOURCE_BYTES - 1 + '…'.len_utf8());
        assert!(odd.ends_with('…'));
        let exactly = "r".repeat(MAX_AUDITED_RESOURCE_BYTES);
        assert_eq!(
            audit_resource(&exactly),
            exactly,
            "the bound itself is kept whole"
        );
        let one_more = audit_resource(&format!("{exactly}r"));
        assert_eq!(one_more, format!("{exactly}…"));
    }

    #[test]
    fn a_tenants_own_share_overrides_each_default_it_sets() {
        let defaults = Shares {
            requests_in_flight: 64,
            open_streams: 8,
            engine_threads: 1,
            write_bytes_in_flight: 1 << 20,
        };
        assert_eq!(defaults.with(ServerShare::default()), defaults);
        let own = ServerShare {
            requests_in_flight: 0,
            open_streams: 2,
            engine_threads: 3,
            write_bytes_in_flight: 0,
        };
        assert_eq!(
            defaults.with(own),
            Shares {
                requests_in_flight: 64,
                open_streams: 2,
                engine_threads: 3,
                write_bytes_in_flight: 1 << 20,
            }
        );
        let own = ServerShare {
            write_bytes_in_flight: 4 << 20,
            ..ServerShare::default()
        };
        assert_eq!(
            defaults.with(own),
            Shares {
                write_bytes_in_flight: 4 << 20,
                ..defaults
            }
        );
    }

    const ADMIN: &str = "gate-test-admin-token";

    /// A gate on a fresh engine holding tenant `t`.
    fn gate() -> (Arc<Gate>, tempfile::TempDir) {
        use bulkhead_engine::{EngineConfig, RateLimit, TenantSettings};
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineConfig::new(dir.path())).unwrap());
        engine
            .create_tenant(&TenantId::new("t").unwrap(), &TenantSettings::default())
            .unwrap();
        let pool = FairPool::new(crate::admission::PoolSize {
            share_threads: 1,
            borrowed_threads: 1,
        })
        .unwrap();
        let gate = Gate::new(
            engine,
            ADMIN,
            None,
            Metrics::new(false),
            pool,
            Shares {
                requests_in_flight: 4,
                open_streams: 1,
                engine_threads: 1,
                write_bytes_in_flight: 1 << 20,
            },
            RateDefaults {
                tenant: RateLimit::default(),
                principal_share: 1.0,
                shared_write_bytes_per_second: 0,
            },
        );
        (Arc::new(gate), dir)
    }

    fn admin_metadata() -> MetadataMap {
        let mut md = MetadataMap::new();
        md.insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
        md
    }

    /// Runs a WRITE-role call on tenant `t` with `body`, and returns its outcome and the
    /// tenant's audit trail afterwards as (operation, outcome, record count).
    async fn write_call(
        body: impl FnOnce(Scope<TenantName, Write>) -> Counted<()> + Send + 'static,
    ) -> (Result<(), Status>, Vec<(String, String, u64)>) {
        let (gate, _dir) = gate();
        let outcome = gate
            .tenant_call(&admin_metadata(), "Test/Write", "tenants/t", 0, body)
            .await;
        let trail = gate
            .engine
            .tenant(
                &gate
                    .authority
                    .admin(&TenantId::new("t").unwrap(), "gate test"),
            )
            .unwrap()
            .list_audit(None, None, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.operation, e.outcome, e.record_count))
            .collect();
        (outcome, trail)
    }

    fn create_collection(scope: &Scope<TenantName, Write>) -> Result<(), Status> {
        let id = bulkhead_core::CollectionId::new("c").unwrap();
        let spec = bulkhead_engine::CollectionSpec::new(4, bulkhead_core::Metric::Cosine);
        scope
            .tenant
            .create_collection(&id, &spec)
            .map(drop)
            .map_err(engine_status)
    }

    /// What the engine call logs carries its request's span, though it runs on a pool thread.
    #[tokio::test]
    async fn engine_work_runs_inside_its_requests_span() {
        // Global, so the pool's threads see it (nextest runs each test in its own process).
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        let (gate, _dir) = gate();
        let outcome = gate
            .tenant_call(
                &admin_metadata(),
                "Test/Read",
                "tenants/t",
                0,
                |_: Scope<TenantName, bulkhead_engine::Read>| {
                    let current = tracing::Span::current();
                    Ok((current.metadata().map(|m| m.name()), 0))
                },
            )
            .await;
        assert_eq!(outcome.unwrap(), Some("request"));
    }

    /// A write that committed carries its own event, so a call that fails after it still
    /// leaves the write in the trail (besides the failure).
    #[tokio::test]
    async fn a_write_committed_before_its_call_fails_is_audited() {
        let (outcome, trail) = write_call(|scope| {
            create_collection(&scope)?;
            Err(Status::internal("failed after the write"))
        })
        .await;
        assert_eq!(outcome.unwrap_err().code(), tonic::Code::Internal);
        assert_eq!(
            trail,
            vec![
                ("Test/Write".into(), "OK".into(), 0),
                ("Test/Write".into(), "INTERNAL".into(), 0)
            ]
        );
    }

    /// A write call audits once: through its write when it made one, by the gate when not.
    #[tokio::test]
    async fn a_write_call_is_audited_once_whether_or_not_it_wrote() {
        let (outcome, trail) =
            write_call(|scope| create_collection(&scope).map(|()| ((), 0))).await;
        outcome.unwrap();
        assert_eq!(trail, vec![("Test/Write".into(), "OK".into(), 0)]);
        let (outcome, trail) = write_call(|_| Ok(((), 3))).await;
        outcome.unwrap();
        assert_eq!(trail, vec![("Test/Write".into(), "OK".into(), 3)]);
    }

    /// A call whose engine work panics is answered INTERNAL and still leaves its event: the
    /// job that appends it catches the panic first.
    #[tokio::test]
    async fn a_call_whose_work_panics_is_answered_internal_and_audited() {
        let (outcome, trail) = write_call(|_| panic!("engine bug")).await;
        assert_eq!(outcome.unwrap_err().code(), tonic::Code::Internal);
        assert_eq!(trail, vec![("Test/Write".into(), "INTERNAL".into(), 0)]);
    }

    /// A deletion that starts while a call runs waits for the call to end: every operation of
    /// the call reaches its tenant, none fails NOT_FOUND halfway through.
    #[tokio::test]
    async fn a_deletion_waits_for_the_call_running_on_its_tenant() {
        use std::time::Duration;
        let (gate, _dir) = gate();
        let engine = gate.engine.clone();
        let (deleted, deletion) = std::sync::mpsc::channel();
        let outcome = gate
            .tenant_call(
                &admin_metadata(),
                "Test/Write",
                "tenants/t",
                0,
                move |scope: Scope<TenantName, Write>| {
                    create_collection(&scope)?;
                    std::thread::spawn(move || {
                        let t = TenantId::new("t").unwrap();
                        deleted.send(engine.delete_tenant(&t)).unwrap();
                    });
                    // Unheld, the deletion finishes well within this.
                    std::thread::sleep(Duration::from_millis(200));
                    let record = bulkhead_engine::NewRecord {
                        id: bulkhead_core::RecordId::new("r").unwrap(),
                        vector: vec![1.0, 0.0, 0.0, 0.0],
                        text: None,
                        metadata: Default::default(),
                        ttl: None,
                    };
                    let id = bulkhead_core::CollectionId::new("c").unwrap();
                    let written = scope.tenant.upsert(&id, vec![record]);
                    written.map(|n| ((), n as u64)).map_err(engine_status)
                },
            )
            .await;
        assert!(outcome.is_ok(), "{outcome:?}");
        let deleted = deletion.recv_timeout(Duration::from_secs(10));
        deleted.expect("the deletion ends after the call").unwrap();
    }

    #[test]
    fn keys_reach_only_their_tenant_within_their_role() {
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        assert!(authorize(&key("a", Role::Read), &a, Role::Read).is_ok());
        let denied = authorize(&key("a", Role::TenantAdmin), &b, Role::Read).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let ghost = TenantId::new("does-not-exist").unwrap();
        let denied_ghost = authorize(&key("a", Role::TenantAdmin), &ghost, Role::Read).unwrap_err();
        assert_eq!(
            denied.message(),
            denied_ghost.message(),
            "no tenant probing"
        );
        assert_eq!(
            authorize(&key("a", Role::Read), &a, Role::Write)
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
        assert!(authorize(&Principal::Admin, &b, Role::TenantAdmin).is_ok());
    }
}
