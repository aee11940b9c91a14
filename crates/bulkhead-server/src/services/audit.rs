//! `AuditService`: a tenant's own audit trail. A tenant key reads only its own tenant's events
//! (the gate refuses any other path).

use std::sync::Arc;

use bulkhead_core::TenantName;
use bulkhead_engine::{AuditFilter, Read};
use bulkhead_proto::v1 as pb;
use pb::audit_service_server::AuditService;
use tonic::{Request, Response, Status};

use crate::gate::{Gate, Scope};
use crate::status::{engine_status, wire_status};
use bulkhead_wire::{timestamp_from_ms, timestamp_to_ms};

/// Most events one ListAuditEvents call reads; past it, the page ends early with a token to
/// continue from (a `start_time` that matches nothing can't make one call read a whole trail).
const AUDIT_SCAN_BUDGET: usize = 10_000;

/// Longest user or session a listing may filter by.
const MAX_FILTER_BYTES: usize = 256;

#[derive(Debug)]
pub struct AuditApi {
    pub gate: Arc<Gate>,
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "AuditService/ListAuditEvents",
                &req.parent.clone(),
                0,
                move |scope: Scope<TenantName, Read>| {
                    let size = super::page_size(req.page_size, 100, 1000)?;
                    let after = super::page_token(&req.page_token)?
                        .map(|t| {
                            t.parse::<u64>()
                                .map_err(|_| Status::invalid_argument("page_token is not valid"))
                        })
                        .transpose()?;
                    let since = req
                        .start_time
                        .as_ref()
                        .map(timestamp_to_ms)
                        .transpose()
                        .map_err(wire_status)?;
                    for (field, value) in [("user", &req.user), ("session", &req.session)] {
                        if value.len() > MAX_FILTER_BYTES {
                            return Err(Status::invalid_argument(format!(
                                "{field}: at most {MAX_FILTER_BYTES} bytes"
                            )));
                        }
                    }
                    let filter = AuditFilter {
                        since_ms: since,
                        user: (!req.user.is_empty()).then_some(req.user),
                        session: (!req.session.is_empty()).then_some(req.session),
                    };
                    let page = scope
                        .tenant
                        .list_audit_page(after, &filter, size + 1, AUDIT_SCAN_BUDGET)
                        .map_err(engine_status)?;
                    let mut events = page.events;
                    let more = events.len() > size;
                    events.truncate(size);
                    let next_page_token = match (more, events.last(), page.resume_after) {
                        (true, Some(e), _) => e.sequence.to_string(),
                        (false, _, Some(resume)) => resume.to_string(),
                        _ => String::new(),
                    };
                    let n = events.len() as u64;
                    let events = events
                        .into_iter()
                        .map(|e| pb::AuditEvent {
                            sequence: e.sequence,
                            time: Some(timestamp_from_ms(e.time_ms)),
                            principal: e.principal,
                            method: e.operation,
                            resource: e.resource,
                            outcome: e.outcome,
                            record_count: e.record_count,
                            user: e.context.user.unwrap_or_default(),
                            session: e.context.session.unwrap_or_default(),
                            trace_id: e.context.trace_id.unwrap_or_default(),
                            record_ids: e.context.read_ids,
                        })
                        .collect();
                    Ok((
                        pb::ListAuditEventsResponse {
                            events,
                            next_page_token,
                        },
                        n,
                    ))
                },
            )
            .await
            .map(Response::new)
    }
}
