//! Credentials: missing, unknown, revoked and expired keys; READ keys can't write; tenant
//! admins manage only their own keys.

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
