//! Malformed resource names are INVALID_ARGUMENT, never a default tenant.

use bulkhead_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn malformed_resource_names_are_invalid_argument() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 2, 8).await;
    let bad = [
        "",
        "acme",
        "tenants/",
        "tenants//collections/docs",
        "tenants/Acme/collections/docs",
        "tenants/acme/collections/docs/",
        "tenants/acme/collections/docs/extra",
        "tenants/../collections/docs",
        "tenants/acme%2f..%2fother/collections/docs",
        "tenants/аcme/collections/docs",
        "tenants/acme /collections/docs",
        "tenants/acme\u{0}/collections/docs",
        "tenants/acme/collections/DOCS",
    ];
    for name in bad {
        for secret in [ADMIN] {
            let r = c
                .records
                .query(authed(
                    secret,
                    pb::QueryRequest {
                        collection: name.into(),
                        vector: unit(1, 8),
                        top_k: 5,
                        ..Default::default()
                    },
                ))
                .await;
            assert_eq!(code(r), Code::InvalidArgument, "{name:?}");
        }
    }
    let long = format!("tenants/{}/collections/docs", "a".repeat(64));
    let r = c
        .records
        .get(authed(
            ADMIN,
            pb::GetRequest {
                collection: long,
                ids: vec!["x".into()],
            },
        ))
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let bad_tenant = c
        .admin
        .create_tenant(authed(
            ADMIN,
            pb::CreateTenantRequest {
                tenant_id: "Acme".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(bad_tenant), Code::InvalidArgument);
}
