//! The semantic cache over gRPC: hits, misses under the threshold, expiry, scopes that never
//! see each other, and tenants that never see each other even for identical embeddings.

use std::time::Duration;

use bulkhead_client::{
    CacheScope, CacheStore, ClientError, Metric, TenantClient, TenantOptions, Value,
};

use crate::harness::{ADMIN, Server, unit};

const DIM: usize = 16;

fn answer(seed: u64, response: &str, scope: CacheScope) -> CacheStore {
    CacheStore {
        vector: unit(seed, DIM),
        prompt: format!("prompt {seed}"),
        response: response.into(),
        metadata: [("model".to_owned(), Value::String("m1".into()))].into(),
        ttl: None,
        scope,
        fingerprint: None,
    }
}

/// A vector close to `unit(seed)` (cosine ≈ 0.99) but not identical.
fn near(seed: u64) -> Vec<f32> {
    let mut v = unit(seed, DIM);
    v[0] += 0.05;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

async fn cache_of(server: &Server, tenant: &str) -> TenantClient {
    let client = server.sdk().await;
    client
        .admin(ADMIN)
        .unwrap()
        .create_tenant(tenant, &TenantOptions::default())
        .await
        .unwrap();
    let t = client.tenant(tenant, ADMIN).unwrap();
    t.create_cache("answers", DIM as u32, Metric::Cosine, None)
        .await
        .unwrap();
    t
}

#[tokio::test]
async fn hits_misses_expiry_and_scopes() {
    let server = Server::start();
    let t = cache_of(&server, "acme").await;
    let id = t
        .cache_store("answers", answer(1, "unscoped answer", CacheScope::Shared))
        .await
        .unwrap();

    let hit = t
        .cache_lookup("answers", near(1), 0.9, None, CacheScope::Shared)
        .await
        .unwrap()
        .expect("a hit");
    assert_eq!(
        (hit.id.as_str(), hit.response.as_str(), hit.prompt.as_str()),
        (id.as_str(), "unscoped answer", "prompt 1")
    );
    assert!(hit.similarity > 0.9 && hit.similarity < 1.0);
    assert_eq!(
        hit.metadata.len(),
        1,
        "only the caller's metadata comes back"
    );
    assert!(
        t.cache_lookup("answers", near(1), 0.9999, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none(),
        "under the threshold"
    );
    assert!(
        t.cache_lookup("answers", unit(2, DIM), 0.9, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none(),
        "another prompt"
    );

    // A service key says whose entries it means: a scope or the shared ones, not neither.
    for (what, refused) in [
        (
            "a lookup naming no scope",
            t.cache_lookup("answers", near(1), 0.9, None, CacheScope::Own)
                .await
                .map(|_| ()),
        ),
        (
            "a store naming no scope",
            t.cache_store("answers", answer(1, "x", CacheScope::Own))
                .await
                .map(|_| ()),
        ),
    ] {
        assert!(
            matches!(&refused, Err(ClientError::InvalidArgument(m)) if m.contains("shared")),
            "{what}: {refused:?}"
        );
    }

    // Scopes: alice's entry is invisible to bob and to the shared lookups, and the reverse.
    t.cache_store(
        "answers",
        answer(5, "alice's answer", CacheScope::named("alice")),
    )
    .await
    .unwrap();
    let alice = t
        .cache_lookup("answers", near(5), 0.9, None, CacheScope::named("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.response, "alice's answer");
    assert!(
        t.cache_lookup("answers", near(5), 0.5, None, CacheScope::named("bob"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.cache_lookup("answers", near(5), 0.9, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.cache_lookup("answers", near(1), 0.9, None, CacheScope::named("alice"))
            .await
            .unwrap()
            .is_none(),
        "shared entries stay out of scoped lookups"
    );

    // Expiry, and age limits.
    let mut short = answer(7, "short-lived", CacheScope::Shared);
    short.ttl = Some(Duration::from_secs(1));
    t.cache_store("answers", short).await.unwrap();
    assert!(
        t.cache_lookup("answers", near(7), 0.9, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        t.cache_lookup("answers", near(7), 0.9, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        t.cache_lookup(
            "answers",
            near(1),
            0.9,
            Some(Duration::from_secs(1)),
            CacheScope::Shared
        )
        .await
        .unwrap()
        .is_none(),
        "older than max_age"
    );
    assert!(
        t.cache_lookup(
            "answers",
            near(1),
            0.9,
            Some(Duration::from_secs(60)),
            CacheScope::Shared
        )
        .await
        .unwrap()
        .is_some()
    );

    // Invalidation by scope and by id.
    assert_eq!(
        t.cache_invalidate("answers", &[], Some("alice"))
            .await
            .unwrap(),
        1
    );
    assert!(
        t.cache_lookup("answers", near(5), 0.5, None, CacheScope::named("alice"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        t.cache_invalidate("answers", &[id.as_str()], None)
            .await
            .unwrap(),
        1
    );
    assert!(
        t.cache_lookup("answers", near(1), 0.5, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none()
    );

    // Bad input.
    let mut reserved = answer(9, "x", CacheScope::Shared);
    reserved
        .metadata
        .insert("_scope".into(), Value::String("alice".into()));
    assert!(matches!(
        t.cache_store("answers", reserved).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        t.cache_invalidate("answers", &[], None).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        t.create_cache("l2", 4, Metric::L2, None).await,
        Err(ClientError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn a_near_identical_prompt_of_another_tenant_misses() {
    let server = Server::start();
    let acme = cache_of(&server, "acme").await;
    let globex = cache_of(&server, "globex").await;
    acme.cache_store(
        "answers",
        answer(3, "acme's secret answer", CacheScope::Shared),
    )
    .await
    .unwrap();
    acme.cache_store(
        "answers",
        answer(3, "acme's alice answer", CacheScope::named("alice")),
    )
    .await
    .unwrap();
    // The same cache id, the identical embedding, the lowest threshold: still nothing.
    assert!(
        globex
            .cache_lookup("answers", unit(3, DIM), -1.0, None, CacheScope::Shared)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        globex
            .cache_lookup(
                "answers",
                unit(3, DIM),
                -1.0,
                None,
                CacheScope::named("alice")
            )
            .await
            .unwrap()
            .is_none()
    );
    // And globex's key can't name acme's cache.
    let client = server.sdk().await;
    let key = client
        .admin(ADMIN)
        .unwrap()
        .create_key("globex", bulkhead_client::Role::Read, None, "x")
        .await
        .unwrap();
    let intruder = client.tenant("acme", &key.secret).unwrap();
    assert!(matches!(
        intruder
            .cache_lookup("answers", unit(3, DIM), -1.0, None, CacheScope::Shared)
            .await,
        Err(ClientError::PermissionDenied(_))
    ));
}

/// A cache's reserved fields are written only by Store: a plain Upsert or a WRITE key's Import
/// into the cache can't plant an answer in another user's scope (or fake its age), while a
/// tenant admin's import (a restore) brings them back.
#[tokio::test]
async fn only_store_and_a_tenant_admins_restore_write_a_caches_reserved_fields() {
    let server = Server::start();
    let admin_view = cache_of(&server, "acme").await;
    let client = server.sdk().await;
    let key = client
        .admin(ADMIN)
        .unwrap()
        .create_key("acme", bulkhead_client::Role::Write, None, "app")
        .await
        .unwrap();
    let writer = client.tenant("acme", &key.secret).unwrap();
    writer
        .cache_store(
            "answers",
            answer(1, "alice's answer", CacheScope::named("alice")),
        )
        .await
        .unwrap();

    let planted = bulkhead_client::Record::new("planted", unit(7, DIM))
        .with_text("a planted answer")
        .with_metadata("_scope", Value::String("alice".into()));
    match writer
        .upsert("answers", std::slice::from_ref(&planted))
        .await
    {
        Err(ClientError::InvalidArgument(m)) => assert!(m.contains("_scope"), "{m}"),
        other => panic!("a plain upsert set _scope: {other:?}"),
    }
    let rows = [bulkhead_formats::RecordRow {
        id: "planted".into(),
        vector: unit(7, DIM),
        text: Some("a planted answer".into()),
        metadata: [("_scope".to_owned(), Value::String("alice".into()))].into(),
        ttl_seconds: None,
    }];
    let ipc = bulkhead_formats::encode_stream([&rows[..]], DIM).unwrap();
    match writer.import_arrow("answers", &ipc).await {
        Err(ClientError::InvalidArgument(m)) => assert!(m.contains("_scope"), "{m}"),
        other => panic!("a WRITE key's import set _scope: {other:?}"),
    }
    assert!(
        writer
            .cache_lookup(
                "answers",
                unit(7, DIM),
                0.9,
                None,
                CacheScope::named("alice")
            )
            .await
            .unwrap()
            .is_none(),
        "nothing was planted in alice's scope"
    );

    // The admin's import is a restore: the entry lands in its scope.
    admin_view.import_arrow("answers", &ipc).await.unwrap();
    let restored = admin_view
        .cache_lookup(
            "answers",
            unit(7, DIM),
            0.9,
            None,
            CacheScope::named("alice"),
        )
        .await
        .unwrap()
        .expect("the restored entry answers in its scope");
    assert_eq!(restored.response, "a planted answer");

    // Cache operations on a collection of records are refused.
    admin_view
        .create_collection(
            "docs",
            &bulkhead_client::CollectionSpec::new(DIM as u32, Metric::Cosine),
        )
        .await
        .unwrap();
    let refused = admin_view
        .cache_store("docs", answer(2, "x", CacheScope::Shared))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("FailedPrecondition")
            && refused.to_string().contains("not a semantic cache"),
        "a Store into a collection of records: {refused}"
    );
}
