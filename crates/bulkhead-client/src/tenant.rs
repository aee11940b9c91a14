//! The handle a RAG backend holds: fixed to one tenant at construction. Every resource name is
//! built here from that tenant and a validated collection id, and no method takes a tenant, so
//! code holding this handle can't address another tenant even by mistake.

use std::time::{Duration, SystemTime};

use bulkhead_core::{CacheName, CollectionId, CollectionName, Metric, Role, TenantId, TenantName};
use bulkhead_proto::v1 as pb;
use pb::audit_service_client::AuditServiceClient;
use pb::collection_service_client::CollectionServiceClient;
use pb::record_service_client::RecordServiceClient;
use pb::semantic_cache_service_client::SemanticCacheServiceClient;
use tonic::transport::Channel;

use crate::connection::{Connection, Credential, MAX_MESSAGE_BYTES};
use crate::error::{ClientError, Result};
use crate::keys;
use crate::pages;
use crate::sessions::{self, SessionClient, SessionOptions};
use crate::types::{
    CacheLookup, CachePolicy, CacheScope, CacheStore, CollectionSpec, CreatedKey, EndUserScope,
    Hit, Query, Record,
};
use crate::verification_keys;

/// Records per upsert request, at most (the server's default limit is 1,000).
pub const DEFAULT_BATCH_RECORDS: usize = 500;
/// Approximate bytes per upsert request, at most.
pub const DEFAULT_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The shortest wait before a request refused for its tenant's limits is sent again.
const SHORTEST_PACE: Duration = Duration::from_millis(10);
/// Bytes of Arrow stream per import message.
const IMPORT_CHUNK_BYTES: usize = 1024 * 1024;
/// Audit events fetched per page.
const AUDIT_PAGE: i32 = 500;
/// Collections fetched per page.
const LIST_PAGE: i32 = 500;

/// A client fixed to one tenant. Made by [`crate::Client::tenant`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct TenantClient {
    connection: Connection,
    credential: Credential,
    tenant: TenantId,
    batch_records: usize,
    batch_bytes: usize,
}

fn records(channel: Channel) -> RecordServiceClient<Channel> {
    RecordServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl TenantClient {
    pub(crate) fn new(connection: Connection, credential: Credential, tenant: TenantId) -> Self {
        Self {
            connection,
            credential,
            tenant,
            batch_records: DEFAULT_BATCH_RECORDS,
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    /// Limits for splitting large upserts into requests (at least one record per request).
    pub fn with_batch_limits(mut self, records: usize, bytes: usize) -> Self {
        self.batch_records = records.max(1);
        self.batch_bytes = bytes.max(1);
        self
    }

    fn parent(&self) -> String {
        TenantName {
            tenant: self.tenant.clone(),
        }
        .to_string()
    }

    fn collection_name(&self, collection: &str) -> Result<String> {
        Ok(CollectionName {
            tenant: self.tenant.clone(),
            collection: CollectionId::new(collection)?,
        }
        .to_string())
    }

    pub async fn create_collection(
        &self,
        collection: &str,
        spec: &CollectionSpec,
    ) -> Result<pb::Collection> {
        CollectionId::new(collection)?;
        let request = pb::CreateCollectionRequest {
            parent: self.parent(),
            collection_id: collection.to_owned(),
            dimension: spec.dimension,
            metric: bulkhead_wire::metric_to_pb(spec.metric) as i32,
            default_ttl_seconds: spec.default_ttl.map(|t| t.as_secs() as i64),
            hnsw: spec.hnsw,
            indexed_fields: spec
                .indexed_fields
                .iter()
                .map(|(name, t)| (name.clone(), *t as i32))
                .collect(),
            access_control: spec.access_control,
            audit_reads: spec.audit_reads,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                CollectionServiceClient::new(channel)
                    .create_collection(r)
                    .await
            })
            .await
    }

    pub async fn collection(&self, collection: &str) -> Result<pb::Collection> {
        let request = pb::GetCollectionRequest {
            name: self.collection_name(collection)?,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                CollectionServiceClient::new(channel)
                    .get_collection(r)
                    .await
            })
            .await
    }

    /// Every collection of the tenant, following pages to the end.
    pub async fn collections(&self) -> Result<Vec<pb::Collection>> {
        pages::collect(usize::MAX, |page_token, _| async move {
            let request = pb::ListCollectionsRequest {
                parent: self.parent(),
                page_size: LIST_PAGE,
                page_token,
            };
            let page = self
                .connection
                .call(&self.credential, request, |channel, r| async move {
                    CollectionServiceClient::new(channel)
                        .list_collections(r)
                        .await
                })
                .await?;
            Ok((page.collections, page.next_page_token))
        })
        .await
    }

    pub async fn delete_collection(&self, collection: &str) -> Result<()> {
        let request = pb::DeleteCollectionRequest {
            name: self.collection_name(collection)?,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                CollectionServiceClient::new(channel)
                    .delete_collection(r)
                    .await
            })
            .await?;
        Ok(())
    }

    /// Inserts or replaces `records`, split into requests within the batch limits. Each
    /// request is atomic on the server; on error, earlier requests stay applied, so retrying
    /// the whole call is safe (upsert by id is idempotent). Returns the records upserted.
    pub async fn upsert(&self, collection: &str, records: &[Record]) -> Result<u64> {
        self.upsert_requests(collection, records, false).await
    }

    /// Like [`TenantClient::upsert`], but a request refused for the tenant's limits with a
    /// wait (`retry_after`: its write limit, or its part of the server's write budget while
    /// other tenants are active) is sent again once the wait is over, so a bulk load goes at
    /// the pace the server admits. Only that request is sent again: retrying the whole call
    /// would send the requests before it once more, and they would take the limit's tokens
    /// from it every time. A refusal without a wait (a quota) is the call's error.
    pub async fn upsert_at_the_servers_pace(
        &self,
        collection: &str,
        records: &[Record],
    ) -> Result<u64> {
        self.upsert_requests(collection, records, true).await
    }

    async fn upsert_requests(
        &self,
        collection: &str,
        records: &[Record],
        wait_out_limits: bool,
    ) -> Result<u64> {
        let name = self.collection_name(collection)?;
        let send = |request: pb::UpsertRequest| {
            self.connection
                .call(&self.credential, request, |channel, r| async move {
                    self::records(channel).upsert(r).await
                })
        };
        let mut upserted = 0;
        for chunk in chunks(records, self.batch_records, self.batch_bytes) {
            let request = pb::UpsertRequest {
                collection: name.clone(),
                records: chunk.iter().map(Record::to_pb).collect(),
            };
            let response = if wait_out_limits {
                loop {
                    match send(request.clone()).await {
                        Err(ClientError::ResourceExhausted {
                            retry_after: Some(wait),
                            ..
                        }) => tokio::time::sleep(wait.max(SHORTEST_PACE)).await,
                        sent => break sent?,
                    }
                }
            } else {
                send(request).await?
            };
            upserted += response.upserted;
        }
        Ok(upserted)
    }

    /// The live records among `ids`, in request order; missing or expired ids are left out.
    pub async fn get(&self, collection: &str, ids: &[&str]) -> Result<Vec<Record>> {
        let request = pb::GetRequest {
            collection: self.collection_name(collection)?,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                records(channel).get(r).await
            })
            .await?;
        response.records.into_iter().map(Record::from_pb).collect()
    }

    /// Deletes `ids`; returns how many existed.
    pub async fn delete(&self, collection: &str, ids: &[&str]) -> Result<u64> {
        let request = pb::DeleteRequest {
            collection: self.collection_name(collection)?,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                records(channel).delete(r).await
            })
            .await?;
        Ok(response.deleted)
    }

    /// The nearest live records to `query.vector`, best first.
    pub async fn query(&self, collection: &str, query: &Query) -> Result<Vec<Hit>> {
        let request = query.to_pb(self.collection_name(collection)?);
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                records(channel).query(r).await
            })
            .await?;
        response.hits.into_iter().map(Hit::from_pb).collect()
    }

    /// Loads an Arrow IPC stream into `collection` (schema: `id`, `vector`, optional `text`,
    /// `metadata`, `ttl_seconds`; see `bulkhead_formats::record_schema`), sent in chunks of
    /// 1 MiB. Each record batch of the stream is applied atomically; on error, the batches
    /// before the bad one stay applied and the error says how many. Not retried: a stream
    /// can't be replayed. Bound by the client's `stream_timeout`, not its per-call `timeout`:
    /// past the tenant's write limit the server paces the import rather than refusing it.
    pub async fn import_arrow(&self, collection: &str, ipc: &[u8]) -> Result<pb::ImportResponse> {
        let name = self.collection_name(collection)?;
        let messages: Vec<pb::ImportRequest> = ipc
            .chunks(IMPORT_CHUNK_BYTES)
            .enumerate()
            .map(|(i, chunk)| pb::ImportRequest {
                collection: if i == 0 { name.clone() } else { String::new() },
                arrow_ipc: chunk.to_vec(),
            })
            .collect();
        let request = self
            .connection
            .stream_request(&self.credential, tokio_stream::iter(messages));
        Ok(records(self.connection.channel())
            .import(request)
            .await?
            .into_inner())
    }

    /// Streams `collection` as an Arrow IPC stream into `sink`, chunk by chunk as the server
    /// sends them; returns the bytes written. Not retried; bound by the client's
    /// `stream_timeout`.
    pub async fn export_arrow(
        &self,
        collection: &str,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64> {
        let request = self.connection.stream_request(
            &self.credential,
            pb::ExportRequest {
                collection: self.collection_name(collection)?,
                batch_size: 0,
            },
        );
        let mut stream = records(self.connection.channel())
            .export(request)
            .await?
            .into_inner();
        let mut written = 0;
        while let Some(chunk) = stream.message().await? {
            sink(&chunk.arrow_ipc).map_err(|e| ClientError::Sink(e.to_string()))?;
            written += chunk.arrow_ipc.len() as u64;
        }
        Ok(written)
    }

    fn cache_name(&self, cache: &str) -> Result<String> {
        Ok(CacheName {
            tenant: self.tenant.clone(),
            cache: CollectionId::new(cache)?,
        }
        .to_string())
    }

    /// Creates a semantic cache: a collection of this tenant with the fields lookups filter
    /// on. List and delete caches as collections.
    pub async fn create_cache(
        &self,
        cache: &str,
        dimension: u32,
        metric: Metric,
        default_ttl: Option<Duration>,
    ) -> Result<pb::Collection> {
        self.create_cache_with_policy(
            cache,
            dimension,
            metric,
            default_ttl,
            CachePolicy::default(),
        )
        .await
    }

    /// Like [`create_cache`](Self::create_cache), with how end users are scoped and a floor
    /// under every lookup's similarity.
    pub async fn create_cache_with_policy(
        &self,
        cache: &str,
        dimension: u32,
        metric: Metric,
        default_ttl: Option<Duration>,
        policy: CachePolicy,
    ) -> Result<pb::Collection> {
        let request = pb::CreateCacheRequest {
            parent: self.parent(),
            cache_id: CollectionId::new(cache)?.to_string(),
            dimension,
            metric: bulkhead_wire::metric_to_pb(metric) as i32,
            default_ttl_seconds: default_ttl.map(|t| t.as_secs() as i64),
            end_user_scope: match policy.end_user_scope {
                EndUserScope::User => pb::EndUserScope::User,
                EndUserScope::Session => pb::EndUserScope::Session,
            }
            .into(),
            similarity_floor: policy.similarity_floor,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                SemanticCacheServiceClient::new(channel)
                    .create_cache(r)
                    .await
            })
            .await
    }

    /// Stores an answer under its prompt's embedding; its scope keeps it from every lookup of
    /// another scope. Returns the entry id.
    pub async fn cache_store(&self, cache: &str, entry: CacheStore) -> Result<String> {
        let (scope, shared) = entry.scope.into_pb();
        let request = pb::StoreRequest {
            cache: self.cache_name(cache)?,
            vector: entry.vector,
            prompt: entry.prompt,
            response: entry.response,
            metadata: bulkhead_wire::metadata_to_pb(entry.metadata),
            ttl_seconds: entry.ttl.map(|t| t.as_secs() as i64),
            scope,
            fingerprint: entry.fingerprint,
            shared,
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                SemanticCacheServiceClient::new(channel).store(r).await
            })
            .await?;
        Ok(response.id)
    }

    /// The most similar entry of `scope` at least `min_similarity` close, and at most
    /// `max_age` old if given.
    pub async fn cache_lookup(
        &self,
        cache: &str,
        vector: Vec<f32>,
        min_similarity: f32,
        max_age: Option<Duration>,
        scope: CacheScope,
    ) -> Result<Option<pb::CacheEntry>> {
        let mut lookup = CacheLookup::new(vector, min_similarity);
        lookup.max_age = max_age;
        lookup.scope = scope;
        self.cache_find(cache, lookup).await
    }

    /// The closest entry `lookup` allows, if any.
    pub async fn cache_find(
        &self,
        cache: &str,
        lookup: CacheLookup,
    ) -> Result<Option<pb::CacheEntry>> {
        let (scope, shared) = lookup.scope.into_pb();
        let request = pb::LookupRequest {
            cache: self.cache_name(cache)?,
            vector: lookup.vector,
            min_similarity: lookup.min_similarity,
            max_age_seconds: lookup.max_age.map(|a| a.as_secs() as i64),
            scope,
            fingerprint: lookup.fingerprint,
            shared,
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                SemanticCacheServiceClient::new(channel).lookup(r).await
            })
            .await?;
        Ok(response.entry.filter(|_| response.hit))
    }

    /// Drops the entries `ids`, or every entry of `scope` when `ids` is empty.
    pub async fn cache_invalidate(
        &self,
        cache: &str,
        ids: &[&str],
        scope: Option<&str>,
    ) -> Result<u64> {
        let request = pb::InvalidateRequest {
            cache: self.cache_name(cache)?,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            scope: scope.map(str::to_owned),
        };
        let response = self
            .connection
            .call(&self.credential, request, |channel, r| async move {
                SemanticCacheServiceClient::new(channel).invalidate(r).await
            })
            .await?;
        Ok(response.invalidated)
    }

    /// Creates session `session` of this tenant (a WRITE key or more).
    pub async fn create_session(
        &self,
        session: &str,
        options: &SessionOptions,
    ) -> Result<pb::Session> {
        sessions::create(
            &self.connection,
            &self.credential,
            &self.tenant,
            session,
            options,
        )
        .await
    }

    /// A handle on session `session` of this tenant, with this handle's credential.
    pub fn session(&self, session: &str) -> Result<SessionClient> {
        SessionClient::new(
            self.connection.clone(),
            self.credential.clone(),
            self.tenant.clone(),
            session,
        )
    }

    /// The tenant's live sessions (needs a TENANT_ADMIN key or the admin token).
    pub async fn sessions(&self) -> Result<Vec<pb::Session>> {
        sessions::list(&self.connection, &self.credential, &self.tenant).await
    }

    /// Up to `limit` events of this tenant's audit trail, oldest first, from `since` on.
    pub async fn audit_events(
        &self,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<pb::AuditEvent>> {
        Ok(self.audit_page(since, "", limit).await?.0)
    }

    /// Like [`audit_events`](Self::audit_events), continuing after the event `page_token`
    /// stands for (empty: from the oldest), and also returning the token that continues after
    /// the events returned: empty when there are no more.
    pub async fn audit_page(
        &self,
        since: Option<SystemTime>,
        page_token: &str,
        limit: usize,
    ) -> Result<(Vec<pb::AuditEvent>, String)> {
        self.audit_pages(since, None, None, page_token, limit).await
    }

    /// Up to `limit` events of one end user (`sub` of its token), or of one session, or of
    /// both, oldest first: who saw what, from the tenant's own trail.
    pub async fn audit_events_of(
        &self,
        user: Option<&str>,
        session: Option<&str>,
        limit: usize,
    ) -> Result<Vec<pb::AuditEvent>> {
        Ok(self.audit_pages(None, user, session, "", limit).await?.0)
    }

    async fn audit_pages(
        &self,
        since: Option<SystemTime>,
        user: Option<&str>,
        session: Option<&str>,
        page_token: &str,
        limit: usize,
    ) -> Result<(Vec<pb::AuditEvent>, String)> {
        pages::collect_from(
            page_token.to_owned(),
            limit,
            |page_token, wanted| async move {
                let request = pb::ListAuditEventsRequest {
                    parent: self.parent(),
                    page_size: AUDIT_PAGE.min(wanted.try_into().unwrap_or(i32::MAX)),
                    page_token,
                    start_time: since.map(bulkhead_wire::system_time_to_pb),
                    user: user.unwrap_or_default().to_owned(),
                    session: session.unwrap_or_default().to_owned(),
                };
                let page = self
                    .connection
                    .call(&self.credential, request, |channel, r| async move {
                        AuditServiceClient::new(channel).list_audit_events(r).await
                    })
                    .await?;
                Ok((page.events, page.next_page_token))
            },
        )
        .await
    }

    /// Creates a key of this tenant (needs a TENANT_ADMIN key or the admin token).
    pub async fn create_key(
        &self,
        role: Role,
        ttl: Option<Duration>,
        description: &str,
    ) -> Result<CreatedKey> {
        keys::create(
            &self.connection,
            &self.credential,
            &self.tenant,
            role,
            ttl,
            description,
        )
        .await
    }

    pub async fn keys(&self) -> Result<Vec<pb::ApiKey>> {
        keys::list(&self.connection, &self.credential, &self.tenant).await
    }

    pub async fn revoke_key(&self, key_id: &str) -> Result<()> {
        keys::revoke(&self.connection, &self.credential, &self.tenant, key_id).await
    }

    /// Registers the Ed25519 public key whose private half this tenant's backend signs its
    /// end users' tokens with; the returned key's `name` is the `kid` those tokens carry.
    /// Tokens may live at most `max_token_lifetime` (the server's default, an hour, if `None`).
    pub async fn add_verification_key(
        &self,
        key_id: &str,
        ed25519_public_key: &[u8; 32],
        max_token_lifetime: Option<Duration>,
        description: &str,
    ) -> Result<pb::VerificationKey> {
        verification_keys::add(
            &self.connection,
            &self.credential,
            &self.tenant,
            key_id,
            ed25519_public_key,
            max_token_lifetime,
            description,
        )
        .await
    }

    pub async fn verification_keys(&self) -> Result<Vec<pb::VerificationKey>> {
        verification_keys::list(&self.connection, &self.credential, &self.tenant).await
    }

    /// From the next call on, no token the key signed authenticates.
    pub async fn revoke_verification_key(&self, key_id: &str) -> Result<()> {
        verification_keys::revoke(&self.connection, &self.credential, &self.tenant, key_id).await
    }
}

/// Splits `records` into runs of at most `max_records` records and about `max_bytes` bytes;
/// a single record larger than `max_bytes` travels alone.
fn chunks(records: &[Record], max_records: usize, max_bytes: usize) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        let size = r.approximate_size();
        if i > start && (i - start == max_records || bytes + size > max_bytes) {
            out.push(&records[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize, dim: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record::new(i.to_string(), vec![0.0; dim]))
            .collect()
    }

    #[test]
    fn chunks_respect_both_limits_and_keep_every_record_once() {
        let rs = recs(1001, 4);
        let cs = chunks(&rs, 500, usize::MAX);
        assert_eq!(
            cs.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [500, 500, 1]
        );
        let big = recs(10, 1000);
        let one = big[0].approximate_size();
        let cs = chunks(&big, 100, one * 3);
        assert!(cs.iter().all(|c| c.len() == 3 || c.len() == 1));
        assert_eq!(cs.iter().map(|c| c.len()).sum::<usize>(), 10);
        let ids: Vec<&str> = cs
            .iter()
            .flat_map(|c| c.iter().map(|r| r.id.as_str()))
            .collect();
        assert_eq!(ids, big.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());
    }

    #[test]
    fn an_oversized_record_travels_alone_and_empty_input_sends_nothing() {
        let rs = recs(3, 1000);
        assert_eq!(chunks(&rs, 10, 1).len(), 3);
        assert!(chunks(&[], 10, 10).is_empty());
    }
}
