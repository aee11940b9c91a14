//! The semantic cache's rules hold on every write path: only the cache's own store writes its
//! reserved fields, so no upsert or import can plant an answer in another user's scope; a
//! restore brings them back checked; scopes never see each other's entries; and the rules
//! survive a restart.

use std::time::Duration;

use bulkhead_core::{Metadata, Metric, Value};
use bulkhead_engine::{
    CacheEntry, CacheLookup, CachePolicy, CacheScope, CacheSettings, CacheTarget, CollectionKind,
    EndUserCacheScope, EngineError, Reader,
};

use crate::common::*;

const DIM: usize = 8;

fn settings() -> CacheSettings {
    CacheSettings {
        dimension: DIM,
        metric: Metric::Cosine,
        default_ttl: None,
        policy: CachePolicy::default(),
    }
}

/// A scope by name.
fn named(scope: &str) -> CacheScope {
    CacheScope::Named(scope.to_owned())
}

fn entry(id: &str, seed: u64, scope: CacheScope, response: &str) -> CacheEntry {
    CacheEntry {
        id: rid(id),
        prompt: format!("prompt {id}"),
        response: response.to_owned(),
        vector: vector(seed, DIM),
        scope,
        fingerprint: None,
        metadata: Metadata::from([("model".to_owned(), Value::String("m1".into()))]),
        ttl: None,
    }
}

fn lookup(seed: u64, scope: CacheScope) -> CacheLookup {
    CacheLookup {
        vector: vector(seed, DIM),
        scope,
        fingerprint: None,
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
    t.store_in_cache(&cache, entry("e1", 1, named("alice"), "alice's answer"))
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
        t.lookup_in_cache(&cache, lookup(2, named("alice")))
            .unwrap()
            .is_none()
    );
    // The cache's own entry is still alice's, and only alice's.
    let hit = t
        .lookup_in_cache(&cache, lookup(1, named("alice")))
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
        t.lookup_in_cache(&cache, lookup(1, named("bob")))
            .unwrap()
            .is_none()
    );
    assert!(
        t.lookup_in_cache(&cache, lookup(1, CacheScope::Shared))
            .unwrap()
            .is_none()
    );

    // A store can't smuggle them in its own metadata either.
    let mut sneaky = entry("e2", 3, named("bob"), "x");
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
        t.store_in_cache(&coll("docs"), entry("e3", 5, CacheScope::Shared, "x")),
        Err(EngineError::NotACache(_))
    ));
    assert!(matches!(
        t.lookup_in_cache(&coll("docs"), lookup(4, named("alice"))),
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
        .lookup_in_cache(&cache, lookup(1, named("alice")))
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
        t.store_in_cache(&cache, entry("a1", 1, named("alice"), "a"))
            .unwrap();
        t.store_in_cache(&cache, entry("b1", 2, named("bob"), "b"))
            .unwrap();
        t.store_in_cache(&cache, entry("s1", 3, CacheScope::Shared, "shared"))
            .unwrap();
        let n = t
            .invalidate_in_cache(&cache, &CacheTarget::Scope("alice".into()))
            .unwrap();
        assert_eq!(n, 1);
        assert!(
            t.lookup_in_cache(&cache, lookup(1, named("alice")))
                .unwrap()
                .is_none()
        );
        assert!(
            t.lookup_in_cache(&cache, lookup(2, named("bob")))
                .unwrap()
                .is_some()
        );
        assert!(
            t.lookup_in_cache(&cache, lookup(3, CacheScope::Shared))
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
    let mut max_age = lookup(2, named("bob"));
    max_age.max_age = Some(Duration::from_secs(3600));
    assert!(t.lookup_in_cache(&cache, max_age).unwrap().is_some());
}

#[test]
fn an_end_users_scope_comes_from_its_token_never_from_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let (per_user, per_session) = (coll("answers"), coll("session-answers"));
    t.create_cache(&per_user, &settings()).unwrap();
    let session_settings = CacheSettings {
        policy: CachePolicy {
            end_user_scope: EndUserCacheScope::Session,
            similarity_floor: None,
        },
        ..settings()
    };
    t.create_cache(&per_session, &session_settings).unwrap();
    let alice = t.reading_as(Reader::new("alice", &[]));
    let bob = t.reading_as(Reader::new("bob", &[]));
    // The service's shared entry, and alice's own answer, on the same prompt.
    t.store_in_cache(
        &per_user,
        entry("shared", 1, CacheScope::Shared, "shared answer"),
    )
    .unwrap();
    alice
        .store_in_cache(&per_user, entry("a1", 1, CacheScope::Own, "alice's answer"))
        .unwrap();
    // Alice can't write into bob's scope or the shared one by naming it.
    for scope in ["user:bob", "bob", "anything"] {
        let refused = alice.store_in_cache(&per_user, entry("a2", 1, named(scope), "planted"));
        assert!(
            matches!(refused, Err(EngineError::NotPermitted(_))),
            "{scope}: {refused:?}"
        );
    }
    let hit = |h: &bulkhead_engine::TenantHandle, scope: CacheScope, floor: f32| {
        let mut l = lookup(1, scope);
        l.min_similarity = floor;
        h.lookup_in_cache(&per_user, l)
            .map(|hit| hit.map(|h| h.response))
    };
    // At any threshold, bob never gets alice's answer (nor the shared one); alice gets hers.
    for floor in [-1.0, 0.0, 0.5, 0.99] {
        assert_eq!(hit(&bob, CacheScope::Own, floor).unwrap(), None, "{floor}");
        assert_eq!(
            hit(&alice, CacheScope::Own, floor).unwrap().as_deref(),
            Some("alice's answer")
        );
        assert!(matches!(
            hit(&bob, named("user:alice"), floor),
            Err(EngineError::NotPermitted(_))
        ));
        // Nor the shared entries by asking for them.
        assert!(matches!(
            hit(&bob, CacheScope::Shared, floor),
            Err(EngineError::NotPermitted(_))
        ));
    }
    assert!(matches!(
        alice.store_in_cache(&per_user, entry("a3", 1, CacheScope::Shared, "planted")),
        Err(EngineError::NotPermitted(_))
    ));
    // Naming its own scope is the same as leaving it out.
    assert_eq!(
        hit(&alice, named("user:alice"), 0.0).unwrap().as_deref(),
        Some("alice's answer")
    );
    // The service reads alice's scope by name and the shared entries by asking for them; in a
    // cache that scopes its end users, naming neither reaches nothing.
    assert_eq!(
        hit(&t, named("user:alice"), 0.0).unwrap().as_deref(),
        Some("alice's answer")
    );
    assert_eq!(
        hit(&t, CacheScope::Shared, 0.0).unwrap().as_deref(),
        Some("shared answer")
    );
    assert!(matches!(
        hit(&t, CacheScope::Own, 0.0),
        Err(EngineError::InvalidArgument(m)) if m.contains("shared")
    ));
    assert!(matches!(
        t.store_in_cache(&per_user, entry("s2", 1, CacheScope::Own, "unscoped")),
        Err(EngineError::InvalidArgument(_))
    ));
    assert!(matches!(
        alice.invalidate_in_cache(&per_user, &CacheTarget::Scope("user:alice".into())),
        Err(EngineError::NotPermitted(_))
    ));

    // Kept per session: a token without a session reaches nothing; sessions stay apart.
    let spec = bulkhead_engine::SessionSpec {
        idle_ttl: Duration::from_secs(600),
        absolute_ttl: Duration::from_secs(600),
        dimension: 0,
        metric: Metric::Cosine,
    };
    for s in ["s1", "s2"] {
        t.create_session(&bulkhead_core::SessionId::new(s).unwrap(), &spec)
            .unwrap();
    }
    let in_s1 = t.reading_as(Reader::new("alice", &[]).in_session("s1"));
    let in_s2 = t.reading_as(Reader::new("alice", &[]).in_session("s2"));
    in_s1
        .store_in_cache(&per_session, entry("s1", 2, CacheScope::Own, "s1's answer"))
        .unwrap();
    let mut l = lookup(2, CacheScope::Own);
    l.min_similarity = -1.0;
    assert!(
        in_s2
            .lookup_in_cache(&per_session, l.clone())
            .unwrap()
            .is_none()
    );
    assert_eq!(
        in_s1
            .lookup_in_cache(&per_session, l.clone())
            .unwrap()
            .unwrap()
            .response,
        "s1's answer"
    );
    assert!(matches!(
        alice.lookup_in_cache(&per_session, l.clone()),
        Err(EngineError::NotPermitted(_))
    ));
    // Once its session ends, its answers are out of reach.
    t.session(&bulkhead_core::SessionId::new("s1").unwrap())
        .unwrap()
        .end()
        .unwrap();
    assert!(matches!(
        in_s1.lookup_in_cache(&per_session, l),
        Err(EngineError::SessionNotFound(_))
    ));
}

#[test]
fn a_different_fingerprint_misses_and_the_floor_holds_whatever_the_request_asks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let cache = coll("answers");
    let floored = CacheSettings {
        policy: CachePolicy {
            end_user_scope: EndUserCacheScope::User,
            similarity_floor: Some(0.999),
        },
        ..settings()
    };
    t.create_cache(&cache, &floored).unwrap();
    let mut stored = entry("e1", 1, named("alice"), "gpt-x answer");
    stored.fingerprint = Some("gpt-x/system-v1".into());
    t.store_in_cache(&cache, stored).unwrap();
    let ask = |fingerprint: Option<&str>, seed: u64| {
        let mut l = lookup(seed, named("alice"));
        l.fingerprint = fingerprint.map(str::to_owned);
        l.min_similarity = -1.0;
        t.lookup_in_cache(&cache, l).unwrap().map(|h| h.response)
    };
    assert_eq!(
        ask(Some("gpt-x/system-v1"), 1).as_deref(),
        Some("gpt-x answer")
    );
    assert_eq!(ask(Some("gpt-y/system-v1"), 1), None, "another model");
    assert_eq!(
        ask(Some("gpt-x/system-v2"), 1),
        None,
        "another system prompt"
    );
    assert_eq!(ask(None, 1), None, "no fingerprint");
    // A lookup asking for -1 still gets nothing below the cache's floor.
    assert_eq!(ask(Some("gpt-x/system-v1"), 2), None);
    let bad = CacheSettings {
        policy: CachePolicy {
            end_user_scope: EndUserCacheScope::User,
            similarity_floor: Some(f32::NAN),
        },
        ..settings()
    };
    assert!(t.create_cache(&coll("nan"), &bad).is_err());
}

#[test]
fn a_cache_made_before_fingerprints_serves_lookups_without_one_and_refuses_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    // The shape of a cache created before fingerprints: two reserved indexed fields.
    let mut spec = bulkhead_engine::CollectionSpec::new(DIM, Metric::Cosine);
    spec.kind = CollectionKind::SemanticCache;
    spec.indexed_fields = [
        ("_scope".to_owned(), bulkhead_engine::FieldType::Keyword),
        ("_stored_at".to_owned(), bulkhead_engine::FieldType::Integer),
    ]
    .into();
    let old = coll("old-answers");
    t.create_collection(&old, &spec).unwrap();
    t.store_in_cache(&old, entry("e1", 1, CacheScope::Own, "old answer"))
        .unwrap();
    let found = t.lookup_in_cache(&old, lookup(1, CacheScope::Own)).unwrap();
    assert_eq!(found.map(|h| h.response).as_deref(), Some("old answer"));
    // All its entries are tenant-wide: asking for the shared ones by name finds the same.
    let shared = t
        .lookup_in_cache(&old, lookup(1, CacheScope::Shared))
        .unwrap();
    assert_eq!(shared.map(|h| h.response).as_deref(), Some("old answer"));
    let mut with_fingerprint = lookup(1, CacheScope::Own);
    with_fingerprint.fingerprint = Some("gpt-x/v1".into());
    assert!(matches!(
        t.lookup_in_cache(&old, with_fingerprint),
        Err(EngineError::InvalidArgument(_))
    ));
    let mut stored = entry("e2", 2, CacheScope::Own, "new answer");
    stored.fingerprint = Some("gpt-x/v1".into());
    assert!(matches!(
        t.store_in_cache(&old, stored),
        Err(EngineError::InvalidArgument(_))
    ));
}
