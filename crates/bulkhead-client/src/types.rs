//! The values applications build and read: records, queries, hits and collection settings,
//! in Rust types rather than wire messages, so a caller can't forget a field's unit or leave a
//! metadata value untyped.

use std::time::{Duration, SystemTime};

use bulkhead_core::{Metadata, Metric, Value};
use bulkhead_proto::v1 as pb;

use crate::error::{ClientError, Result};

/// One record to upsert, or one returned by `get`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub vector: Vec<f32>,
    pub text: Option<String>,
    pub metadata: Metadata,
    /// Time to live from the upsert; `None` takes the collection's default.
    pub ttl: Option<Duration>,
    /// When the record expires (set on records read back, ignored on upsert).
    pub expire_time: Option<SystemTime>,
}

impl Record {
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        Self {
            id: id.into(),
            vector,
            text: None,
            metadata: Metadata::new(),
            ttl: None,
            expire_time: None,
        }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Bytes this record takes on the wire, roughly; used to split large upserts.
    pub(crate) fn approximate_size(&self) -> usize {
        64 + self.id.len()
            + self.vector.len() * 4
            + self.text.as_ref().map_or(0, String::len)
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + format!("{v:?}").len())
                .sum::<usize>()
    }

    pub(crate) fn to_pb(&self) -> pb::Record {
        pb::Record {
            id: self.id.clone(),
            vector: self.vector.clone(),
            text: self.text.clone(),
            metadata: bulkhead_wire::metadata_to_pb(self.metadata.clone()),
            ttl_seconds: self.ttl.map(|t| t.as_secs() as i64),
            expire_time: None,
        }
    }

    pub(crate) fn from_pb(r: pb::Record) -> Result<Self> {
        Ok(Self {
            id: r.id,
            vector: r.vector,
            text: r.text,
            metadata: metadata(r.metadata)?,
            ttl: None,
            expire_time: r
                .expire_time
                .as_ref()
                .map(bulkhead_wire::system_time_from_pb),
        })
    }
}

/// A nearest-neighbour search.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub vector: Vec<f32>,
    pub top_k: u32,
    pub include_text: bool,
    pub include_metadata: bool,
    pub include_vector: bool,
    /// HNSW search breadth for this query; `None` uses the collection's setting.
    pub ef: Option<u32>,
    /// Only records matching this filter over the collection's indexed fields.
    pub filter: Option<pb::Filter>,
}

impl Query {
    /// The `top_k` nearest records to `vector`, ids and scores only.
    pub fn new(vector: Vec<f32>, top_k: u32) -> Self {
        Self {
            vector,
            top_k,
            include_text: false,
            include_metadata: false,
            include_vector: false,
            ef: None,
            filter: None,
        }
    }

    pub fn with_filter(mut self, filter: pb::Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn with_text(mut self) -> Self {
        self.include_text = true;
        self
    }

    pub fn with_metadata(mut self) -> Self {
        self.include_metadata = true;
        self
    }

    pub fn with_vector(mut self) -> Self {
        self.include_vector = true;
        self
    }

    pub fn with_ef(mut self, ef: u32) -> Self {
        self.ef = Some(ef);
        self
    }

    pub(crate) fn to_pb(&self, collection: String) -> pb::QueryRequest {
        pb::QueryRequest {
            collection,
            vector: self.vector.clone(),
            top_k: self.top_k,
            include_text: self.include_text,
            include_metadata: self.include_metadata,
            include_vector: self.include_vector,
            ef: self.ef.unwrap_or(0),
            filter: self.filter.clone(),
        }
    }
}

/// One search result, best first in the returned list.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    /// Similarity for cosine and dot (higher is closer), distance for L2 (lower is closer).
    pub score: f32,
    pub text: Option<String>,
    pub metadata: Metadata,
    pub vector: Vec<f32>,
}

impl Hit {
    pub(crate) fn from_pb(h: pb::Hit) -> Result<Self> {
        Ok(Self {
            id: h.id,
            score: h.score,
            text: h.text,
            metadata: metadata(h.metadata)?,
            vector: h.vector,
        })
    }
}

/// Settings of a new collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub dimension: u32,
    pub metric: Metric,
    /// TTL given to records upserted without their own.
    pub default_ttl: Option<Duration>,
    /// Index parameters; zero fields keep the server's defaults.
    pub hnsw: Option<pb::HnswParams>,
    /// Metadata fields indexed for filtered queries.
    pub indexed_fields: std::collections::BTreeMap<String, pb::FieldType>,
    /// Records carry their readers in `_readers`; end users' tokens read only their own.
    pub access_control: bool,
    /// Each read's audit event lists the ids it returned.
    pub audit_reads: bool,
}

impl CollectionSpec {
    pub fn new(dimension: u32, metric: Metric) -> Self {
        Self {
            dimension,
            metric,
            default_ttl: None,
            hnsw: None,
            indexed_fields: Default::default(),
            access_control: false,
            audit_reads: false,
        }
    }

    /// Each Get's and Query's audit event lists the ids it returned (up to 1,000).
    pub fn with_audit_reads(mut self) -> Self {
        self.audit_reads = true;
        self
    }

    /// Access control per record: each record's readers are the tags in its `_readers`
    /// metadata (`user:<id>`, `group:<id>`, `public`).
    pub fn with_access_control(mut self) -> Self {
        self.access_control = true;
        self
    }

    pub fn with_indexed_field(
        mut self,
        name: impl Into<String>,
        field_type: pb::FieldType,
    ) -> Self {
        self.indexed_fields.insert(name.into(), field_type);
        self
    }

    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    pub fn with_hnsw(mut self, params: pb::HnswParams) -> Self {
        self.hnsw = Some(params);
        self
    }
}

/// An answer to store in a semantic cache.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheStore {
    /// The prompt's embedding.
    pub vector: Vec<f32>,
    pub prompt: String,
    pub response: String,
    /// Caller metadata; keys starting with `_` are reserved.
    pub metadata: Metadata,
    /// Lifetime; `None` takes the cache's default.
    pub ttl: Option<Duration>,
    /// Who may find this entry: one user or session of the tenant, or the whole tenant.
    pub scope: CacheScope,
    /// The model and system prompt the answer came from: lookups of another fingerprint miss.
    pub fingerprint: Option<String>,
}

/// Whose cache entries a store writes or a lookup reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheScope {
    /// The caller's own: an end user's, taken from its token. A service key has none: the
    /// server refuses it, except in caches created before cache policies (all shared).
    #[default]
    Own,
    /// The tenant-wide entries every user may be given: service keys only.
    Shared,
    /// One user's or session's entries, e.g. `user:alice`: any for a service key, only its
    /// own for an end user.
    Named(String),
}

impl CacheScope {
    pub fn named(scope: impl Into<String>) -> Self {
        Self::Named(scope.into())
    }

    /// The request's `scope` and `shared` fields.
    pub(crate) fn into_pb(self) -> (Option<String>, bool) {
        match self {
            Self::Own => (None, false),
            Self::Shared => (None, true),
            Self::Named(s) => (Some(s), false),
        }
    }
}

/// Whose answers an end user's cache requests reach, taken from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndUserScope {
    /// `user:<sub>`: each end user its own.
    #[default]
    User,
    /// `session:<id>`: each session its own; tokens bound to no session reach none.
    Session,
}

/// A semantic cache's settings beyond its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CachePolicy {
    pub end_user_scope: EndUserScope,
    /// Lookups hit only entries at least this similar, whatever they ask for.
    pub similarity_floor: Option<f32>,
}

/// A cache lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheLookup {
    /// The prompt's embedding.
    pub vector: Vec<f32>,
    pub min_similarity: f32,
    /// Only entries stored at most this long ago.
    pub max_age: Option<Duration>,
    /// Only entries of this scope.
    pub scope: CacheScope,
    /// Only entries stored with this model/prompt fingerprint; `None`: only those without.
    pub fingerprint: Option<String>,
}

impl CacheLookup {
    pub fn new(vector: Vec<f32>, min_similarity: f32) -> Self {
        Self {
            vector,
            min_similarity,
            max_age: None,
            scope: CacheScope::Own,
            fingerprint: None,
        }
    }

    pub fn in_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = CacheScope::Named(scope.into());
        self
    }

    /// Only the tenant-wide entries (service keys only).
    pub fn shared(mut self) -> Self {
        self.scope = CacheScope::Shared;
        self
    }

    pub fn with_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    pub fn within(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

/// A newly created API key and its secret, which the server shows this once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: pb::ApiKey,
    pub secret: String,
}

impl CreatedKey {
    /// The key id: the last segment of `tenants/{tenant}/keys/{key_id}`.
    pub fn key_id(&self) -> &str {
        self.key.name.rsplit('/').next().unwrap_or_default()
    }
}

fn metadata(map: std::collections::HashMap<String, pb::Value>) -> Result<Metadata> {
    bulkhead_wire::metadata_from_pb(map).map_err(|e| ClientError::InvalidResponse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_wire_type() {
        let r = Record::new("a", vec![1.0, 2.0])
            .with_text("hello")
            .with_metadata("lang", Value::String("en".into()));
        let mut wire = r.to_pb();
        assert_eq!(wire.ttl_seconds, None);
        wire.expire_time = None;
        assert_eq!(Record::from_pb(wire).unwrap(), r);
        assert_eq!(
            Record::new("b", vec![])
                .with_ttl(Duration::from_secs(9))
                .to_pb()
                .ttl_seconds,
            Some(9)
        );
    }

    #[test]
    fn created_key_id_is_the_last_segment() {
        let k = CreatedKey {
            key: pb::ApiKey {
                name: "tenants/acme/keys/k0123".into(),
                ..Default::default()
            },
            secret: String::new(),
        };
        assert_eq!(k.key_id(), "k0123");
    }
}
