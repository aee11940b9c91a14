//! Collections, records and queries inside one tenant.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use bulkhead_core::{Metadata, Metric, Value};
use bulkhead_engine::{
    AuditEntry, CollectionSpec, EngineError, Include, IndexParams, NewRecord, Query,
};

use crate::common::*;

const DIM: usize = 16;

#[test]
fn upsert_get_query_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut r = record("a", 1, DIM, "alpha");
    r.metadata = Metadata::from([("lang".to_owned(), Value::String("en".into()))]);
    t.upsert(&coll("docs"), vec![r.clone(), record("b", 2, DIM, "beta")])
        .unwrap();

    let got = t.get(&coll("docs"), &[rid("a"), rid("missing")]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].vector, r.vector);
    assert_eq!(got[0].text.as_deref(), Some("alpha"));
    assert_eq!(got[0].metadata, r.metadata);
    assert_eq!(got[0].expire_time_ms, None);

    let mut q = Query::new(vector(1, DIM), 2);
    q.include = Include {
        text: true,
        metadata: true,
        vector: false,
    };
    let hits = t.query(&coll("docs"), &q).unwrap();
    assert_eq!(hits[0].id, rid("a"));
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
    assert_eq!(hits[0].text.as_deref(), Some("alpha"));
    assert_eq!(hits[0].metadata.as_ref(), Some(&r.metadata));
    assert_eq!(hits[0].vector, None);
    assert!(hits[0].score >= hits[1].score);
}

#[test]
fn upsert_of_existing_id_replaces_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    t.upsert(&coll("docs"), vec![record("a", 1, DIM, "old")])
        .unwrap();
    t.upsert(&coll("docs"), vec![record("a", 2, DIM, "new")])
        .unwrap();

    let got = t.get(&coll("docs"), &[rid("a")]).unwrap();
    assert_eq!(got[0].text.as_deref(), Some("new"));
    // The old vector is gone from the index: querying with it finds the new one, once.
    let mut q = Query::new(vector(1, DIM), 10);
    q.include.text = true;
    let hits = t.query(&coll("docs"), &q).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text.as_deref(), Some("new"));
    let hits = t
        .query(&coll("docs"), &Query::new(vector(2, DIM), 10))
        .unwrap();
    assert!((hits[0].score - 1.0).abs() < 1e-4);
    assert_eq!(t.stats().unwrap().records, 1);
}

/// An upsert that replaces records changes the index and the record map one after the other, so
/// a search running meanwhile can meet labels that name no record for a moment (a replaced
/// record's old label, a new one not yet assigned). A query still answers `top_k` hits while
/// the collection holds more than that, each record once.
#[test]
fn queries_answer_top_k_while_upserts_replace_the_records() {
    const RECORDS: u64 = 300;
    const TOP_K: usize = 50;
    const ROUNDS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let round = |n: u64| -> Vec<NewRecord> {
        (0..RECORDS)
            .map(|i| record(&format!("r{i}"), n * RECORDS + i, DIM, ""))
            .collect()
    };
    t.upsert(&coll("docs"), round(0)).unwrap();
    let writing = AtomicBool::new(true);
    let (answers, short) = std::thread::scope(|s| {
        s.spawn(|| {
            for n in 1..=ROUNDS {
                t.upsert(&coll("docs"), round(n)).unwrap();
            }
            writing.store(false, Ordering::Relaxed);
        });
        let (mut answers, mut short) = (0, Vec::new());
        let mut seed = 0;
        while writing.load(Ordering::Relaxed) {
            seed += 1;
            let hits = t
                .query(&coll("docs"), &Query::new(vector(seed, DIM), TOP_K))
                .unwrap();
            let ids: HashSet<_> = hits.iter().map(|h| &h.id).collect();
            assert_eq!(ids.len(), hits.len(), "a record twice in one answer");
            answers += 1;
            if hits.len() != TOP_K {
                short.push(hits.len());
            }
        }
        (answers, short)
    });
    assert!(answers > 0, "no query ran beside the upserts");
    assert!(
        short.is_empty(),
        "{} of {answers} answers short: {short:?}",
        short.len()
    );
}

#[test]
fn duplicate_ids_in_one_batch_keep_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let n = t
        .upsert(
            &coll("docs"),
            vec![record("a", 1, DIM, "first"), record("a", 2, DIM, "last")],
        )
        .unwrap();
    assert_eq!(n, 1);
    let got = t.get(&coll("docs"), &[rid("a")]).unwrap();
    assert_eq!(got[0].text.as_deref(), Some("last"));
    assert_eq!(
        t.query(&coll("docs"), &Query::new(vector(1, DIM), 5))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn delete_removes_from_storage_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    t.upsert(
        &coll("docs"),
        (0..10)
            .map(|i| record(&format!("r{i}"), i, DIM, "x"))
            .collect(),
    )
    .unwrap();
    assert_eq!(
        t.delete(&coll("docs"), &[rid("r3"), rid("nope")]).unwrap(),
        1
    );
    assert!(t.get(&coll("docs"), &[rid("r3")]).unwrap().is_empty());
    let hits = t
        .query(&coll("docs"), &Query::new(vector(3, DIM), 10))
        .unwrap();
    assert_eq!(hits.len(), 9);
    assert!(hits.iter().all(|h| h.id != rid("r3")));
}

#[test]
fn invalid_input_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let good = record("ok", 1, DIM, "x");
    let mut nan = record("bad", 2, DIM, "x");
    nan.vector[3] = f32::NAN;
    let err = t
        .upsert(&coll("docs"), vec![good.clone(), nan])
        .unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidRecord { index: 1, .. }),
        "{err}"
    );
    assert!(t.get(&coll("docs"), &[rid("ok")]).unwrap().is_empty());

    let short = NewRecord::new(rid("s"), vec![1.0; DIM - 1]);
    assert!(matches!(
        t.upsert(&coll("docs"), vec![short]),
        Err(EngineError::InvalidRecord { index: 0, .. })
    ));
    assert!(matches!(
        t.upsert(
            &coll("docs"),
            vec![NewRecord::new(rid("z"), vec![0.0; DIM])]
        ),
        Err(EngineError::InvalidRecord { .. })
    ));
    assert!(matches!(
        t.query(&coll("docs"), &Query::new(vector(1, DIM), 0)),
        Err(EngineError::InvalidArgument(_))
    ));
    assert!(
        t.query(&coll("docs"), &Query::new(vec![1.0; DIM + 1], 5))
            .is_err()
    );
    assert!(matches!(
        t.upsert(&coll("nope"), vec![good]),
        Err(EngineError::CollectionNotFound(_))
    ));
    assert!(matches!(
        t.create_collection(&coll("docs"), &CollectionSpec::new(DIM, Metric::Cosine)),
        Err(EngineError::CollectionExists(_))
    ));
    assert!(
        t.create_collection(&coll("zero"), &CollectionSpec::new(0, Metric::L2))
            .is_err()
    );
    assert_eq!(t.stats().unwrap().records, 0);
}

#[test]
fn metrics_score_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", 2);
    for (name, metric) in [("l2", Metric::L2), ("dot", Metric::Dot)] {
        t.create_collection(&coll(name), &CollectionSpec::new(2, metric))
            .unwrap();
        t.upsert(
            &coll(name),
            vec![
                NewRecord::new(rid("near"), vec![1.0, 1.0]),
                NewRecord::new(rid("far"), vec![4.0, 6.0]),
            ],
        )
        .unwrap();
    }
    let l2 = t
        .query(&coll("l2"), &Query::new(vec![1.0, 2.0], 2))
        .unwrap();
    assert_eq!(l2[0].id, rid("near"));
    assert!((l2[0].score - 1.0).abs() < 1e-5);
    assert!((l2[1].score - 5.0).abs() < 1e-5);
    let dot = t
        .query(&coll("dot"), &Query::new(vec![1.0, 2.0], 2))
        .unwrap();
    assert_eq!(dot[0].id, rid("far"));
    assert!((dot[0].score - 16.0).abs() < 1e-4);
}

#[test]
fn collection_past_the_flat_threshold_uses_hnsw_with_good_recall() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut spec = CollectionSpec::new(32, Metric::Cosine);
    spec.index = Some(IndexParams {
        flat_threshold: 200,
        ..IndexParams::default()
    });
    t.create_collection(&coll("big"), &spec).unwrap();
    t.create_collection(&coll("exact"), &CollectionSpec::new(32, Metric::Cosine))
        .unwrap();
    for chunk in (0..2_000u64).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| record(&format!("r{i}"), *i, 32, ""))
            .collect();
        t.upsert(&coll("big"), batch.clone()).unwrap();
        t.upsert(&coll("exact"), batch).unwrap();
    }
    let mut found = 0;
    for q in 0..50u64 {
        let query = Query::new(vector(10_000 + q, 32), 10);
        let exact = t.query(&coll("exact"), &query).unwrap();
        let approx = t.query(&coll("big"), &query).unwrap();
        found += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.id == h.id))
            .count();
    }
    let recall = found as f64 / 500.0;
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn delete_collection_removes_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    t.upsert(&coll("docs"), vec![record("a", 1, DIM, "x")])
        .unwrap();
    t.delete_collection(&coll("docs")).unwrap();
    assert!(matches!(
        t.get(&coll("docs"), &[rid("a")]),
        Err(EngineError::CollectionNotFound(_))
    ));
    t.create_collection(&coll("docs"), &CollectionSpec::new(DIM, Metric::Cosine))
        .unwrap();
    assert!(t.get(&coll("docs"), &[rid("a")]).unwrap().is_empty());
    assert!(
        t.query(&coll("docs"), &Query::new(vector(1, DIM), 5))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn audit_log_appends_lists_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let entry = |op: &str| AuditEntry {
        principal: "key1".into(),
        operation: op.into(),
        resource: "tenants/acme/collections/docs".into(),
        outcome: "OK".into(),
        record_count: 3,
        context: Default::default(),
    };
    let first = t
        .append_audit(vec![entry("Upsert"), entry("Query")])
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2]
    );
    t.append_audit(vec![entry("Get")]).unwrap();
    let all = t.list_audit(None, None, 100).unwrap();
    assert_eq!(all.len(), 3);
    let page = t.list_audit(Some(1), None, 1).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].operation, "Query");
    assert_eq!(t.prune_audit().unwrap(), 0, "within retention");
}

#[test]
fn stats_count_collections_records_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    t.upsert(
        &coll("docs"),
        (0..20)
            .map(|i| record(&format!("r{i}"), i, DIM, "x"))
            .collect(),
    )
    .unwrap();
    let s = t.stats().unwrap();
    assert_eq!(s.collections, 1);
    assert_eq!(s.records, 20);
    assert!(s.bytes > 0);
    assert!(s.index_bytes > 0);
}

#[test]
fn scanning_pages_through_live_records_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = bulkhead_engine::ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = tenant_with_docs(&engine, "acme", 4);
    let mut batch: Vec<_> = (0..25)
        .map(|i| record(&format!("r{i:02}"), i, 4, &format!("t{i}")))
        .collect();
    batch[3].ttl = Some(std::time::Duration::from_millis(1));
    t.upsert(&coll("docs"), batch).unwrap();
    clock.advance(std::time::Duration::from_millis(1));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = t.scan_records(&coll("docs"), after.as_ref(), 10).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|r| r.id.clone());
        seen.extend(page);
    }
    let ids: Vec<_> = seen.iter().map(|r| r.id.to_string()).collect();
    let want: Vec<_> = (0..25)
        .filter(|i| *i != 3)
        .map(|i| format!("r{i:02}"))
        .collect();
    assert_eq!(
        ids, want,
        "every live record once, in id order, the expired one left out"
    );
    assert_eq!(seen[0].vector, vector(0, 4));
    assert_eq!(seen[0].text.as_deref(), Some("t0"));
    assert!(matches!(
        t.scan_records(&coll("missing"), None, 10),
        Err(bulkhead_engine::EngineError::CollectionNotFound(_))
    ));
}
