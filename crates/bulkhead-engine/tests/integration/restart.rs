//! Everything acknowledged is there after a clean restart, indexes included.

use bulkhead_core::Metric;
use bulkhead_engine::{AuditEntry, CollectionSpec, IndexParams, Query};

use crate::common::*;

const DIM: usize = 16;

#[test]
fn restart_keeps_tenants_collections_records_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let t = tenant_with_docs(&engine, "acme", DIM);
        let mut spec = CollectionSpec::new(DIM, Metric::L2);
        spec.index = Some(IndexParams {
            flat_threshold: 100,
            ..IndexParams::default()
        });
        t.create_collection(&coll("graph"), &spec).unwrap();
        let batch: Vec<_> = (0..500)
            .map(|i| record(&format!("r{i}"), i, DIM, "t"))
            .collect();
        t.upsert(&coll("docs"), batch.clone()).unwrap();
        t.upsert(&coll("graph"), batch).unwrap();
        t.delete(&coll("docs"), &[rid("r7")]).unwrap();
        t.append_audit(vec![AuditEntry {
            principal: "admin".into(),
            operation: "CreateCollection".into(),
            resource: "tenants/acme/collections/graph".into(),
            outcome: "OK".into(),
            record_count: 0,
            context: Default::default(),
        }])
        .unwrap();
        tenant_with_docs(&engine, "other", DIM);
    }
    let engine = open(dir.path());
    assert_eq!(engine.tenant_count(), 2);
    let t = engine.handle(&tenant("acme")).unwrap();
    let cols = t.list_collections().unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[0].records, 499);
    assert_eq!(cols[1].records, 500);
    assert_eq!(cols[1].spec.metric, Metric::L2);
    assert!(t.get(&coll("docs"), &[rid("r7")]).unwrap().is_empty());
    for i in [0u64, 250, 499] {
        let hits = t
            .query(&coll("graph"), &Query::new(vector(i, DIM), 1))
            .unwrap();
        assert_eq!(hits[0].id, rid(&format!("r{i}")));
    }
    let audit = t.list_audit(None, None, 10).unwrap();
    assert_eq!(audit.len(), 1);
    let next = t
        .append_audit(vec![AuditEntry {
            principal: "admin".into(),
            operation: "Query".into(),
            resource: "tenants/acme".into(),
            outcome: "OK".into(),
            record_count: 1,
            context: Default::default(),
        }])
        .unwrap();
    assert_eq!(next[0].sequence, 2, "sequence continues after restart");
}

#[test]
fn a_second_engine_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = bulkhead_engine::Engine::open(config(dir.path())).unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");
}

#[test]
fn exporting_a_cold_tenant_reads_storage_without_activating_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let t = tenant_with_docs(&engine, "acme", DIM);
        let batch: Vec<_> = (0..50)
            .map(|i| record(&format!("r{i:02}"), i, DIM, "t"))
            .collect();
        t.upsert(&coll("docs"), batch).unwrap();
    }
    let engine = open(dir.path());
    let t = engine.handle(&tenant("acme")).unwrap();
    let page = t.scan_records(&coll("docs"), None, 20).unwrap();
    assert_eq!(page.len(), 20);
    assert_eq!(page[0].id, rid("r00"));
    let rest = t
        .scan_records(&coll("docs"), Some(&page[19].id), 100)
        .unwrap();
    assert_eq!(rest.len(), 30);
    assert!(matches!(
        t.scan_records(&coll("nope"), None, 10),
        Err(bulkhead_engine::EngineError::CollectionNotFound(_))
    ));
    assert!(
        !engine.tenant_info(&tenant("acme")).unwrap().loaded,
        "the export loaded no index"
    );
}

/// A tenant's incarnation names its column family's and its segment directory's place and binds
/// its keys, so no two tenants ever get one, not even across a restart (the incarnation counter
/// is read back from the registry, not restarted). Seen through the incarnation each tenant's
/// first key is bound to.
#[test]
fn incarnations_are_never_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = |t: &bulkhead_engine::TenantHandle, hash: u8| {
        let record = crate::isolation::key(&format!("k{hash}"), t.id().as_str(), hash);
        t.create_api_key(record).unwrap().incarnation
    };
    let mut seen = Vec::new();
    {
        let engine = open(dir.path());
        seen.push(key(&tenant_with_docs(&engine, "a", DIM), 1));
        seen.push(key(&tenant_with_docs(&engine, "b", DIM), 2));
        engine.delete_tenant(&tenant("b")).unwrap();
    }
    let engine = open(dir.path());
    for (i, name) in ["c", "d", "b"].into_iter().enumerate() {
        seen.push(key(&tenant_with_docs(&engine, name, DIM), 3 + i as u8));
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "incarnations {seen:?}");
}
