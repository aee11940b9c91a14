//! Filtered queries over gRPC: each operator, combinations, and the errors for unknown fields,
//! type mismatches and malformed filters, all answered with the field named.

use bulkhead_client::proto as pb;
use bulkhead_client::{
    ClientError, CollectionSpec, Metric, Query, Record, TenantClient, TenantOptions, Value,
};
use pb::condition::Op;

use crate::harness::{ADMIN, Server, unit};

const DIM: usize = 8;

fn leaf(field: &str, op: Op) -> pb::Filter {
    pb::Filter {
        condition: Some(pb::Condition {
            field: field.into(),
            op: Some(op),
        }),
        ..Default::default()
    }
}

fn s(v: &str) -> pb::Value {
    bulkhead_wire::value_to_pb(Value::String(v.into()))
}

async fn matching(t: &TenantClient, filter: pb::Filter) -> Vec<u32> {
    let hits = t
        .query("docs", &Query::new(unit(3, DIM), 1000).with_filter(filter))
        .await
        .unwrap();
    let mut ids: Vec<u32> = hits.iter().map(|h| h.id[1..].parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn expect(pred: impl Fn(u32) -> bool) -> Vec<u32> {
    (0..60).filter(|i| pred(*i)).collect()
}

#[tokio::test]
async fn every_operator_combinations_and_errors() {
    let server = Server::start();
    let client = server.sdk().await;
    client
        .admin(ADMIN)
        .unwrap()
        .create_tenant("acme", &TenantOptions::default())
        .await
        .unwrap();
    let t = client.tenant("acme", ADMIN).unwrap();
    let spec = CollectionSpec::new(DIM as u32, Metric::Cosine)
        .with_indexed_field("lang", pb::FieldType::Keyword)
        .with_indexed_field("year", pb::FieldType::Integer)
        .with_indexed_field("score", pb::FieldType::Float)
        .with_indexed_field("public", pb::FieldType::Bool)
        .with_indexed_field("ts", pb::FieldType::Integer);
    let created = t.create_collection("docs", &spec).await.unwrap();
    assert_eq!(created.indexed_fields.len(), 5);
    let records: Vec<Record> = (0..60u32)
        .map(|i| {
            let mut r = Record::new(format!("r{i}"), unit(u64::from(i), DIM))
                .with_metadata(
                    "lang",
                    Value::String(["en", "de", "fr"][i as usize % 3].into()),
                )
                .with_metadata("year", Value::Int(2000 + i64::from(i % 10)))
                .with_metadata("score", Value::Double(f64::from(i) / 10.0))
                .with_metadata("ts", Value::Int(1_700_000_000_000 + i64::from(i) * 1000));
            if i % 4 == 0 {
                r = r.with_metadata("public", Value::Bool(true));
            }
            r
        })
        .collect();
    t.upsert("docs", &records).await.unwrap();

    assert_eq!(
        matching(&t, leaf("lang", Op::Eq(s("de")))).await,
        expect(|i| i % 3 == 1)
    );
    let langs = pb::ValueList {
        values: vec![s("de"), s("fr")],
    };
    assert_eq!(
        matching(&t, leaf("lang", Op::In(langs))).await,
        expect(|i| i % 3 != 0)
    );
    let years = pb::IntRange {
        gte: Some(2003),
        lt: Some(2005),
        ..Default::default()
    };
    assert_eq!(
        matching(&t, leaf("year", Op::IntRange(years))).await,
        expect(|i| (3..5).contains(&(i % 10)))
    );
    let scores = pb::DoubleRange {
        gt: Some(5.0),
        ..Default::default()
    };
    assert_eq!(
        matching(&t, leaf("score", Op::DoubleRange(scores))).await,
        expect(|i| i > 50)
    );
    let at = |secs: i64| prost_types::Timestamp {
        seconds: 1_700_000_000 + secs,
        nanos: 0,
    };
    let times = pb::TimeRange {
        gte: Some(at(10)),
        lte: Some(at(12)),
        ..Default::default()
    };
    assert_eq!(
        matching(&t, leaf("ts", Op::TimeRange(times))).await,
        expect(|i| (10..=12).contains(&i))
    );
    assert_eq!(
        matching(&t, leaf("public", Op::Exists(true))).await,
        expect(|i| i % 4 == 0)
    );
    assert_eq!(
        matching(
            &t,
            leaf(
                "public",
                Op::Eq(bulkhead_wire::value_to_pb(Value::Bool(true)))
            )
        )
        .await,
        expect(|i| i % 4 == 0)
    );

    // must / should / must_not together: (en or fr) and year >= 2005 and not public.
    let combined = pb::Filter {
        must: vec![leaf(
            "year",
            Op::IntRange(pb::IntRange {
                gte: Some(2005),
                ..Default::default()
            }),
        )],
        should: vec![leaf("lang", Op::Eq(s("en"))), leaf("lang", Op::Eq(s("fr")))],
        must_not: vec![leaf("public", Op::Exists(true))],
        condition: None,
    };
    assert_eq!(
        matching(&t, combined).await,
        expect(|i| i % 3 != 1 && i % 10 >= 5 && i % 4 != 0)
    );

    // Errors name the field or the position in the filter.
    let invalid = |r: Result<Vec<bulkhead_client::Hit>, ClientError>| match r {
        Err(ClientError::InvalidArgument(m)) => m,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    };
    let query = |f: pb::Filter| Query::new(unit(3, DIM), 5).with_filter(f);
    let m = invalid(
        t.query("docs", &query(leaf("year", Op::Eq(s("2003")))))
            .await,
    );
    assert!(m.contains("\"year\" is integer"), "{m}");
    let m = invalid(
        t.query("docs", &query(leaf("title", Op::Exists(true))))
            .await,
    );
    assert!(m.contains("\"title\" is not indexed"), "{m}");
    let m = invalid(
        t.query(
            "docs",
            &query(leaf("lang", Op::IntRange(pb::IntRange::default()))),
        )
        .await,
    );
    assert!(m.contains("\"lang\" is keyword"), "{m}");
    let no_op = pb::Filter {
        must: vec![pb::Filter {
            condition: Some(pb::Condition {
                field: "lang".into(),
                op: None,
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let m = invalid(t.query("docs", &query(no_op)).await);
    assert!(
        m.starts_with("filter.must[0].condition: no operator set"),
        "{m}"
    );
    let wrong_type =
        Record::new("bad", unit(1, DIM)).with_metadata("year", Value::String("x".into()));
    let m = match t.upsert("docs", &[wrong_type]).await {
        Err(ClientError::InvalidArgument(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("metadata.year: expected integer"), "{m}");
    let bad_spec =
        CollectionSpec::new(4, Metric::Cosine).with_indexed_field("x", pb::FieldType::Unspecified);
    assert!(matches!(
        t.create_collection("other", &bad_spec).await,
        Err(ClientError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn a_filter_never_reaches_another_tenant() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    let spec = CollectionSpec::new(DIM as u32, Metric::Cosine)
        .with_indexed_field("owner", pb::FieldType::Keyword);
    for name in ["acme", "globex"] {
        admin
            .create_tenant(name, &TenantOptions::default())
            .await
            .unwrap();
        let t = client.tenant(name, ADMIN).unwrap();
        t.create_collection("docs", &spec).await.unwrap();
        let records: Vec<Record> = (0..20u32)
            .map(|i| {
                Record::new(format!("r{i}"), unit(u64::from(i), DIM))
                    .with_text(name)
                    .with_metadata("owner", Value::String(name.into()))
            })
            .collect();
        t.upsert("docs", &records).await.unwrap();
    }
    let acme = client.tenant("acme", ADMIN).unwrap();
    // Asking acme's collection for globex's records finds none, and nothing of globex.
    let q = Query::new(unit(3, DIM), 100)
        .with_text()
        .with_filter(leaf("owner", Op::Eq(s("globex"))));
    assert!(acme.query("docs", &q).await.unwrap().is_empty());
    let everything = pb::Filter {
        must_not: vec![leaf("owner", Op::Eq(s("nobody")))],
        ..Default::default()
    };
    let hits = acme
        .query(
            "docs",
            &Query::new(unit(3, DIM), 100)
                .with_text()
                .with_filter(everything),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 20);
    assert!(hits.iter().all(|h| h.text.as_deref() == Some("acme")));
}
