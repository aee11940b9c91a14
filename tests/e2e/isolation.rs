//! A key of tenant A against tenant B's resources, on every RPC of the API: always
//! PERMISSION_DENIED, the same whether or not B exists, B unchanged afterwards, and each
//! denial written to A's audit trail and the server log.
//!
//! Which RPCs the cases cover is not a list kept by hand: the cases go out on a channel that
//! notes the path of every request it carries, and
//! `every_rpc_in_the_descriptors_has_a_cross_tenant_case` compares those paths with the
//! methods of every `bulkhead.v1` service in the compiled descriptor set. An RPC added to the
//! proto without a case here fails it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bulkhead_formats::{RecordRow, StreamEncoder};
use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use pb::audit_service_client::AuditServiceClient;
use pb::collection_service_client::CollectionServiceClient;
use pb::key_service_client::KeyServiceClient;
use pb::memory_service_client::MemoryServiceClient;
use pb::record_service_client::RecordServiceClient;
use pb::semantic_cache_service_client::SemanticCacheServiceClient;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::harness::*;

const DIM: usize = 8;
/// The cache every seeded tenant holds, with one unscoped and one `alice` entry.
const CACHE: &str = "answers";
const SCOPE: &str = "alice";
/// The session every seeded tenant holds, with one item.
const SESSION: &str = "chat";

/// `/bulkhead.v1.{Service}/{Method}` of every method of every `bulkhead.v1` service, read from
/// the descriptor set the server and clients are compiled from. Health and reflection are
/// other packages.
fn api_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(bulkhead_proto::FILE_DESCRIPTOR_SET)
        .expect("decoding the descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "bulkhead.v1")
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method
                    .iter()
                    .map(move |m| format!("/{}.{}/{}", f.package(), s.name(), m.name()))
            })
        })
        .collect()
}

/// A channel that notes the path (`/package.Service/Method`) of every request it sends.
#[derive(Clone)]
struct Recording {
    channel: Channel,
    sent: Arc<Mutex<Vec<String>>>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Recording {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = tonic::transport::channel::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.sent
            .lock()
            .unwrap()
            .push(request.uri().path().to_owned());
        self.channel.call(request)
    }
}

/// Every service's client over one recording channel.
struct Api {
    admin: AdminServiceClient<Recording>,
    keys: KeyServiceClient<Recording>,
    collections: CollectionServiceClient<Recording>,
    records: RecordServiceClient<Recording>,
    audit: AuditServiceClient<Recording>,
    cache: SemanticCacheServiceClient<Recording>,
    memory: MemoryServiceClient<Recording>,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Api {
    async fn connect(server: &Server) -> Self {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let ch = Recording {
            channel: server.channel().await,
            sent: sent.clone(),
        };
        Self {
            admin: AdminServiceClient::new(ch.clone()),
            keys: KeyServiceClient::new(ch.clone()),
            collections: CollectionServiceClient::new(ch.clone()),
            records: RecordServiceClient::new(ch.clone()),
            audit: AuditServiceClient::new(ch.clone()),
            cache: SemanticCacheServiceClient::new(ch.clone()),
            memory: MemoryServiceClient::new(ch),
            sent,
        }
    }

    /// The paths of the requests sent since the last call.
    fn take_sent(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

/// The tenant a case aims at, one of its key ids, and the attacker's own collection (which a
/// mixed import names first).
struct Aim<'a> {
    tenant: &'a str,
    key_id: &'a str,
    own_collection: &'a str,
}

/// One cross-tenant attempt: the RPC it went out as, read off the channel, and the answer.
#[derive(Debug)]
struct Attempt {
    case: &'static str,
    method: String,
    status: Status,
}

impl Attempt {
    /// `Service/Method`, as the server writes it into audit events.
    fn audit_method(&self) -> &str {
        self.method.trim_start_matches("/bulkhead.v1.")
    }
}

/// The case label of the import that names the attacker's collection first and the target's
/// in a later message.
const MIXED_IMPORT: &str = "Import: own collection first, then the target's";

fn row(id: &str, seed: u64, text: &str) -> RecordRow {
    RecordRow {
        id: id.into(),
        vector: unit(seed, DIM),
        text: Some(text.into()),
        metadata: Default::default(),
        ttl_seconds: None,
    }
}

/// The pieces of one Arrow IPC stream: the schema with the first batch, each later batch, and
/// the end of the stream.
fn ipc_pieces(batches: &[Vec<RecordRow>]) -> Vec<Vec<u8>> {
    let mut encoder = StreamEncoder::new(DIM).unwrap();
    let mut pieces: Vec<Vec<u8>> = batches.iter().map(|b| encoder.push(b).unwrap()).collect();
    pieces.push(encoder.finish().unwrap());
    pieces
}

fn import_stream(
    messages: Vec<(String, Vec<u8>)>,
) -> impl tokio_stream::Stream<Item = pb::ImportRequest> {
    tokio_stream::iter(
        messages
            .into_iter()
            .map(|(collection, arrow_ipc)| pb::ImportRequest {
                collection,
                arrow_ipc,
            }),
    )
}

/// Every RPC of the API aimed at `aim.tenant` with `secret`, each as it would do harm there:
/// reads ask for everything, writes would overwrite or remove its data.
async fn every_rpc(api: &mut Api, secret: &str, aim: &Aim<'_>) -> Vec<Attempt> {
    let tenant = aim.tenant;
    let coll = format!("tenants/{tenant}/collections/docs");
    let parent = format!("tenants/{tenant}");
    let cache = format!("tenants/{tenant}/caches/{CACHE}");
    let mut out = Vec::new();
    api.take_sent();
    macro_rules! case {
        ($label:expr, $call:expr) => {
            let status = match $call.await {
                Ok(answer) => panic!("{}: expected a refusal, got {answer:?}", $label),
                Err(status) => status,
            };
            let sent = api.take_sent();
            assert_eq!(sent.len(), 1, "{}: one request, sent {sent:?}", $label);
            out.push(Attempt {
                case: $label,
                method: sent.into_iter().next().unwrap(),
                status,
            });
        };
    }

    case!(
        "Upsert",
        api.records.upsert(authed(
            secret,
            pb::UpsertRequest {
                collection: coll.clone(),
                records: vec![record("r0", 0, DIM, "intruder")]
            }
        ))
    );
    case!(
        "Get",
        api.records.get(authed(
            secret,
            pb::GetRequest {
                collection: coll.clone(),
                ids: vec!["r0".into()]
            }
        ))
    );
    case!(
        "Delete",
        api.records.delete(authed(
            secret,
            pb::DeleteRequest {
                collection: coll.clone(),
                ids: vec!["r0".into()]
            }
        ))
    );
    case!(
        "Query",
        api.records.query(authed(
            secret,
            pb::QueryRequest {
                collection: coll.clone(),
                vector: unit(0, DIM),
                top_k: 1000,
                include_text: true,
                ..Default::default()
            }
        ))
    );
    let intruders = vec![row("r0", 0, "intruder"), row("r1", 1, "intruder")];
    let mut pieces = ipc_pieces(std::slice::from_ref(&intruders)).into_iter();
    case!(
        "Import: the target's collection in the first message",
        api.records.import(authed(
            secret,
            import_stream(vec![
                (coll.clone(), pieces.next().unwrap()),
                (String::new(), pieces.next().unwrap()),
            ])
        ))
    );
    // The stream opens on A's own collection, which A may write, with a whole batch of A's
    // own; the next message names the target's collection and carries the intruding batch.
    let own = vec![row("a-own-0", 0, "own batch")];
    let mut pieces = ipc_pieces(&[own, intruders]).into_iter();
    case!(
        MIXED_IMPORT,
        api.records.import(authed(
            secret,
            import_stream(vec![
                (aim.own_collection.to_owned(), pieces.next().unwrap()),
                (coll.clone(), pieces.next().unwrap()),
                (String::new(), pieces.next().unwrap()),
            ])
        ))
    );
    case!(
        "Export",
        api.records.export(authed(
            secret,
            pb::ExportRequest {
                collection: coll.clone(),
                batch_size: 0
            }
        ))
    );
    case!(
        "CreateCollection",
        api.collections.create_collection(authed(
            secret,
            pb::CreateCollectionRequest {
                parent: parent.clone(),
                collection_id: "x".into(),
                dimension: DIM as u32,
                metric: 1,
                ..Default::default()
            }
        ))
    );
    case!(
        "GetCollection",
        api.collections.get_collection(authed(
            secret,
            pb::GetCollectionRequest { name: coll.clone() }
        ))
    );
    case!(
        "ListCollections",
        api.collections.list_collections(authed(
            secret,
            pb::ListCollectionsRequest {
                parent: parent.clone(),
                ..Default::default()
            }
        ))
    );
    case!(
        "DeleteCollection",
        api.collections.delete_collection(authed(
            secret,
            pb::DeleteCollectionRequest { name: coll.clone() }
        ))
    );
    case!(
        "ListAuditEvents",
        api.audit.list_audit_events(authed(
            secret,
            pb::ListAuditEventsRequest {
                parent: parent.clone(),
                ..Default::default()
            }
        ))
    );
    case!(
        "CreateApiKey",
        api.keys.create_api_key(authed(
            secret,
            pb::CreateApiKeyRequest {
                parent: parent.clone(),
                role: pb::Role::TenantAdmin as i32,
                ..Default::default()
            }
        ))
    );
    case!(
        "ListApiKeys",
        api.keys.list_api_keys(authed(
            secret,
            pb::ListApiKeysRequest {
                parent: parent.clone()
            }
        ))
    );
    case!(
        "RevokeApiKey",
        api.keys.revoke_api_key(authed(
            secret,
            pb::RevokeApiKeyRequest {
                name: format!("tenants/{tenant}/keys/{}", aim.key_id)
            }
        ))
    );
    case!(
        "AddVerificationKey",
        api.keys.add_verification_key(authed(
            secret,
            pb::AddVerificationKeyRequest {
                parent: parent.clone(),
                key_id: "intruder".into(),
                ed25519_public_key: vec![7; 32],
                ..Default::default()
            }
        ))
    );
    case!(
        "ListVerificationKeys",
        api.keys.list_verification_keys(authed(
            secret,
            pb::ListVerificationKeysRequest {
                parent: parent.clone()
            }
        ))
    );
    case!(
        "RevokeVerificationKey",
        api.keys.revoke_verification_key(authed(
            secret,
            pb::RevokeVerificationKeyRequest {
                name: format!("tenants/{tenant}/verificationKeys/k1")
            }
        ))
    );
    case!(
        "CreateTenant",
        api.admin.create_tenant(authed(
            secret,
            pb::CreateTenantRequest {
                tenant_id: "new".into(),
                ..Default::default()
            }
        ))
    );
    case!(
        "GetTenant",
        api.admin.get_tenant(authed(
            secret,
            pb::GetTenantRequest {
                name: parent.clone()
            }
        ))
    );
    case!(
        "ListTenants",
        api.admin
            .list_tenants(authed(secret, pb::ListTenantsRequest::default()))
    );
    case!(
        "UpdateTenant",
        api.admin.update_tenant(authed(
            secret,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: parent.clone(),
                    audit_retention_seconds: 1,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["audit_retention_seconds".into()],
                }),
            }
        ))
    );
    case!(
        "DeleteTenant",
        api.admin.delete_tenant(authed(
            secret,
            pb::DeleteTenantRequest {
                name: parent.clone()
            }
        ))
    );
    case!(
        "CreateCache",
        api.cache.create_cache(authed(
            secret,
            pb::CreateCacheRequest {
                parent: parent.clone(),
                cache_id: "intruder-cache".into(),
                dimension: DIM as u32,
                metric: pb::Metric::Cosine as i32,
                ..Default::default()
            }
        ))
    );
    for scope in [None, Some(SCOPE)] {
        case!(
            if scope.is_some() {
                "Lookup in a scope"
            } else {
                "Lookup"
            },
            api.cache.lookup(authed(
                secret,
                pb::LookupRequest {
                    cache: cache.clone(),
                    vector: unit(0, DIM),
                    min_similarity: -1.0,
                    scope: scope.map(str::to_owned),
                    shared: scope.is_none(),
                    ..Default::default()
                }
            ))
        );
    }
    case!(
        "Store",
        api.cache.store(authed(
            secret,
            pb::StoreRequest {
                cache: cache.clone(),
                vector: unit(0, DIM),
                prompt: "the shared prompt".into(),
                response: "intruder".into(),
                metadata: Default::default(),
                shared: true,
                ..Default::default()
            }
        ))
    );
    case!(
        "Invalidate by scope",
        api.cache.invalidate(authed(
            secret,
            pb::InvalidateRequest {
                cache: cache.clone(),
                ids: Vec::new(),
                scope: Some(SCOPE.into()),
            }
        ))
    );
    let session = format!("tenants/{tenant}/sessions/{SESSION}");
    case!(
        "CreateSession",
        api.memory.create_session(authed(
            secret,
            pb::CreateSessionRequest {
                parent: parent.clone(),
                session_id: SESSION.into(),
                idle_ttl_seconds: 60,
                absolute_ttl_seconds: 60,
                dimension: DIM as u32,
                metric: pb::Metric::Cosine.into(),
            }
        ))
    );
    case!(
        "GetSession",
        api.memory.get_session(authed(
            secret,
            pb::GetSessionRequest {
                name: session.clone()
            }
        ))
    );
    case!(
        "Append",
        api.memory.append(authed(
            secret,
            pb::AppendRequest {
                session: session.clone(),
                items: vec![pb::MemoryItem {
                    kind: pb::MemoryKind::Turn.into(),
                    text: "intruder".into(),
                    vector: unit(0, DIM),
                    ..Default::default()
                }],
            }
        ))
    );
    case!(
        "Recall",
        api.memory.recall(authed(
            secret,
            pb::RecallRequest {
                session: session.clone(),
                vector: unit(0, DIM),
                top_k: 10,
                ..Default::default()
            }
        ))
    );
    case!(
        "History",
        api.memory.history(authed(
            secret,
            pb::HistoryRequest {
                session: session.clone(),
                ..Default::default()
            }
        ))
    );
    case!(
        "EndSession",
        api.memory.end_session(authed(
            secret,
            pb::EndSessionRequest {
                name: session.clone()
            }
        ))
    );
    case!(
        "ListSessions",
        api.memory.list_sessions(authed(
            secret,
            pb::ListSessionsRequest {
                parent: parent.clone(),
                ..Default::default()
            }
        ))
    );
    out
}

/// A tenant with a WRITE key, a verification key `k1`, `docs` holding 5 records tagged with
/// the tenant, the cache `answers` holding an unscoped and an `alice` entry on the vector
/// `unit(0)`, and the session `chat` holding one item. Returns the id of its WRITE key.
async fn victim(server: &Server, c: &mut Clients, tenant: &str) -> String {
    seeded_tenant(c, tenant, 5, DIM).await;
    c.keys
        .add_verification_key(authed(
            ADMIN,
            pb::AddVerificationKeyRequest {
                parent: format!("tenants/{tenant}"),
                key_id: "k1".into(),
                ed25519_public_key: vec![1; 32],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let t = server.sdk().await.tenant(tenant, ADMIN).unwrap();
    t.create_cache(CACHE, DIM as u32, bulkhead_client::Metric::Cosine, None)
        .await
        .unwrap();
    for scope in [None, Some(SCOPE)] {
        let entry = bulkhead_client::CacheStore {
            vector: unit(0, DIM),
            prompt: "the shared prompt".into(),
            response: format!("owner={tenant} scope={scope:?}"),
            scope: scope.map_or(bulkhead_client::CacheScope::Shared, |s| {
                bulkhead_client::CacheScope::named(s)
            }),
            ..Default::default()
        };
        t.cache_store(CACHE, entry).await.unwrap();
    }
    let mut memory = MemoryServiceClient::new(server.channel().await);
    memory
        .create_session(authed(
            ADMIN,
            pb::CreateSessionRequest {
                parent: format!("tenants/{tenant}"),
                session_id: SESSION.into(),
                idle_ttl_seconds: 3600,
                absolute_ttl_seconds: 3600,
                dimension: DIM as u32,
                metric: pb::Metric::Cosine.into(),
            },
        ))
        .await
        .unwrap();
    memory
        .append(authed(
            ADMIN,
            pb::AppendRequest {
                session: format!("tenants/{tenant}/sessions/{SESSION}"),
                items: vec![pb::MemoryItem {
                    id: "m0".into(),
                    kind: pb::MemoryKind::Turn.into(),
                    text: format!("owner={tenant}"),
                    vector: unit(0, DIM),
                    ..Default::default()
                }],
            },
        ))
        .await
        .unwrap();
    let keys = t.keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    keys[0].name.rsplit('/').next().unwrap().to_owned()
}

/// A tenant as the operator sees it: its settings, collections, records, cache entries and
/// keys (not its audit trail, which the attempts may add to, nor its index state).
#[derive(Debug, PartialEq)]
struct Snapshot {
    settings: String,
    collections: Vec<(String, u64)>,
    records: Vec<(String, Option<String>, Vec<f32>)>,
    cache: Vec<(String, Option<String>)>,
    keys: Vec<(String, bool)>,
    verification_keys: Vec<(String, bool)>,
    /// Each live session with its items' ids and texts.
    sessions: Vec<(String, Vec<(String, String)>)>,
}

async fn snapshot(server: &Server, tenant: &str) -> Snapshot {
    let client = server.sdk().await;
    let info = client.admin(ADMIN).unwrap().tenant(tenant).await.unwrap();
    let t = client.tenant(tenant, ADMIN).unwrap();
    let ids = ["r0", "r1", "r2", "r3", "r4", "a-own-0"];
    // Cache entries are records of the cache's collection: a query lists them all.
    let every = bulkhead_client::Query::new(unit(0, DIM), 1000).with_text();
    let mut cache: Vec<_> = t
        .query(CACHE, &every)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.text))
        .collect();
    cache.sort();
    let verification_keys = KeyServiceClient::new(server.channel().await)
        .list_verification_keys(authed(
            ADMIN,
            pb::ListVerificationKeysRequest {
                parent: format!("tenants/{tenant}"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|k| (k.name, k.revoked))
        .collect();
    let mut memory = MemoryServiceClient::new(server.channel().await);
    let mut sessions = Vec::new();
    let listed = memory
        .list_sessions(authed(
            ADMIN,
            pb::ListSessionsRequest {
                parent: format!("tenants/{tenant}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    for s in listed {
        let items = memory
            .history(authed(
                ADMIN,
                pb::HistoryRequest {
                    session: s.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .items
            .into_iter()
            .map(|i| (i.id, i.text))
            .collect();
        sessions.push((s.name, items));
    }
    Snapshot {
        settings: format!(
            "{:?} {:?} {}",
            info.quota, info.rate_limit, info.audit_retention_seconds
        ),
        collections: t
            .collections()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.record_count))
            .collect(),
        records: t
            .get("docs", &ids)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.text, r.vector))
            .collect(),
        cache,
        keys: t
            .keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.name, k.revoked))
            .collect(),
        verification_keys,
        sessions,
    }
}

/// Fails naming every `bulkhead.v1` RPC that no attempt in `attempts` was refused on with
/// PERMISSION_DENIED, and every attempt that went out as something else.
fn assert_every_rpc_is_covered(attempts: &[Attempt]) {
    let api = api_methods();
    let denied: BTreeSet<String> = attempts
        .iter()
        .filter(|a| a.status.code() == Code::PermissionDenied)
        .map(|a| a.method.clone())
        .collect();
    let uncovered: Vec<&String> = api.difference(&denied).collect();
    assert!(
        uncovered.is_empty(),
        "RPCs of bulkhead.v1 without a cross-tenant case refused with PERMISSION_DENIED: \
         {uncovered:?}"
    );
    let strays: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !api.contains(&a.method))
        .collect();
    assert!(strays.is_empty(), "not RPCs of bulkhead.v1: {strays:?}");
}

#[tokio::test]
async fn every_rpc_in_the_descriptors_has_a_cross_tenant_case() {
    let api = api_methods();
    // The descriptor set is read right: all seven services, the streaming RPCs among them.
    let services: BTreeSet<&str> = api.iter().filter_map(|m| m.split('/').nth(1)).collect();
    assert_eq!(services.len(), 7, "{services:?}");
    for streaming in ["RecordService/Import", "RecordService/Export"] {
        assert!(
            api.contains(&format!("/bulkhead.v1.{streaming}")),
            "{api:?}"
        );
    }

    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "alpha", 1, DIM).await;
    let key_id = victim(&server, &mut c, "bravo").await;
    let (_, alpha_admin) = create_key(&mut c, "alpha", pb::Role::TenantAdmin, None).await;
    let mut recording = Api::connect(&server).await;
    let aim = Aim {
        tenant: "bravo",
        key_id: &key_id,
        own_collection: "tenants/alpha/collections/docs",
    };
    let attempts = every_rpc(&mut recording, &alpha_admin, &aim).await;
    assert_every_rpc_is_covered(&attempts);
    eprintln!(
        "{} RPCs of bulkhead.v1, each refused across tenants: {api:#?}",
        api.len()
    );
}

#[tokio::test]
async fn a_key_of_one_tenant_is_denied_on_every_rpc_of_another() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "alpha", 5, DIM).await;
    let bravo_key = victim(&server, &mut c, "bravo").await;
    let (alpha_key, alpha_admin) = create_key(&mut c, "alpha", pb::Role::TenantAdmin, None).await;
    let alpha_key = alpha_key.rsplit('/').next().unwrap().to_owned();
    let before = snapshot(&server, "bravo").await;
    assert_eq!(
        (before.records.len(), before.cache.len()),
        (5, 2),
        "{before:?}"
    );

    let mut api = Api::connect(&server).await;
    let aim = |tenant| Aim {
        tenant,
        key_id: &bravo_key,
        own_collection: "tenants/alpha/collections/docs",
    };
    let against_existing = every_rpc(&mut api, &alpha_admin, &aim("bravo")).await;
    let against_missing = every_rpc(&mut api, &alpha_admin, &aim("nobody-here")).await;
    assert_every_rpc_is_covered(&against_existing);
    assert_eq!(against_existing.len(), against_missing.len());
    for (existing, missing) in against_existing.iter().zip(&against_missing) {
        let case = existing.case;
        assert_eq!((case, &existing.method), (missing.case, &missing.method));
        let code = existing.status.code();
        assert_eq!(
            code,
            Code::PermissionDenied,
            "{case} on an existing tenant: {:?}",
            existing.status
        );
        // A missing tenant looks the same: the code, and the message up to the name.
        assert_eq!(missing.status.code(), code, "{case}: {:?}", missing.status);
        assert_eq!(
            missing.status.message().replace("nobody-here", "bravo"),
            existing.status.message(),
            "{case}"
        );
    }

    // Bravo is exactly as before, and no tenant was created.
    assert_eq!(snapshot(&server, "bravo").await, before);
    let admin = server.sdk().await.admin(ADMIN).unwrap();
    let tenants: Vec<String> = admin
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tenants, ["tenants/alpha", "tenants/bravo"]);

    // Every denial is in alpha's own trail under the key, on the RPC and the resource tried;
    // nothing of alpha's key is in bravo's.
    let alpha_events = audit_events(&mut c, &alpha_admin, "alpha").await;
    let denied_events: Vec<_> = alpha_events
        .iter()
        .filter(|e| e.outcome == "PERMISSION_DENIED")
        .collect();
    let denials: Vec<(&Attempt, &str)> = against_existing
        .iter()
        .map(|a| (a, "bravo"))
        .chain(against_missing.iter().map(|a| (a, "nobody-here")))
        .filter(|(a, _)| a.status.code() == Code::PermissionDenied)
        .collect();
    assert_eq!(denied_events.len(), denials.len(), "{alpha_events:#?}");
    for (attempt, target) in &denials {
        let method = attempt.audit_method();
        let path = format!("tenants/{target}");
        let admin_rpc = method.starts_with("AdminService/");
        assert!(
            denied_events.iter().any(|e| e.method == method
                && e.principal == alpha_key
                && (admin_rpc
                    || e.resource == path
                    || e.resource.starts_with(&format!("{path}/")))),
            "{} on {target} is not in alpha's trail: {denied_events:#?}",
            attempt.case
        );
    }
    let bravo_events = audit_events(&mut c, ADMIN, "bravo").await;
    assert!(
        bravo_events
            .iter()
            .all(|e| e.outcome != "PERMISSION_DENIED" && e.principal != alpha_key),
        "{bravo_events:#?}"
    );

    let log = server.log().join("\n");
    assert!(log.contains("permission denied"));
    assert!(!log.contains(&alpha_admin), "a secret reached the log");
    // Each line names its request: number, method and (for tenant RPCs) the tenant its path
    // named; every denied request has a number of its own.
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("permission denied"))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for denial in &denials {
        assert!(denial.contains("method="), "{denial}");
        assert!(
            denial.contains("AdminService/") || denial.contains("tenant="),
            "{denial}"
        );
        let id = denial
            .split("request{id=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no request span: {denial}"));
        ids.insert(id.to_owned());
    }
    assert!(denials.len() > 1);
    assert_eq!(
        ids.len(),
        denials.len(),
        "request numbers repeat: {denials:#?}"
    );
}

/// A stream may name its collection in every message; one that opens on the caller's own
/// collection and then names another tenant's is refused at that message, as a first message
/// naming it would be: PERMISSION_DENIED, whether the other tenant exists or not, and written
/// into the caller's own audit trail. What came before it was the caller's own batch and stays
/// applied (imports apply batch by batch); nothing reaches the other tenant.
#[tokio::test]
async fn an_import_that_turns_to_another_tenants_collection_is_refused_there() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "alpha", 5, DIM).await;
    victim(&server, &mut c, "bravo").await;
    let (_, alpha_writer) = create_key(&mut c, "alpha", pb::Role::Write, None).await;
    let before = snapshot(&server, "bravo").await;
    assert_eq!(
        (before.records.len(), before.cache.len()),
        (5, 2),
        "{before:?}"
    );
    let alpha_docs = "tenants/alpha/collections/docs";

    for target in ["bravo", "nobody-here"] {
        let own = vec![row("a-own-0", 0, "own batch")];
        let intruders = vec![row("r0", 0, "intruder"), row("r9", 9, "intruder")];
        let mut pieces = ipc_pieces(&[own, intruders]).into_iter();
        let refused = c
            .records
            .import(authed(
                &alpha_writer,
                import_stream(vec![
                    (alpha_docs.into(), pieces.next().unwrap()),
                    (
                        format!("tenants/{target}/collections/docs"),
                        pieces.next().unwrap(),
                    ),
                    (String::new(), pieces.next().unwrap()),
                ]),
            ))
            .await
            .expect_err("a stream naming another tenant's collection must be refused");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(
            refused
                .message()
                .ends_with("; 1 earlier batches (1 records) were imported"),
            "{refused:?}"
        );
    }
    // Both refusals are in alpha's own trail, on the collection the stream turned to.
    let alpha_events = audit_events(&mut c, ADMIN, "alpha").await;
    for target in ["bravo", "nobody-here"] {
        let resource = format!("tenants/{target}/collections/docs");
        assert!(
            alpha_events
                .iter()
                .any(|e| e.method == "RecordService/Import"
                    && e.outcome == "PERMISSION_DENIED"
                    && e.resource == resource),
            "the refusal on {target} is not in alpha's trail: {alpha_events:#?}"
        );
    }
    assert_eq!(snapshot(&server, "bravo").await, before);
    let bravo_events = audit_events(&mut c, ADMIN, "bravo").await;
    assert!(
        bravo_events
            .iter()
            .all(|e| e.method != "RecordService/Import"),
        "{bravo_events:#?}"
    );
    // The batch of the message before, alpha's own, was applied.
    let own = c
        .records
        .get(authed(
            &alpha_writer,
            pb::GetRequest {
                collection: alpha_docs.into(),
                ids: vec!["a-own-0".into(), "r9".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].text.as_deref(), Some("own batch"));
}

#[tokio::test]
async fn identical_ids_and_vectors_in_two_tenants_stay_apart() {
    let server = Server::start();
    let mut c = server.clients().await;
    let a = seeded_tenant(&mut c, "alpha", 20, 8).await;
    let b = seeded_tenant(&mut c, "bravo", 20, 8).await;
    for (tenant, secret) in [("alpha", &a), ("bravo", &b)] {
        let hits = c
            .records
            .query(authed(
                secret,
                pb::QueryRequest {
                    collection: format!("tenants/{tenant}/collections/docs"),
                    vector: unit(3, 8),
                    top_k: 1000,
                    include_text: true,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert_eq!(hits.len(), 20);
        let owner = format!("owner={tenant}");
        assert!(
            hits.iter()
                .all(|h| h.text.as_deref() == Some(owner.as_str()))
        );
    }
}
