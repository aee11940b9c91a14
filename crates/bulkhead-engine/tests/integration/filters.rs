//! Filtered queries: declared fields are indexed on upsert, follow replacements, deletions and
//! expiry, survive a reload, and restrict both the exact scan and the HNSW search.

use std::collections::BTreeMap;

use bulkhead_core::{Metric, Value};
use bulkhead_engine::{CollectionSpec, Condition, FieldType, Filter, Query, Range, TenantSettings};

use crate::common::*;

const DIM: usize = 16;

fn spec(flat_threshold: usize) -> CollectionSpec {
    let mut s = CollectionSpec::new(DIM, Metric::Cosine);
    s.indexed_fields = BTreeMap::from([
        ("bucket".to_owned(), FieldType::Integer),
        ("lang".to_owned(), FieldType::Keyword),
    ]);
    s.index = Some(bulkhead_engine::IndexParams {
        flat_threshold,
        ..Default::default()
    });
    s
}

fn tagged(i: u64) -> bulkhead_engine::NewRecord {
    let mut r = record(&format!("r{i}"), i, DIM, "t");
    r.metadata
        .insert("bucket".into(), Value::Int((i % 100) as i64));
    r.metadata.insert(
        "lang".into(),
        Value::String(if i.is_multiple_of(2) { "en" } else { "de" }.into()),
    );
    r
}

fn bucket_below(n: i64) -> Filter {
    Filter::condition(Condition::Range {
        field: "bucket".into(),
        range: Range::Integer {
            gte: None,
            gt: None,
            lte: None,
            lt: Some(n),
        },
    })
}

fn ids_of(t: &bulkhead_engine::TenantHandle, q: &Query) -> Vec<u64> {
    let mut ids: Vec<u64> = t
        .query(&coll("docs"), q)
        .unwrap()
        .into_iter()
        .map(|h| h.id.as_str()[1..].parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn filters_restrict_flat_and_hnsw_search_and_follow_every_change() {
    for flat_threshold in [1_000_000, 100] {
        let dir = tempfile::tempdir().unwrap();
        let clock = bulkhead_engine::ManualClock::starting_now();
        let engine = open_with_clock(dir.path(), &clock);
        engine
            .create_tenant(&tenant("acme"), &TenantSettings::default())
            .unwrap();
        let t = engine.handle(&tenant("acme")).unwrap();
        t.create_collection(&coll("docs"), &spec(flat_threshold))
            .unwrap();
        t.upsert(&coll("docs"), (0..2000).map(tagged).collect())
            .unwrap();

        let mut q = Query::new(vector(7, DIM), 1000);
        q.filter = Some(bucket_below(1));
        let want: Vec<u64> = (0..2000).filter(|i| i % 100 == 0).collect();
        assert_eq!(
            ids_of(&t, &q),
            want,
            "flat_threshold {flat_threshold}: 1% selectivity, exact"
        );

        // Combined: bucket < 10 and not lang = de.
        q.filter = Some(Filter {
            must: vec![bucket_below(10)],
            must_not: vec![Filter::condition(Condition::Eq {
                field: "lang".into(),
                value: Value::String("de".into()),
            })],
            ..Filter::default()
        });
        let want: Vec<u64> = (0..2000).filter(|i| i % 100 < 10 && i % 2 == 0).collect();
        assert_eq!(ids_of(&t, &q), want);

        // A replaced record is re-indexed under its new value; a deleted one is gone.
        let mut moved = tagged(0);
        moved.metadata.insert("bucket".into(), Value::Int(50));
        t.upsert(&coll("docs"), vec![moved]).unwrap();
        t.delete(&coll("docs"), &[rid("r100")]).unwrap();
        q.filter = Some(bucket_below(1));
        let want: Vec<u64> = (200..2000).filter(|i| i % 100 == 0).collect();
        assert_eq!(ids_of(&t, &q), want);

        // Expired records never match.
        let mut short = tagged(300);
        short.ttl = Some(std::time::Duration::from_millis(1));
        t.upsert(&coll("docs"), vec![short]).unwrap();
        assert!(ids_of(&t, &q).contains(&300), "live until its expiry");
        clock.advance(std::time::Duration::from_millis(1));
        assert!(!ids_of(&t, &q).contains(&300));

        // A wrongly typed indexed value is refused with the field named.
        let mut bad = tagged(5000);
        bad.metadata
            .insert("bucket".into(), Value::String("x".into()));
        let e = t.upsert(&coll("docs"), vec![bad]).unwrap_err().to_string();
        assert!(e.contains("metadata.bucket: expected integer"), "{e}");

        // After a reload the indexes are rebuilt from storage.
        drop(t);
        drop(engine);
        let engine = open(dir.path());
        let t = engine.handle(&tenant("acme")).unwrap();
        let want: Vec<u64> = (200..2000).filter(|i| i % 100 == 0 && *i != 300).collect();
        assert_eq!(ids_of(&t, &q), want, "after reopen");
        assert_eq!(
            t.get_collection(&coll("docs"))
                .unwrap()
                .spec
                .indexed_fields
                .len(),
            2
        );
    }
}
