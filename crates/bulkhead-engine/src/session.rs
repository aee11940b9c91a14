//! Sessions: an agent's or a chat's working memory, a partition inside the tenant's. Two
//! sessions of one tenant may use the same memory ids and the same vectors and still never see
//! each other's items, because every key of a session starts with the session's id (see
//! `keys`) and the only way to it is a `SessionHandle` for that one id. A session is live until
//! it ends, has been idle for its idle TTL, or reaches its absolute TTL, whichever comes first;
//! from that millisecond every read refuses it, and the sweeper removes its key range later.
//!
//! Working memory is small, so a session's index is its own key range: a recall scores exactly
//! the items of its recency window (at most `max-items-per-session`, 10,000 by default) and
//! builds nothing that could outlive the session or be shared with another.

use std::time::Duration;

use bulkhead_core::{Metadata, Metric, RecordId, SessionId, validate_metadata, validate_vector};
use serde::{Deserialize, Serialize};

use crate::clock::millis;
use crate::error::{EngineError, Result};

/// Longest absolute lifetime of a session.
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Items one append may carry.
pub const MAX_APPEND_BATCH: usize = 256;
/// Retrieved chunk ids one item may carry.
pub const MAX_CHUNK_IDS: usize = 256;
/// Items one history page may hold.
pub const MAX_HISTORY_PAGE: usize = 1_000;
/// Items one recall may return.
pub const MAX_RECALL_TOP_K: usize = 100;
/// Sessions one listing page may hold.
pub const MAX_SESSION_PAGE: usize = 1_000;
/// A read counts as activity (it keeps an idle session alive) at most this often, so reading
/// a session doesn't write to it on every call.
pub(crate) const TOUCH_EVERY_MS: u64 = 1_000;

/// What a session is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    /// The session ends after this long without an append, recall or history read.
    pub idle_ttl: Duration,
    /// The session ends this long after its creation, whatever its activity.
    pub absolute_ttl: Duration,
    /// The length of its items' vectors; 0: items carry no vectors and recall is refused.
    pub dimension: usize,
    pub metric: Metric,
}

impl SessionSpec {
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(EngineError::InvalidArgument(m));
        if self.idle_ttl < Duration::from_secs(1) {
            return invalid("idle_ttl: must be at least one second".into());
        }
        if self.absolute_ttl < self.idle_ttl {
            return invalid("absolute_ttl: must be at least the idle_ttl".into());
        }
        if self.absolute_ttl > MAX_SESSION_LIFETIME {
            return invalid(format!(
                "absolute_ttl: at most {} days",
                MAX_SESSION_LIFETIME.as_secs() / 86_400
            ));
        }
        if self.dimension > 0 {
            bulkhead_core::validate_dimension(self.dimension)?;
        }
        Ok(())
    }
}

/// A session as stored under its meta key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    pub created_ms: u64,
    pub idle_ttl_ms: u64,
    pub absolute_ttl_ms: u64,
    pub last_active_ms: u64,
    /// Set by EndSession: the session is dead from then on, whatever its TTLs say.
    pub ended_ms: Option<u64>,
    /// The sequence number the next item gets; also the number of items ever appended.
    pub next_sequence: u64,
    pub dimension: usize,
    pub metric: Metric,
}

impl StoredSession {
    pub fn new(spec: &SessionSpec, now: u64) -> Self {
        Self {
            created_ms: now,
            idle_ttl_ms: millis(spec.idle_ttl),
            absolute_ttl_ms: millis(spec.absolute_ttl),
            last_active_ms: now,
            ended_ms: None,
            next_sequence: 0,
            dimension: spec.dimension,
            metric: spec.metric,
        }
    }

    /// The first millisecond the session is dead by its TTLs.
    pub fn expires_at_ms(&self) -> u64 {
        self.created_ms
            .saturating_add(self.absolute_ttl_ms)
            .min(self.last_active_ms.saturating_add(self.idle_ttl_ms))
    }

    pub fn is_live(&self, now: u64) -> bool {
        self.ended_ms.is_none() && now < self.expires_at_ms()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("session settings always serialise")
    }

    pub fn decode(raw: &[u8]) -> Result<Self> {
        serde_json::from_slice(raw).map_err(|e| EngineError::Corrupt(format!("session: {e}")))
    }

    pub fn info(&self, id: SessionId) -> SessionInfo {
        SessionInfo {
            id,
            created_at_ms: self.created_ms,
            last_active_ms: self.last_active_ms,
            expires_at_ms: self.expires_at_ms(),
            items: self.next_sequence,
            idle_ttl: Duration::from_millis(self.idle_ttl_ms),
            absolute_ttl: Duration::from_millis(self.absolute_ttl_ms),
            dimension: self.dimension,
            metric: self.metric,
        }
    }
}

/// A live session's settings and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_at_ms: u64,
    pub last_active_ms: u64,
    /// When it ends unless it is active again before.
    pub expires_at_ms: u64,
    pub items: u64,
    pub idle_ttl: Duration,
    pub absolute_ttl: Duration,
    pub dimension: usize,
    pub metric: Metric,
}

/// What a memory item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// One turn of the conversation (whose turn goes in the metadata).
    Turn,
    /// What a tool call returned.
    ToolResult,
    /// The ids of the chunks a retrieval brought into the conversation.
    RetrievedChunks,
}

/// One item to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMemory {
    /// Unique within the session when given; an item without one is known by its sequence
    /// number.
    pub id: Option<RecordId>,
    pub kind: MemoryKind,
    pub text: String,
    /// Required to be recalled by similarity; of the session's dimension.
    pub vector: Option<Vec<f32>>,
    pub metadata: Metadata,
    pub chunk_ids: Vec<RecordId>,
}

/// One item of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    pub id: Option<RecordId>,
    /// Its place in the session: 0 for the first item appended, then one more each.
    pub sequence: u64,
    pub kind: MemoryKind,
    pub text: String,
    pub metadata: Metadata,
    pub chunk_ids: Vec<RecordId>,
    pub created_at_ms: u64,
    pub vector: Option<Vec<f32>>,
}

/// A similarity search within one session's recent items.
#[derive(Debug, Clone, PartialEq)]
pub struct Recall {
    pub vector: Vec<f32>,
    pub top_k: usize,
    /// Only the last this many items; `None`: all of them.
    pub last_items: Option<u64>,
    /// Only items appended at most this long ago.
    pub max_age: Option<Duration>,
    pub include_vectors: bool,
}

/// An item a recall found, with its similarity (the session's metric, higher is closer for
/// cosine and dot, the euclidean distance for l2).
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    pub item: MemoryItem,
    pub score: f32,
}

/// One page of a session's history, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub items: Vec<MemoryItem>,
    /// Continue after this sequence number; `None`: that was the last page.
    pub next_after: Option<u64>,
}

/// One page of a tenant's live sessions, by id.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    pub sessions: Vec<SessionInfo>,
    pub next_after: Option<SessionId>,
}

/// Checks an item against its session before anything is written.
pub(crate) fn validate_item(
    item: &NewMemory,
    session: &StoredSession,
    max_text_bytes: usize,
) -> Result<()> {
    let invalid = |m: String| Err(EngineError::InvalidArgument(m));
    if item.text.len() > max_text_bytes {
        return invalid(format!("text is longer than {max_text_bytes} bytes"));
    }
    if item.chunk_ids.len() > MAX_CHUNK_IDS {
        return invalid(format!("at most {MAX_CHUNK_IDS} chunk ids"));
    }
    validate_metadata(&item.metadata)?;
    match (&item.vector, session.dimension) {
        (Some(_), 0) => invalid("this session was created without vectors".into()),
        (Some(v), dimension) => Ok(validate_vector(v, dimension, session.metric)?),
        (None, _) => Ok(()),
    }
}

/// How an item is stored: a JSON header, then its vector as little-endian `f32`s.
#[derive(Serialize, Deserialize)]
struct ItemHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    kind: MemoryKind,
    text: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    chunk_ids: Vec<String>,
    created_ms: u64,
}

pub(crate) fn encode_item(item: &MemoryItem) -> Vec<u8> {
    let header = serde_json::to_vec(&ItemHeader {
        id: item.id.as_ref().map(ToString::to_string),
        kind: item.kind,
        text: item.text.clone(),
        metadata: item.metadata.clone(),
        chunk_ids: item.chunk_ids.iter().map(ToString::to_string).collect(),
        created_ms: item.created_at_ms,
    })
    .expect("an item of plain values always serialises");
    let vector = item.vector.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(4 + header.len() + vector.len() * 4);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for v in vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub(crate) fn decode_item(sequence: u64, raw: &[u8]) -> Result<MemoryItem> {
    let corrupt = |what: &str| EngineError::Corrupt(format!("memory item: {what}"));
    let (len, rest) = raw.split_at_checked(4).ok_or_else(|| corrupt("short"))?;
    let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
    let (header, vector) = rest.split_at_checked(len).ok_or_else(|| corrupt("short"))?;
    let header: ItemHeader = serde_json::from_slice(header).map_err(|e| corrupt(&e.to_string()))?;
    if vector.len() % 4 != 0 {
        return Err(corrupt("vector length"));
    }
    let record_id = |s: String| RecordId::new(s).map_err(|e| corrupt(&e.to_string()));
    Ok(MemoryItem {
        id: header.id.map(record_id).transpose()?,
        sequence,
        kind: header.kind,
        text: header.text,
        metadata: header.metadata,
        chunk_ids: header
            .chunk_ids
            .into_iter()
            .map(record_id)
            .collect::<Result<_>>()?,
        created_at_ms: header.created_ms,
        vector: (!vector.is_empty()).then(|| {
            vector
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
                .collect()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::Value;

    fn spec(idle: u64, absolute: u64) -> SessionSpec {
        SessionSpec {
            idle_ttl: Duration::from_secs(idle),
            absolute_ttl: Duration::from_secs(absolute),
            dimension: 2,
            metric: Metric::Cosine,
        }
    }

    #[test]
    fn a_session_dies_at_the_first_of_its_idle_and_absolute_ends() {
        let s = StoredSession::new(&spec(10, 25), 1_000);
        assert!(s.is_live(10_999));
        assert!(!s.is_live(11_000), "idle for exactly idle_ttl");
        let active = StoredSession {
            last_active_ms: 20_000,
            ..s.clone()
        };
        assert!(active.is_live(25_999));
        assert!(!active.is_live(26_000), "absolute_ttl reached while active");
        let ended = StoredSession {
            ended_ms: Some(2_000),
            ..s
        };
        assert!(!ended.is_live(2_000));
    }

    #[test]
    fn specs_out_of_bounds_are_refused() {
        spec(10, 25).validate().unwrap();
        spec(10, 10).validate().unwrap();
        assert!(spec(0, 25).validate().is_err());
        assert!(spec(10, 9).validate().is_err());
        assert!(spec(10, 30 * 86_400 + 1).validate().is_err());
        spec(10, 30 * 86_400).validate().unwrap();
        let mut no_vectors = spec(10, 25);
        no_vectors.dimension = 0;
        no_vectors.validate().unwrap();
        // The exact bounds: one second idle is the least, and dimensions are checked.
        spec(1, 1).validate().unwrap();
        let mut too_wide = spec(10, 25);
        too_wide.dimension = bulkhead_core::MAX_DIMENSION + 1;
        assert!(too_wide.validate().is_err());
        too_wide.dimension = bulkhead_core::MAX_DIMENSION;
        too_wide.validate().unwrap();
    }

    #[test]
    fn items_round_trip_with_and_without_vectors_and_ids() {
        for (vector, id) in [(Some(vec![0.25, -1.5]), Some("m\u{e9}/1")), (None, None)] {
            let item = MemoryItem {
                id: id.map(|id| RecordId::new(id).unwrap()),
                sequence: 7,
                kind: MemoryKind::ToolResult,
                text: "result".into(),
                metadata: Metadata::from([("role".into(), Value::String("tool".into()))]),
                chunk_ids: vec![RecordId::new("c1").unwrap()],
                created_at_ms: 42,
                vector,
            };
            assert_eq!(decode_item(7, &encode_item(&item)).unwrap(), item);
        }
        assert!(decode_item(0, &[1, 0]).is_err());
        assert!(decode_item(0, &[200, 0, 0, 0, b'{']).is_err());
    }

    #[test]
    fn an_item_must_fit_its_session() {
        let session = StoredSession::new(&spec(10, 25), 0);
        let mut item = NewMemory {
            id: None,
            kind: MemoryKind::Turn,
            text: "hi".into(),
            vector: Some(vec![1.0, 0.0]),
            metadata: Metadata::new(),
            chunk_ids: vec![],
        };
        validate_item(&item, &session, 2).unwrap();
        assert!(validate_item(&item, &session, 1).is_err(), "text too long");
        item.vector = Some(vec![1.0]);
        assert!(
            validate_item(&item, &session, 2).is_err(),
            "wrong dimension"
        );
        item.vector = Some(vec![1.0, 0.0]);
        item.chunk_ids = vec![RecordId::new("c").unwrap(); MAX_CHUNK_IDS + 1];
        assert!(
            validate_item(&item, &session, 2).is_err(),
            "too many chunks"
        );
        item.chunk_ids.pop();
        validate_item(&item, &session, 2).unwrap();
        let without_vectors = StoredSession {
            dimension: 0,
            ..session
        };
        item.chunk_ids.clear();
        assert!(validate_item(&item, &without_vectors, 2).is_err());
    }
}
