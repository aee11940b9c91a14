//! `SemanticCacheService`: cached LLM answers, looked up by the similarity of a prompt's
//! embedding. A cache is a collection of the tenant, so its entries are partitioned, audited
//! and TTL'd like any record; lookups add two filters on reserved fields: the scope (a user or
//! session inside the tenant, never crossed) and the age.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkhead_core::{CacheName, CollectionId, Metric, RecordId, Role, TenantName, Value};
use bulkhead_engine::{Condition, FieldType, Filter, Include, NewRecord, Query, Range};
use bulkhead_proto::v1 as pb;
use pb::semantic_cache_service_server::SemanticCacheService;
use tonic::{Request, Response, Status};

use crate::convert::{metadata, metric, positive_seconds, record_ids};
use crate::gate::{Gate, Scope, now_ms};
use crate::status::{core_status, engine_status};

/// Reserved metadata keys of cache entries; callers' own metadata may not start with `_`.
const SCOPE: &str = "_scope";
const STORED_AT: &str = "_stored_at";
const PROMPT: &str = "_prompt";

#[derive(Debug)]
pub struct CacheApi {
    pub gate: Arc<Gate>,
}

fn scope_filter(scope: Option<&str>) -> Filter {
    match scope {
        Some(s) => Filter::condition(Condition::Eq {
            field: SCOPE.into(),
            value: Value::String(s.into()),
        }),
        None => Filter {
            must_not: vec![Filter::condition(Condition::Exists {
                field: SCOPE.into(),
            })],
            ..Filter::default()
        },
    }
}

fn check_scope(scope: &Option<String>) -> Result<(), Status> {
    match scope {
        Some(s) if s.is_empty() || s.len() > 256 => {
            Err(Status::invalid_argument("scope must be 1 to 256 bytes"))
        }
        _ => Ok(()),
    }
}

/// Whole seconds since an entry's `_stored_at` (0 for an entry without one, which the cache
/// never writes).
fn age_seconds(stored_at: Option<Value>, now: u64) -> i64 {
    match stored_at {
        Some(Value::Int(t)) => (now.saturating_sub(t as u64) / 1000) as i64,
        _ => 0,
    }
}

/// What a Store costs the tenant's write-rate budget: its prompt, response and vector bytes.
fn write_bytes(req: &pb::StoreRequest) -> u64 {
    (req.prompt.len() + req.response.len() + req.vector.len() * size_of::<f32>()) as u64
}

#[tonic::async_trait]
impl SemanticCacheService for CacheApi {
    async fn create_cache(
        &self,
        request: Request<pb::CreateCacheRequest>,
    ) -> Result<Response<pb::Collection>, Status> {
        let (md, _, req) = request.into_parts();
        let parent = req.parent.clone();
        self.gate
            .tenant_call(
                &md,
                "SemanticCacheService/CreateCache",
                &parent,
                Role::Write,
                0,
                move |scope: Scope<TenantName>| {
                    let id = CollectionId::new(req.cache_id.clone()).map_err(core_status)?;
                    let m = metric(req.metric)?;
                    if m == Metric::L2 {
                        return Err(Status::invalid_argument(
                            "metric: a cache compares similarities; use COSINE or DOT",
                        ));
                    }
                    let mut spec = bulkhead_engine::CollectionSpec::new(req.dimension as usize, m);
                    if let Some(ttl) = req.default_ttl_seconds {
                        spec.default_ttl = Some(positive_seconds("default_ttl_seconds", ttl)?);
                    }
                    spec.indexed_fields = BTreeMap::from([
                        (SCOPE.to_owned(), FieldType::Keyword),
                        (STORED_AT.to_owned(), FieldType::Integer),
                    ]);
                    super::collections::create(scope, id, &spec)
                },
            )
            .await
            .map(Response::new)
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let cache = req.cache.clone();
        self.gate
            .tenant_call(
                &md,
                "SemanticCacheService/Lookup",
                &cache,
                Role::Read,
                0,
                move |scope: Scope<CacheName>| {
                    check_scope(&req.scope)?;
                    let now = now_ms();
                    let mut filter = scope_filter(req.scope.as_deref());
                    if let Some(age) = req.max_age_seconds {
                        let age = positive_seconds("max_age_seconds", age)?;
                        let since = now.saturating_sub(age.as_millis() as u64) as i64;
                        filter.must.push(Filter::condition(Condition::Range {
                            field: STORED_AT.into(),
                            range: Range::Integer {
                                gte: Some(since),
                                gt: None,
                                lte: None,
                                lt: None,
                            },
                        }));
                    }
                    let mut query = Query::new(req.vector, 1);
                    query.include = Include {
                        text: true,
                        metadata: true,
                        vector: false,
                    };
                    query.filter = Some(filter);
                    let hit = scope
                        .tenant
                        .query(&scope.name.cache, &query)
                        .map_err(engine_status)?
                        .into_iter()
                        .next()
                        .filter(|h| h.score >= req.min_similarity);
                    let Some(hit) = hit else {
                        return Ok((
                            pb::LookupResponse {
                                hit: false,
                                entry: None,
                            },
                            0,
                        ));
                    };
                    let mut meta = hit.metadata.unwrap_or_default();
                    let prompt = match meta.remove(PROMPT) {
                        Some(Value::String(p)) => p,
                        _ => String::new(),
                    };
                    let age_seconds = age_seconds(meta.remove(STORED_AT), now);
                    meta.remove(SCOPE);
                    let entry = pb::CacheEntry {
                        id: hit.id.to_string(),
                        prompt,
                        response: hit.text.unwrap_or_default(),
                        metadata: bulkhead_proto::metadata_to_pb(meta),
                        similarity: hit.score,
                        age_seconds,
                    };
                    Ok((
                        pb::LookupResponse {
                            hit: true,
                            entry: Some(entry),
                        },
                        1,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn store(
        &self,
        request: Request<pb::StoreRequest>,
    ) -> Result<Response<pb::StoreResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let cache = req.cache.clone();
        let bytes = write_bytes(&req);
        self.gate
            .tenant_call(
                &md,
                "SemanticCacheService/Store",
                &cache,
                Role::Write,
                bytes,
                move |scope: Scope<CacheName>| {
                    check_scope(&req.scope)?;
                    let mut meta = metadata(req.metadata)?;
                    if let Some(reserved) = meta.keys().find(|k| k.starts_with('_')) {
                        return Err(Status::invalid_argument(format!(
                            "metadata.{reserved}: keys starting with '_' are reserved for the cache"
                        )));
                    }
                    meta.insert(PROMPT.into(), Value::String(req.prompt));
                    meta.insert(STORED_AT.into(), Value::Int(now_ms() as i64));
                    if let Some(s) = req.scope {
                        meta.insert(SCOPE.into(), Value::String(s));
                    }
                    let id = RecordId::new(crate::auth::new_key_id().replacen('k', "e", 1))
                        .map_err(core_status)?;
                    let mut record = NewRecord::new(id.clone(), req.vector);
                    record.text = Some(req.response);
                    record.metadata = meta;
                    record.ttl = req
                        .ttl_seconds
                        .map(|s| positive_seconds("ttl_seconds", s))
                        .transpose()?;
                    scope
                        .tenant
                        .upsert(&scope.name.cache, vec![record])
                        .map_err(engine_status)?;
                    Ok((pb::StoreResponse { id: id.to_string() }, 1))
                },
            )
            .await
            .map(Response::new)
    }

    async fn invalidate(
        &self,
        request: Request<pb::InvalidateRequest>,
    ) -> Result<Response<pb::InvalidateResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let cache = req.cache.clone();
        self.gate
            .tenant_call(
                &md,
                "SemanticCacheService/Invalidate",
                &cache,
                Role::Write,
                0,
                move |scope: Scope<CacheName>| {
                    check_scope(&req.scope)?;
                    let n = match (req.ids.is_empty(), &req.scope) {
                        (false, None) => {
                            let ids = record_ids(req.ids)?;
                            scope
                                .tenant
                                .delete(&scope.name.cache, &ids)
                                .map_err(engine_status)?
                        }
                        (true, Some(s)) => scope
                            .tenant
                            .delete_where(&scope.name.cache, &scope_filter(Some(s)))
                            .map_err(engine_status)?,
                        _ => return Err(Status::invalid_argument("give either ids or a scope")),
                    };
                    Ok((
                        pb::InvalidateResponse {
                            invalidated: n as u64,
                        },
                        n as u64,
                    ))
                },
            )
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_one_to_256_bytes_or_absent() {
        let check = |s: Option<&str>| check_scope(&s.map(str::to_owned)).is_ok();
        assert!(check(None));
        assert!(check(Some("u")));
        assert!(check(Some(&"u".repeat(256))));
        assert!(!check(Some("")));
        assert!(!check(Some(&"u".repeat(257))));
    }

    #[test]
    fn an_entry_is_as_old_as_the_whole_seconds_since_it_was_stored() {
        let now = 1_700_000_000_000;
        assert_eq!(age_seconds(Some(Value::Int(now as i64 - 5_999)), now), 5);
        assert_eq!(age_seconds(Some(Value::Int(now as i64 - 6_000)), now), 6);
        assert_eq!(
            age_seconds(Some(Value::Int(now as i64 + 2_000)), now),
            0,
            "clock went back"
        );
        assert_eq!(age_seconds(None, now), 0);
        assert_eq!(age_seconds(Some(Value::String("x".into())), now), 0);
    }

    #[test]
    fn a_store_costs_its_prompt_response_and_vector_bytes() {
        let req = pb::StoreRequest {
            prompt: "abc".into(),
            response: "hello".into(),
            vector: vec![0.5; 7],
            ..Default::default()
        };
        assert_eq!(write_bytes(&req), 3 + 5 + 7 * 4);
    }
}
