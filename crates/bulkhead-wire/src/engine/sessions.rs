//! Sessions and their memory items on the wire. A session's own rules (TTL bounds, item sizes,
//! unique ids) are the engine's; this checks only what the wire adds: enum values, signs, page
//! tokens and the shapes of ids.

use bulkhead_core::{Metric, RecordId, SessionName};
use bulkhead_engine::{
    MemoryItem, MemoryKind, NewMemory, Recall, Recalled, SessionInfo, SessionSpec,
};
use bulkhead_proto::v1 as pb;

use crate::error::{Result, WireError};
use crate::{
    metadata_from_pb, metadata_to_pb, metric_from_pb, metric_to_pb, positive_seconds, record_ids,
    timestamp_from_ms,
};

pub fn session_spec(req: &pb::CreateSessionRequest) -> Result<SessionSpec> {
    Ok(SessionSpec {
        idle_ttl: positive_seconds("idle_ttl_seconds", req.idle_ttl_seconds)?,
        absolute_ttl: positive_seconds("absolute_ttl_seconds", req.absolute_ttl_seconds)?,
        dimension: req.dimension as usize,
        metric: match req.metric {
            0 => Metric::Cosine,
            m => metric_from_pb(m)?,
        },
    })
}

pub fn session_to_pb(name: &SessionName, s: &SessionInfo) -> pb::Session {
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    pb::Session {
        name: name.to_string(),
        create_time: Some(timestamp_from_ms(s.created_at_ms)),
        last_active_time: Some(timestamp_from_ms(s.last_active_ms)),
        expire_time: Some(timestamp_from_ms(s.expires_at_ms)),
        idle_ttl_seconds: secs(s.idle_ttl),
        absolute_ttl_seconds: secs(s.absolute_ttl),
        items: s.items,
        dimension: u32::try_from(s.dimension).unwrap_or(u32::MAX),
        metric: metric_to_pb(s.metric).into(),
    }
}

fn kind_from_pb(k: i32) -> Result<MemoryKind> {
    match pb::MemoryKind::try_from(k) {
        Ok(pb::MemoryKind::Turn) => Ok(MemoryKind::Turn),
        Ok(pb::MemoryKind::ToolResult) => Ok(MemoryKind::ToolResult),
        Ok(pb::MemoryKind::RetrievedChunks) => Ok(MemoryKind::RetrievedChunks),
        Ok(pb::MemoryKind::Unspecified) | Err(_) => Err(WireError::invalid(format!(
            "kind: unknown value {k}; expected TURN, TOOL_RESULT or RETRIEVED_CHUNKS"
        ))),
    }
}

fn kind_to_pb(k: MemoryKind) -> pb::MemoryKind {
    match k {
        MemoryKind::Turn => pb::MemoryKind::Turn,
        MemoryKind::ToolResult => pb::MemoryKind::ToolResult,
        MemoryKind::RetrievedChunks => pb::MemoryKind::RetrievedChunks,
    }
}

/// The item at `index` of an append; errors name it (`items[3]: …`).
pub fn new_memory(index: usize, item: pb::MemoryItem) -> Result<NewMemory> {
    let at = |e: WireError| e.at(&format!("items[{index}]"));
    Ok(NewMemory {
        id: (!item.id.is_empty())
            .then(|| RecordId::new(item.id))
            .transpose()
            .map_err(|e| at(e.into()))?,
        kind: kind_from_pb(item.kind).map_err(at)?,
        text: item.text,
        vector: (!item.vector.is_empty()).then_some(item.vector),
        metadata: metadata_from_pb(item.metadata).map_err(at)?,
        chunk_ids: record_ids(item.chunk_ids).map_err(at)?,
    })
}

pub fn memory_to_pb(m: MemoryItem) -> pb::MemoryItem {
    pb::MemoryItem {
        id: m.id.map(|id| id.to_string()).unwrap_or_default(),
        sequence: m.sequence,
        kind: kind_to_pb(m.kind).into(),
        text: m.text,
        vector: m.vector.unwrap_or_default(),
        metadata: metadata_to_pb(m.metadata),
        chunk_ids: m.chunk_ids.into_iter().map(|c| c.to_string()).collect(),
        create_time: Some(timestamp_from_ms(m.created_at_ms)),
    }
}

pub fn recall(req: pb::RecallRequest) -> Result<Recall> {
    Ok(Recall {
        vector: req.vector,
        top_k: req.top_k as usize,
        last_items: (req.last_items > 0).then_some(req.last_items),
        max_age: req
            .max_age_seconds
            .map(|age| positive_seconds("max_age_seconds", age))
            .transpose()?,
        include_vectors: req.include_vectors,
    })
}

pub fn recalled_to_pb(r: Recalled) -> pb::RecalledItem {
    pb::RecalledItem {
        item: Some(memory_to_pb(r.item)),
        score: r.score,
    }
}

/// A history page token: the sequence number the last page ended at.
pub fn sequence_token(token: &str) -> Result<Option<u64>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse()
        .map(Some)
        .map_err(|_| WireError::invalid(format!("page_token: not one this server gave: {token:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_without_id_or_vector_has_none_and_errors_name_the_item() {
        let item = pb::MemoryItem {
            kind: pb::MemoryKind::Turn.into(),
            text: "hi".into(),
            ..Default::default()
        };
        let m = new_memory(0, item.clone()).unwrap();
        assert_eq!((m.id, m.vector), (None, None));
        let unknown_kind = pb::MemoryItem {
            kind: 0,
            ..item.clone()
        };
        let e = new_memory(3, unknown_kind).unwrap_err();
        assert!(e.to_string().starts_with("items[3]: kind"), "{e}");
        let bad_chunk = pb::MemoryItem {
            chunk_ids: vec![String::new()],
            ..item
        };
        assert!(
            new_memory(1, bad_chunk)
                .unwrap_err()
                .to_string()
                .starts_with("items[1]")
        );
    }

    #[test]
    fn a_session_spec_defaults_to_cosine_and_refuses_non_positive_ttls() {
        let req = pb::CreateSessionRequest {
            idle_ttl_seconds: 60,
            absolute_ttl_seconds: 600,
            dimension: 4,
            ..Default::default()
        };
        assert_eq!(session_spec(&req).unwrap().metric, Metric::Cosine);
        let zero = pb::CreateSessionRequest {
            idle_ttl_seconds: 0,
            ..req.clone()
        };
        assert!(session_spec(&zero).is_err());
        let dot = pb::CreateSessionRequest {
            metric: pb::Metric::Dot.into(),
            ..req
        };
        assert_eq!(session_spec(&dot).unwrap().metric, Metric::Dot);
    }

    #[test]
    fn items_sessions_and_recalls_carry_every_field_out() {
        use bulkhead_core::{SessionId, TenantId, Value};
        let item = MemoryItem {
            id: Some(RecordId::new("t1").unwrap()),
            sequence: 7,
            kind: MemoryKind::ToolResult,
            text: "out".into(),
            metadata: [("role".to_owned(), Value::String("tool".into()))].into(),
            chunk_ids: vec![RecordId::new("c1").unwrap()],
            created_at_ms: 1_500,
            vector: Some(vec![0.5, 0.25]),
        };
        let pb_item = memory_to_pb(item.clone());
        assert_eq!(
            (
                pb_item.id.as_str(),
                pb_item.sequence,
                pb_item.kind,
                pb_item.text.as_str()
            ),
            ("t1", 7, pb::MemoryKind::ToolResult as i32, "out")
        );
        assert_eq!(pb_item.vector, vec![0.5, 0.25]);
        assert_eq!(pb_item.chunk_ids, vec!["c1"]);
        assert_eq!(pb_item.metadata.len(), 1);
        assert_eq!(pb_item.create_time, Some(timestamp_from_ms(1_500)));
        let back = new_memory(0, pb_item).unwrap();
        assert_eq!(
            (back.id, back.kind, back.vector),
            (item.id.clone(), item.kind, item.vector.clone())
        );
        let unnamed = memory_to_pb(MemoryItem {
            id: None,
            vector: None,
            ..item.clone()
        });
        assert!(unnamed.id.is_empty() && unnamed.vector.is_empty());
        let recalled = recalled_to_pb(Recalled { item, score: 0.75 });
        assert_eq!(
            (recalled.score, recalled.item.map(|i| i.sequence)),
            (0.75, Some(7))
        );

        let name = SessionName {
            tenant: TenantId::new("acme").unwrap(),
            session: SessionId::new("chat").unwrap(),
        };
        let info = SessionInfo {
            id: name.session.clone(),
            created_at_ms: 1_000,
            last_active_ms: 2_000,
            expires_at_ms: 3_000,
            items: 4,
            idle_ttl: std::time::Duration::from_secs(60),
            absolute_ttl: std::time::Duration::from_secs(600),
            dimension: 8,
            metric: Metric::Dot,
        };
        let s = session_to_pb(&name, &info);
        assert_eq!(s.name, "tenants/acme/sessions/chat");
        assert_eq!(
            (
                s.idle_ttl_seconds,
                s.absolute_ttl_seconds,
                s.items,
                s.dimension
            ),
            (60, 600, 4, 8)
        );
        assert_eq!(s.metric, pb::Metric::Dot as i32);
        assert_eq!(s.create_time, Some(timestamp_from_ms(1_000)));
        assert_eq!(s.last_active_time, Some(timestamp_from_ms(2_000)));
        assert_eq!(s.expire_time, Some(timestamp_from_ms(3_000)));
    }

    #[test]
    fn a_recall_of_no_window_reads_every_item() {
        let req = pb::RecallRequest {
            vector: vec![1.0],
            top_k: 3,
            include_vectors: true,
            ..Default::default()
        };
        let all = recall(req.clone()).unwrap();
        assert_eq!(
            (all.last_items, all.max_age, all.top_k, all.include_vectors),
            (None, None, 3, true)
        );
        let windowed = recall(pb::RecallRequest {
            last_items: 5,
            max_age_seconds: Some(30),
            ..req.clone()
        })
        .unwrap();
        assert_eq!(windowed.last_items, Some(5));
        assert_eq!(windowed.max_age, Some(std::time::Duration::from_secs(30)));
        assert!(
            recall(pb::RecallRequest {
                max_age_seconds: Some(0),
                ..req
            })
            .is_err()
        );
    }

    #[test]
    fn page_tokens_are_sequence_numbers() {
        assert_eq!(sequence_token("").unwrap(), None);
        assert_eq!(sequence_token("41").unwrap(), Some(41));
        assert!(sequence_token("-1").is_err());
        assert!(sequence_token("x").is_err());
    }
}
