//! Promotion to a graph happens in the background: the write that crosses the threshold and
//! the first request after a restart are answered without waiting for a graph.

use bulkhead_core::Metric;
use bulkhead_engine::{CollectionSpec, Engine, IndexKind, IndexParams, Query, TenantHandle};

use crate::common::*;

const DIM: usize = 16;

fn graph_collection(t: &TenantHandle) {
    let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
    spec.index = Some(IndexParams {
        flat_threshold: 200,
        ..IndexParams::default()
    });
    t.create_collection(&coll("big"), &spec).unwrap();
}

fn index_kind(t: &TenantHandle) -> IndexKind {
    t.get_collection(&coll("big")).unwrap().index.kind
}

fn assert_finds_itself(t: &TenantHandle, seeds: impl Iterator<Item = u64>) {
    for i in seeds {
        let hits = t
            .query(&coll("big"), &Query::new(vector(i, DIM), 1))
            .unwrap();
        assert_eq!(hits[0].id, rid(&format!("r{i}")));
    }
}

#[test]
fn crossing_the_flat_threshold_builds_the_graph_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    graph_collection(&t);
    let before = engine.index_build_stats().finished;
    for chunk in (0..600u64).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|&i| record(&format!("r{i}"), i, DIM, "t"))
            .collect();
        t.upsert(&coll("big"), batch).unwrap();
        // Answered whatever answers now: the flat scan or the graph.
        assert_finds_itself(&t, chunk.iter().copied().step_by(17));
    }
    wait_for_builds(&engine);
    assert!(engine.index_build_stats().finished > before);
    let info = t.get_collection(&coll("big")).unwrap();
    assert_eq!(info.index.kind, IndexKind::Hnsw);
    assert!(!info.index.building);
    assert!(info.index.memory_bytes > 600 * DIM as u64 * 4);
    assert_finds_itself(&t, (0..600).step_by(7));
    // Small collections never want a build.
    assert_eq!(
        t.get_collection(&coll("docs")).unwrap().index.kind,
        IndexKind::Flat
    );
}

#[test]
fn deletes_past_the_tombstone_ratio_compact_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    graph_collection(&t);
    let batch = (0..800u64)
        .map(|i| record(&format!("r{i}"), i, DIM, "t"))
        .collect();
    t.upsert(&coll("big"), batch).unwrap();
    wait_for_builds(&engine);
    let finished = engine.index_build_stats().finished;
    let gone: Vec<_> = (0..800)
        .filter(|i| i % 3 == 0)
        .map(|i| rid(&format!("r{i}")))
        .collect();
    assert_eq!(t.delete(&coll("big"), &gone).unwrap(), gone.len());
    wait_for_builds(&engine);
    assert!(
        engine.index_build_stats().finished > finished,
        "a compaction ran"
    );
    assert_eq!(index_kind(&t), IndexKind::Hnsw);
    for i in (0..800u64).step_by(5) {
        let hits = t
            .query(&coll("big"), &Query::new(vector(i, DIM), 3))
            .unwrap();
        if i % 3 != 0 {
            assert_eq!(hits[0].id, rid(&format!("r{i}")));
        } else {
            assert!(hits.iter().all(|h| h.id != rid(&format!("r{i}"))));
        }
    }
}

#[test]
fn an_activation_answers_before_its_graph_is_built() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let t = tenant_with_docs(&engine, "acme", DIM);
        graph_collection(&t);
        let batch = (0..1000u64)
            .map(|i| record(&format!("r{i}"), i, DIM, "t"))
            .collect();
        t.upsert(&coll("big"), batch).unwrap();
    }
    let mut config = config(dir.path());
    // One build thread and a queue that other work could hold up: the first answer must not
    // depend on the build having run.
    config.index_build_threads = 1;
    let engine = Engine::open(config).unwrap();
    let t = engine.handle(&tenant("acme")).unwrap();
    assert_finds_itself(&t, [0, 500, 999].into_iter());
    wait_for_builds(&engine);
    assert_eq!(index_kind(&t), IndexKind::Hnsw);
    assert_finds_itself(&t, (0..1000).step_by(11));
}

#[test]
fn a_tenant_deleted_with_a_build_queued_goes_and_its_build_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    graph_collection(&t);
    let batch = (0..3000u64)
        .map(|i| record(&format!("r{i}"), i, DIM, "t"))
        .collect();
    t.upsert(&coll("big"), batch).unwrap();
    drop(t);
    engine.delete_tenant(&tenant("acme")).unwrap();
    assert!(engine.handle(&tenant("acme")).is_err());
    wait_for_builds(&engine);
}
