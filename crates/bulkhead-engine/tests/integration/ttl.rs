//! Expired records are invisible from the millisecond they expire and removed by a sweep. Time
//! is the engine's manual clock: the tests move it, to the millisecond, instead of sleeping.

use std::time::Duration;

use bulkhead_core::Metric;
use bulkhead_engine::{CollectionSpec, ManualClock, Query};

use crate::common::*;

const DIM: usize = 8;

#[test]
fn expired_records_are_invisible_at_expiry_then_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut short = record("short", 1, DIM, "x");
    short.ttl = Some(Duration::from_millis(300));
    let long = record("long", 2, DIM, "y");
    t.upsert(&coll("docs"), vec![short, long]).unwrap();
    let expiry = t.get(&coll("docs"), &[rid("short")]).unwrap()[0]
        .expire_time_ms
        .expect("has an expiry");
    assert_eq!(expiry, clock.now_ms() + 300);

    clock.advance(Duration::from_millis(299));
    assert_eq!(t.get(&coll("docs"), &[rid("short")]).unwrap().len(), 1);
    assert_eq!(
        t.sweep_expired().unwrap(),
        0,
        "not expired a millisecond early"
    );
    clock.advance(Duration::from_millis(1));
    // Not swept yet, but already invisible everywhere.
    assert!(t.get(&coll("docs"), &[rid("short")]).unwrap().is_empty());
    let hits = t
        .query(&coll("docs"), &Query::new(vector(1, DIM), 10))
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![rid("long")]
    );
    assert_eq!(t.stats().unwrap().records, 1);
    assert_eq!(t.list_collections().unwrap()[0].records, 1);

    assert_eq!(t.sweep_expired().unwrap(), 1);
    assert_eq!(
        t.sweep_expired().unwrap(),
        0,
        "a second sweep finds nothing"
    );
    assert_eq!(t.get(&coll("docs"), &[rid("long")]).unwrap().len(), 1);
}

#[test]
fn sweep_removes_expired_records_of_a_cold_tenant_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    {
        let engine = open_with_clock(dir.path(), &clock);
        let t = tenant_with_docs(&engine, "acme", DIM);
        let mut batch: Vec<_> = (0..50)
            .map(|i| record(&format!("r{i}"), i, DIM, ""))
            .collect();
        batch
            .iter_mut()
            .for_each(|r| r.ttl = Some(Duration::from_millis(200)));
        t.upsert(&coll("docs"), batch).unwrap();
    }
    clock.advance(Duration::from_millis(200));
    // After a restart the tenant is cold: the sweep works from the expiry index alone.
    let engine = open_with_clock(dir.path(), &clock);
    let t = engine.handle(&tenant("acme")).unwrap();
    assert_eq!(t.sweep_expired().unwrap(), 50);
    assert_eq!(t.stats().unwrap().records, 0);
    assert!(
        t.query(&coll("docs"), &Query::new(vector(1, DIM), 10))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn collection_default_ttl_applies_and_record_ttl_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
    spec.default_ttl = Some(Duration::from_millis(200));
    t.create_collection(&coll("cache"), &spec).unwrap();
    let mut keeps = record("keeps", 2, DIM, "");
    keeps.ttl = Some(Duration::from_secs(3600));
    t.upsert(&coll("cache"), vec![record("default", 1, DIM, ""), keeps])
        .unwrap();
    clock.advance(Duration::from_millis(200));
    let got = t
        .get(&coll("cache"), &[rid("default"), rid("keeps")])
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![rid("keeps")]
    );
    clock.advance(Duration::from_secs(3600));
    assert!(t.get(&coll("cache"), &[rid("keeps")]).unwrap().is_empty());
}

#[test]
fn re_upserting_before_expiry_keeps_the_record_past_the_old_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let t = tenant_with_docs(&engine, "acme", DIM);
    let mut r = record("a", 1, DIM, "v1");
    r.ttl = Some(Duration::from_millis(200));
    t.upsert(&coll("docs"), vec![r]).unwrap();
    t.upsert(&coll("docs"), vec![record("a", 1, DIM, "v2")])
        .unwrap();
    clock.advance(Duration::from_millis(300));
    assert_eq!(t.sweep_expired().unwrap(), 0);
    let got = t.get(&coll("docs"), &[rid("a")]).unwrap();
    assert_eq!(got[0].text.as_deref(), Some("v2"));
}

/// Audit events older than the tenant's retention are pruned; younger ones stay.
#[test]
fn audit_events_past_their_retention_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let engine = open_with_clock(dir.path(), &clock);
    let settings = bulkhead_engine::TenantSettings {
        audit_retention: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    engine.create_tenant(&tenant("acme"), &settings).unwrap();
    let t = engine.handle(&tenant("acme")).unwrap();
    let event = |operation: &str| bulkhead_engine::AuditEntry {
        principal: "test".into(),
        operation: operation.into(),
        resource: "tenants/acme".into(),
        outcome: "OK".into(),
        record_count: 0,
        context: Default::default(),
    };
    t.append_audit(vec![event("Old")]).unwrap();
    clock.advance(Duration::from_secs(30));
    t.append_audit(vec![event("Young")]).unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        t.prune_audit().unwrap(),
        0,
        "exactly as old as its retention: kept"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(t.prune_audit().unwrap(), 1);
    let left = t.list_audit(None, None, 10).unwrap();
    assert_eq!(
        left.iter()
            .map(|e| e.operation.as_str())
            .collect::<Vec<_>>(),
        ["Young"]
    );
}
