//! Records as the engine's callers send and receive them.

use std::time::Duration;

use bulkhead_core::{Metadata, RecordId};

/// A record to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub id: RecordId,
    pub vector: Vec<f32>,
    pub text: Option<String>,
    pub metadata: Metadata,
    /// Overrides the collection's default TTL.
    pub ttl: Option<Duration>,
}

impl NewRecord {
    pub fn new(id: RecordId, vector: Vec<f32>) -> Self {
        Self {
            id,
            vector,
            text: None,
            metadata: Metadata::new(),
            ttl: None,
        }
    }
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub id: RecordId,
    pub vector: Vec<f32>,
    pub text: Option<String>,
    pub metadata: Metadata,
    /// Milliseconds since the Unix epoch; `None` if the record never expires.
    pub expire_time_ms: Option<u64>,
}

/// Which stored fields a query returns besides ids and scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub text: bool,
    pub metadata: bool,
    pub vector: bool,
}

impl Include {
    pub fn any(self) -> bool {
        self.text || self.metadata || self.vector
    }
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub vector: Vec<f32>,
    pub top_k: usize,
    /// Search breadth for HNSW collections; `None` uses the collection's `ef_search`.
    pub ef: Option<usize>,
    pub include: Include,
    /// Only records matching this filter over the collection's indexed fields.
    pub filter: Option<crate::Filter>,
}

impl Query {
    pub fn new(vector: Vec<f32>, top_k: usize) -> Self {
        Self {
            vector,
            top_k,
            ef: None,
            include: Include::default(),
            filter: None,
        }
    }
}

/// One query result. Fields not asked for in `Include` are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: RecordId,
    /// Cosine similarity, dot product, or euclidean distance, by the collection's metric.
    pub score: f32,
    pub text: Option<String>,
    pub metadata: Option<Metadata>,
    pub vector: Option<Vec<f32>>,
}
