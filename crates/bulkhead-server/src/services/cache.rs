//! `SemanticCacheService`: cached LLM answers, looked up by the similarity of a prompt's
//! embedding. The cache's rules (reserved fields, scopes, an end user's scope, fingerprints,
//! the similarity floor, age) are the engine's
//! (`TenantHandle::store_in_cache` and the rest), so they hold on every write path; this only
//! converts messages.

use std::sync::Arc;

use bulkhead_core::{CacheName, CollectionId, RecordId, TenantName};
use bulkhead_engine::{
    CacheEntry, CacheLookup, CachePolicy, CacheScope, CacheSettings, CacheTarget,
    EndUserCacheScope, Read, Write,
};
use bulkhead_proto::v1 as pb;
use pb::semantic_cache_service_server::SemanticCacheService;
use tonic::{Request, Response, Status};

use crate::gate::{Gate, Scope};
use crate::status::{core_status, engine_status, wire_status};
use crate::undecoded::WriteMessage;
use bulkhead_wire::{metadata_from_pb, metric_from_pb, positive_seconds, record_ids};

#[derive(Debug)]
pub struct CacheApi {
    pub gate: Arc<Gate>,
}

/// The cache policy a CreateCache asks for.
fn cache_policy(req: &pb::CreateCacheRequest) -> Result<CachePolicy, Status> {
    let end_user_scope = match pb::EndUserScope::try_from(req.end_user_scope) {
        Ok(pb::EndUserScope::Unspecified | pb::EndUserScope::User) => EndUserCacheScope::User,
        Ok(pb::EndUserScope::Session) => EndUserCacheScope::Session,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "end_user_scope: unknown value {}; expected USER or SESSION",
                req.end_user_scope
            )));
        }
    };
    Ok(CachePolicy {
        end_user_scope,
        similarity_floor: req.similarity_floor,
    })
}

/// The scope a Lookup or Store asks for: a named one, the shared entries, or the caller's own.
fn cache_scope(scope: Option<String>, shared: bool) -> Result<CacheScope, Status> {
    match (scope, shared) {
        (Some(_), true) => Err(Status::invalid_argument(
            "give a scope or set shared, not both",
        )),
        (Some(s), false) => Ok(CacheScope::Named(s)),
        (None, true) => Ok(CacheScope::Shared),
        (None, false) => Ok(CacheScope::Own),
    }
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
                0,
                move |scope: Scope<TenantName, Write>| {
                    let id = CollectionId::new(req.cache_id.clone()).map_err(core_status)?;
                    let settings = CacheSettings {
                        dimension: req.dimension as usize,
                        metric: metric_from_pb(req.metric).map_err(wire_status)?,
                        default_ttl: req
                            .default_ttl_seconds
                            .map(|ttl| positive_seconds("default_ttl_seconds", ttl))
                            .transpose()
                            .map_err(wire_status)?,
                        policy: cache_policy(&req)?,
                    };
                    let info = scope
                        .tenant
                        .create_cache(&id, &settings)
                        .map_err(engine_status)?;
                    Ok((super::collections::to_pb(scope.name, id, &info), 0))
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
                0,
                move |scope: Scope<CacheName, Read>| {
                    let lookup = CacheLookup {
                        vector: req.vector,
                        scope: cache_scope(req.scope, req.shared)?,
                        fingerprint: req.fingerprint,
                        max_age: req
                            .max_age_seconds
                            .map(|age| positive_seconds("max_age_seconds", age))
                            .transpose()
                            .map_err(wire_status)?,
                        min_similarity: req.min_similarity,
                    };
                    let hit = scope
                        .tenant
                        .lookup_in_cache(&scope.name.cache, lookup)
                        .map_err(engine_status)?;
                    let found = u64::from(hit.is_some());
                    let entry = hit.map(|hit| pb::CacheEntry {
                        id: hit.id.to_string(),
                        prompt: hit.prompt,
                        response: hit.response,
                        metadata: bulkhead_wire::metadata_to_pb(hit.metadata),
                        similarity: hit.similarity,
                        age_seconds: i64::try_from(hit.age_seconds).unwrap_or(i64::MAX),
                    });
                    Ok((
                        pb::LookupResponse {
                            hit: entry.is_some(),
                            entry,
                        },
                        found,
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
        let (md, message) = WriteMessage::of(request, |m: &pb::StoreRequest| &m.cache);
        let cache = message.name();
        // Its whole message, as `write_admission` reads it from the message's start.
        let bytes = message.bytes();
        self.gate
            .tenant_call(
                &md,
                "SemanticCacheService/Store",
                &cache,
                bytes,
                move |scope: Scope<CacheName, Write>| {
                    let req = message.decode()?;
                    let entry = CacheEntry {
                        id: RecordId::new(crate::auth::new_key_id().replacen('k', "e", 1))
                            .map_err(core_status)?,
                        prompt: req.prompt,
                        response: req.response,
                        vector: req.vector,
                        scope: cache_scope(req.scope, req.shared)?,
                        fingerprint: req.fingerprint,
                        metadata: metadata_from_pb(req.metadata).map_err(wire_status)?,
                        ttl: req
                            .ttl_seconds
                            .map(|s| positive_seconds("ttl_seconds", s))
                            .transpose()
                            .map_err(wire_status)?,
                    };
                    let id = scope
                        .tenant
                        .store_in_cache(&scope.name.cache, entry)
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
                0,
                move |scope: Scope<CacheName, Write>| {
                    let target = match (req.ids.is_empty(), req.scope) {
                        (false, None) => {
                            CacheTarget::Ids(record_ids(req.ids).map_err(wire_status)?)
                        }
                        (true, Some(s)) => CacheTarget::Scope(s),
                        _ => return Err(Status::invalid_argument("give either ids or a scope")),
                    };
                    let n = scope
                        .tenant
                        .invalidate_in_cache(&scope.name.cache, &target)
                        .map_err(engine_status)? as u64;
                    Ok((pb::InvalidateResponse { invalidated: n }, n))
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
    fn a_cache_policy_defaults_to_per_user_scopes_and_refuses_unknown_ones() {
        let req = pb::CreateCacheRequest::default();
        assert_eq!(cache_policy(&req).unwrap(), CachePolicy::default());
        let per_session = pb::CreateCacheRequest {
            end_user_scope: pb::EndUserScope::Session.into(),
            similarity_floor: Some(0.9),
            ..Default::default()
        };
        let policy = cache_policy(&per_session).unwrap();
        assert_eq!(policy.end_user_scope, EndUserCacheScope::Session);
        assert_eq!(policy.similarity_floor, Some(0.9));
        let unknown = pb::CreateCacheRequest {
            end_user_scope: 7,
            ..Default::default()
        };
        assert!(cache_policy(&unknown).is_err());
    }

    #[test]
    fn a_request_names_a_scope_asks_for_the_shared_entries_or_takes_its_own() {
        assert_eq!(
            cache_scope(Some("user:a".into()), false).unwrap(),
            CacheScope::Named("user:a".into())
        );
        assert_eq!(cache_scope(None, true).unwrap(), CacheScope::Shared);
        assert_eq!(cache_scope(None, false).unwrap(), CacheScope::Own);
        let both = cache_scope(Some("user:a".into()), true).unwrap_err();
        assert_eq!(both.code(), tonic::Code::InvalidArgument);
    }
}
