//! A key of tenant A against tenant B's resources, on every RPC: always PERMISSION_DENIED, the
//! same whether or not B exists, and written to A's audit trail and the server log.

use bulkhead_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

/// Every tenant-scoped RPC aimed at `tenant`, with `secret`; returns (method, code) pairs.
async fn every_rpc(c: &mut Clients, secret: &str, tenant: &str) -> Vec<(&'static str, Code)> {
    let coll = format!("tenants/{tenant}/collections/docs");
    let parent = format!("tenants/{tenant}");
    let mut out = Vec::new();
    macro_rules! probe {
        ($name:literal, $call:expr) => {
            out.push(($name, code($call.await)));
        };
    }
    probe!(
        "Upsert",
        c.records.upsert(authed(
            secret,
            pb::UpsertRequest {
                collection: coll.clone(),
                records: vec![record("r0", 0, 8, "intruder")]
            }
        ))
    );
    probe!(
        "Get",
        c.records.get(authed(
            secret,
            pb::GetRequest {
                collection: coll.clone(),
                ids: vec!["r0".into()]
            }
        ))
    );
    probe!(
        "Delete",
        c.records.delete(authed(
            secret,
            pb::DeleteRequest {
                collection: coll.clone(),
                ids: vec!["r0".into()]
            }
        ))
    );
    probe!(
        "Query",
        c.records.query(authed(
            secret,
            pb::QueryRequest {
                collection: coll.clone(),
                vector: unit(0, 8),
                top_k: 1000,
                include_text: true,
                ..Default::default()
            }
        ))
    );
    probe!(
        "CreateCollection",
        c.collections.create_collection(authed(
            secret,
            pb::CreateCollectionRequest {
                parent: parent.clone(),
                collection_id: "x".into(),
                dimension: 8,
                metric: 1,
                ..Default::default()
            }
        ))
    );
    probe!(
        "GetCollection",
        c.collections.get_collection(authed(
            secret,
            pb::GetCollectionRequest { name: coll.clone() }
        ))
    );
    probe!(
        "ListCollections",
        c.collections.list_collections(authed(
            secret,
            pb::ListCollectionsRequest {
                parent: parent.clone(),
                ..Default::default()
            }
        ))
    );
    probe!(
        "DeleteCollection",
        c.collections.delete_collection(authed(
            secret,
            pb::DeleteCollectionRequest { name: coll.clone() }
        ))
    );
    probe!(
        "ListAuditEvents",
        c.audit.list_audit_events(authed(
            secret,
            pb::ListAuditEventsRequest {
                parent: parent.clone(),
                ..Default::default()
            }
        ))
    );
    probe!(
        "CreateApiKey",
        c.keys.create_api_key(authed(
            secret,
            pb::CreateApiKeyRequest {
                parent: parent.clone(),
                role: pb::Role::TenantAdmin as i32,
                ..Default::default()
            }
        ))
    );
    probe!(
        "ListApiKeys",
        c.keys.list_api_keys(authed(
            secret,
            pb::ListApiKeysRequest {
                parent: parent.clone()
            }
        ))
    );
    probe!(
        "RevokeApiKey",
        c.keys.revoke_api_key(authed(
            secret,
            pb::RevokeApiKeyRequest {
                name: format!("tenants/{tenant}/keys/k0")
            }
        ))
    );
    probe!(
        "CreateTenant",
        c.admin.create_tenant(authed(
            secret,
            pb::CreateTenantRequest {
                tenant_id: "new".into(),
                ..Default::default()
            }
        ))
    );
    probe!(
        "GetTenant",
        c.admin.get_tenant(authed(
            secret,
            pb::GetTenantRequest {
                name: parent.clone()
            }
        ))
    );
    probe!(
        "ListTenants",
        c.admin
            .list_tenants(authed(secret, pb::ListTenantsRequest::default()))
    );
    probe!(
        "DeleteTenant",
        c.admin.delete_tenant(authed(
            secret,
            pb::DeleteTenantRequest {
                name: parent.clone()
            }
        ))
    );
    out
}

#[tokio::test]
async fn a_key_of_one_tenant_is_denied_on_every_rpc_of_another() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "alpha", 5, 8).await;
    seeded_tenant(&mut c, "bravo", 5, 8).await;
    let (_, alpha_admin) = create_key(&mut c, "alpha", pb::Role::TenantAdmin, None).await;

    let against_existing = every_rpc(&mut c, &alpha_admin, "bravo").await;
    let against_missing = every_rpc(&mut c, &alpha_admin, "nobody-here").await;
    assert_eq!(against_existing.len(), 16);
    for ((method, code), (_, code_missing)) in against_existing.iter().zip(&against_missing) {
        assert_eq!(
            *code,
            Code::PermissionDenied,
            "{method} on an existing tenant"
        );
        assert_eq!(
            code_missing, code,
            "{method}: a missing tenant must look the same"
        );
    }

    // Bravo's data is untouched.
    let admin_view = c
        .records
        .get(authed(
            ADMIN,
            pb::GetRequest {
                collection: "tenants/bravo/collections/docs".into(),
                ids: vec!["r0".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(admin_view.records[0].text.as_deref(), Some("owner=bravo"));

    // Every denial is in alpha's own trail, none in bravo's.
    let alpha_events = audit_events(&mut c, &alpha_admin, "alpha").await;
    let denied: Vec<_> = alpha_events
        .iter()
        .filter(|e| e.outcome == "PERMISSION_DENIED")
        .collect();
    assert_eq!(denied.len(), 32, "{alpha_events:#?}");
    assert!(
        denied
            .iter()
            .any(|e| e.resource == "tenants/bravo/collections/docs")
    );
    let bravo_events = audit_events(&mut c, ADMIN, "bravo").await;
    assert!(
        bravo_events
            .iter()
            .all(|e| e.outcome != "PERMISSION_DENIED")
    );

    let log = server.log().join("\n");
    assert!(log.contains("permission denied"));
    assert!(!log.contains(&alpha_admin), "a secret reached the log");
}

#[tokio::test]
async fn identical_ids_and_vectors_in_two_tenants_stay_apart() {
    let server = Server::start();
    let mut c = server.clients().await;
    let a = seeded_tenant(&mut c, "alpha", 20, 8).await;
    let b = seeded_tenant(&mut c, "bravo", 20, 8).await;
    for (tenant, secret) in [("alpha", &a), ("bravo", &b)] {
        let hits = c
            .records
            .query(authed(
                secret,
                pb::QueryRequest {
                    collection: format!("tenants/{tenant}/collections/docs"),
                    vector: unit(3, 8),
                    top_k: 1000,
                    include_text: true,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert_eq!(hits.len(), 20);
        let owner = format!("owner={tenant}");
        assert!(
            hits.iter()
                .all(|h| h.text.as_deref() == Some(owner.as_str()))
        );
    }
}
