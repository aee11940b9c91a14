//! `MemoryService`: sessions, an agent's or a chat's working memory. The session is named by
//! the request's resource, and the engine reaches it only through the session handle the
//! tenant handle gives for that one name (`TenantHandle::session`), so no call spans two
//! sessions; whether a caller may name the session at all (an end-user token bound to another
//! session may not) is the gate's decision.

use std::sync::Arc;

use bulkhead_core::{SessionId, SessionName, TenantName};
use bulkhead_engine::{Access, KeyAdmin, Read, SessionHandle, Write};
use bulkhead_proto::v1 as pb;
use bulkhead_wire::engine::{
    memory_to_pb, new_memory, recall, recalled_to_pb, sequence_token, session_spec, session_to_pb,
};
use pb::memory_service_server::MemoryService;
use tonic::{Request, Response, Status};

use crate::gate::{Gate, Scope};
use crate::status::{core_status, engine_status, wire_status};
use crate::undecoded::WriteMessage;

#[derive(Debug)]
pub struct MemoryApi {
    pub gate: Arc<Gate>,
}

/// The session a call names, through its tenant's handle: the only way the service reaches
/// a session's memory.
fn session_of<A: Access>(scope: &Scope<SessionName, A>) -> Result<SessionHandle<A>, Status> {
    scope
        .tenant
        .session(&scope.name.session)
        .map_err(engine_status)
}

#[tonic::async_trait]
impl MemoryService for MemoryApi {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let (md, _, req) = request.into_parts();
        let parent = req.parent.clone();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/CreateSession",
                &parent,
                0,
                move |scope: Scope<TenantName, Write>| {
                    let id = SessionId::new(req.session_id.clone()).map_err(core_status)?;
                    let spec = session_spec(&req).map_err(wire_status)?;
                    let info = scope
                        .tenant
                        .create_session(&id, &spec)
                        .map_err(engine_status)?;
                    let name = SessionName {
                        tenant: scope.name.tenant,
                        session: id,
                    };
                    Ok((session_to_pb(&name, &info), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/GetSession",
                &req.name,
                0,
                move |scope: Scope<SessionName, Read>| {
                    let info = session_of(&scope)?.info().map_err(engine_status)?;
                    Ok((session_to_pb(&scope.name, &info), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let (md, message) = WriteMessage::of(request, |m: &pb::AppendRequest| &m.session);
        let name = message.name();
        // Its whole message, as `write_admission` reads it from the message's start.
        let bytes = message.bytes();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/Append",
                &name,
                bytes,
                move |scope: Scope<SessionName, Write>| {
                    let req = message.decode()?;
                    let items = req
                        .items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| new_memory(i, item))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(wire_status)?;
                    let stored = session_of(&scope)?.append(items).map_err(engine_status)?;
                    let sequences: Vec<u64> = stored.iter().map(|m| m.sequence).collect();
                    let count = sequences.len() as u64;
                    Ok((pb::AppendResponse { sequences }, count))
                },
            )
            .await
            .map(Response::new)
    }

    async fn recall(
        &self,
        request: Request<pb::RecallRequest>,
    ) -> Result<Response<pb::RecallResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let name = req.session.clone();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/Recall",
                &name,
                0,
                move |scope: Scope<SessionName, Read>| {
                    let recall = recall(req).map_err(wire_status)?;
                    let found = session_of(&scope)?.recall(&recall).map_err(engine_status)?;
                    let count = found.len() as u64;
                    let items = found.into_iter().map(recalled_to_pb).collect();
                    Ok((pb::RecallResponse { items }, count))
                },
            )
            .await
            .map(Response::new)
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let name = req.session.clone();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/History",
                &name,
                0,
                move |scope: Scope<SessionName, Read>| {
                    let after = sequence_token(&req.page_token).map_err(wire_status)?;
                    let size =
                        super::page_size(req.page_size, 100, bulkhead_engine::MAX_HISTORY_PAGE)?;
                    let page = session_of(&scope)?
                        .history(after, size)
                        .map_err(engine_status)?;
                    let count = page.items.len() as u64;
                    Ok((
                        pb::HistoryResponse {
                            items: page.items.into_iter().map(memory_to_pb).collect(),
                            next_page_token: page
                                .next_after
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                        },
                        count,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<()>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/EndSession",
                &req.name,
                0,
                move |scope: Scope<SessionName, Write>| {
                    session_of(&scope)?.end().map_err(engine_status)?;
                    Ok(((), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let parent = req.parent.clone();
        self.gate
            .tenant_call(
                &md,
                "MemoryService/ListSessions",
                &parent,
                0,
                move |scope: Scope<TenantName, KeyAdmin>| {
                    let after = super::page_token(&req.page_token)?
                        .map(SessionId::new)
                        .transpose()
                        .map_err(|_| {
                            Status::invalid_argument("page_token: not one this server gave")
                        })?;
                    let size =
                        super::page_size(req.page_size, 100, bulkhead_engine::MAX_SESSION_PAGE)?;
                    let page = scope
                        .tenant
                        .list_sessions(after.as_ref(), size)
                        .map_err(engine_status)?;
                    let count = page.sessions.len() as u64;
                    let sessions = page
                        .sessions
                        .iter()
                        .map(|s| {
                            let name = SessionName {
                                tenant: scope.name.tenant.clone(),
                                session: s.id.clone(),
                            };
                            session_to_pb(&name, s)
                        })
                        .collect();
                    Ok((
                        pb::ListSessionsResponse {
                            sessions,
                            next_page_token: page
                                .next_after
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                        },
                        count,
                    ))
                },
            )
            .await
            .map(Response::new)
    }
}
