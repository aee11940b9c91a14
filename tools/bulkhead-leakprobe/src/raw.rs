//! Requests the SDK is built never to send: a tenant key on another tenant's path, malformed
//! resource names, a missing or garbage `authorization` header, admin calls with a tenant
//! key. The SDK fixes a handle to one validated tenant, so these go through the generated
//! gRPC stubs, with every name taken verbatim from a [`Target`].

use bulkhead_formats::{RecordRow, encode_stream, read_stream};
use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use pb::audit_service_client::AuditServiceClient;
use pb::collection_service_client::CollectionServiceClient;
use pb::key_service_client::KeyServiceClient;
use pb::memory_service_client::MemoryServiceClient;
use pb::record_service_client::RecordServiceClient;
use pb::semantic_cache_service_client::SemanticCacheServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::canary;
use crate::remote::Remote;

/// Id of the collection a cross-tenant `CreateCollection` tries to create, and of the cache
/// a cross-tenant `CreateCache` tries to create.
const INTRUDER_COLLECTION: &str = "leakprobe-intruder";
const INTRUDER_CACHE: &str = "leakprobe-intruder-cache";

/// The `authorization` header of a raw request.
#[derive(Debug)]
pub enum Auth {
    Missing,
    Header(MetadataValue<Ascii>),
}

impl Auth {
    pub fn bearer(secret: &str) -> anyhow::Result<Self> {
        Self::header(&format!("Bearer {secret}"))
    }

    pub fn header(value: &str) -> anyhow::Result<Self> {
        let mut value: MetadataValue<Ascii> = value.parse()?;
        value.set_sensitive(true);
        Ok(Auth::Header(value))
    }
}

/// Declares [`Rpc`] with [`Rpc::ALL`] and [`Rpc::method`] from one list, so no variant can
/// be missing from either.
macro_rules! rpcs {
    ($($rpc:ident => $method:literal,)*) => {
        /// Every RPC of the API (every method of every `bulkhead.v1` service, checked against
        /// the descriptor set by a test). The probe sends each one where it must be refused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Rpc {
            $($rpc,)*
        }

        impl Rpc {
            /// Every variant, in declaration order.
            #[cfg(test)]
            pub const ALL: &[Rpc] = &[$(Rpc::$rpc,)*];

            /// `Service/Method`, as the server writes it into audit events.
            pub fn method(self) -> &'static str {
                match self {
                    $(Rpc::$rpc => $method,)*
                }
            }
        }
    };
}

rpcs! {
    CreateCollection => "CollectionService/CreateCollection",
    GetCollection => "CollectionService/GetCollection",
    ListCollections => "CollectionService/ListCollections",
    DeleteCollection => "CollectionService/DeleteCollection",
    Upsert => "RecordService/Upsert",
    Get => "RecordService/Get",
    Delete => "RecordService/Delete",
    Query => "RecordService/Query",
    Import => "RecordService/Import",
    Export => "RecordService/Export",
    ListAuditEvents => "AuditService/ListAuditEvents",
    CreateApiKey => "KeyService/CreateApiKey",
    ListApiKeys => "KeyService/ListApiKeys",
    RevokeApiKey => "KeyService/RevokeApiKey",
    AddVerificationKey => "KeyService/AddVerificationKey",
    ListVerificationKeys => "KeyService/ListVerificationKeys",
    RevokeVerificationKey => "KeyService/RevokeVerificationKey",
    CreateTenant => "AdminService/CreateTenant",
    GetTenant => "AdminService/GetTenant",
    ListTenants => "AdminService/ListTenants",
    UpdateTenant => "AdminService/UpdateTenant",
    DeleteTenant => "AdminService/DeleteTenant",
    CreateCache => "SemanticCacheService/CreateCache",
    Lookup => "SemanticCacheService/Lookup",
    Store => "SemanticCacheService/Store",
    Invalidate => "SemanticCacheService/Invalidate",
    CreateSession => "MemoryService/CreateSession",
    GetSession => "MemoryService/GetSession",
    Append => "MemoryService/Append",
    Recall => "MemoryService/Recall",
    History => "MemoryService/History",
    EndSession => "MemoryService/EndSession",
    ListSessions => "MemoryService/ListSessions",
}

impl Rpc {
    /// The RPCs that name a tenant in their resource and are open to that tenant's keys, but
    /// for the cache's: reads first, so a leak shows before a write could have changed what
    /// there is to read, and the deletion of the canary collection last.
    pub const TENANT_SCOPED: [Rpc; 17] = [
        Rpc::Get,
        Rpc::Query,
        Rpc::Export,
        Rpc::GetCollection,
        Rpc::ListCollections,
        Rpc::ListAuditEvents,
        Rpc::ListApiKeys,
        Rpc::ListVerificationKeys,
        Rpc::Upsert,
        Rpc::Import,
        Rpc::Delete,
        Rpc::CreateCollection,
        Rpc::CreateApiKey,
        Rpc::RevokeApiKey,
        Rpc::AddVerificationKey,
        Rpc::RevokeVerificationKey,
        Rpc::DeleteCollection,
    ];
    /// `SemanticCacheService`, tried once every probe tenant holds a cache: the lookup first.
    pub const CACHE: [Rpc; 4] = [Rpc::Lookup, Rpc::Store, Rpc::Invalidate, Rpc::CreateCache];
    /// `MemoryService`, aimed at the target's canary session: reads first, the end last.
    pub const SESSION: [Rpc; 7] = [
        Rpc::Recall,
        Rpc::History,
        Rpc::GetSession,
        Rpc::ListSessions,
        Rpc::Append,
        Rpc::CreateSession,
        Rpc::EndSession,
    ];
    /// `AdminService`: the admin token only.
    pub const ADMIN: [Rpc; 5] = [
        Rpc::CreateTenant,
        Rpc::GetTenant,
        Rpc::ListTenants,
        Rpc::UpdateTenant,
        Rpc::DeleteTenant,
    ];
}

/// The names a request carries, exactly as they go on the wire, and the canary text an
/// intruding upsert, import or cache store writes.
#[derive(Debug, Clone)]
pub struct Target {
    /// What `CreateTenant` asks for.
    pub tenant_id: String,
    /// `tenants/{tenant}`.
    pub parent: String,
    /// `tenants/{tenant}/collections/canaries`.
    pub collection: String,
    /// `tenants/{tenant}/caches/probe-cache`.
    pub cache: String,
    /// `tenants/{tenant}/keys/{key}`.
    pub key: String,
    /// `tenants/{tenant}/verificationKeys/probe-key`: a key an intruder would revoke.
    pub verification_key: String,
    /// `tenants/{tenant}/sessions/probe-session`: the canary session.
    pub session: String,
    pub intruder_text: String,
    /// A collection an import names in its first message instead of `collection`, which it
    /// names in the next: a stream that opens where the key may write and turns elsewhere.
    pub import_lead: Option<String>,
}

impl Target {
    /// Names built from `tenant` as given, however malformed, aimed at its canary collection
    /// and at the key `key_id`.
    pub fn tenant(tenant: &str, key_id: &str, intruder_text: &str) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            parent: format!("tenants/{tenant}"),
            collection: format!("tenants/{tenant}/collections/{}", canary::COLLECTION),
            cache: format!("tenants/{tenant}/caches/{}", canary::CACHE),
            key: format!("tenants/{tenant}/keys/{key_id}"),
            verification_key: format!("tenants/{tenant}/verificationKeys/probe-key"),
            session: format!("tenants/{tenant}/sessions/{}", canary::SESSION),
            intruder_text: intruder_text.to_owned(),
            import_lead: None,
        }
    }
}

/// What a request that should have been refused got back: the records in it, so their
/// canaries can be attributed, and a one-line summary for the report.
#[derive(Debug)]
pub struct Answer {
    pub records: Vec<(String, Option<String>)>,
    pub summary: String,
}

impl Answer {
    fn summary(summary: impl Into<String>) -> Self {
        Self {
            records: Vec::new(),
            summary: summary.into(),
        }
    }
}

/// Raw gRPC access over one channel.
#[derive(Debug)]
pub struct Raw {
    channel: Channel,
    top_k: u32,
}

impl Raw {
    pub async fn connect(remote: &Remote, top_k: u32) -> anyhow::Result<Self> {
        let channel = remote.channel().await?;
        Ok(Self { channel, top_k })
    }

    /// Sends `rpc` at `target` with `auth`. Reads ask for everything: all canary ids, the
    /// largest `top_k`, texts included.
    pub async fn send(&self, rpc: Rpc, auth: &Auth, target: &Target) -> Result<Answer, Status> {
        let ch = self.channel.clone();
        let t = target;
        match rpc {
            Rpc::CreateCollection => {
                let req = pb::CreateCollectionRequest {
                    parent: t.parent.clone(),
                    collection_id: INTRUDER_COLLECTION.to_owned(),
                    dimension: canary::DIMENSION as u32,
                    metric: pb::Metric::Cosine as i32,
                    ..Default::default()
                };
                let c = CollectionServiceClient::new(ch)
                    .create_collection(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("created {}", c.get_ref().name)))
            }
            Rpc::GetCollection => {
                let req = pb::GetCollectionRequest {
                    name: t.collection.clone(),
                };
                let c = CollectionServiceClient::new(ch)
                    .get_collection(authed(auth, req))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!(
                    "{} with {} records",
                    c.name, c.record_count
                )))
            }
            Rpc::ListCollections => {
                let req = pb::ListCollectionsRequest {
                    parent: t.parent.clone(),
                    ..Default::default()
                };
                let names: Vec<String> = CollectionServiceClient::new(ch)
                    .list_collections(authed(auth, req))
                    .await?
                    .into_inner()
                    .collections
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                Ok(Answer::summary(format!("collections {names:?}")))
            }
            Rpc::DeleteCollection => {
                let req = pb::DeleteCollectionRequest {
                    name: t.collection.clone(),
                };
                CollectionServiceClient::new(ch)
                    .delete_collection(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("deleted {}", t.collection)))
            }
            Rpc::Upsert => {
                let req = pb::UpsertRequest {
                    collection: t.collection.clone(),
                    records: vec![pb::Record {
                        id: "c0".to_owned(),
                        vector: canary::vector(0, 0),
                        text: Some(t.intruder_text.clone()),
                        ..Default::default()
                    }],
                };
                let r = RecordServiceClient::new(ch)
                    .upsert(authed(auth, req))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!("upserted {}", r.upserted)))
            }
            Rpc::Get => {
                let req = pb::GetRequest {
                    collection: t.collection.clone(),
                    ids: canary::RECORD_IDS.map(str::to_owned).to_vec(),
                };
                let found = RecordServiceClient::new(ch)
                    .get(authed(auth, req))
                    .await?
                    .into_inner()
                    .records;
                Ok(Answer {
                    summary: format!("{} records", found.len()),
                    records: found.into_iter().map(|r| (r.id, r.text)).collect(),
                })
            }
            Rpc::Delete => {
                let req = pb::DeleteRequest {
                    collection: t.collection.clone(),
                    ids: vec!["c1".to_owned()],
                };
                let r = RecordServiceClient::new(ch)
                    .delete(authed(auth, req))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!("deleted {}", r.deleted)))
            }
            Rpc::Query => {
                let req = pb::QueryRequest {
                    collection: t.collection.clone(),
                    vector: canary::vector(0, 0),
                    top_k: self.top_k,
                    include_text: true,
                    ..Default::default()
                };
                let hits = RecordServiceClient::new(ch)
                    .query(authed(auth, req))
                    .await?
                    .into_inner()
                    .hits;
                Ok(Answer {
                    summary: format!("{} hits", hits.len()),
                    records: hits.into_iter().map(|h| (h.id, h.text)).collect(),
                })
            }
            Rpc::Import => {
                // One batch, the intruding record, cut in two: the first part goes with the
                // first name, the rest with the target's.
                let intruder = RecordRow {
                    id: "c0".to_owned(),
                    vector: canary::vector(0, 0),
                    text: Some(t.intruder_text.clone()),
                    metadata: Default::default(),
                    ttl_seconds: None,
                };
                let ipc = encode_stream([std::slice::from_ref(&intruder)], canary::DIMENSION)
                    .map_err(|e| Status::internal(format!("encoding the import: {e}")))?;
                let (head, tail) = ipc.split_at(ipc.len() / 2);
                let first = t.import_lead.as_ref().unwrap_or(&t.collection);
                let messages =
                    [(first, head), (&t.collection, tail)].map(|(name, bytes)| pb::ImportRequest {
                        collection: name.clone(),
                        arrow_ipc: bytes.to_vec(),
                    });
                let r = RecordServiceClient::new(ch)
                    .import(authed(auth, tokio_stream::iter(messages)))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!("imported {}", r.imported)))
            }
            Rpc::Export => {
                let req = pb::ExportRequest {
                    collection: t.collection.clone(),
                    batch_size: 0,
                };
                let mut stream = RecordServiceClient::new(ch)
                    .export(authed(auth, req))
                    .await?
                    .into_inner();
                let mut ipc = Vec::new();
                let ended = loop {
                    match stream.message().await {
                        Ok(Some(m)) => ipc.extend(m.arrow_ipc),
                        Ok(None) => break None,
                        Err(status) if ipc.is_empty() => return Err(status),
                        Err(status) => break Some(status),
                    }
                };
                let mut records = Vec::new();
                let decoded = read_stream(&ipc[..], canary::DIMENSION, ipc.len(), |rows| {
                    records.extend(rows.into_iter().map(|r| (r.id, r.text)));
                    Ok(())
                });
                let mut summary = format!("{} bytes, {} records", ipc.len(), records.len());
                if let Err(e) = decoded {
                    summary.push_str(&format!(" (then undecodable: {e})"));
                }
                if let Some(status) = ended {
                    summary.push_str(&format!(" (then {:?})", status.code()));
                }
                Ok(Answer { records, summary })
            }
            Rpc::ListAuditEvents => {
                let req = pb::ListAuditEventsRequest {
                    parent: t.parent.clone(),
                    page_size: 1000,
                    ..Default::default()
                };
                let events = AuditServiceClient::new(ch)
                    .list_audit_events(authed(auth, req))
                    .await?
                    .into_inner()
                    .events;
                Ok(Answer::summary(format!("{} audit events", events.len())))
            }
            Rpc::CreateApiKey => {
                let req = pb::CreateApiKeyRequest {
                    parent: t.parent.clone(),
                    role: pb::Role::TenantAdmin as i32,
                    ttl_seconds: Some(60),
                    description: "leakprobe intruder".to_owned(),
                };
                let r = KeyServiceClient::new(ch)
                    .create_api_key(authed(auth, req))
                    .await?
                    .into_inner();
                let name = r.key.map(|k| k.name).unwrap_or_default();
                Ok(Answer::summary(format!("created key {name}")))
            }
            Rpc::ListApiKeys => {
                let req = pb::ListApiKeysRequest {
                    parent: t.parent.clone(),
                };
                let keys = KeyServiceClient::new(ch)
                    .list_api_keys(authed(auth, req))
                    .await?
                    .into_inner()
                    .keys;
                Ok(Answer::summary(format!("{} keys", keys.len())))
            }
            Rpc::RevokeApiKey => {
                let req = pb::RevokeApiKeyRequest {
                    name: t.key.clone(),
                };
                KeyServiceClient::new(ch)
                    .revoke_api_key(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("revoked {}", t.key)))
            }
            Rpc::AddVerificationKey => {
                // A key whose private half the intruder would hold: its tokens would speak
                // for any user of the target.
                let req = pb::AddVerificationKeyRequest {
                    parent: t.parent.clone(),
                    key_id: "intruder".to_owned(),
                    ed25519_public_key: vec![0x42; 32],
                    description: "leakprobe intruder".to_owned(),
                    max_token_lifetime_seconds: 60,
                };
                let k = KeyServiceClient::new(ch)
                    .add_verification_key(authed(auth, req))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!(
                    "added verification key {}",
                    k.name
                )))
            }
            Rpc::ListVerificationKeys => {
                let req = pb::ListVerificationKeysRequest {
                    parent: t.parent.clone(),
                };
                let keys = KeyServiceClient::new(ch)
                    .list_verification_keys(authed(auth, req))
                    .await?
                    .into_inner()
                    .keys;
                Ok(Answer::summary(format!("{} verification keys", keys.len())))
            }
            Rpc::RevokeVerificationKey => {
                let req = pb::RevokeVerificationKeyRequest {
                    name: t.verification_key.clone(),
                };
                KeyServiceClient::new(ch)
                    .revoke_verification_key(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("revoked {}", t.verification_key)))
            }
            Rpc::CreateTenant => {
                let req = pb::CreateTenantRequest {
                    tenant_id: t.tenant_id.clone(),
                    ..Default::default()
                };
                let r = AdminServiceClient::new(ch)
                    .create_tenant(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("created {}", r.get_ref().name)))
            }
            Rpc::GetTenant => {
                let req = pb::GetTenantRequest {
                    name: t.parent.clone(),
                };
                let r = AdminServiceClient::new(ch)
                    .get_tenant(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("tenant {}", r.get_ref().name)))
            }
            Rpc::ListTenants => {
                let req = pb::ListTenantsRequest::default();
                let r = AdminServiceClient::new(ch)
                    .list_tenants(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!(
                    "{} tenants",
                    r.get_ref().tenants.len()
                )))
            }
            Rpc::UpdateTenant => {
                let req = pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        name: t.parent.clone(),
                        audit_retention_seconds: 1,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["audit_retention_seconds".to_owned()],
                    }),
                };
                let r = AdminServiceClient::new(ch)
                    .update_tenant(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("updated {}", r.get_ref().name)))
            }
            Rpc::DeleteTenant => {
                let req = pb::DeleteTenantRequest {
                    name: t.parent.clone(),
                };
                AdminServiceClient::new(ch)
                    .delete_tenant(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("deleted {}", t.parent)))
            }
            Rpc::CreateCache => {
                let req = pb::CreateCacheRequest {
                    parent: t.parent.clone(),
                    cache_id: INTRUDER_CACHE.to_owned(),
                    dimension: canary::DIMENSION as u32,
                    metric: pb::Metric::Cosine as i32,
                    ..Default::default()
                };
                let c = SemanticCacheServiceClient::new(ch)
                    .create_cache(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("created {}", c.get_ref().name)))
            }
            Rpc::Lookup => {
                let req = pb::LookupRequest {
                    cache: t.cache.clone(),
                    vector: canary::vector(0, 0),
                    min_similarity: -1.0,
                    shared: true,
                    ..Default::default()
                };
                let r = SemanticCacheServiceClient::new(ch)
                    .lookup(authed(auth, req))
                    .await?
                    .into_inner();
                let records: Vec<_> = r
                    .entry
                    .filter(|_| r.hit)
                    .map(|e| (e.id, Some(e.response)))
                    .into_iter()
                    .collect();
                Ok(Answer {
                    summary: format!("{} entries", records.len()),
                    records,
                })
            }
            Rpc::Store => {
                let req = pb::StoreRequest {
                    cache: t.cache.clone(),
                    vector: canary::vector(0, 0),
                    prompt: "leakprobe intruder".to_owned(),
                    response: t.intruder_text.clone(),
                    shared: true,
                    ..Default::default()
                };
                let r = SemanticCacheServiceClient::new(ch)
                    .store(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("stored {}", r.get_ref().id)))
            }
            Rpc::Invalidate => {
                // By scope: every entry of the user the probe tenants store answers for.
                let req = pb::InvalidateRequest {
                    cache: t.cache.clone(),
                    ids: Vec::new(),
                    scope: Some(canary::CACHE_SCOPE.to_owned()),
                };
                let r = SemanticCacheServiceClient::new(ch)
                    .invalidate(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!(
                    "invalidated {}",
                    r.get_ref().invalidated
                )))
            }
            Rpc::CreateSession => {
                // The canary session's own id: created anew over an ended one, it would wipe it.
                let req = pb::CreateSessionRequest {
                    parent: t.parent.clone(),
                    session_id: canary::SESSION.to_owned(),
                    idle_ttl_seconds: 60,
                    absolute_ttl_seconds: 60,
                    dimension: canary::DIMENSION as u32,
                    metric: pb::Metric::Cosine as i32,
                };
                let s = MemoryServiceClient::new(ch)
                    .create_session(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("created {}", s.get_ref().name)))
            }
            Rpc::GetSession => {
                let req = pb::GetSessionRequest {
                    name: t.session.clone(),
                };
                let s = MemoryServiceClient::new(ch)
                    .get_session(authed(auth, req))
                    .await?
                    .into_inner();
                Ok(Answer::summary(format!(
                    "{} with {} items",
                    s.name, s.items
                )))
            }
            Rpc::Append => {
                let req = pb::AppendRequest {
                    session: t.session.clone(),
                    items: vec![pb::MemoryItem {
                        kind: pb::MemoryKind::Turn as i32,
                        text: t.intruder_text.clone(),
                        vector: canary::vector(0, 0),
                        ..Default::default()
                    }],
                };
                let r = MemoryServiceClient::new(ch)
                    .append(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!(
                    "appended {:?}",
                    r.get_ref().sequences
                )))
            }
            Rpc::Recall => {
                let req = pb::RecallRequest {
                    session: t.session.clone(),
                    vector: canary::vector(0, 0),
                    top_k: 100,
                    ..Default::default()
                };
                let items = MemoryServiceClient::new(ch)
                    .recall(authed(auth, req))
                    .await?
                    .into_inner()
                    .items;
                let records: Vec<_> = items
                    .into_iter()
                    .filter_map(|h| h.item)
                    .map(|i| (i.id, Some(i.text)))
                    .collect();
                Ok(Answer {
                    summary: format!("{} items", records.len()),
                    records,
                })
            }
            Rpc::History => {
                let req = pb::HistoryRequest {
                    session: t.session.clone(),
                    page_size: 1000,
                    ..Default::default()
                };
                let items = MemoryServiceClient::new(ch)
                    .history(authed(auth, req))
                    .await?
                    .into_inner()
                    .items;
                let records: Vec<_> = items.into_iter().map(|i| (i.id, Some(i.text))).collect();
                Ok(Answer {
                    summary: format!("{} items", records.len()),
                    records,
                })
            }
            Rpc::EndSession => {
                let req = pb::EndSessionRequest {
                    name: t.session.clone(),
                };
                MemoryServiceClient::new(ch)
                    .end_session(authed(auth, req))
                    .await?;
                Ok(Answer::summary(format!("ended {}", t.session)))
            }
            Rpc::ListSessions => {
                let req = pb::ListSessionsRequest {
                    parent: t.parent.clone(),
                    ..Default::default()
                };
                let sessions = MemoryServiceClient::new(ch)
                    .list_sessions(authed(auth, req))
                    .await?
                    .into_inner()
                    .sessions;
                Ok(Answer::summary(format!("{} sessions", sessions.len())))
            }
        }
    }
}

fn authed<T>(auth: &Auth, msg: T) -> Request<T> {
    let mut request = Request::new(msg);
    if let Auth::Header(value) = auth {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;

    use super::*;

    /// `Service/Method` of every method of every `bulkhead.v1` service in the descriptor set
    /// the API is compiled from (health and reflection are other packages).
    fn api_methods() -> BTreeSet<String> {
        let set = prost_types::FileDescriptorSet::decode(bulkhead_proto::FILE_DESCRIPTOR_SET)
            .expect("decoding the descriptor set");
        set.file
            .iter()
            .filter(|f| f.package() == "bulkhead.v1")
            .flat_map(|f| &f.service)
            .flat_map(|s| {
                s.method
                    .iter()
                    .map(|m| format!("{}/{}", s.name(), m.name()))
            })
            .collect()
    }

    #[test]
    fn rpc_names_every_method_of_the_api_and_nothing_else() {
        let api = api_methods();
        assert!(api.contains("RecordService/Import"), "{api:?}");
        let ours: BTreeSet<String> = Rpc::ALL.iter().map(|r| r.method().to_owned()).collect();
        assert_eq!(ours.len(), Rpc::ALL.len(), "two RPCs share a method");
        let missing: Vec<_> = api.difference(&ours).collect();
        assert!(
            missing.is_empty(),
            "RPCs of bulkhead.v1 the probe can't send (add them to `Rpc` and a probe): \
             {missing:?}"
        );
        let unknown: Vec<_> = ours.difference(&api).collect();
        assert!(unknown.is_empty(), "not RPCs of bulkhead.v1: {unknown:?}");
    }

    #[test]
    fn the_cross_tenant_probes_try_every_rpc_once() {
        let tried: Vec<Rpc> = Rpc::TENANT_SCOPED
            .iter()
            .chain(&Rpc::CACHE)
            .chain(&Rpc::SESSION)
            .chain(&Rpc::ADMIN)
            .copied()
            .collect();
        let untried: Vec<&Rpc> = Rpc::ALL.iter().filter(|r| !tried.contains(r)).collect();
        assert!(
            untried.is_empty(),
            "no cross-tenant probe tries {untried:?}"
        );
        assert_eq!(
            tried.len(),
            Rpc::ALL.len(),
            "an RPC is in two lists: {tried:?}"
        );
    }
}
