//! Security trimming through the API: in a collection created with access control, an end
//! user's token reads only records whose `_readers` name its `sub`, one of its `groups`, or
//! `public`, whatever filter, ids, `ef` or `top_k` it sends; records without readers reach no
//! end user; end users write and export nothing there, and a service key reads everything.

use std::collections::BTreeSet;

use bulkhead_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::end_users::{add_key, claims, sign, signing_key, with};
use crate::harness::*;

const DIM: usize = 8;
const IDS: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];

fn keyword(v: &str) -> pb::Value {
    bulkhead_wire::value_to_pb(bulkhead_core::Value::String(v.into()))
}

fn readers(tags: &[&str]) -> pb::Value {
    let tags = tags.iter().map(|t| (*t).to_owned()).collect();
    bulkhead_wire::value_to_pb(bulkhead_core::Value::StringList(tags))
}

fn query(
    secret: &str,
    top_k: u32,
    ef: u32,
    filter: Option<pb::Filter>,
) -> tonic::Request<pb::QueryRequest> {
    authed(
        secret,
        pb::QueryRequest {
            collection: "tenants/acme/collections/docs".into(),
            vector: unit(7, DIM),
            top_k,
            ef,
            include_metadata: true,
            filter,
            ..Default::default()
        },
    )
}

fn readers_filter(tags: &[&str]) -> pb::Filter {
    pb::Filter {
        condition: Some(pb::Condition {
            field: "_readers".into(),
            op: Some(pb::condition::Op::In(pb::ValueList {
                values: tags.iter().map(|t| keyword(t)).collect(),
            })),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_end_user_reads_only_records_it_is_among_the_readers_of() {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let (_, service) = create_key(&mut c, "acme", pb::Role::Write, None).await;
    c.collections
        .create_collection(authed(
            &service,
            pb::CreateCollectionRequest {
                parent: "tenants/acme".into(),
                collection_id: "docs".into(),
                dimension: DIM as u32,
                metric: pb::Metric::Cosine as i32,
                access_control: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let tags: [&[&str]; 6] = [
        &["user:alice"],
        &["group:eng"],
        &["public"],
        &["user:bob"],
        &[],
        &["user:bob", "group:sales"],
    ];
    let records = IDS
        .iter()
        .zip(tags)
        .enumerate()
        .map(|(i, (id, tags))| {
            let mut r = record(id, i as u64, DIM, &format!("text of {id}"));
            if !tags.is_empty() {
                r.metadata.insert("_readers".into(), readers(tags));
            }
            r
        })
        .collect();
    c.records
        .upsert(authed(
            &service,
            pb::UpsertRequest {
                collection: "tenants/acme/collections/docs".into(),
                records,
            },
        ))
        .await
        .unwrap();
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let token = |sub: &str, groups: &[&str], role: &str| {
        sign(
            &key,
            &kid,
            &with(
                claims("acme"),
                json!({"sub": sub, "groups": groups, "role": role}),
            ),
        )
    };
    let users = [
        (
            "alice",
            token("alice", &["eng"], "READ"),
            vec!["r0", "r1", "r2"],
        ),
        (
            "bob",
            token("bob", &["sales"], "READ"),
            vec!["r2", "r3", "r5"],
        ),
        (
            "carol of eng",
            token("carol", &["eng"], "WRITE"),
            vec!["r1", "r2"],
        ),
        ("dave", token("dave", &[], "READ"), vec!["r2"]),
    ];
    let everyone = [
        "user:alice",
        "user:bob",
        "group:eng",
        "group:sales",
        "public",
    ];
    for (user, secret, expected) in &users {
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        for (case, request) in [
            ("everything", query(secret, 1000, 0, None)),
            ("the widest ef", query(secret, 1000, 4096, None)),
            (
                "a filter naming every reader",
                query(secret, 1000, 0, Some(readers_filter(&everyone))),
            ),
            ("top 1", query(secret, 1, 0, None)),
        ] {
            let hits = c.records.query(request).await.unwrap().into_inner().hits;
            let got: BTreeSet<String> = hits.iter().map(|h| h.id.clone()).collect();
            assert!(
                got.is_subset(&expected),
                "{user}, {case}: {got:?} not within {expected:?}"
            );
            if case != "top 1" {
                assert_eq!(got, expected, "{user}, {case}");
            }
            assert!(
                hits.iter().all(|h| !h.metadata.contains_key("_readers")),
                "{user}, {case}: readers shown"
            );
        }
        let got: BTreeSet<String> = c
            .records
            .get(authed(
                secret,
                pb::GetRequest {
                    collection: "tenants/acme/collections/docs".into(),
                    ids: IDS.iter().map(|s| (*s).to_owned()).collect(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .records
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, expected, "{user}: get of every id");
        let export = c
            .records
            .export(authed(
                secret,
                pb::ExportRequest {
                    collection: "tenants/acme/collections/docs".into(),
                    ..Default::default()
                },
            ))
            .await;
        let refused = match export {
            Err(status) => status,
            Ok(stream) => {
                let mut stream = stream.into_inner();
                tokio_stream::StreamExt::next(&mut stream)
                    .await
                    .expect("an answer")
                    .expect_err("an end user's export of an access-controlled collection")
            }
        };
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{user}: {refused:?}"
        );
    }
    // carol's token may write, but not where records carry readers: she can't widen her
    // access by writing a record (or readers) of her own.
    let write = c
        .records
        .upsert(authed(
            &users[2].1,
            pb::UpsertRequest {
                collection: "tenants/acme/collections/docs".into(),
                records: vec![record("r3", 3, DIM, "carol's now")],
            },
        ))
        .await;
    assert_eq!(code(write), Code::PermissionDenied);
    // The service key reads everything.
    let all = c
        .records
        .query(query(&service, 1000, 0, None))
        .await
        .unwrap();
    assert_eq!(all.into_inner().hits.len(), IDS.len());
}
