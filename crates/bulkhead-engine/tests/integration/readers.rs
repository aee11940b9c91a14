//! Record-level access control: in a collection created with it, a reader-bound handle reads
//! only records naming one of its tags among their readers, whatever it asks for, and writes
//! nothing; a service handle reads and writes everything; collections without it are read
//! whole. A proptest checks the first rule over random readers, filters and sizes.

use std::collections::BTreeSet;

use bulkhead_core::{Metadata, Metric, Value};
use bulkhead_engine::{
    CollectionSpec, Condition, EngineError, FieldType, Filter, Include, Query, READERS_FIELD,
    Reader, TenantHandle,
};
use proptest::prelude::*;

use crate::common::*;

const DIM: usize = 8;

fn with_readers(id: &str, seed: u64, readers: &[&str], lang: &str) -> bulkhead_engine::NewRecord {
    let mut r = record(id, seed, DIM, id);
    let mut metadata = Metadata::new();
    if !readers.is_empty() {
        let tags = readers.iter().map(|t| (*t).to_owned()).collect();
        metadata.insert(READERS_FIELD.to_owned(), Value::StringList(tags));
    }
    metadata.insert("lang".to_owned(), Value::String(lang.to_owned()));
    r.metadata = metadata;
    r
}

/// A tenant with the access-controlled collection `acl` (r0 alice's, r1 group eng's, r2
/// public, r3 bob's, r4 nobody's) and `open` (the same records, no access control).
fn tenant_with_readers(engine: &bulkhead_engine::Engine) -> TenantHandle {
    let t = tenant_with_docs(engine, "t", DIM);
    let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
    spec.indexed_fields
        .insert("lang".into(), FieldType::Keyword);
    spec.access_control = true;
    t.create_collection(&coll("acl"), &spec).unwrap();
    spec.access_control = false;
    t.create_collection(&coll("open"), &spec).unwrap();
    let records = || {
        vec![
            with_readers("r0", 0, &["user:alice"], "en"),
            with_readers("r1", 1, &["group:eng"], "en"),
            with_readers("r2", 2, &["public"], "de"),
            with_readers("r3", 3, &["user:bob"], "en"),
            with_readers("r4", 4, &[], "en"),
        ]
    };
    t.upsert(&coll("acl"), records()).unwrap();
    t.upsert(&coll("open"), records()).unwrap();
    t
}

fn ids_of_hits(hits: &[bulkhead_engine::Hit]) -> BTreeSet<String> {
    hits.iter().map(|h| h.id.to_string()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_reader_sees_only_records_it_is_among_the_readers_of() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_readers(&engine);
    let alice = t.reading_as(Reader::new("alice", &["eng".to_owned()]));
    let all_ids: Vec<_> = ["r0", "r1", "r2", "r3", "r4"].map(rid).to_vec();
    let mut everything = Query::new(vector(3, DIM), 100);
    everything.include = Include {
        text: true,
        metadata: true,
        vector: true,
    };

    let hits = alice.query(&coll("acl"), &everything).unwrap();
    assert_eq!(ids_of_hits(&hits), set(&["r0", "r1", "r2"]));
    assert!(
        hits.iter()
            .all(|h| !h.metadata.as_ref().unwrap().contains_key(READERS_FIELD)),
        "a reader is not told who else reads a record"
    );
    // Its own filter narrows further and never widens: asking for bob's readers finds none.
    let mut bobs = everything.clone();
    bobs.filter = Some(Filter {
        condition: Some(Condition::Eq {
            field: READERS_FIELD.into(),
            value: Value::String("user:bob".into()),
        }),
        ..Filter::default()
    });
    assert!(alice.query(&coll("acl"), &bobs).unwrap().is_empty());
    let mut english = everything.clone();
    english.filter = Some(Filter {
        condition: Some(Condition::Eq {
            field: "lang".into(),
            value: Value::String("en".into()),
        }),
        ..Filter::default()
    });
    let hits = alice.query(&coll("acl"), &english).unwrap();
    assert_eq!(ids_of_hits(&hits), set(&["r0", "r1"]));
    let got: BTreeSet<_> = alice
        .get(&coll("acl"), &all_ids)
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(got, set(&["r0", "r1", "r2"]));

    // Bob without groups: his own and the public one.
    let bob = t.reading_as(Reader::new("bob", &[]));
    let hits = bob.query(&coll("acl"), &everything).unwrap();
    assert_eq!(ids_of_hits(&hits), set(&["r2", "r3"]));

    // Readers write nothing where records carry readers, and don't export there.
    for refused in [
        alice
            .upsert(&coll("acl"), vec![with_readers("r9", 9, &["public"], "en")])
            .map(drop),
        alice.delete(&coll("acl"), &[rid("r3")]).map(drop),
        alice.scan_records(&coll("acl"), None, 10).map(drop),
    ] {
        assert!(
            matches!(refused, Err(EngineError::NotPermitted(_))),
            "{refused:?}"
        );
    }

    // Without access control the tenant granted the whole collection.
    let hits = alice.query(&coll("open"), &everything).unwrap();
    assert_eq!(hits.len(), 5);
    // The service handle reads everything, readers included.
    let hits = t.query(&coll("acl"), &everything).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits[0].metadata.as_ref().unwrap().contains_key("lang"));
}

#[test]
fn readers_are_checked_on_write_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let t = tenant_with_readers(&engine);
        let bad = t.upsert(&coll("acl"), vec![with_readers("x", 9, &["alice"], "en")]);
        assert!(
            matches!(bad, Err(EngineError::InvalidArgument(_))),
            "{bad:?}"
        );
        // Outside access control `_readers` is only metadata.
        t.upsert(&coll("open"), vec![with_readers("x", 9, &["alice"], "en")])
            .unwrap();
        let cache_with_acl = {
            let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
            spec.access_control = true;
            spec.indexed_fields
                .insert(READERS_FIELD.into(), FieldType::Integer);
            t.create_collection(&coll("wrong"), &spec)
        };
        assert!(cache_with_acl.is_err());
        let spec = t.collection_spec(&coll("acl")).unwrap();
        assert!(spec.access_control);
        assert_eq!(
            spec.indexed_fields.get(READERS_FIELD),
            Some(&FieldType::Keyword)
        );
    }
    let engine = open(dir.path());
    let t = engine.handle(&tenant("t")).unwrap();
    let alice = t.reading_as(Reader::new("alice", &[]));
    let hits = alice
        .query(&coll("acl"), &Query::new(vector(3, DIM), 100))
        .unwrap();
    assert_eq!(ids_of_hits(&hits), set(&["r0", "r2"]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever a record's readers, the reader's groups, its filter, `top_k` and `ef`, every
    /// record a reader gets back names one of its tags, and a `get` of every id returns
    /// exactly those it may read.
    #[test]
    fn no_read_returns_a_record_the_reader_is_not_among_the_readers_of(
        readers in prop::collection::vec(prop::collection::vec(0..6usize, 0..3), 40),
        groups in prop::collection::vec(0..3usize, 0..3),
        top_k in 1..60usize,
        ef in prop::option::of(1..200usize),
        lang_filter in any::<bool>(),
    ) {
        const TAGS: [&str; 6] = ["user:u0", "user:u1", "group:g0", "group:g1", "group:g2", "public"];
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let t = tenant_with_docs(&engine, "t", DIM);
        let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
        spec.indexed_fields.insert("lang".into(), FieldType::Keyword);
        spec.access_control = true;
        t.create_collection(&coll("acl"), &spec).unwrap();
        let records: Vec<_> = readers
            .iter()
            .enumerate()
            .map(|(i, tags)| {
                let tags: Vec<&str> = tags.iter().map(|t| TAGS[*t]).collect();
                with_readers(&format!("r{i}"), i as u64, &tags, if i % 2 == 0 { "en" } else { "de" })
            })
            .collect();
        t.upsert(&coll("acl"), records).unwrap();
        let groups: Vec<String> = groups.iter().map(|g| format!("g{g}")).collect();
        let reader = Reader::new("u0", &groups);
        let readable: BTreeSet<String> = readers
            .iter()
            .enumerate()
            .filter(|(_, tags)| tags.iter().any(|t| reader.tags().iter().any(|r| r == TAGS[*t])))
            .map(|(i, _)| format!("r{i}"))
            .collect();
        let alice = t.reading_as(reader);
        let mut q = Query::new(vector(99, DIM), top_k);
        q.ef = ef;
        if lang_filter {
            q.filter = Some(Filter {
                condition: Some(Condition::Eq { field: "lang".into(), value: Value::String("en".into()) }),
                ..Filter::default()
            });
        }
        let hits = ids_of_hits(&alice.query(&coll("acl"), &q).unwrap());
        prop_assert!(hits.is_subset(&readable), "{hits:?} not within {readable:?}");
        prop_assert_eq!(hits.len(), top_k.min(
            readable.iter().filter(|id| !lang_filter || id[1..].parse::<usize>().unwrap() % 2 == 0).count()
        ));
        let ids: Vec<_> = (0..readers.len()).map(|i| rid(&format!("r{i}"))).collect();
        let got: BTreeSet<String> = alice.get(&coll("acl"), &ids).unwrap().into_iter().map(|r| r.id.to_string()).collect();
        prop_assert_eq!(got, readable);
    }
}

#[test]
fn a_handle_logs_the_ids_its_reads_return_only_where_the_collection_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
    spec.audit_reads = true;
    t.create_collection(&coll("audited"), &spec).unwrap();
    let records: Vec<_> = (0..1_200)
        .map(|i| record(&format!("r{i}"), i, DIM, "x"))
        .collect();
    for c in ["docs", "audited"] {
        t.upsert(&coll(c), records.clone()).unwrap();
    }
    let ids: Vec<_> = (0..1_200).map(|i| rid(&format!("r{i}"))).collect();
    let logging = t.logging_reads();
    logging.get(&coll("docs"), &ids).unwrap();
    assert!(
        logging.take_read_ids().is_empty(),
        "docs doesn't record reads"
    );
    let hits = logging
        .query(&coll("audited"), &Query::new(vector(3, DIM), 5))
        .unwrap();
    let hit_ids: Vec<String> = hits.iter().map(|h| h.id.to_string()).collect();
    assert_eq!(logging.take_read_ids(), hit_ids);
    assert!(logging.take_read_ids().is_empty(), "taken");
    logging.get(&coll("audited"), &ids).unwrap();
    let logged = logging.take_read_ids();
    assert_eq!(logged.len(), bulkhead_engine::MAX_AUDITED_READ_IDS);
    assert_eq!(logged[0], "r0");
    // A handle that doesn't log keeps nothing.
    t.get(&coll("audited"), &ids).unwrap();
    assert!(t.take_read_ids().is_empty());
}
