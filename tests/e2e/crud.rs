//! The whole flow through the API: tenant, key, collection, upsert, get, query, delete, audit.

use bulkhead_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn full_crud_and_query_flow() {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let (key_name, secret) = create_key(&mut c, "acme", pb::Role::Write, None).await;
    assert!(key_name.starts_with("tenants/acme/keys/k"));
    create_collection(&mut c, &secret, "acme", "docs", 8).await;
    let coll = "tenants/acme/collections/docs".to_owned();

    let mut with_meta = record("a", 1, 8, "alpha");
    with_meta.metadata.insert(
        "lang".into(),
        pb::Value {
            kind: Some(pb::value::Kind::StringValue("en".into())),
        },
    );
    let up = c
        .records
        .upsert(authed(
            &secret,
            pb::UpsertRequest {
                collection: coll.clone(),
                records: vec![
                    with_meta,
                    record("b", 2, 8, "beta"),
                    record("c", 3, 8, "gamma"),
                ],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.upserted, 3);

    let got = c
        .records
        .get(authed(
            &secret,
            pb::GetRequest {
                collection: coll.clone(),
                ids: vec!["a".into(), "zzz".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].text.as_deref(), Some("alpha"));
    assert_eq!(got.records[0].vector, unit(1, 8));
    assert!(got.records[0].metadata.contains_key("lang"));

    let hits = c
        .records
        .query(authed(
            &secret,
            pb::QueryRequest {
                collection: coll.clone(),
                vector: unit(2, 8),
                top_k: 2,
                include_text: true,
                include_metadata: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, "b");
    assert!((hits[0].score - 1.0).abs() < 1e-4);
    assert_eq!(hits[0].text.as_deref(), Some("beta"));
    assert!(hits[0].vector.is_empty(), "vector not asked for");

    let col = c
        .collections
        .get_collection(authed(
            &secret,
            pb::GetCollectionRequest { name: coll.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(col.record_count, 3);
    assert_eq!(col.dimension, 8);
    let list = c
        .collections
        .list_collections(authed(
            &secret,
            pb::ListCollectionsRequest {
                parent: "tenants/acme".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.collections.len(), 1);

    let del = c
        .records
        .delete(authed(
            &secret,
            pb::DeleteRequest {
                collection: coll.clone(),
                ids: vec!["a".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(del.deleted, 1);

    let events = audit_events(&mut c, &secret, "acme").await;
    let methods: Vec<_> = events.iter().map(|e| e.method.as_str()).collect();
    for m in [
        "RecordService/Upsert",
        "RecordService/Get",
        "RecordService/Query",
        "RecordService/Delete",
    ] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }
    let upsert = events
        .iter()
        .find(|e| e.method == "RecordService/Upsert")
        .unwrap();
    assert_eq!(upsert.record_count, 3);
    assert_eq!(upsert.outcome, "OK");
    assert!(upsert.principal.starts_with('k'));

    c.collections
        .delete_collection(authed(
            &secret,
            pb::DeleteCollectionRequest { name: coll.clone() },
        ))
        .await
        .unwrap();
    let gone = c
        .collections
        .get_collection(authed(&secret, pb::GetCollectionRequest { name: coll }))
        .await;
    assert_eq!(code(gone), Code::NotFound);
}

#[tokio::test]
async fn invalid_inputs_are_invalid_argument() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "acme", 3, 8).await;
    let coll = "tenants/acme/collections/docs".to_owned();
    let upsert = |records: Vec<pb::Record>| {
        authed(
            &secret,
            pb::UpsertRequest {
                collection: coll.clone(),
                records,
            },
        )
    };
    let mut nan = record("x", 1, 8, "");
    nan.vector[0] = f32::NAN;
    let wrong_dim = record("y", 1, 4, "");
    let empty_id = record("", 1, 8, "");
    let long_id = record(&"i".repeat(257), 1, 8, "");
    for bad in [nan, wrong_dim, empty_id, long_id] {
        let r = c.records.clone().upsert(upsert(vec![bad])).await;
        assert_eq!(code(r), Code::InvalidArgument);
    }
    let too_many: Vec<_> = (0..1001)
        .map(|i| record(&format!("m{i}"), i, 8, ""))
        .collect();
    assert_eq!(
        code(c.records.upsert(upsert(too_many)).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(c.records.upsert(upsert(vec![])).await),
        Code::InvalidArgument
    );

    let query = |top_k: u32| {
        authed(
            &secret,
            pb::QueryRequest {
                collection: coll.clone(),
                vector: unit(1, 8),
                top_k,
                ..Default::default()
            },
        )
    };
    assert_eq!(code(c.records.query(query(0)).await), Code::InvalidArgument);
    assert_eq!(
        code(c.records.query(query(1001)).await),
        Code::InvalidArgument
    );
    assert!(c.records.query(query(1000)).await.is_ok());

    let bad_metric = c
        .collections
        .create_collection(authed(
            &secret,
            pb::CreateCollectionRequest {
                parent: "tenants/acme".into(),
                collection_id: "m".into(),
                dimension: 8,
                metric: 99,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(bad_metric), Code::InvalidArgument);
    // Nothing of the refused batches was stored.
    let col = c
        .collections
        .get_collection(authed(&secret, pb::GetCollectionRequest { name: coll }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(col.record_count, 3);
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("bulkhead.toml");
    std::fs::write(&config, "max-message-bytes = 4096\n").unwrap();
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "acme", 1, 8).await;
    let big = pb::UpsertRequest {
        collection: "tenants/acme/collections/docs".into(),
        records: vec![record("x", 1, 8, &"t".repeat(10_000))],
    };
    let r = c.records.upsert(authed(&secret, big)).await;
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
}
