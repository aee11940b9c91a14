//! Rate limits and quotas: RESOURCE_EXHAUSTED for the tenant that exceeds them, nobody else.

use std::time::Duration;

use bulkhead_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn rate_limit_refuses_the_flooding_tenant_only() {
    let server = Server::start();
    let mut c = server.clients().await;
    let noisy = seeded_tenant(&mut c, "noisy", 2, 8).await;
    let quiet = seeded_tenant(&mut c, "quiet", 2, 8).await;
    c.admin
        .update_tenant(authed(
            ADMIN,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: "tenants/noisy".into(),
                    rate_limit: Some(pb::RateLimit {
                        // Slow enough that a refusal, held until a request could pass
                        // (at most a second), still leaves the bucket empty.
                        requests_per_second: 0.2,
                        burst: 5,
                        write_bytes_per_second: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["rate_limit".into()],
                }),
            },
        ))
        .await
        .unwrap();
    let query = |tenant: &str, secret: &str| {
        authed(
            secret,
            pb::QueryRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                vector: unit(1, 8),
                top_k: 1,
                ..Default::default()
            },
        )
    };
    let mut refused = None;
    for _ in 0..20 {
        if let Err(s) = c.records.query(query("noisy", &noisy)).await {
            refused = Some(s);
            break;
        }
    }
    let refused = refused.expect("the flood was refused");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("rate limit"),
        "{}",
        refused.message()
    );
    for _ in 0..20 {
        c.records.query(query("quiet", &quiet)).await.unwrap();
    }
    let over_limit_on = |trail: &[pb::AuditEvent], resource: &str| {
        trail.iter().any(|e| {
            e.method == "RecordService/Query"
                && e.outcome == "RESOURCE_EXHAUSTED"
                && e.resource == resource
                && e.record_count >= 1
        })
    };
    // The operator can read the trail of a tenant past its limit: the tenant's limit is its
    // own callers' budget, and its own key is still refused.
    let trail = audit_events(&mut c, ADMIN, "noisy").await;
    assert!(
        over_limit_on(&trail, "tenants/noisy/collections/docs"),
        "the refusals are in the flooding tenant's trail, with their count: {trail:?}"
    );
    let still = c.records.query(query("noisy", &noisy)).await.unwrap_err();
    assert_eq!(still.code(), Code::ResourceExhausted, "{still:?}");

    // Refused attempts on another tenant count against the caller's own limit too, so a key
    // can't flood the server (or its own audit trail) with calls that are denied anyway. A
    // second after the last, the refusals' next event is due.
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(code(c.records.query(query("quiet", &noisy)).await));
    }
    assert!(
        codes
            .iter()
            .all(|c| *c == Code::ResourceExhausted || *c == Code::PermissionDenied)
    );
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let trail = audit_events(&mut c, ADMIN, "noisy").await;
    assert!(
        over_limit_on(&trail, "tenants/quiet/collections/docs"),
        "in the caller's own trail: {trail:?}"
    );
    assert!(
        audit_events(&mut c, ADMIN, "quiet")
            .await
            .iter()
            .all(|e| e.outcome == "OK"),
        "nothing of the noisy tenant's in the quiet one's trail"
    );
}

#[tokio::test]
async fn quotas_refuse_writes_past_them() {
    let server = Server::start();
    let mut c = server.clients().await;
    c.admin
        .create_tenant(authed(
            ADMIN,
            pb::CreateTenantRequest {
                tenant_id: "small".into(),
                quota: Some(pb::Quota {
                    max_collections: 1,
                    max_records: 10,
                    max_stored_bytes: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let (_, key) = create_key(&mut c, "small", pb::Role::Write, None).await;
    create_collection(&mut c, &key, "small", "docs", 8).await;
    let second = c
        .collections
        .create_collection(authed(
            &key,
            pb::CreateCollectionRequest {
                parent: "tenants/small".into(),
                collection_id: "more".into(),
                dimension: 8,
                metric: 1,
                ..Default::default()
            },
        ))
        .await;
    let second = second.unwrap_err();
    assert_eq!(second.code(), Code::ResourceExhausted);
    assert!(second.message().contains("quota"));

    let upsert = |range: std::ops::Range<u64>| {
        authed(
            &key,
            pb::UpsertRequest {
                collection: "tenants/small/collections/docs".into(),
                records: range.map(|i| record(&format!("r{i}"), i, 8, "")).collect(),
            },
        )
    };
    c.records.upsert(upsert(0..8)).await.unwrap();
    assert_eq!(
        code(c.records.upsert(upsert(8..12)).await),
        Code::ResourceExhausted
    );
    // Replacing existing records adds nothing and stays allowed.
    c.records.upsert(upsert(0..8)).await.unwrap();
    c.records.upsert(upsert(8..10)).await.unwrap();
}
