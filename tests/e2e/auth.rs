//! Credentials: missing, unknown, revoked and expired keys; READ keys can't write; tenant
//! admins manage only their own keys; signed tenant tokens are held to the same rules.

use std::time::Duration;

use bulkhead_proto::v1 as pb;
use tonic::{Code, Request};

use crate::harness::*;

fn get(secret: &str) -> Request<pb::GetRequest> {
    authed(
        secret,
        pb::GetRequest {
            collection: "tenants/acme/collections/docs".into(),
            ids: vec!["r0".into()],
        },
    )
}

#[tokio::test]
async fn missing_unknown_revoked_and_expired_credentials_are_unauthenticated() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 2, 8).await;

    let bare = Request::new(pb::GetRequest {
        collection: "tenants/acme/collections/docs".into(),
        ids: vec!["r0".into()],
    });
    assert_eq!(code(c.records.get(bare).await), Code::Unauthenticated);
    assert_eq!(
        code(c.records.get(get("bh_not-a-real-key")).await),
        Code::Unauthenticated
    );
    let mut basic = get("x");
    basic
        .metadata_mut()
        .insert("authorization", "Basic Zm9vOmJhcg==".parse().unwrap());
    assert_eq!(code(c.records.get(basic).await), Code::Unauthenticated);

    let (name, secret) = create_key(&mut c, "acme", pb::Role::Read, None).await;
    assert!(c.records.get(get(&secret)).await.is_ok());
    c.keys
        .revoke_api_key(authed(ADMIN, pb::RevokeApiKeyRequest { name }))
        .await
        .unwrap();
    let revoked = c.records.get(get(&secret)).await.unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated);
    assert!(revoked.message().contains("revoked"));

    let (_, short) = create_key(&mut c, "acme", pb::Role::Read, Some(1)).await;
    assert!(c.records.get(get(&short)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = c.records.get(get(&short)).await.unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert!(expired.message().contains("expired"));
}

#[tokio::test]
async fn read_keys_cannot_write_and_write_keys_cannot_manage_keys() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 2, 8).await;
    let (_, read) = create_key(&mut c, "acme", pb::Role::Read, None).await;
    let (_, write) = create_key(&mut c, "acme", pb::Role::Write, None).await;

    let upsert = c
        .records
        .upsert(authed(
            &read,
            pb::UpsertRequest {
                collection: "tenants/acme/collections/docs".into(),
                records: vec![record("new", 9, 8, "x")],
            },
        ))
        .await;
    assert_eq!(code(upsert), Code::PermissionDenied);
    let delete = c
        .records
        .delete(authed(
            &read,
            pb::DeleteRequest {
                collection: "tenants/acme/collections/docs".into(),
                ids: vec!["r0".into()],
            },
        ))
        .await;
    assert_eq!(code(delete), Code::PermissionDenied);
    let create = c
        .collections
        .create_collection(authed(
            &read,
            pb::CreateCollectionRequest {
                parent: "tenants/acme".into(),
                collection_id: "x".into(),
                dimension: 4,
                metric: 1,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(create), Code::PermissionDenied);
    assert!(c.records.get(get(&read)).await.is_ok());

    let mint = c
        .keys
        .create_api_key(authed(
            &write,
            pb::CreateApiKeyRequest {
                parent: "tenants/acme".into(),
                role: pb::Role::TenantAdmin as i32,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(mint), Code::PermissionDenied, "no role escalation");

    let (_, tadmin) = create_key(&mut c, "acme", pb::Role::TenantAdmin, None).await;
    let minted = c
        .keys
        .create_api_key(authed(
            &tadmin,
            pb::CreateApiKeyRequest {
                parent: "tenants/acme".into(),
                role: pb::Role::Read as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(c.records.get(get(&minted.secret)).await.is_ok());
    let listed = c
        .keys
        .list_api_keys(authed(
            &tadmin,
            pb::ListApiKeysRequest {
                parent: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 5);
    assert!(
        listed
            .iter()
            .all(|k| k.name.starts_with("tenants/acme/keys/"))
    );
}

#[tokio::test]
async fn keys_of_a_deleted_tenant_stop_working_even_if_it_is_recreated() {
    let server = Server::start();
    let mut c = server.clients().await;
    let old = seeded_tenant(&mut c, "acme", 2, 8).await;
    c.admin
        .delete_tenant(authed(
            ADMIN,
            pb::DeleteTenantRequest {
                name: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(code(c.records.get(get(&old)).await), Code::Unauthenticated);
    seeded_tenant(&mut c, "acme", 1, 8).await;
    assert_eq!(code(c.records.get(get(&old)).await), Code::Unauthenticated);
}

/// A server that accepts HS256 tenant tokens, and a way to mint them.
const JWT_SECRET: &str = "e2e-jwt-secret-0123456789abcdef-0123";

fn token(tenant: &str, role: &str, iat: u64, exp: u64) -> String {
    let claims =
        serde_json::json!({"tenant": tenant, "role": role, "iat": iat, "exp": exp, "sub": "alice"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn signed_tenant_tokens_are_bound_to_their_tenant_role_and_incarnation() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("bulkhead.toml");
    std::fs::write(&config, format!("jwt-hs256-secret = \"{JWT_SECRET}\"\n")).unwrap();
    let server = Server::start_in(
        &temp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut c = server.clients().await;
    let acme_key = seeded_tenant(&mut c, "acme", 3, 8).await;
    seeded_tenant(&mut c, "globex", 3, 8).await;
    let query = |tenant: &str, secret: &str| {
        authed(
            secret,
            pb::QueryRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                vector: unit(1, 8),
                top_k: 3,
                include_text: true,
                ..Default::default()
            },
        )
    };
    let now = now_s();
    let reader = token("acme", "READ", now, now + 60);
    let hits = c
        .records
        .query(query("acme", &reader))
        .await
        .unwrap()
        .into_inner()
        .hits;
    // All three of acme's records, and nothing else: an empty answer would pass `all`.
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(hits.iter().all(|h| h.text.as_deref() == Some("owner=acme")));
    assert_eq!(
        code(c.records.query(query("globex", &reader)).await),
        Code::PermissionDenied
    );
    let upsert = authed(
        &reader,
        pb::UpsertRequest {
            collection: "tenants/acme/collections/docs".into(),
            records: vec![record("x", 9, 8, "owner=acme")],
        },
    );
    assert_eq!(code(c.records.upsert(upsert).await), Code::PermissionDenied);
    assert_eq!(
        code(
            c.records
                .query(query("acme", &token("acme", "READ", now - 120, now - 60)))
                .await
        ),
        Code::Unauthenticated
    );
    let forged = format!("{}x", &reader[..reader.len() - 1]);
    assert_eq!(
        code(c.records.query(query("acme", &forged)).await),
        Code::Unauthenticated
    );

    // The denial is in acme's trail under the token's subject.
    let events = audit_events(&mut c, &acme_key, "acme").await;
    assert!(
        events
            .iter()
            .any(|e| e.principal == "jwt:alice" && e.outcome == "PERMISSION_DENIED"),
        "{events:?}"
    );

    // A tenant deleted and re-created doesn't honour tokens minted for its predecessor.
    c.admin
        .delete_tenant(authed(
            ADMIN,
            pb::DeleteTenantRequest {
                name: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    seeded_tenant(&mut c, "acme", 3, 8).await;
    assert_eq!(
        code(c.records.query(query("acme", &reader)).await),
        Code::Unauthenticated
    );
    let fresh = token("acme", "READ", now_s(), now_s() + 60);
    c.records.query(query("acme", &fresh)).await.unwrap();
}
