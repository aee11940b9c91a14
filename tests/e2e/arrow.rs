//! Bulk import and export with Arrow: a tenant exported with the CLI, deleted, and restored
//! under another id holds exactly the same records; bad Arrow input is refused with the column
//! named and changes nothing.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bulkhead_client::proto as pb;
use bulkhead_client::{
    ClientError, CollectionSpec, Metric, Record, Role, TenantClient, TenantOptions, Value,
};
use bulkhead_formats::{RecordRow, encode_stream};

use crate::harness::{ADMIN, Server, unit};

fn bulkhead(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .env("BULKHEAD_ENDPOINT", format!("http://{}", server.addr))
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env_remove("BULKHEAD_KEY")
        .env_remove("BULKHEAD_TENANT")
        .output()
        .unwrap()
}

fn records(n: usize, dim: usize, prefix: &str) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = Record::new(format!("{prefix}{i:04}"), unit(i as u64 + 7, dim));
            if i % 2 == 0 {
                r = r.with_text(format!("text of {i} — ünïcode"));
            }
            if i % 3 == 0 {
                r = r
                    .with_metadata("s", Value::String(format!("v{i}")))
                    .with_metadata("i", Value::Int(-(i as i64)))
                    .with_metadata("d", Value::Double(i as f64 / 7.0))
                    .with_metadata("b", Value::Bool(i % 2 == 0))
                    .with_metadata("l", Value::StringList(vec!["x".into(), format!("{i}")]));
            }
            if i % 5 == 0 {
                r = r.with_ttl(Duration::from_secs(3600 + i as u64));
            }
            r
        })
        .collect()
}

async fn all(tenant: &TenantClient, collection: &str, ids: &[String]) -> Vec<Record> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(tenant.get(collection, chunk).await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_tenant_survives_export_delete_and_restore_under_a_new_id() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    admin
        .create_tenant("src", &TenantOptions::default())
        .await
        .unwrap();
    let src = client.tenant("src", ADMIN).unwrap();
    let mut notes_spec =
        CollectionSpec::new(4, Metric::L2).with_default_ttl(Duration::from_secs(86_400));
    notes_spec.hnsw = Some(pb::HnswParams {
        m: 8,
        ef_construction: 50,
        ef_search: 40,
        flat_threshold: 100,
        // Not the defaults, so the restore must carry them.
        quantization: pb::Quantization::None as i32,
        build_threads: 1,
        segments: pb::SegmentPolicy::SegmentsOff as i32,
    });
    src.create_collection("docs", &CollectionSpec::new(8, Metric::Cosine))
        .await
        .unwrap();
    src.create_collection("notes", &notes_spec).await.unwrap();
    let docs = records(1300, 8, "d");
    let notes = records(250, 4, "n");
    src.upsert("docs", &docs).await.unwrap();
    src.upsert("notes", &notes).await.unwrap();
    let doc_ids: Vec<String> = docs.iter().map(|r| r.id.clone()).collect();
    let note_ids: Vec<String> = notes.iter().map(|r| r.id.clone()).collect();
    let before_docs = all(&src, "docs", &doc_ids).await;
    let before_notes = all(&src, "notes", &note_ids).await;
    let before_specs = src.collections().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    let exported = bulkhead(
        &server,
        &["export", "--tenant", "src", "--out", out.to_str().unwrap()],
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    admin.delete_tenant("src").await.unwrap();
    let restored = bulkhead(
        &server,
        &["import-tenant", out.to_str().unwrap(), "--tenant", "dst"],
    );
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    let dst = client.tenant("dst", ADMIN).unwrap();
    let after_specs = dst.collections().await.unwrap();
    assert_eq!(after_specs.len(), 2);
    for (b, a) in before_specs.iter().zip(&after_specs) {
        assert_eq!(b.name.replace("tenants/src/", "tenants/dst/"), a.name);
        assert_eq!(
            (b.dimension, b.metric, b.default_ttl_seconds, b.hnsw),
            (a.dimension, a.metric, a.default_ttl_seconds, a.hnsw)
        );
        assert_eq!(b.record_count, a.record_count);
    }
    for (collection, before, ids) in [
        ("docs", &before_docs, &doc_ids),
        ("notes", &before_notes, &note_ids),
    ] {
        let after = all(&dst, collection, ids).await;
        assert_eq!(after.len(), before.len(), "{collection}");
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.id, a.id);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&b.vector), bits(&a.vector), "{}: vector bits", b.id);
            assert_eq!(b.text, a.text, "{}", b.id);
            assert_eq!(b.metadata, a.metadata, "{}", b.id);
            match (b.expire_time, a.expire_time) {
                (None, None) => {}
                (Some(x), Some(y)) => {
                    let gap = y.duration_since(x).unwrap_or_else(|e| e.duration());
                    assert!(
                        gap <= Duration::from_secs(5),
                        "{}: TTL moved by {gap:?}",
                        b.id
                    );
                    assert!(y > SystemTime::now());
                }
                other => panic!("{}: expiry {other:?}", b.id),
            }
        }
    }

    // Restoring again never merges into the now existing tenant unless asked.
    let again = bulkhead(
        &server,
        &["import-tenant", out.to_str().unwrap(), "--tenant", "dst"],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--merge"));
    let merged = bulkhead(
        &server,
        &[
            "import-tenant",
            out.to_str().unwrap(),
            "--tenant",
            "dst",
            "--merge",
        ],
    );
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_eq!(
        dst.collection("docs").await.unwrap().record_count,
        1300,
        "same ids: replaced, not doubled"
    );
}

fn ipc(schema: Arc<Schema>, columns: Vec<ArrayRef>) -> Vec<u8> {
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    w.into_inner().unwrap()
}

fn row(i: usize, dim: usize) -> RecordRow {
    RecordRow {
        id: format!("r{i}"),
        vector: unit(i as u64, dim),
        text: None,
        metadata: Default::default(),
        ttl_seconds: None,
    }
}

fn stream(batches: &[Vec<RecordRow>], dim: usize) -> Vec<u8> {
    encode_stream(batches.iter().map(Vec::as_slice), dim).unwrap()
}

#[tokio::test]
async fn bad_arrow_input_is_refused_with_the_column_named_and_changes_nothing() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    admin
        .create_tenant("acme", &TenantOptions::default())
        .await
        .unwrap();
    let key = admin
        .create_key("acme", Role::Write, None, "import")
        .await
        .unwrap();
    let acme = client.tenant("acme", &key.secret).unwrap();
    acme.create_collection("docs", &CollectionSpec::new(4, Metric::Cosine))
        .await
        .unwrap();
    let refused = |r: Result<pb::ImportResponse, ClientError>| match r {
        Err(ClientError::InvalidArgument(m)) => m,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    };

    let wrong_dim = refused(
        acme.import_arrow("docs", &stream(&[(0..3).map(|i| row(i, 3)).collect()], 3))
            .await,
    );
    assert!(
        wrong_dim.contains("column vector: dimension 3, the collection's is 4"),
        "{wrong_dim}"
    );

    let list_f64 = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            false,
        ),
    ]));
    let vectors = ListArray::from_iter_primitive::<arrow_array::types::Float64Type, _, _>(vec![
        Some(vec![Some(1.0), Some(0.0), Some(0.0), Some(0.0)]),
    ]);
    let wrong_type = refused(
        acme.import_arrow(
            "docs",
            &ipc(
                list_f64,
                vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(vectors)],
            ),
        )
        .await,
    );
    assert!(
        wrong_type.contains("column vector: expected"),
        "{wrong_type}"
    );

    let no_id = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let missing = refused(
        acme.import_arrow(
            "docs",
            &ipc(no_id, vec![Arc::new(StringArray::from(vec![Some("t")]))]),
        )
        .await,
    );
    assert!(missing.contains("column id: missing"), "{missing}");

    let whole = stream(&[(0..50).map(|i| row(i, 4)).collect()], 4);
    let truncated = refused(acme.import_arrow("docs", &whole[..whole.len() / 2]).await);
    assert!(truncated.contains("batch 0"), "{truncated}");

    let garbage = refused(acme.import_arrow("docs", b"definitely not arrow").await);
    assert!(garbage.contains("not an Arrow IPC stream"), "{garbage}");

    assert_eq!(
        acme.collection("docs").await.unwrap().record_count,
        0,
        "nothing changed"
    );

    // A bad second batch: the first stays, nothing of the second is applied.
    let mut bad = (10..20).map(|i| row(i, 4)).collect::<Vec<_>>();
    bad[5].vector = vec![f32::NAN, 0.0, 0.0, 0.0];
    let partial = refused(
        acme.import_arrow(
            "docs",
            &stream(&[(0..10).map(|i| row(i, 4)).collect(), bad], 4),
        )
        .await,
    );
    assert!(partial.starts_with("batch 1:"), "{partial}");
    assert!(
        partial.contains("1 earlier batches (10 records) were imported"),
        "{partial}"
    );
    assert_eq!(acme.collection("docs").await.unwrap().record_count, 10);

    // And a good stream imports batch by batch.
    let ok = acme
        .import_arrow(
            "docs",
            &stream(
                &[
                    (0..30).map(|i| row(i, 4)).collect(),
                    (30..40).map(|i| row(i, 4)).collect(),
                ],
                4,
            ),
        )
        .await
        .unwrap();
    assert_eq!((ok.imported, ok.batch_records), (40, vec![30, 10]));
    assert_eq!(acme.collection("docs").await.unwrap().record_count, 40);

    // Another tenant's key can't import into or export this collection.
    admin
        .create_tenant("other", &TenantOptions::default())
        .await
        .unwrap();
    let other_key = admin
        .create_key("other", Role::Write, None, "x")
        .await
        .unwrap();
    let intruder = client.tenant("acme", &other_key.secret).unwrap();
    assert!(matches!(
        intruder.import_arrow("docs", &whole).await,
        Err(ClientError::PermissionDenied(_))
    ));
    assert!(matches!(
        intruder.export_arrow("docs", |_| Ok(())).await,
        Err(ClientError::PermissionDenied(_))
    ));
}
