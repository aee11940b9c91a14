//! Backup and restore as an operator runs them: `bulkhead export` then `bulkhead
//! import-tenant`. A restored tenant must serve exactly as before — semantic cache lookups,
//! filtered queries, quotas, rate limits and audit retention — and a restore must never leave
//! a half-made tenant behind, whatever credentials the shell happens to export.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bulkhead_client::proto as pb;
use bulkhead_client::{
    CacheScope, CacheStore, Client, ClientError, CollectionSpec, Metric, Query, Record, Role,
    TenantClient, TenantOptions, Value,
};

use crate::harness::{ADMIN, Server, bulkhead_bin, unit};

/// `bulkhead args...` with the admin token and, when given, a tenant key exported too.
fn bulkhead(server: &Server, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bulkhead_bin());
    cmd.args(args)
        .env("BULKHEAD_ENDPOINT", format!("http://{}", server.addr))
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env_remove("BULKHEAD_TENANT");
    match key {
        Some(k) => cmd.env("BULKHEAD_KEY", k),
        None => cmd.env_remove("BULKHEAD_KEY"),
    };
    cmd.output().expect("running bulkhead")
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `bulkhead export` of tenant `src` into `dir/backup`, which it returns.
fn export_src(server: &Server, dir: &Path) -> PathBuf {
    let out = dir.join("backup");
    succeeded(&bulkhead(
        server,
        None,
        &["export", "--tenant", "src", "--out", out.to_str().unwrap()],
    ));
    out
}

fn limits() -> TenantOptions {
    TenantOptions {
        quota: Some(pb::Quota {
            max_collections: 3,
            max_records: 1000,
            max_stored_bytes: 1 << 30,
        }),
        rate_limit: Some(pb::RateLimit {
            requests_per_second: 2.0,
            burst: 30,
            write_bytes_per_second: 50_000_000,
        }),
        audit_retention: Some(Duration::from_secs(7 * 86_400)),
        max_token_lifetime: Some(Duration::from_secs(900)),
        share: Some(pb::ServerShare {
            requests_in_flight: 12,
            open_streams: 3,
            engine_threads: 1,
            write_bytes_in_flight: 96 << 20,
        }),
    }
}

fn english_since_2020() -> pb::Filter {
    let condition = |c: pb::condition::Op, field: &str| pb::Filter {
        condition: Some(pb::Condition {
            field: field.into(),
            op: Some(c),
        }),
        ..Default::default()
    };
    pb::Filter {
        must: vec![
            condition(
                pb::condition::Op::Eq(bulkhead_wire::value_to_pb(Value::String("en".into()))),
                "lang",
            ),
            condition(
                pb::condition::Op::IntRange(pb::IntRange {
                    gte: Some(2020),
                    ..Default::default()
                }),
                "year",
            ),
        ],
        ..Default::default()
    }
}

/// A tenant with limits, a semantic cache holding one scoped answer, and a collection with
/// indexed fields; returns a WRITE key.
async fn populate(client: &Client, tenant: &str) -> String {
    let admin = client.admin(ADMIN).unwrap();
    admin.create_tenant(tenant, &limits()).await.unwrap();
    let key = admin
        .create_key(tenant, Role::Write, None, "backup test")
        .await
        .unwrap()
        .secret;
    let t = client.tenant(tenant, &key).unwrap();
    t.create_cache("answers", 3, Metric::Cosine, None)
        .await
        .unwrap();
    t.cache_store(
        "answers",
        CacheStore {
            vector: vec![1.0, 0.0, 0.0],
            prompt: "refund policy?".into(),
            response: "30 days".into(),
            metadata: Default::default(),
            ttl: None,
            scope: CacheScope::named("alice"),
            fingerprint: None,
        },
    )
    .await
    .unwrap();
    let spec = CollectionSpec::new(3, Metric::Cosine)
        .with_indexed_field("lang", pb::FieldType::Keyword)
        .with_indexed_field("year", pb::FieldType::Integer);
    t.create_collection("docs", &spec).await.unwrap();
    let records: Vec<Record> = (0..40)
        .map(|i| {
            Record::new(format!("d{i:02}"), unit(i, 3))
                .with_metadata("lang", Value::String(["en", "de"][i as usize % 2].into()))
                .with_metadata("year", Value::Int(2015 + i as i64 % 10))
        })
        .collect();
    t.upsert("docs", &records).await.unwrap();
    key
}

async fn filtered_ids(t: &TenantClient) -> Vec<String> {
    let query = Query::new(unit(3, 3), 40).with_filter(english_since_2020());
    let mut ids: Vec<String> = t
        .query("docs", &query)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    ids.sort();
    ids
}

fn tenant_limits(t: &pb::Tenant) -> (pb::Quota, pb::RateLimit, i64, i64, pb::ServerShare) {
    (
        t.quota.unwrap(),
        t.rate_limit.unwrap(),
        t.audit_retention_seconds,
        t.max_token_lifetime_seconds,
        t.share.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_restored_tenant_serves_as_before_with_a_foreign_key_exported() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    let src_key = populate(&client, "src").await;
    let src = client.tenant("src", &src_key).unwrap();
    let want_ids = filtered_ids(&src).await;
    assert!(!want_ids.is_empty() && want_ids.len() < 40, "{want_ids:?}");

    // The shell exports a key of another tenant, as the docs tell users to do.
    admin
        .create_tenant("other", &TenantOptions::default())
        .await
        .unwrap();
    let foreign = admin
        .create_key("other", Role::Write, None, "")
        .await
        .unwrap()
        .secret;
    let dir = tempfile::tempdir().unwrap();
    let out = export_src(&server, dir.path());
    let out_s = out.to_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "bulkhead-export/2");
    assert!(
        manifest["not_included"].to_string().contains("API keys"),
        "{manifest}"
    );
    succeeded(&bulkhead(
        &server,
        Some(&foreign),
        &["import-tenant", out_s, "--tenant", "dst"],
    ));

    // Same limits.
    assert_eq!(
        tenant_limits(&admin.tenant("dst").await.unwrap()),
        tenant_limits(&admin.tenant("src").await.unwrap())
    );
    let dst_key = admin
        .create_key("dst", Role::Write, None, "")
        .await
        .unwrap()
        .secret;
    let dst = client.tenant("dst", &dst_key).unwrap();
    // The cache answers as before, within its scope only.
    let hit = dst
        .cache_lookup(
            "answers",
            vec![0.99, 0.1, 0.0],
            0.9,
            None,
            CacheScope::named("alice"),
        )
        .await
        .unwrap()
        .expect("the restored cache answers alice");
    assert_eq!(hit.response, "30 days");
    assert!(
        dst.cache_lookup(
            "answers",
            vec![0.99, 0.1, 0.0],
            -1.0,
            None,
            CacheScope::named("bob")
        )
        .await
        .unwrap()
        .is_none()
    );
    // Filtered queries give the same records.
    assert_eq!(filtered_ids(&dst).await, want_ids);
    let docs = dst.collection("docs").await.unwrap();
    assert_eq!(docs.indexed_fields.len(), 2);

    // The quota holds: two collections exist, a third fits, a fourth does not.
    dst.create_collection("third", &CollectionSpec::new(3, Metric::Cosine))
        .await
        .unwrap();
    assert!(matches!(
        dst.create_collection("fourth", &CollectionSpec::new(3, Metric::Cosine))
            .await,
        Err(ClientError::ResourceExhausted { .. })
    ));
    // And so does the rate limit (2/s, burst 30).
    let mut refused = 0;
    for _ in 0..60 {
        if let Err(ClientError::ResourceExhausted { .. }) = dst.collection("docs").await {
            refused += 1;
        }
    }
    assert!(refused > 0, "60 quick calls at 2/s with a burst of 30");
}

fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    bytes.extend_from_slice(&[0xff; 64]);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_failed_restore_leaves_no_tenant_behind_and_says_so() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    populate(&client, "src").await;
    let dir = tempfile::tempdir().unwrap();
    let out = export_src(&server, dir.path());
    let out_s = out.to_str().unwrap();
    corrupt(&out.join("docs.arrows"));

    let failed = bulkhead(&server, None, &["import-tenant", out_s, "--tenant", "dst"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("was deleted, nothing was left behind"),
        "{stderr}"
    );
    assert!(matches!(
        admin.tenant("dst").await,
        Err(ClientError::NotFound(_))
    ));
}
