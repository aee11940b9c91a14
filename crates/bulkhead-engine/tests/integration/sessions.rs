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

#[test]
fn a_tenant_holds_a_bounded_number_of_sessions_and_a_session_of_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.max_sessions_per_tenant = 3;
    config.max_items_per_session = 4;
    let engine = bulkhead_engine::Engine::open(config).unwrap();
    let (acme, other) = (new_tenant(&engine, "acme"), new_tenant(&engine, "other"));
    for id in ["s1", "s2", "s3"] {
        acme.create_session(&sid(id), &spec(600, 3600)).unwrap();
    }
    let live_again = acme.create_session(&sid("s2"), &spec(600, 3600));
    assert!(
        matches!(live_again, Err(EngineError::SessionExists(_))),
        "{live_again:?}"
    );
    let full = acme.create_session(&sid("s4"), &spec(600, 3600));
    assert!(
        matches!(full, Err(EngineError::QuotaExceeded(_))),
        "{full:?}"
    );
    // Per tenant: another tenant is not affected.
    other.create_session(&sid("s1"), &spec(600, 3600)).unwrap();
    // An ended session counts until it is swept, or until its id is created anew.
    acme.session(&sid("s1")).unwrap().end().unwrap();
    assert!(matches!(
        acme.create_session(&sid("s4"), &spec(600, 3600)),
        Err(EngineError::QuotaExceeded(_))
    ));
    acme.create_session(&sid("s1"), &spec(600, 3600)).unwrap();
    acme.session(&sid("s2")).unwrap().end().unwrap();
    assert_eq!(acme.purge_dead_sessions().unwrap(), 1);
    acme.create_session(&sid("s4"), &spec(600, 3600)).unwrap();
    // Counted again from disk after a restart.
    drop((acme, other));
    drop(engine);
    let mut config = crate::common::config(dir.path());
    config.max_sessions_per_tenant = 3;
    config.max_items_per_session = 4;
    let engine = bulkhead_engine::Engine::open(config).unwrap();
    let acme = engine.handle(&tenant("acme")).unwrap();
    let restarted = acme.create_session(&sid("s5"), &spec(600, 3600));
    assert!(
        matches!(restarted, Err(EngineError::QuotaExceeded(_))),
        "{restarted:?}"
    );

    let s3 = acme.session(&sid("s3")).unwrap();
    s3.append((0..3).map(|i| memory(&format!("m{i}"), i, "x")).collect())
        .unwrap();
    let over = s3.append(vec![memory("m3", 3, "x"), memory("m4", 4, "x")]);
    assert!(
        matches!(over, Err(EngineError::QuotaExceeded(_))),
        "{over:?}"
    );
    assert_eq!(
        s3.history(None, 10).unwrap().items.len(),
        3,
        "nothing of the refused batch"
    );
    s3.append(vec![memory("m3", 3, "x")]).unwrap();
}

#[test]
fn listings_page_recalls_skip_items_without_vectors_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    for id in ["a", "b", "c", "d"] {
        t.create_session(&sid(id), &spec(600, 3600)).unwrap();
    }
    t.session(&sid("b")).unwrap().end().unwrap();
    let first = t.list_sessions(None, 2).unwrap();
    let ids = |p: &bulkhead_engine::SessionPage| {
        p.sessions
            .iter()
            .map(|s| s.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ["a", "c"], "the ended one is not listed");
    assert_eq!(first.next_after, Some(sid("c")));
    let second = t.list_sessions(first.next_after.as_ref(), 2).unwrap();
    assert_eq!(ids(&second), ["d"]);
    assert_eq!(second.next_after, None);

    let session = t.session(&sid("a")).unwrap();
    let mut plain = memory("plain", 1, "no vector");
    plain.vector = None;
    session
        .append(vec![plain, memory("v", 1, "with vector")])
        .unwrap();
    let hits = session.recall(&recall(1, 10)).unwrap();
    assert_eq!(hits.len(), 1, "an item without a vector is not recalled");
    assert_eq!(hits[0].item.vector, None, "vectors only when asked for");
    let mut with_vectors = recall(1, 10);
    with_vectors.include_vectors = true;
    assert_eq!(
        session.recall(&with_vectors).unwrap()[0]
            .item
            .vector
            .as_ref()
            .map(Vec::len),
        Some(DIM)
    );
    for top_k in [0, bulkhead_engine::MAX_RECALL_TOP_K + 1] {
        assert!(
            matches!(
                session.recall(&recall(1, top_k)),
                Err(EngineError::InvalidArgument(_))
            ),
            "{top_k}"
        );
    }
    session
        .recall(&recall(1, bulkhead_engine::MAX_RECALL_TOP_K))
        .unwrap();
    assert!(matches!(
        session.append(vec![]),
        Err(EngineError::InvalidArgument(_))
    ));
    let too_many: Vec<_> = (0..=bulkhead_engine::MAX_APPEND_BATCH as u64)
        .map(|i| NewMemory {
            id: None,
            ..memory("x", i, "x")
        })
        .collect();
    assert!(matches!(
        session.append(too_many),
        Err(EngineError::InvalidArgument(_))
    ));
    let mut no_vectors = spec(600, 3600);
    no_vectors.dimension = 0;
    t.create_session(&sid("text-only"), &no_vectors).unwrap();
    let text_only = t.session(&sid("text-only")).unwrap();
    assert!(matches!(
        text_only.recall(&recall(1, 5)),
        Err(EngineError::InvalidArgument(_))
    ));
}

#[test]
fn appends_count_against_the_tenants_byte_quota() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let mut settings = TenantSettings::default();
    settings.quota.max_stored_bytes = 1;
    engine.create_tenant(&tenant("tight"), &settings).unwrap();
    let t = engine.handle(&tenant("tight")).unwrap();
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let refused = t
        .session(&sid("chat"))
        .unwrap()
        .append(vec![memory("m", 1, "x")]);
    assert!(
        matches!(refused, Err(EngineError::QuotaExceeded(_))),
        "{refused:?}"
    );
    let free = new_tenant(&engine, "free");
    free.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    free.session(&sid("chat"))
        .unwrap()
        .append(vec![memory("m", 1, "x")])
        .unwrap();
}

#[test]
fn recall_keeps_the_closest_of_a_long_window_and_the_latest_of_equals() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    session
        .append(
            (0..20)
                .map(|i| memory(&format!("m{i}"), i, "turn"))
                .collect(),
        )
        .unwrap();
    let ids = |hits: Vec<bulkhead_engine::Recalled>| {
        hits.into_iter()
            .map(|h| h.item.id.unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(session.recall(&recall(3, 2)).unwrap())[0], "m3");
    assert_eq!(ids(session.recall(&recall(17, 1)).unwrap()), ["m17"]);
    // The same vector twice: the later memory wins.
    session
        .append(vec![memory("again", 5, "said again")])
        .unwrap();
    assert_eq!(ids(session.recall(&recall(5, 1)).unwrap()), ["again"]);
    assert_eq!(ids(session.recall(&recall(5, 2)).unwrap()), ["again", "m5"]);
}

#[test]
fn reads_count_as_activity_at_most_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    let created = session.info().unwrap().last_active_ms;
    clock.advance(Duration::from_millis(500));
    session.history(None, 10).unwrap();
    assert_eq!(
        session.info().unwrap().last_active_ms,
        created,
        "within the second: no write"
    );
    clock.advance(Duration::from_millis(500));
    session.history(None, 10).unwrap();
    assert_eq!(session.info().unwrap().last_active_ms, created + 1_000);
}

#[test]
fn cosine_sessions_compare_directions_and_dot_sessions_raw_products() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    let mut dot = spec(600, 3600);
    dot.metric = Metric::Dot;
    t.create_session(&sid("cos"), &spec(600, 3600)).unwrap();
    t.create_session(&sid("dot"), &dot).unwrap();
    let scaled = |seed: u64, by: f32| {
        vector(seed, DIM)
            .into_iter()
            .map(|x| x * by)
            .collect::<Vec<_>>()
    };
    for s in ["cos", "dot"] {
        let mut item = memory("m", 1, "x");
        item.vector = Some(scaled(1, 3.0));
        t.session(&sid(s)).unwrap().append(vec![item]).unwrap();
    }
    let mut query = recall(1, 1);
    query.vector = scaled(1, 2.0);
    let cos = t.session(&sid("cos")).unwrap().recall(&query).unwrap()[0].score;
    let dot = t.session(&sid("dot")).unwrap().recall(&query).unwrap()[0].score;
    assert!((cos - 1.0).abs() < 1e-4, "cosine of one direction: {cos}");
    assert!((dot - 6.0).abs() < 1e-3, "dot of 3v and 2v: {dot}");
}

#[test]
fn batch_and_window_bounds_hold_to_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let mut config = crate::common::config(dir.path());
    config.clock = clock.clock();
    config.max_items_per_session = 300;
    let engine = bulkhead_engine::Engine::open(config).unwrap();
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    // One more than the session holds, in the first append: refused whole.
    let over: Vec<_> = (0..301)
        .map(|i| NewMemory {
            id: None,
            ..memory("x", i, "x")
        })
        .collect();
    assert!(matches!(
        session.append(over),
        Err(EngineError::InvalidArgument(_) | EngineError::QuotaExceeded(_))
    ));
    let batch = |n: u64| {
        (0..n)
            .map(|i| NewMemory {
                id: None,
                ..memory("x", i, "x")
            })
            .collect::<Vec<_>>()
    };
    // The largest batch is taken.
    session
        .append(batch(bulkhead_engine::MAX_APPEND_BATCH as u64))
        .unwrap();
    let more = session.append(batch(300 - bulkhead_engine::MAX_APPEND_BATCH as u64 + 1));
    assert!(
        matches!(more, Err(EngineError::QuotaExceeded(_))),
        "{more:?}"
    );
    // An item appended exactly `max_age` ago is in the window.
    t.create_session(&sid("aged"), &spec(600, 3600)).unwrap();
    let aged = t.session(&sid("aged")).unwrap();
    aged.append(vec![memory("old", 1, "x")]).unwrap();
    clock.advance(Duration::from_secs(4));
    aged.append(vec![memory("new", 1, "x")]).unwrap();
    let mut window = recall(1, 10);
    window.max_age = Some(Duration::from_secs(4));
    assert_eq!(aged.recall(&window).unwrap().len(), 2);
    window.max_age = Some(Duration::from_millis(3_999));
    assert_eq!(aged.recall(&window).unwrap().len(), 1);
}

#[test]
fn a_first_append_over_the_session_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.max_items_per_session = 4;
    let engine = bulkhead_engine::Engine::open(config).unwrap();
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let five: Vec<_> = (0..5)
        .map(|i| NewMemory {
            id: None,
            ..memory("x", i, "x")
        })
        .collect();
    let refused = t.session(&sid("chat")).unwrap().append(five);
    assert!(
        matches!(refused, Err(EngineError::QuotaExceeded(_))),
        "{refused:?}"
    );
}

#[test]
fn the_byte_quota_counts_an_appends_texts_and_vectors_to_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = new_tenant(&engine, "acme");
    t.create_session(&sid("chat"), &spec(600, 3600)).unwrap();
    let session = t.session(&sid("chat")).unwrap();
    const MARGIN: u64 = 1_000;
    // A quota MARGIN bytes above what the tenant stores now (nothing writes in between).
    let leave_room = || {
        let stored = t.stats().unwrap().bytes;
        let mut settings = TenantSettings::default();
        settings.quota.max_stored_bytes = stored + MARGIN;
        engine.update_tenant(&tenant("acme"), &settings).unwrap();
    };
    let text_only = |len: u64| {
        let mut m = memory("x", 1, "");
        m.id = None;
        m.vector = None;
        m.text = "t".repeat(len as usize);
        m
    };
    let with_vector = |text_len: u64| {
        let mut m = text_only(text_len);
        m.vector = Some(vector(1, DIM));
        m
    };
    let vector_bytes = (DIM * 4) as u64;
    for (item, fits) in [
        (text_only(MARGIN + 1), false),
        (with_vector(MARGIN - vector_bytes + 1), false),
        (text_only(MARGIN), true),
        (with_vector(MARGIN - vector_bytes), true),
    ] {
        leave_room();
        let outcome = session.append(vec![item]);
        match (fits, &outcome) {
            (true, Ok(_)) | (false, Err(EngineError::QuotaExceeded(_))) => {}
            _ => panic!("fits: {fits}, got {outcome:?}"),
        }
    }
}
