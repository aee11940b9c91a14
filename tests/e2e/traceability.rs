//! "Which user saw which document, when" is answerable from the tenant's own trail: every audit
//! event carries the end user and session of the token, and the caller's trace id (a W3C
//! `traceparent`'s, else its `x-request-id`); in a collection created with `audit_reads`, a
//! read's event lists the ids it returned; and ListAuditEvents filters by user and session.

use bulkhead_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::end_users::{add_key, claims, sign, signing_key, with};
use crate::harness::*;

const DIM: usize = 8;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn with_header<T>(
    mut request: tonic::Request<T>,
    name: &'static str,
    value: &str,
) -> tonic::Request<T> {
    request.metadata_mut().insert(name, value.parse().unwrap());
    request
}

fn query(secret: &str, collection: &str, top_k: u32) -> tonic::Request<pb::QueryRequest> {
    authed(
        secret,
        pb::QueryRequest {
            collection: format!("tenants/acme/collections/{collection}"),
            vector: unit(0, DIM),
            top_k,
            ..Default::default()
        },
    )
}

async fn events(c: &mut Clients, user: &str, session: &str) -> Vec<pb::AuditEvent> {
    c.audit
        .list_audit_events(authed(
            ADMIN,
            pb::ListAuditEventsRequest {
                parent: "tenants/acme".into(),
                page_size: 1000,
                user: user.into(),
                session: session.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

#[tokio::test]
async fn the_trail_says_which_user_saw_which_record_under_which_trace() {
    let server = Server::start();
    let mut c = server.clients().await;
    let writer = seeded_tenant(&mut c, "acme", 5, DIM).await;
    c.collections
        .create_collection(authed(
            &writer,
            pb::CreateCollectionRequest {
                parent: "tenants/acme".into(),
                collection_id: "audited".into(),
                dimension: DIM as u32,
                metric: pb::Metric::Cosine as i32,
                audit_reads: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let records = (0..5)
        .map(|i| record(&format!("a{i}"), i, DIM, "audited"))
        .collect();
    let upsert = pb::UpsertRequest {
        collection: "tenants/acme/collections/audited".into(),
        records,
    };
    c.records.upsert(authed(&writer, upsert)).await.unwrap();
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let token = |sub: &str, extra: serde_json::Value| {
        let mut changes = json!({"sub": sub, "role": "WRITE", "collections": ["docs", "audited"]});
        for (k, v) in extra.as_object().unwrap() {
            changes[k] = v.clone();
        }
        sign(&key, &kid, &with(claims("acme"), changes))
    };
    let (alice, bob) = (token("alice", json!({})), token("bob", json!({})));

    // Alice reads the audited collection under a W3C trace, and the plain one under a request id.
    let traced = with_header(
        query(&alice, "audited", 3),
        "traceparent",
        &format!("00-{TRACE}-00f067aa0ba902b7-01"),
    );
    let hits: Vec<String> = c
        .records
        .query(traced)
        .await
        .unwrap()
        .into_inner()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(hits.len(), 3);
    let plain = with_header(query(&alice, "docs", 2), "x-request-id", "req-42");
    c.records.query(plain).await.unwrap();
    let get = authed(
        &bob,
        pb::GetRequest {
            collection: "tenants/acme/collections/audited".into(),
            ids: vec!["a4".into(), "missing".into()],
        },
    );
    c.records.get(get).await.unwrap();
    // A write by alice, and a refusal, carry her too.
    let write = pb::UpsertRequest {
        collection: "tenants/acme/collections/docs".into(),
        records: vec![record("by-alice", 9, DIM, "x")],
    };
    c.records
        .upsert(with_header(authed(&alice, write), "x-request-id", "req-43"))
        .await
        .unwrap();
    let private = authed(
        &alice,
        pb::GetRequest {
            collection: "tenants/acme/collections/private".into(),
            ids: vec!["r0".into()],
        },
    );
    assert_eq!(code(c.records.get(private).await), Code::PermissionDenied);

    let of_alice = events(&mut c, "alice", "").await;
    assert!(
        of_alice
            .iter()
            .all(|e| e.user == "alice" && e.principal == "user:alice"),
        "{of_alice:#?}"
    );
    let find = |method: &str, resource: &str| {
        of_alice
            .iter()
            .find(|e| e.method == method && e.resource.ends_with(resource))
            .unwrap_or_else(|| panic!("no {method} on {resource}: {of_alice:#?}"))
    };
    let read = find("RecordService/Query", "/audited");
    assert_eq!(read.trace_id, TRACE);
    assert_eq!(
        read.record_ids, hits,
        "the ids the query returned, in order"
    );
    let unaudited = find("RecordService/Query", "/docs");
    assert_eq!(unaudited.trace_id, "req-42");
    assert!(
        unaudited.record_ids.is_empty(),
        "docs doesn't record its reads"
    );
    assert_eq!(find("RecordService/Upsert", "/docs").trace_id, "req-43");
    assert_eq!(
        find("RecordService/Get", "/private").outcome,
        "PERMISSION_DENIED"
    );
    let of_bob = events(&mut c, "bob", "").await;
    assert_eq!(of_bob.len(), 1, "{of_bob:#?}");
    assert_eq!(
        of_bob[0].record_ids,
        vec!["a4"],
        "only what the get returned"
    );
    assert!(of_bob[0].trace_id.is_empty());

    // Sessions: the events of one session, and only those.
    let session_key = create_key(&mut c, "acme", pb::Role::Write, None).await.1;
    for s in ["s1", "s2"] {
        c.memory
            .create_session(authed(
                &session_key,
                pb::CreateSessionRequest {
                    parent: "tenants/acme".into(),
                    session_id: s.into(),
                    idle_ttl_seconds: 600,
                    absolute_ttl_seconds: 600,
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        let bound = token("alice", json!({"session": s}));
        let item = pb::MemoryItem {
            kind: pb::MemoryKind::Turn as i32,
            text: format!("in {s}"),
            ..Default::default()
        };
        c.memory
            .append(authed(
                &bound,
                pb::AppendRequest {
                    session: format!("tenants/acme/sessions/{s}"),
                    items: vec![item],
                },
            ))
            .await
            .unwrap();
    }
    let in_s1 = events(&mut c, "", "s1").await;
    assert_eq!(in_s1.len(), 1, "{in_s1:#?}");
    assert_eq!(
        (in_s1[0].method.as_str(), in_s1[0].user.as_str()),
        ("MemoryService/Append", "alice")
    );
    assert_eq!(events(&mut c, "alice", "s2").await.len(), 1);
    assert!(events(&mut c, "bob", "s1").await.is_empty());
    // A filter too long to be a user is refused.
    let long = c
        .audit
        .list_audit_events(authed(
            ADMIN,
            pb::ListAuditEventsRequest {
                parent: "tenants/acme".into(),
                user: "u".repeat(257),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(long), Code::InvalidArgument);
}
