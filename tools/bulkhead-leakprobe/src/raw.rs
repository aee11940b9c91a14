//! Requests the SDK is built never to send: a tenant key on another tenant's path, malformed
//! resource names, a missing or garbage `authorization` header, admin calls with a tenant
//! key. The SDK fixes a handle to one validated tenant, so these go through the generated
//! gRPC stubs, with every name taken verbatim from a [`Target`].

use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use pb::audit_service_client::AuditServiceClient;
use pb::collection_service_client::CollectionServiceClient;
use pb::key_service_client::KeyServiceClient;
use pb::record_service_client::RecordServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::canary;
use crate::remote::Remote;

/// Id of the collection a cross-tenant `CreateCollection` tries to create.
const INTRUDER_COLLECTION: &str = "leakprobe-intruder";

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

/// Every RPC of the API. The probe sends each one where it must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    CreateCollection,
    GetCollection,
    ListCollections,
    DeleteCollection,
    Upsert,
    Get,
    Delete,
    Query,
    ListAuditEvents,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    CreateTenant,
    GetTenant,
    ListTenants,
    UpdateTenant,
    DeleteTenant,
}

impl Rpc {
    /// The RPCs that name a tenant in their resource and are open to that tenant's keys:
    /// reads first, so a leak shows before a write could have changed what there is to read,
    /// and the deletion of the canary collection last.
    pub const TENANT_SCOPED: [Rpc; 12] = [
        Rpc::Get,
        Rpc::Query,
        Rpc::GetCollection,
        Rpc::ListCollections,
        Rpc::ListAuditEvents,
        Rpc::ListApiKeys,
        Rpc::Upsert,
        Rpc::Delete,
        Rpc::CreateCollection,
        Rpc::CreateApiKey,
        Rpc::RevokeApiKey,
        Rpc::DeleteCollection,
    ];
    /// `AdminService`: the admin token only.
    pub const ADMIN: [Rpc; 5] = [
        Rpc::CreateTenant,
        Rpc::GetTenant,
        Rpc::ListTenants,
        Rpc::UpdateTenant,
        Rpc::DeleteTenant,
    ];
    /// `Service/Method`, as the server writes it into audit events.
    pub fn method(self) -> &'static str {
        match self {
            Rpc::CreateCollection => "CollectionService/CreateCollection",
            Rpc::GetCollection => "CollectionService/GetCollection",
            Rpc::ListCollections => "CollectionService/ListCollections",
            Rpc::DeleteCollection => "CollectionService/DeleteCollection",
            Rpc::Upsert => "RecordService/Upsert",
            Rpc::Get => "RecordService/Get",
            Rpc::Delete => "RecordService/Delete",
            Rpc::Query => "RecordService/Query",
            Rpc::ListAuditEvents => "AuditService/ListAuditEvents",
            Rpc::CreateApiKey => "KeyService/CreateApiKey",
            Rpc::ListApiKeys => "KeyService/ListApiKeys",
            Rpc::RevokeApiKey => "KeyService/RevokeApiKey",
            Rpc::CreateTenant => "AdminService/CreateTenant",
            Rpc::GetTenant => "AdminService/GetTenant",
            Rpc::ListTenants => "AdminService/ListTenants",
            Rpc::UpdateTenant => "AdminService/UpdateTenant",
            Rpc::DeleteTenant => "AdminService/DeleteTenant",
        }
    }
}

/// The names a request carries, exactly as they go on the wire, and the canary text an
/// intruding upsert writes.
#[derive(Debug)]
pub struct Target {
    /// What `CreateTenant` asks for.
    pub tenant_id: String,
    /// `tenants/{tenant}`.
    pub parent: String,
    /// `tenants/{tenant}/collections/canaries`.
    pub collection: String,
    /// `tenants/{tenant}/keys/{key}`.
    pub key: String,
    pub intruder_text: String,
}

impl Target {
    /// Names built from `tenant` as given, however malformed, aimed at its canary collection
    /// and at the key `key_id`.
    pub fn tenant(tenant: &str, key_id: &str, intruder_text: &str) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            parent: format!("tenants/{tenant}"),
            collection: format!("tenants/{tenant}/collections/{}", canary::COLLECTION),
            key: format!("tenants/{tenant}/keys/{key_id}"),
            intruder_text: intruder_text.to_owned(),
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
