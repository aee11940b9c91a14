//! Sessions are partitions inside a tenant: same memory ids and same vectors in two sessions
//! never meet; an ended or expired session answers nothing from the millisecond it ends, and its
//! items are gone from disk after the sweep; a restart keeps the live ones. Time is the engine's
//! manual clock.

use std::time::Duration;

use bulkhead_core::{Metadata, Metric, SessionId, TenantId};
use bulkhead_engine::{
    EngineError, ManualClock, MemoryKind, NewMemory, Recall, SessionSpec, TenantHandle,
    TenantSettings,
};

use crate::common::*;

const DIM: usize = 8;

fn sid(id: &str) -> SessionId {
    SessionId::new(id).unwrap()
}

fn spec(idle_secs: u64, absolute_secs: u64) -> SessionSpec {
    SessionSpec {
        idle_ttl: Duration::from_secs(idle_secs),
        absolute_ttl: Duration::from_secs(absolute_secs),
        dimension: DIM,
        metric: Metric::Cosine,
    }
}

fn memory(id: &str, seed: u64, text: &str) -> NewMemory {
    NewMemory {
        id: Some(rid(id)),
        kind: MemoryKind::Turn,
        text: text.to_owned(),
        vector: Some(vector(seed, DIM)),
        metadata: Metadata::new(),
        chunk_ids: vec![],
    }
}

fn recall(seed: u64, top_k: usize) -> Recall {
    Recall {
        vector: vector(seed, DIM),
        top_k,
        last_items: None,
        max_age: None,
        include_vectors: false,
    }
}

fn new_tenant(engine: &bulkhead_engine::Engine, id: &str) -> TenantHandle {
    engine
        .create_tenant(&TenantId::new(id).unwrap(), &TenantSettings::default())
        .unwrap();
    engine.handle(&tenant(id)).unwrap()
}

fn is_not_found<T: std::fmt::Debug>(r: bulkhead_engine::Result<T>) -> bool {
    matches!(r, Err(EngineError::SessionNotFound(_)))
}

#[test]
fn two_sessions_with_the_same_ids_and_vectors_never_see_each_others_items() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let acme = new_tenant(&engine, "acme");
    let other = new_tenant(&engine, "other");
    // The same session id in another tenant, too.
    for (t, id) in [(&acme, "chat-a"), (&acme, "chat-b"), (&other, "chat-a")] {
        t.create_session(&sid(id), &spec(600, 3600)).unwrap();
        let owner = format!("{}/{id}", t.id());
        t.session(&sid(id))
            .unwrap()
            .append(
                (0..5)
                    .map(|i| memory(&format!("m{i}"), i, &owner))
                    .collect(),
            )
            .unwrap();
    }
    for (t, id) in [(&acme, "chat-a"), (&acme, "chat-b"), (&other, "chat-a")] {
        let owner = format!("{}/{id}", t.id());
        let session = t.session(&sid(id)).unwrap();
        let hits = session.recall(&recall(3, 100)).unwrap();
        assert_eq!(hits.len(), 5, "{owner}");
        assert!(
            hits.iter().all(|h| h.item.text == owner),
            "{owner}: {hits:?}"
        );
        assert_eq!(hits[0].item.id, Some(rid("m3")));
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        let history = session.history(None, 100).unwrap();
        assert_eq!(history.items.len(), 5);
        assert!(history.items.iter().all(|i| i.text == owner));
        let sequences: Vec<u64> = history.items.iter().map(|i| i.sequence).collect();
        assert_eq!(sequences, vec![0, 1, 2, 3, 4]);
    }
    // Ending one leaves the others whole.
    acme.session(&sid("chat-a")).unwrap().end().unwrap();
    acme.purge_dead_sessions().unwrap();
    for (t, id) in [(&acme, "chat-b"), (&other, "chat-a")] {
        assert_eq!(
            t.session(&sid(id))
                .unwrap()
                .history(None, 100)
                .unwrap()
                .items
                .len(),
            5
        );
    }
}

#[test]
fn an_ended_session_is_invisible_at_once_and_its_items_leave_the_disk_after_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    // No four bytes of it repeat anything else in the table, so compression leaves it whole.
    let canary = "QZXJ7W2KPV9R4TMBY8CN";
    session.append(vec![memory("m1", 1, canary)]).unwrap();
    t.flush().unwrap();
    let in_files = |t: &TenantHandle| {
        t.table_files().unwrap().iter().any(|f| {
            std::fs::read(f)
                .is_ok_and(|bytes| bytes.windows(canary.len()).any(|w| w == canary.as_bytes()))
        })
    };
    assert!(in_files(&t), "the canary is on disk before the end");

    session.end().unwrap();
    // The handle taken before the end answers nothing now, and neither does a new one.
    assert!(is_not_found(session.history(None, 10)));
    assert!(is_not_found(session.recall(&recall(1, 10))));
    assert!(is_not_found(session.info()));
    assert!(is_not_found(session.append(vec![memory("m2", 2, "late")])));
    assert!(is_not_found(session.end()));
    assert!(is_not_found(t.session(&sid("chat"))));
    assert!(t.list_sessions(None, 100).unwrap().sessions.is_empty());

    assert_eq!(t.purge_dead_sessions().unwrap(), 1);
    assert_eq!(t.purge_dead_sessions().unwrap(), 0);
    t.flush().unwrap();
    assert!(!in_files(&t), "the canary survived the sweep");

    // The id can be used again, for a new, empty session.
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let again = t.session(&sid("chat")).unwrap();
    assert!(again.history(None, 10).unwrap().items.is_empty());
    assert!(again.recall(&recall(1, 10)).unwrap().is_empty());
}

#[test]
fn an_idle_session_ends_at_its_idle_ttl_and_an_active_one_at_its_absolute_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("idle"), &spec(10, 3600)).unwrap();
    t.create_session(&sid("busy"), &spec(10, 25)).unwrap();
    let (idle, busy) = (
        t.session(&sid("idle")).unwrap(),
        t.session(&sid("busy")).unwrap(),
    );
    idle.append(vec![memory("m1", 1, "x")]).unwrap();

    clock.advance(Duration::from_millis(9_999));
    idle.info().unwrap();
    // Recalls, histories and appends are activity; `info` is not.
    busy.history(None, 10).unwrap();
    clock.advance(Duration::from_millis(1));
    assert!(
        is_not_found(idle.history(None, 10)),
        "idle for exactly its idle TTL"
    );
    assert!(is_not_found(t.session(&sid("idle"))));
    for _ in 0..3 {
        busy.append(vec![memory(&format!("b{}", clock.now_ms()), 2, "y")])
            .unwrap();
        clock.advance(Duration::from_secs(5));
    }
    // 25 s after creation, although it was active 5 s ago.
    assert!(is_not_found(busy.recall(&recall(2, 10))));
    let live: Vec<_> = t.list_sessions(None, 10).unwrap().sessions;
    assert!(live.is_empty(), "{live:?}");
    assert_eq!(t.purge_dead_sessions().unwrap(), 2);
}

#[test]
fn a_restart_keeps_live_sessions_and_ended_ones_stay_ended() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let t = new_tenant(&engine, "acme");
        for id in ["kept", "ended"] {
            t.create_session(&sid(id), &spec(600, 3600)).unwrap();
            t.session(&sid(id))
                .unwrap()
                .append(vec![memory("m1", 1, id), memory("m2", 2, id)])
                .unwrap();
        }
        t.session(&sid("ended")).unwrap().end().unwrap();
    }
    let engine = open(dir.path());
    let t = engine.handle(&tenant("acme")).unwrap();
    let kept = t.session(&sid("kept")).unwrap();
    let texts: Vec<String> = kept
        .history(None, 10)
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.text)
        .collect();
    assert_eq!(texts, vec!["kept", "kept"]);
    assert!(is_not_found(t.session(&sid("ended"))));
    // Sequence numbers continue where they stopped.
    let appended = kept.append(vec![memory("m3", 3, "kept")]).unwrap();
    assert_eq!(appended[0].sequence, 2);
}

#[test]
fn appends_are_atomic_and_memory_ids_unique_within_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    session.append(vec![memory("m1", 1, "first")]).unwrap();
    for batch in [
        vec![memory("m2", 2, "new"), memory("m1", 1, "again")],
        vec![
            memory("m3", 3, "new"),
            memory("m3", 3, "twice in one batch"),
        ],
    ] {
        assert!(matches!(
            session.append(batch),
            Err(EngineError::MemoryExists(_))
        ));
    }
    let mut wrong_dimension = memory("m4", 4, "short vector");
    wrong_dimension.vector = Some(vec![1.0; DIM - 1]);
    assert!(matches!(
        session.append(vec![memory("m5", 5, "ok"), wrong_dimension]),
        Err(EngineError::InvalidArgument(_))
    ));
    let items = session.history(None, 10).unwrap().items;
    assert_eq!(items.len(), 1, "a refused batch wrote nothing: {items:?}");
    // Items without ids are many, and known by their place.
    let mut unnamed = memory("x", 6, "unnamed");
    unnamed.id = None;
    let stored = session.append(vec![unnamed.clone(), unnamed]).unwrap();
    assert_eq!((stored[0].id.as_ref(), stored[0].sequence), (None, 1));
    assert_eq!((stored[1].id.as_ref(), stored[1].sequence), (None, 2));
}

#[test]
fn recall_reads_only_the_window_it_asks_for_and_history_pages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    for i in 0..10 {
        session
            .append(vec![memory(&format!("m{i}"), i, "turn")])
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    // m0 is the exact match, but outside the last three items.
    let mut window = recall(0, 10);
    window.last_items = Some(3);
    let ids: Vec<String> = session
        .recall(&window)
        .unwrap()
        .into_iter()
        .map(|h| h.item.id.unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter()
            .all(|id| ["m7", "m8", "m9"].contains(&id.as_str())),
        "{ids:?}"
    );
    let mut recent = recall(0, 10);
    recent.max_age = Some(Duration::from_millis(4_500));
    assert_eq!(session.recall(&recent).unwrap().len(), 4, "m6 to m9");

    let first = session.history(None, 4).unwrap();
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.next_after, Some(3));
    let second = session.history(first.next_after, 100).unwrap();
    assert_eq!(second.items.first().map(|i| i.sequence), Some(4));
    assert_eq!(second.items.len(), 6);
    assert_eq!(second.next_after, None);
}
