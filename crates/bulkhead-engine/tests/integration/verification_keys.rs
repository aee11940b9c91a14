//! A tenant's end-user token verification keys are its own: found only under its id, gone
//! with it, inherited by no later tenant of the same id, bounded in number, and kept (with
//! their revocation) across restarts.

use bulkhead_core::KeyId;
use bulkhead_engine::{
    EngineError, MAX_VERIFICATION_KEYS_PER_TENANT, TenantSettings, VerificationKeyRecord,
};

use crate::common::*;

fn key(id: &str, byte: u8) -> VerificationKeyRecord {
    VerificationKeyRecord {
        // The handle's tenant is used, whatever the record names.
        tenant: tenant("someone-else"),
        key_id: KeyId::new(id).unwrap(),
        ed25519_public_key: [byte; 32],
        description: String::new(),
        max_token_lifetime_secs: 600,
        created_at_ms: 0,
        revoked: false,
        incarnation: 0,
    }
}

#[test]
fn verification_keys_belong_to_one_tenant_incarnation_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = KeyId::new("k1").unwrap();
    {
        let engine = open(dir.path());
        for t in ["a", "b"] {
            engine
                .create_tenant(&tenant(t), &TenantSettings::default())
                .unwrap();
        }
        let a = engine.handle(&tenant("a")).unwrap();
        let stored = a.add_verification_key(key("k1", 1)).unwrap();
        assert_eq!(stored.tenant, tenant("a"));
        assert!(matches!(
            a.add_verification_key(key("k1", 2)),
            Err(EngineError::KeyExists(_))
        ));
        // Found under its own tenant only, though b may hold a key of the same id.
        assert!(engine.verification_key(&tenant("b"), &k1).is_none());
        let b = engine.handle(&tenant("b")).unwrap();
        b.add_verification_key(key("k1", 3)).unwrap();
        assert_eq!(
            engine
                .verification_key(&tenant("a"), &k1)
                .unwrap()
                .ed25519_public_key,
            [1; 32]
        );
        assert_eq!(
            engine
                .verification_key(&tenant("b"), &k1)
                .unwrap()
                .ed25519_public_key,
            [3; 32]
        );
        a.add_verification_key(key("k2", 4)).unwrap();
        a.revoke_verification_key(&KeyId::new("k2").unwrap())
            .unwrap();
        assert!(matches!(
            a.revoke_verification_key(&KeyId::new("k9").unwrap()),
            Err(EngineError::KeyNotFound(_))
        ));
    }
    let engine = open(dir.path());
    let a = engine.handle(&tenant("a")).unwrap();
    let kept: Vec<_> = a
        .list_verification_keys()
        .unwrap()
        .into_iter()
        .map(|k| (k.key_id.to_string(), k.revoked))
        .collect();
    assert_eq!(kept, [("k1".into(), false), ("k2".into(), true)]);

    engine.delete_tenant(&tenant("a")).unwrap();
    assert!(engine.verification_key(&tenant("a"), &k1).is_none());
    engine
        .create_tenant(&tenant("a"), &TenantSettings::default())
        .unwrap();
    assert!(engine.verification_key(&tenant("a"), &k1).is_none());
    let again = engine.handle(&tenant("a")).unwrap();
    assert!(again.list_verification_keys().unwrap().is_empty());
    assert!(engine.verification_key(&tenant("b"), &k1).is_some());
    drop((a, again, engine));
    let engine = open(dir.path());
    assert!(
        engine.verification_key(&tenant("a"), &k1).is_none(),
        "the deleted tenant's keys stay deleted after a restart"
    );
}

#[test]
fn a_tenant_holds_a_bounded_number_of_verification_keys() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .create_tenant(&tenant("a"), &TenantSettings::default())
        .unwrap();
    let a = engine.handle(&tenant("a")).unwrap();
    for i in 0..MAX_VERIFICATION_KEYS_PER_TENANT {
        a.add_verification_key(key(&format!("k{i}"), 1)).unwrap();
    }
    assert!(matches!(
        a.add_verification_key(key("one-more", 1)),
        Err(EngineError::QuotaExceeded(_))
    ));
    let mut too_long = key("long", 1);
    too_long.max_token_lifetime_secs = bulkhead_engine::MAX_TOKEN_LIFETIME_SECS + 1;
    assert!(matches!(
        a.add_verification_key(too_long),
        Err(EngineError::InvalidArgument(_))
    ));
}

#[test]
fn the_operators_bound_on_a_tenants_token_lifetimes_caps_every_key_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let bounded = TenantSettings {
        max_token_lifetime: Some(std::time::Duration::from_secs(900)),
        ..TenantSettings::default()
    };
    engine.create_tenant(&tenant("a"), &bounded).unwrap();
    engine
        .create_tenant(&tenant("b"), &TenantSettings::default())
        .unwrap();
    let a = engine.handle(&tenant("a")).unwrap();
    let b = engine.handle(&tenant("b")).unwrap();
    let lifetime = |t: &str, k: &str| {
        engine
            .verification_key(&tenant(t), &KeyId::new(k).unwrap())
            .unwrap()
            .max_token_lifetime_secs
    };
    // A key may not ask for more than its tenant allows; exactly the bound is fine.
    let mut over = key("over", 1);
    over.max_token_lifetime_secs = 901;
    let refused = a.add_verification_key(over);
    assert!(
        matches!(&refused, Err(EngineError::InvalidArgument(m)) if m.contains("900")),
        "{refused:?}"
    );
    let mut exact = key("exact", 1);
    exact.max_token_lifetime_secs = 900;
    a.add_verification_key(exact).unwrap();
    // Without a lifetime of its own a key gets an hour, or its tenant's bound if lower.
    let mut defaulted = key("defaulted", 1);
    defaulted.max_token_lifetime_secs = 0;
    assert_eq!(
        a.add_verification_key(defaulted.clone())
            .unwrap()
            .max_token_lifetime_secs,
        900
    );
    assert_eq!(
        b.add_verification_key(defaulted)
            .unwrap()
            .max_token_lifetime_secs,
        3600
    );
    // Another tenant's bound is its own: b's keys reach the ceiling.
    let mut long = key("long", 1);
    long.max_token_lifetime_secs = bulkhead_engine::MAX_TOKEN_LIFETIME_SECS;
    b.add_verification_key(long).unwrap();
    assert_eq!(
        lifetime("b", "long"),
        bulkhead_engine::MAX_TOKEN_LIFETIME_SECS
    );
    // Lowering the bound later shortens what the keys registered before verify, at once.
    engine
        .update_tenant(
            &tenant("a"),
            &TenantSettings {
                max_token_lifetime: Some(std::time::Duration::from_secs(120)),
                ..TenantSettings::default()
            },
        )
        .unwrap();
    assert_eq!(lifetime("a", "exact"), 120);
    assert_eq!(lifetime("a", "defaulted"), 120);
    assert_eq!(lifetime("b", "defaulted"), 3600, "b is untouched");
    // The stored key keeps its own bound: lifting the tenant's restores it.
    engine
        .update_tenant(&tenant("a"), &TenantSettings::default())
        .unwrap();
    assert_eq!(lifetime("a", "exact"), 900);
}
