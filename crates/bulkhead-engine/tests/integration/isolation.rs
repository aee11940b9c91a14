//! Tenants with identical collection names, record ids and vectors never see each other.

use bulkhead_engine::{Engine, EngineError, Include, Query, TenantSettings};

use crate::common::*;

const DIM: usize = 8;
const RECORDS: u64 = 30;

/// Every tenant gets the same ids and vectors; only the text (its owner) differs.
pub(crate) fn plant(engine: &Engine, name: &str) {
    let t = tenant_with_docs(engine, name, DIM);
    let batch = (0..RECORDS)
        .map(|i| record(&format!("r{i}"), i, DIM, &format!("owner={name}")))
        .collect();
    t.upsert(&coll("docs"), batch).unwrap();
}

pub(crate) fn assert_sees_only_itself(engine: &Engine, name: &str) {
    let t = engine.handle(&tenant(name)).unwrap();
    let owner = format!("owner={name}");
    let mut q = Query::new(vector(3, DIM), 1_000);
    q.include = Include {
        text: true,
        metadata: true,
        vector: true,
    };
    let hits = t.query(&coll("docs"), &q).unwrap();
    assert_eq!(hits.len() as u64, RECORDS, "{name}: one hit per own record");
    assert!(
        hits.iter()
            .all(|h| h.text.as_deref() == Some(owner.as_str()))
    );
    let ids: Vec<_> = (0..RECORDS).map(|i| rid(&format!("r{i}"))).collect();
    let got = t.get(&coll("docs"), &ids).unwrap();
    assert_eq!(got.len() as u64, RECORDS);
    assert!(
        got.iter()
            .all(|r| r.text.as_deref() == Some(owner.as_str()))
    );
    let collections = t.list_collections().unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].records, RECORDS);
    assert_eq!(t.stats().unwrap().records, RECORDS);
    assert_eq!(t.id(), tenant(name));
}

fn isolation_across(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    // Small shared groups, so the tenants spread over several RocksDB instances, eight to each.
    let mut config = shared_groups(dir.path());
    config.tenants_per_group = 8;
    let engine = Engine::open(config).unwrap();
    let names: Vec<_> = (0..count).map(|i| format!("tenant-{i}")).collect();
    for n in &names {
        plant(&engine, n);
    }
    for n in &names {
        assert_sees_only_itself(&engine, n);
    }
}

#[test]
fn two_tenants_with_identical_data_are_isolated() {
    isolation_across(2);
}

#[test]
fn fifty_tenants_with_identical_data_are_isolated() {
    isolation_across(50);
}

#[test]
fn writes_and_deletes_stay_in_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    plant(&engine, "a");
    plant(&engine, "b");
    let a = engine.handle(&tenant("a")).unwrap();
    a.delete(&coll("docs"), &[rid("r1")]).unwrap();
    a.upsert(&coll("docs"), vec![record("r2", 99, DIM, "owner=a")])
        .unwrap();
    a.delete_collection(&coll("docs")).unwrap();
    assert_sees_only_itself(&engine, "b");
}

#[test]
fn deleted_and_recreated_tenant_sees_nothing_of_its_past_and_files_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    plant(&engine, "a");
    plant(&engine, "b");
    let old_b = engine.handle(&tenant("b")).unwrap();
    old_b.flush().unwrap();
    let files = old_b.table_files().unwrap();
    assert!(!files.is_empty(), "flushed tenant has table files");
    assert!(files.iter().all(|f| f.exists()), "{files:?}");

    engine.delete_tenant(&tenant("b")).unwrap();
    // The old handle is dead, not silently pointed at something else.
    assert!(matches!(
        old_b.get(&coll("docs"), &[rid("r1")]),
        Err(EngineError::TenantNotFound(_))
    ));
    assert!(matches!(
        engine.handle(&tenant("b")),
        Err(EngineError::TenantNotFound(_))
    ));
    drop(old_b);
    for f in &files {
        assert!(!f.exists(), "{} survived tenant deletion", f.display());
    }

    engine
        .create_tenant(&tenant("b"), &TenantSettings::default())
        .unwrap();
    let new_b = engine.handle(&tenant("b")).unwrap();
    assert!(new_b.list_collections().unwrap().is_empty());
    assert!(matches!(
        new_b.get(&coll("docs"), &[rid("r1")]),
        Err(EngineError::CollectionNotFound(_))
    ));
    assert!(new_b.list_audit(None, None, 10).unwrap().is_empty());
    assert_eq!(new_b.stats().unwrap().records, 0);
    assert_sees_only_itself(&engine, "a");
}

#[test]
fn unknown_and_duplicate_tenants_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    assert!(matches!(
        engine.handle(&tenant("ghost")),
        Err(EngineError::TenantNotFound(_))
    ));
    engine
        .create_tenant(&tenant("a"), &TenantSettings::default())
        .unwrap();
    assert!(matches!(
        engine.create_tenant(&tenant("a"), &TenantSettings::default()),
        Err(EngineError::TenantExists(_))
    ));
    assert!(matches!(
        engine.delete_tenant(&tenant("ghost")),
        Err(EngineError::TenantNotFound(_))
    ));
}

/// A request holding its tenant (`TenantHandle::hold`) sees one tenant from its first call to
/// its last: a deletion started in between waits for the request to end, then removes
/// everything, and the handle is dead afterwards.
#[test]
fn a_held_tenant_is_deleted_only_after_its_request_ends() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(open(dir.path()));
    plant(&engine, "a");
    let a = engine.handle(&tenant("a")).unwrap();
    let held = a.hold().unwrap();
    let (deleted, done) = std::sync::mpsc::channel();
    let deleting = {
        let engine = engine.clone();
        std::thread::spawn(move || deleted.send(engine.delete_tenant(&tenant("a"))).unwrap())
    };
    // Unheld, the deletion finishes in well under this; held, it can't finish at all.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        done.try_recv().is_err(),
        "the tenant was deleted under a request holding it"
    );
    // The request's later calls still reach its tenant, data included.
    assert_eq!(a.get(&coll("docs"), &[rid("r1")]).unwrap().len(), 1);
    a.upsert(&coll("docs"), vec![record("late", 7, DIM, "owner=a")])
        .unwrap();
    drop(held);
    done.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the deletion finishes once the request ends")
        .unwrap();
    deleting.join().unwrap();
    assert!(matches!(a.hold(), Err(EngineError::TenantNotFound(_))));
    assert!(matches!(
        a.get(&coll("docs"), &[rid("r1")]),
        Err(EngineError::TenantNotFound(_))
    ));
}

/// A key record `id` naming tenant `names_tenant`, whose secret hashes to `[hash; 32]`.
pub(crate) fn key(id: &str, names_tenant: &str, hash: u8) -> bulkhead_engine::ApiKeyRecord {
    bulkhead_engine::ApiKeyRecord {
        tenant: tenant(names_tenant),
        key_id: id.parse().unwrap(),
        role: bulkhead_core::Role::Write,
        secret_hash: [hash; 32],
        description: String::new(),
        created_at_ms: 0,
        expires_at_ms: None,
        revoked: false,
        incarnation: 0,
    }
}

/// Key operations are methods of a tenant's handle: whatever tenant a record names, the key is
/// the handle's tenant's; another tenant's handle neither lists nor revokes it; and a handle
/// whose tenant was deleted creates no key that would outlive it.
#[test]
fn key_operations_reach_only_the_handles_tenant_and_end_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = tenant_with_docs(&engine, "a", DIM);
    let b = tenant_with_docs(&engine, "b", DIM);
    let stored = a.create_api_key(key("k1", "b", 1)).unwrap();
    assert_eq!(
        stored.tenant,
        tenant("a"),
        "the record's own tenant is ignored"
    );
    assert_eq!(
        engine.api_key_by_hash(&[1; 32]).unwrap().tenant,
        tenant("a")
    );
    assert_eq!(a.list_api_keys().unwrap().len(), 1);
    assert!(b.list_api_keys().unwrap().is_empty());
    assert!(matches!(
        b.revoke_api_key(&"k1".parse().unwrap()),
        Err(EngineError::KeyNotFound(_))
    ));
    assert!(!engine.api_key_by_hash(&[1; 32]).unwrap().revoked);

    engine.delete_tenant(&tenant("a")).unwrap();
    assert!(matches!(
        a.create_api_key(key("k2", "a", 2)),
        Err(EngineError::TenantNotFound(_))
    ));
    assert!(engine.api_key_by_hash(&[1; 32]).is_none());
    assert!(engine.api_key_by_hash(&[2; 32]).is_none());
    assert!(matches!(
        a.list_api_keys(),
        Err(EngineError::TenantNotFound(_))
    ));
}

/// Keys created while their tenant is being deleted must not survive into a tenant later
/// created with the same id (they would be listed as its own). Races a key-creating thread
/// against the delete, many times.
#[test]
fn no_key_created_during_a_delete_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(open(dir.path()));
    for round in 0..40u8 {
        let t = tenant_with_docs(&engine, "t", DIM);
        let creating = std::thread::spawn(move || {
            let mut created = 0u32;
            for i in 0..500u32 {
                let id = format!("k{round}x{i}");
                let hash = (u32::from(round) * 1000 + i).to_le_bytes()[0];
                match t.create_api_key(key(&id, "t", hash)) {
                    Ok(_) => created += 1,
                    Err(EngineError::TenantNotFound(_)) => break,
                    Err(EngineError::QuotaExceeded(_)) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            created
        });
        std::thread::sleep(std::time::Duration::from_micros(
            200 * u64::from(round % 10),
        ));
        engine.delete_tenant(&tenant("t")).unwrap();
        creating.join().unwrap();
        let again = tenant_with_docs(&engine, "t", DIM);
        assert_eq!(
            again.list_api_keys().unwrap(),
            vec![],
            "round {round}: a key of the deleted tenant is listed by the new one"
        );
        engine.delete_tenant(&tenant("t")).unwrap();
    }
}
