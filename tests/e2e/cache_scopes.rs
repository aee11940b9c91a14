//! The semantic cache takes an end user's scope from its token: an answer stored for user A
//! (or session A) is never returned to user B (or session B) at any similarity threshold, and a
//! request can't name another scope. Answers are keyed on a model/prompt fingerprint too, so a
//! different fingerprint misses; and an operator's similarity floor holds whatever a lookup asks.

use std::time::Duration;

use bulkhead_client::{
    CacheLookup, CachePolicy, CacheScope, CacheStore, ClientError, EndUserScope, Metric,
    SessionOptions, TenantClient,
};
use serde_json::json;

use crate::end_users::{add_key, claims, sign, signing_key, with};
use crate::harness::*;

const DIM: usize = 8;
const THRESHOLDS: [f32; 5] = [-1.0, 0.0, 0.5, 0.9, 0.999];

fn answer(seed: u64, response: &str) -> CacheStore {
    CacheStore {
        vector: unit(seed, DIM),
        prompt: format!("prompt {seed}"),
        response: response.into(),
        ..CacheStore::default()
    }
}

async fn hit(
    t: &TenantClient,
    cache: &str,
    lookup: CacheLookup,
) -> Result<Option<String>, ClientError> {
    Ok(t.cache_find(cache, lookup).await?.map(|e| e.response))
}

#[tokio::test]
async fn an_answer_stored_for_one_user_or_session_never_reaches_another() {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let sdk = server.sdk().await;
    let service = sdk.tenant("acme", ADMIN).unwrap();
    service
        .create_cache("answers", DIM as u32, Metric::Cosine, None)
        .await
        .unwrap();
    let per_session = CachePolicy {
        end_user_scope: EndUserScope::Session,
        similarity_floor: None,
    };
    service
        .create_cache_with_policy(
            "chat-answers",
            DIM as u32,
            Metric::Cosine,
            None,
            per_session,
        )
        .await
        .unwrap();
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let token = |sub: &str, session: Option<&str>| {
        let mut changes =
            json!({"sub": sub, "role": "WRITE", "collections": ["answers", "chat-answers"]});
        if let Some(s) = session {
            changes["session"] = json!(s);
        }
        sdk.tenant("acme", &sign(&key, &kid, &with(claims("acme"), changes)))
            .unwrap()
    };
    let (alice, bob) = (token("alice", None), token("bob", None));

    // Alice's private answer, and the service's tenant-wide one, on the same prompt.
    alice
        .cache_store("answers", answer(0, "alice-private"))
        .await
        .unwrap();
    let tenant_wide = CacheStore {
        scope: CacheScope::Shared,
        ..answer(0, "tenant-wide")
    };
    service.cache_store("answers", tenant_wide).await.unwrap();
    for threshold in THRESHOLDS {
        let lookup = CacheLookup::new(unit(0, DIM), threshold);
        assert_eq!(
            hit(&bob, "answers", lookup.clone()).await.unwrap(),
            None,
            "bob at {threshold}"
        );
        for asked in [
            lookup.clone().in_scope("user:alice"),
            lookup.clone().shared(),
        ] {
            let refused = hit(&bob, "answers", asked).await;
            assert!(
                matches!(refused, Err(ClientError::PermissionDenied(_))),
                "{refused:?}"
            );
        }
        assert_eq!(
            hit(&alice, "answers", lookup.clone())
                .await
                .unwrap()
                .as_deref(),
            Some("alice-private")
        );
    }
    // Naming its own scope is fine; planting into another's is not.
    let own = CacheLookup::new(unit(0, DIM), 0.5).in_scope("user:alice");
    assert_eq!(
        hit(&alice, "answers", own).await.unwrap().as_deref(),
        Some("alice-private")
    );
    let planted = CacheStore {
        scope: CacheScope::named("user:bob"),
        ..answer(0, "planted by alice")
    };
    assert!(matches!(
        alice.cache_store("answers", planted).await,
        Err(ClientError::PermissionDenied(_))
    ));
    let planted_for_all = CacheStore {
        scope: CacheScope::Shared,
        ..answer(0, "planted by alice")
    };
    assert!(matches!(
        alice.cache_store("answers", planted_for_all).await,
        Err(ClientError::PermissionDenied(_))
    ));
    assert_eq!(
        hit(&bob, "answers", CacheLookup::new(unit(0, DIM), -1.0))
            .await
            .unwrap(),
        None
    );
    // The service sees each scope by name, and the tenant-wide entries when it asks for them;
    // naming neither is refused, so a backend that forgot its user's scope fails loudly.
    let by_name = CacheLookup::new(unit(0, DIM), 0.5).in_scope("user:alice");
    assert_eq!(
        hit(&service, "answers", by_name).await.unwrap().as_deref(),
        Some("alice-private")
    );
    let shared = CacheLookup::new(unit(0, DIM), 0.5).shared();
    assert_eq!(
        hit(&service, "answers", shared).await.unwrap().as_deref(),
        Some("tenant-wide")
    );
    let unnamed = hit(&service, "answers", CacheLookup::new(unit(0, DIM), 0.5)).await;
    assert!(
        matches!(&unnamed, Err(ClientError::InvalidArgument(m)) if m.contains("shared")),
        "{unnamed:?}"
    );

    // Kept per session: session s2 never sees s1's answer, even for the same user.
    for s in ["s1", "s2"] {
        let options = SessionOptions::new(0, Duration::from_secs(600), Duration::from_secs(600));
        service.create_session(s, &options).await.unwrap();
    }
    let (in_s1, in_s2) = (token("alice", Some("s1")), token("alice", Some("s2")));
    in_s1
        .cache_store("chat-answers", answer(1, "s1-private"))
        .await
        .unwrap();
    for threshold in THRESHOLDS {
        let lookup = CacheLookup::new(unit(1, DIM), threshold);
        assert_eq!(
            hit(&in_s2, "chat-answers", lookup.clone()).await.unwrap(),
            None,
            "s2 at {threshold}"
        );
        assert_eq!(
            hit(&in_s1, "chat-answers", lookup)
                .await
                .unwrap()
                .as_deref(),
            Some("s1-private")
        );
    }
    let unbound = hit(&alice, "chat-answers", CacheLookup::new(unit(1, DIM), -1.0)).await;
    assert!(
        matches!(unbound, Err(ClientError::PermissionDenied(_))),
        "{unbound:?}"
    );
    // A session's answers go with it.
    service.session("s1").unwrap().end().await.unwrap();
    let ended = hit(&in_s1, "chat-answers", CacheLookup::new(unit(1, DIM), -1.0)).await;
    assert!(matches!(ended, Err(ClientError::NotFound(_))), "{ended:?}");
    // End users never invalidate.
    let dropped = alice
        .cache_invalidate("answers", &[], Some("user:alice"))
        .await;
    assert!(
        matches!(dropped, Err(ClientError::PermissionDenied(_))),
        "{dropped:?}"
    );
}

#[tokio::test]
async fn a_different_fingerprint_misses_and_the_floor_holds() {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let service = server.sdk().await.tenant("acme", ADMIN).unwrap();
    service
        .create_cache("answers", DIM as u32, Metric::Cosine, None)
        .await
        .unwrap();
    let stored = CacheStore {
        fingerprint: Some("gpt-x/support-v1".into()),
        scope: CacheScope::Shared,
        ..answer(0, "from gpt-x")
    };
    service.cache_store("answers", stored).await.unwrap();
    let ask = |fingerprint: Option<&str>| {
        let mut lookup = CacheLookup::new(unit(0, DIM), -1.0).shared();
        lookup.fingerprint = fingerprint.map(str::to_owned);
        lookup
    };
    assert_eq!(
        hit(&service, "answers", ask(Some("gpt-x/support-v1")))
            .await
            .unwrap()
            .as_deref(),
        Some("from gpt-x")
    );
    for other in [Some("gpt-y/support-v1"), Some("gpt-x/support-v2"), None] {
        assert_eq!(
            hit(&service, "answers", ask(other)).await.unwrap(),
            None,
            "{other:?}"
        );
    }

    let floored = CachePolicy {
        end_user_scope: EndUserScope::User,
        similarity_floor: Some(0.99),
    };
    service
        .create_cache_with_policy("strict", DIM as u32, Metric::Cosine, None, floored)
        .await
        .unwrap();
    let info = service.collection("strict").await.unwrap();
    assert_eq!(info.cache_similarity_floor, Some(0.99));
    let exact = CacheStore {
        scope: CacheScope::Shared,
        ..answer(0, "exact only")
    };
    service.cache_store("strict", exact).await.unwrap();
    // Another prompt, asked for at -1: the floor still refuses it; the same prompt hits.
    assert_eq!(
        hit(
            &service,
            "strict",
            CacheLookup::new(unit(1, DIM), -1.0).shared()
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        hit(
            &service,
            "strict",
            CacheLookup::new(unit(0, DIM), -1.0).shared()
        )
        .await
        .unwrap()
        .as_deref(),
        Some("exact only")
    );
}
