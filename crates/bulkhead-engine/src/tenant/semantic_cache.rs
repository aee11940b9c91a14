//! The semantic cache as an engine type. A cache is a collection of its tenant, so its entries
//! are partitioned, audited and TTL'd like any record; what makes it a cache is four reserved
//! fields on each entry: the scope (a user or session inside the tenant), the model/prompt
//! fingerprint, the time it was stored and its prompt. A lookup is confined to one scope and
//! one fingerprint by a filter on the first two, so a write path that let a caller set them
//! would let one user plant an answer in another user's scope. The rules therefore live here,
//! below every write path: upserts and imports into a cache can't carry `_` keys, only
//! `store_in_cache` writes them, and a tenant admin's restore may bring them back from a
//! backup, checked field by field.
//!
//! For a handle bound to an end user (`reading_as`), the scope is not the request's to choose:
//! it is the user's (`user:<sub>`) or its session's (`session:<id>`), as the cache's policy
//! says, and a request naming any other scope is refused. End users never reach the
//! tenant-wide entries stored without a scope, and a session's answers are out of reach from
//! the moment the session ends. A service reaches those shared entries only by asking for
//! them (`CacheScope::Shared`): in a cache that scopes its end users, a service request that
//! names no scope is refused rather than quietly read from or written to the shared pool,
//! where every user's answers would meet.

use std::collections::BTreeMap;
use std::time::Duration;

use bulkhead_core::{CollectionId, Metadata, Metric, RecordId, SessionId, Value};

use crate::access::{Access, CanWrite};
use crate::cache_fields::{
    FINGERPRINT, PROMPT, ReservedFields, SCOPE, STORED_AT, check_fingerprint,
    check_reserved_fields, check_scope,
};
use crate::collection::{
    CachePolicy, CollectionKind, CollectionMeta, CollectionSpec, EndUserCacheScope,
};
use crate::error::{EngineError, Result};
use crate::fields::FieldType;
use crate::filter::{Condition, Filter, Range};
use crate::record::{Include, NewRecord, Query};
use crate::tenant::{CollectionInfo, TenantHandle};

/// What a cache is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    pub dimension: usize,
    /// Cosine or dot: a cache compares similarities.
    pub metric: Metric,
    /// Applied to entries stored without a TTL of their own.
    pub default_ttl: Option<Duration>,
    pub policy: CachePolicy,
}

/// One answer to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    pub id: RecordId,
    pub prompt: String,
    pub response: String,
    /// The prompt's embedding.
    pub vector: Vec<f32>,
    /// The user or session the answer belongs to, or the whole tenant's.
    pub scope: CacheScope,
    /// The model and system prompt the answer was generated with; lookups of another
    /// fingerprint (or of none) never see it.
    pub fingerprint: Option<String>,
    /// The caller's own fields; none may start with `_`.
    pub metadata: Metadata,
    pub ttl: Option<Duration>,
}

/// A cache lookup: the closest entry of one scope, if close and fresh enough.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheLookup {
    pub vector: Vec<f32>,
    /// Only entries stored with exactly this scope.
    pub scope: CacheScope,
    /// Only entries stored with exactly this fingerprint; `None`: only entries stored without.
    pub fingerprint: Option<String>,
    /// Only entries stored at most this long ago.
    pub max_age: Option<Duration>,
    pub min_similarity: f32,
}

/// The entry a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheHit {
    pub id: RecordId,
    pub prompt: String,
    pub response: String,
    /// The caller's own fields, without the reserved ones.
    pub metadata: Metadata,
    pub similarity: f32,
    /// Whole seconds since it was stored.
    pub age_seconds: u64,
}

/// Whose entries a store writes or a lookup reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheScope {
    /// The caller's own: an end user's, from its token. A service has none; it gets the
    /// tenant-wide entries only in a cache made before cache policies, whose entries all are.
    Own,
    /// The tenant-wide entries, stored without a scope: a service's, asked for by name.
    Shared,
    /// One user's or session's entries (`user:alice`, `session:s1`, or the service's own
    /// naming): a service may name any; an end user only its own.
    Named(String),
}

/// Which entries an invalidation removes.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheTarget {
    Ids(Vec<RecordId>),
    /// Every entry of one scope.
    Scope(String),
}

/// The filter that confines a lookup or invalidation to one scope.
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

/// The filter that confines a lookup to one fingerprint, in a cache whose entries may carry
/// one (caches made before fingerprints existed have no index on them, and no entry with one).
fn fingerprint_filter(meta: &CollectionMeta, fingerprint: Option<&str>) -> Result<Option<Filter>> {
    let indexed = meta.indexed_fields.contains_key(FINGERPRINT);
    match fingerprint {
        Some(f) if indexed => Ok(Some(Filter::condition(Condition::Eq {
            field: FINGERPRINT.into(),
            value: Value::String(f.into()),
        }))),
        Some(_) => Err(EngineError::InvalidArgument(
            "this cache was created before model fingerprints; create a new cache to key \
             entries on one"
                .into(),
        )),
        None if indexed => Ok(Some(Filter {
            must_not: vec![Filter::condition(Condition::Exists {
                field: FINGERPRINT.into(),
            })],
            ..Filter::default()
        })),
        None => Ok(None),
    }
}

/// Whole seconds since an entry's `_stored_at` (0 without one).
fn age_seconds(stored_at: Option<Value>, now: u64) -> u64 {
    match stored_at {
        Some(Value::Int(t)) => now.saturating_sub(t as u64) / 1000,
        _ => 0,
    }
}

impl<A: Access> TenantHandle<A> {
    /// The closest entry of the lookup's scope, if it is at least `min_similarity` close and
    /// within `max_age`.
    pub fn lookup_in_cache(
        &self,
        cache: &CollectionId,
        lookup: CacheLookup,
    ) -> Result<Option<CacheHit>> {
        let meta = self.require_cache(cache)?;
        let scope = self.scope_of_request(lookup.scope, meta.cache_policy)?;
        let policy = meta.cache_policy.unwrap_or_default();
        if let Some(f) = &lookup.fingerprint {
            check_fingerprint(f)?;
        }
        let now = self.state.now_ms();
        let mut filter = scope_filter(scope.as_deref());
        filter
            .must
            .extend(fingerprint_filter(&meta, lookup.fingerprint.as_deref())?);
        let min_similarity = policy
            .similarity_floor
            .map_or(lookup.min_similarity, |floor| {
                floor.max(lookup.min_similarity)
            });
        if let Some(age) = lookup.max_age {
            let since = now.saturating_sub(crate::clock::millis(age));
            filter.must.push(Filter::condition(Condition::Range {
                field: STORED_AT.into(),
                range: Range::Integer {
                    gte: Some(since as i64),
                    gt: None,
                    lte: None,
                    lt: None,
                },
            }));
        }
        let mut query = Query::new(lookup.vector, 1);
        query.include = Include {
            text: true,
            metadata: true,
            vector: false,
        };
        query.filter = Some(filter);
        let Some(hit) = self
            .query(cache, &query)?
            .into_iter()
            .next()
            .filter(|h| h.score >= min_similarity)
        else {
            return Ok(None);
        };
        let mut metadata = hit.metadata.unwrap_or_default();
        let prompt = match metadata.remove(PROMPT) {
            Some(Value::String(p)) => p,
            _ => String::new(),
        };
        let age_seconds = age_seconds(metadata.remove(STORED_AT), now);
        metadata.remove(SCOPE);
        metadata.remove(FINGERPRINT);
        Ok(Some(CacheHit {
            id: hit.id,
            prompt,
            response: hit.text.unwrap_or_default(),
            metadata,
            similarity: hit.score,
            age_seconds,
        }))
    }

    /// The cache's settings, or `NotACache`.
    fn require_cache(&self, id: &CollectionId) -> Result<CollectionMeta> {
        let _g = self.enter()?;
        let meta = self.collection(id)?.meta.clone();
        match meta.kind() {
            CollectionKind::SemanticCache => Ok(meta),
            CollectionKind::Records => Err(EngineError::NotACache(id.clone())),
        }
    }

    /// The scope a request reaches, as the stored `_scope` value (`None`: the tenant-wide
    /// entries). A service reaches the scope it names, or the shared entries when it asks for
    /// them; an end user reaches its own (the user's or its session's, as `policy` says), which
    /// the request may repeat but not change.
    fn scope_of_request(
        &self,
        requested: CacheScope,
        policy: Option<CachePolicy>,
    ) -> Result<Option<String>> {
        if let CacheScope::Named(s) = &requested {
            check_scope(s)?;
        }
        let Some(reader) = &self.reader else {
            return match requested {
                CacheScope::Named(s) => Ok(Some(s)),
                CacheScope::Shared => Ok(None),
                // A cache made before policies has only tenant-wide entries.
                CacheScope::Own if policy.is_none() => Ok(None),
                CacheScope::Own => Err(EngineError::InvalidArgument(
                    "this cache keeps its answers per end user or session: name a scope, or \
                     ask for the tenant-wide shared entries explicitly (shared)"
                        .into(),
                )),
            };
        };
        let own = match (policy.unwrap_or_default().end_user_scope, reader.session()) {
            (EndUserCacheScope::User, _) => format!("user:{}", reader.user()),
            (EndUserCacheScope::Session, Some(session)) => {
                // A session's answers go with it: once it ended or expired, its token reaches
                // none of them.
                self.live_session(&SessionId::new(session)?)?;
                format!("session:{session}")
            }
            (EndUserCacheScope::Session, None) => {
                return Err(EngineError::NotPermitted(
                    "this cache keeps answers per session, and the token is bound to none".into(),
                ));
            }
        };
        match requested {
            CacheScope::Shared => Err(EngineError::NotPermitted(format!(
                "an end user's cache scope is {own}; the tenant-wide shared entries are for \
                 service keys"
            ))),
            CacheScope::Named(s) if s != own => Err(EngineError::NotPermitted(format!(
                "an end user's cache scope is {own}; it can't reach scope {s}"
            ))),
            _ => Ok(Some(own)),
        }
    }
}

impl<A: CanWrite> TenantHandle<A> {
    pub fn create_cache(
        &self,
        id: &CollectionId,
        settings: &CacheSettings,
    ) -> Result<CollectionInfo> {
        if settings.metric == Metric::L2 {
            return Err(EngineError::InvalidArgument(
                "metric: a cache compares similarities; use COSINE or DOT".into(),
            ));
        }
        let mut spec = CollectionSpec::new(settings.dimension, settings.metric);
        spec.default_ttl = settings.default_ttl;
        spec.indexed_fields = BTreeMap::from([
            (SCOPE.to_owned(), FieldType::Keyword),
            (FINGERPRINT.to_owned(), FieldType::Keyword),
            (STORED_AT.to_owned(), FieldType::Integer),
        ]);
        spec.kind = CollectionKind::SemanticCache;
        spec.cache_policy = Some(settings.policy);
        self.create_collection(id, &spec)
    }

    /// Stores an answer; its reserved fields are set here, from the entry and the clock.
    pub fn store_in_cache(&self, cache: &CollectionId, entry: CacheEntry) -> Result<RecordId> {
        let meta = self.require_cache(cache)?;
        let scope = self.scope_of_request(entry.scope, meta.cache_policy)?;
        if let Some(f) = &entry.fingerprint {
            check_fingerprint(f)?;
            fingerprint_filter(&meta, Some(f))?;
        }
        let mut metadata = entry.metadata;
        check_reserved_fields(&metadata, ReservedFields::Refused)
            .map_err(EngineError::InvalidArgument)?;
        metadata.insert(PROMPT.into(), Value::String(entry.prompt));
        metadata.insert(STORED_AT.into(), Value::Int(self.state.now_ms() as i64));
        if let Some(s) = scope {
            metadata.insert(SCOPE.into(), Value::String(s));
        }
        if let Some(f) = entry.fingerprint {
            metadata.insert(FINGERPRINT.into(), Value::String(f));
        }
        let mut record = NewRecord::new(entry.id.clone(), entry.vector);
        record.text = Some(entry.response);
        record.metadata = metadata;
        record.ttl = entry.ttl;
        self.write_records(cache, vec![record], ReservedFields::Checked)?;
        Ok(entry.id)
    }

    /// Removes the target's entries; returns how many were live.
    pub fn invalidate_in_cache(&self, cache: &CollectionId, target: &CacheTarget) -> Result<usize> {
        self.require_cache(cache)?;
        if self.reader.is_some() {
            return Err(EngineError::NotPermitted(
                "end users don't invalidate cache entries".into(),
            ));
        }
        match target {
            CacheTarget::Ids(ids) => self.delete(cache, ids),
            CacheTarget::Scope(s) => {
                check_scope(s)?;
                self.delete_where(cache, &scope_filter(Some(s)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_as_old_as_the_whole_seconds_since_it_was_stored() {
        let now = 1_700_000_000_000;
        assert_eq!(age_seconds(Some(Value::Int(now as i64 - 5_999)), now), 5);
        assert_eq!(age_seconds(Some(Value::Int(now as i64 - 6_000)), now), 6);
        assert_eq!(age_seconds(Some(Value::Int(now as i64 + 2_000)), now), 0);
        assert_eq!(age_seconds(None, now), 0);
        assert_eq!(age_seconds(Some(Value::String("x".into())), now), 0);
    }
}
