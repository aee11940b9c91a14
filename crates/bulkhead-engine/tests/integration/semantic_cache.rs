//! The semantic cache's rules hold on every write path: only the cache's own store writes its
//! reserved fields, so no upsert or import can plant an answer in another user's scope; a
//! restore brings them back checked; scopes never see each other's entries; and the rules
//! survive a restart.

use std::time::Duration;

use bulkhead_core::{Metadata, Metric, Value};
use bulkhead_engine::{
    CacheEntry, CacheLookup, CacheSettings, CacheTarget, CollectionKind, EngineError,
};

use crate::common::*;

const DIM: usize = 8;

fn settings() -> CacheSettings {
    CacheSettings {
        dimension: DIM,
        metric: Metric::Cosine,
        default_ttl: None,
    }
}

fn entry(id: &str, seed: u64, scope: Option<&str>, response: &str) -> CacheEntry {
    CacheEntry {
        id: rid(id),
        prompt: format!("prompt {id}"),
        response: response.to_owned(),
        vector: vector(seed, DIM),
        scope: scope.map(str::to_owned),
        metadata: Metadata::from([("model".to_owned(), Value::String("m1".into()))]),
        ttl: None,
    }
}

fn lookup(seed: u64, scope: Option<&str>) -> CacheLookup {
    CacheLookup {
        vector: vector(seed, DIM),
        scope: scope.map(str::to_owned),
        max_age: None,
        min_similarity: 0.99,
    }
}

fn with_reserved(id: &str, seed: u64, key: &str, value: Value) -> bulkhead_engine::NewRecord {
    let mut r = record(id, seed, DIM, "planted answer");
    r.metadata.insert(key.to_owned(), value);
    r
}

#[test]
fn no_upsert_can_set_a_caches_reserved_fields() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let cache = coll("answers");
    let info = t.create_cache(&cache, &settings()).unwrap();
    assert_eq!(info.spec.kind, CollectionKind::SemanticCache);
    t.store_in_cache(&cache, entry("e1", 1, Some("alice"), "alice's answer"))
        .unwrap();

    // Planting an answer in alice's scope, or faking an entry's age or prompt, through a plain
    // upsert: refused, and nothing is written.
    for (key, value) in [
        ("_scope", Value::String("alice".into())),
        ("_stored_at", Value::Int(0)),
        ("_prompt", Value::String("p".into())),
        ("_anything", Value::Bool(true)),
    ] {
        let refused = t
            .upsert(&cache, vec![with_reserved("planted", 2, key, value)])
            .unwrap_err();
        assert!(
            matches!(&refused, EngineError::InvalidArgument(m) if m.contains(key) && m.contains("reserved")),
            "{key}: {refused:?}"
        );
    }
    assert!(t.get(&cache, &[rid("planted")]).unwrap().is_empty());
    assert!(
        t.lookup_in_cache(&cache, lookup(2, Some("alice")))
            .unwrap()
            .is_none()
    );
    // The cache's own entry is still alice's, and only alice's.
    let hit = t
        .lookup_in_cache(&cache, lookup(1, Some("alice")))
        .unwrap()
        .expect("alice's own entry");
    assert_eq!(hit.response, "alice's answer");
    assert_eq!(hit.prompt, "prompt e1");
    assert_eq!(
        hit.metadata.keys().collect::<Vec<_>>(),
        ["model"],
        "reserved fields hidden"
    );
    assert!(
        t.lookup_in_cache(&cache, lookup(1, Some("bob")))
            .unwrap()
            .is_none()
    );
    assert!(
        t.lookup_in_cache(&cache, lookup(1, None))
            .unwrap()
            .is_none()
    );

    // A store can't smuggle them in its own metadata either.
    let mut sneaky = entry("e2", 3, Some("bob"), "x");
    sneaky
        .metadata
        .insert("_scope".into(), Value::String("alice".into()));
    assert!(matches!(
        t.store_in_cache(&cache, sneaky).unwrap_err(),
        EngineError::InvalidArgument(m) if m.contains("_scope")
    ));

    // A collection of records keeps its `_` keys as before, and is no cache.
    t.upsert(
        &coll("docs"),
        vec![with_reserved(
            "r1",
            4,
            "_scope",
            Value::String("alice".into()),
        )],
    )
    .unwrap();
    assert!(matches!(
        t.store_in_cache(&coll("docs"), entry("e3", 5, None, "x")),
        Err(EngineError::NotACache(_))
    ));
    assert!(matches!(
        t.lookup_in_cache(&coll("docs"), lookup(4, Some("alice"))),
        Err(EngineError::NotACache(_))
    ));
}

#[test]
fn a_restore_brings_reserved_fields_back_only_when_valid() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let cache = coll("answers");
    t.create_cache(&cache, &settings()).unwrap();
    let mut restored = with_reserved("e1", 1, "_scope", Value::String("alice".into()));
    restored
        .metadata
        .insert("_stored_at".into(), Value::Int(1_700_000_000_000));
    restored
        .metadata
        .insert("_prompt".into(), Value::String("restored prompt".into()));
    assert_eq!(t.restore_records(&cache, vec![restored]).unwrap(), 1);
    let hit = t
        .lookup_in_cache(&cache, lookup(1, Some("alice")))
        .unwrap()
        .expect("the restored entry, in its scope");
    assert_eq!(hit.prompt, "restored prompt");
    assert!(hit.age_seconds > 86_400, "its age is the original one");
    for (key, value) in [
        ("_scope", Value::String(String::new())),
        ("_scope", Value::Int(3)),
        ("_stored_at", Value::Int(-5)),
        ("_other", Value::String("x".into())),
    ] {
        assert!(
            t.restore_records(&cache, vec![with_reserved("bad", 2, key, value.clone())])
                .is_err(),
            "{key} = {value:?}"
        );
    }
}

#[test]
fn invalidation_stays_in_its_scope_and_the_rules_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = coll("answers");
    {
        let engine = open(dir.path());
        let t = tenant_with_docs(&engine, "acme", DIM);
        t.create_cache(&cache, &settings()).unwrap();
        t.store_in_cache(&cache, entry("a1", 1, Some("alice"), "a"))
            .unwrap();
        t.store_in_cache(&cache, entry("b1", 2, Some("bob"), "b"))
            .unwrap();
        t.store_in_cache(&cache, entry("s1", 3, None, "shared"))
            .unwrap();
        let n = t
            .invalidate_in_cache(&cache, &CacheTarget::Scope("alice".into()))
            .unwrap();
        assert_eq!(n, 1);
        assert!(
            t.lookup_in_cache(&cache, lookup(1, Some("alice")))
                .unwrap()
                .is_none()
        );
        assert!(
            t.lookup_in_cache(&cache, lookup(2, Some("bob")))
                .unwrap()
                .is_some()
        );
        assert!(
            t.lookup_in_cache(&cache, lookup(3, None))
                .unwrap()
                .is_some()
        );
    }
    let engine = open(dir.path());
    let t = engine.handle(&tenant("acme")).unwrap();
    assert_eq!(
        t.get_collection(&cache).unwrap().spec.kind,
        CollectionKind::SemanticCache
    );
    assert!(
        t.upsert(
            &cache,
            vec![with_reserved("p", 9, "_scope", Value::String("bob".into()))]
        )
        .is_err()
    );
    let mut max_age = lookup(2, Some("bob"));
    max_age.max_age = Some(Duration::from_secs(3600));
    assert!(t.lookup_in_cache(&cache, max_age).unwrap().is_some());
}
