//! Sessions from the SDK: a [`SessionClient`] is fixed to one session of one tenant when it is
//! made, like a [`TenantClient`](crate::TenantClient) is to its tenant, and no method takes a
//! session id, so code holding it can't address another session. An end user's backend builds
//! one from a token bound to the session ([`Client::session`](crate::Client::session)); the
//! server refuses that token everywhere else anyway.

use std::time::Duration;

use bulkhead_core::{Metadata, Metric, SessionId, SessionName, TenantId, TenantName};
use bulkhead_proto::v1 as pb;
use pb::memory_service_client::MemoryServiceClient;

use crate::connection::{Connection, Credential};
use crate::error::Result;
use crate::pages;

/// Sessions or items fetched per page.
const PAGE: i32 = 500;

/// What a session is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// The session ends after this long without an append, recall or history read.
    pub idle_ttl: Duration,
    /// The session ends this long after its creation, at most 30 days.
    pub absolute_ttl: Duration,
    /// The length of item vectors; 0 for a session without vectors.
    pub dimension: u32,
    pub metric: Metric,
}

impl SessionOptions {
    /// A session of `dimension`-long cosine vectors, ending after `idle_ttl` idle or
    /// `absolute_ttl` in all.
    pub fn new(dimension: u32, idle_ttl: Duration, absolute_ttl: Duration) -> Self {
        Self {
            idle_ttl,
            absolute_ttl,
            dimension,
            metric: Metric::Cosine,
        }
    }
}

/// What a memory item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    Turn,
    ToolResult,
    RetrievedChunks,
}

/// One item to append to a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// Unique within the session when set.
    pub id: Option<String>,
    pub kind: MemoryKind,
    pub text: String,
    pub vector: Option<Vec<f32>>,
    pub metadata: Metadata,
    pub chunk_ids: Vec<String>,
}

impl Memory {
    pub fn new(kind: MemoryKind, text: impl Into<String>) -> Self {
        Self {
            id: None,
            kind,
            text: text.into(),
            vector: None,
            metadata: Metadata::new(),
            chunk_ids: Vec::new(),
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn with_vector(mut self, vector: Vec<f32>) -> Self {
        self.vector = Some(vector);
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: bulkhead_core::Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    pub fn with_chunk_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.chunk_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    fn into_pb(self) -> pb::MemoryItem {
        pb::MemoryItem {
            id: self.id.unwrap_or_default(),
            kind: match self.kind {
                MemoryKind::Turn => pb::MemoryKind::Turn,
                MemoryKind::ToolResult => pb::MemoryKind::ToolResult,
                MemoryKind::RetrievedChunks => pb::MemoryKind::RetrievedChunks,
            }
            .into(),
            text: self.text,
            vector: self.vector.unwrap_or_default(),
            metadata: bulkhead_wire::metadata_to_pb(self.metadata),
            chunk_ids: self.chunk_ids,
            ..Default::default()
        }
    }
}

/// A similarity search among a session's recent items.
#[derive(Debug, Clone, PartialEq)]
pub struct Recall {
    pub vector: Vec<f32>,
    pub top_k: u32,
    /// Only the last this many items.
    pub last_items: Option<u64>,
    /// Only items appended at most this long ago.
    pub max_age: Option<Duration>,
}

impl Recall {
    pub fn new(vector: Vec<f32>, top_k: u32) -> Self {
        Self {
            vector,
            top_k,
            last_items: None,
            max_age: None,
        }
    }

    pub fn within_last(mut self, items: u64) -> Self {
        self.last_items = Some(items);
        self
    }

    pub fn within(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

pub(crate) async fn create(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
    session: &str,
    options: &SessionOptions,
) -> Result<pb::Session> {
    let request = pb::CreateSessionRequest {
        parent: TenantName {
            tenant: tenant.clone(),
        }
        .to_string(),
        session_id: SessionId::new(session)?.to_string(),
        idle_ttl_seconds: options.idle_ttl.as_secs() as i64,
        absolute_ttl_seconds: options.absolute_ttl.as_secs() as i64,
        dimension: options.dimension,
        metric: bulkhead_wire::metric_to_pb(options.metric).into(),
    };
    connection
        .call(credential, request, |channel, r| async move {
            MemoryServiceClient::new(channel).create_session(r).await
        })
        .await
}

/// Every live session of `tenant` (needs a TENANT_ADMIN key or the admin token).
pub(crate) async fn list(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
) -> Result<Vec<pb::Session>> {
    let parent = TenantName {
        tenant: tenant.clone(),
    }
    .to_string();
    pages::collect(usize::MAX, |page_token, _| {
        let request = pb::ListSessionsRequest {
            parent: parent.clone(),
            page_size: PAGE,
            page_token,
        };
        async move {
            let page = connection
                .call(credential, request, |channel, r| async move {
                    MemoryServiceClient::new(channel).list_sessions(r).await
                })
                .await?;
            Ok((page.sessions, page.next_page_token))
        }
    })
    .await
}

/// A client fixed to one session of one tenant. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionClient {
    connection: Connection,
    credential: Credential,
    name: String,
}

impl SessionClient {
    pub(crate) fn new(
        connection: Connection,
        credential: Credential,
        tenant: TenantId,
        session: &str,
    ) -> Result<Self> {
        let name = SessionName {
            tenant,
            session: SessionId::new(session)?,
        }
        .to_string();
        Ok(Self {
            connection,
            credential,
            name,
        })
    }

    /// `tenants/{tenant}/sessions/{session}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session's settings and figures; NOT_FOUND once it ended or expired.
    pub async fn info(&self) -> Result<pb::Session> {
        let request = pb::GetSessionRequest {
            name: self.name.clone(),
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                MemoryServiceClient::new(channel).get_session(r).await
            })
            .await
    }

    /// Appends `items` in order, all or none; returns their sequence numbers.
    pub async fn append(&self, items: Vec<Memory>) -> Result<Vec<u64>> {
        let request = pb::AppendRequest {
            session: self.name.clone(),
            items: items.into_iter().map(Memory::into_pb).collect(),
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                MemoryServiceClient::new(channel).append(r).await
            })
            .await?;
        Ok(response.sequences)
    }

    /// The items closest to `recall.vector` among the session's recent ones, closest first.
    pub async fn recall(&self, recall: Recall) -> Result<Vec<pb::RecalledItem>> {
        let request = pb::RecallRequest {
            session: self.name.clone(),
            vector: recall.vector,
            top_k: recall.top_k,
            last_items: recall.last_items.unwrap_or(0),
            max_age_seconds: recall.max_age.map(|a| a.as_secs().max(1) as i64),
            include_vectors: false,
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                MemoryServiceClient::new(channel).recall(r).await
            })
            .await?;
        Ok(response.items)
    }

    /// Every item of the session in the order it was appended, following pages to the end.
    pub async fn history(&self) -> Result<Vec<pb::MemoryItem>> {
        pages::collect(usize::MAX, |page_token, _| {
            let request = pb::HistoryRequest {
                session: self.name.clone(),
                page_size: PAGE,
                page_token,
            };
            async move {
                let page = self
                    .connection
                    .call(&self.credential, request, |channel, r| async move {
                        MemoryServiceClient::new(channel).history(r).await
                    })
                    .await?;
                Ok((page.items, page.next_page_token))
            }
        })
        .await
    }

    /// Ends the session now: from then on it answers NOT_FOUND, and its items are removed.
    pub async fn end(&self) -> Result<()> {
        let request = pb::EndSessionRequest {
            name: self.name.clone(),
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                MemoryServiceClient::new(channel).end_session(r).await
            })
            .await
    }
}
