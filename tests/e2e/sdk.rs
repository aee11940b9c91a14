//! The Rust SDK against the real server: everything here goes through `bulkhead_client` only,
//! as an application would.

use std::time::Duration;

use bulkhead_client::{
    Client, ClientError, CollectionSpec, Metric, Query, Record, Role, TenantOptions, TenantUpdate,
    Value,
};

use crate::harness::{ADMIN, Server, unit};

fn records(n: usize, dim: usize, owner: &str) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::new(format!("r{i}"), unit(i as u64, dim))
                .with_text(format!("owner={owner} #{i}"))
                .with_metadata("owner", Value::String(owner.into()))
                .with_metadata("n", Value::Int(i as i64))
        })
        .collect()
}

#[tokio::test]
async fn an_application_works_only_through_the_sdk() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    for t in ["acme", "globex"] {
        admin
            .create_tenant(t, &TenantOptions::default())
            .await
            .unwrap();
    }
    assert!(matches!(
        admin.create_tenant("acme", &TenantOptions::default()).await,
        Err(ClientError::AlreadyExists(_))
    ));
    let acme_key = admin
        .create_key("acme", Role::Write, None, "app")
        .await
        .unwrap();
    let globex_key = admin
        .create_key("globex", Role::Write, None, "app")
        .await
        .unwrap();

    // Small batch limits, so 1,200 records travel as 12 requests.
    let acme = client
        .tenant("acme", &acme_key.secret)
        .unwrap()
        .with_batch_limits(100, 1 << 20);
    acme.create_collection("docs", &CollectionSpec::new(16, Metric::Cosine))
        .await
        .unwrap();
    assert_eq!(
        acme.upsert("docs", &records(1200, 16, "acme"))
            .await
            .unwrap(),
        1200
    );
    assert_eq!(acme.collection("docs").await.unwrap().record_count, 1200);
    assert_eq!(acme.collections().await.unwrap().len(), 1);

    let hits = acme
        .query(
            "docs",
            &Query::new(unit(42, 16), 5).with_text().with_metadata(),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, "r42");
    assert_eq!(hits[0].text.as_deref(), Some("owner=acme #42"));
    assert_eq!(hits[0].metadata.get("n"), Some(&Value::Int(42)));

    let got = acme.get("docs", &["r1", "missing", "r2"]).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    assert_eq!(got[0].vector, unit(1, 16));
    assert_eq!(acme.delete("docs", &["r1", "missing"]).await.unwrap(), 1);
    assert!(acme.get("docs", &["r1"]).await.unwrap().is_empty());

    // Another tenant's key on this handle is refused, and the handle can't name another tenant.
    let wrong = client.tenant("acme", &globex_key.secret).unwrap();
    assert!(matches!(
        wrong.query("docs", &Query::new(unit(1, 16), 1)).await,
        Err(ClientError::PermissionDenied(_))
    ));
    let globex = client.tenant("globex", &globex_key.secret).unwrap();
    assert!(matches!(
        globex.query("docs", &Query::new(unit(1, 16), 1)).await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        client.tenant("ACME", "x"),
        Err(ClientError::Local(_))
    ));
    // The crate documentation's example, run.
    assert!(matches!(
        client.tenant("Acme/../other", "secret"),
        Err(ClientError::Local(_))
    ));
    assert!(matches!(
        acme.get("../globex", &["r1"]).await,
        Err(ClientError::Local(_))
    ));
    let stranger = client.tenant("acme", "bh_not-a-key").unwrap();
    assert!(matches!(
        stranger.collections().await,
        Err(ClientError::Unauthenticated(_))
    ));

    // The audit trail shows the upserts and the denied attempt by globex's key.
    let events = acme.audit_events(None, 1000).await.unwrap();
    let upserts = events
        .iter()
        .filter(|e| e.method == "RecordService/Upsert")
        .count();
    assert_eq!(upserts, 12);
    let globex_key_id = globex_key.key_id();
    let globex_events = client
        .tenant("globex", &globex_key.secret)
        .unwrap()
        .audit_events(None, 1000)
        .await
        .unwrap();
    assert!(
        globex_events
            .iter()
            .any(|e| e.principal == globex_key_id && e.outcome == "PERMISSION_DENIED"),
        "{globex_events:?}"
    );
    assert_eq!(acme.audit_events(None, 3).await.unwrap().len(), 3);

    // Key management through a TENANT_ADMIN key of the tenant itself.
    let owner_key = admin
        .create_key(
            "acme",
            Role::TenantAdmin,
            Some(Duration::from_secs(3600)),
            "owner",
        )
        .await
        .unwrap();
    let owner = client.tenant("acme", &owner_key.secret).unwrap();
    let reader = owner.create_key(Role::Read, None, "reader").await.unwrap();
    let read_only = client.tenant("acme", &reader.secret).unwrap();
    assert!(matches!(
        read_only.upsert("docs", &records(1, 16, "acme")).await,
        Err(ClientError::PermissionDenied(_))
    ));
    assert_eq!(read_only.get("docs", &["r2"]).await.unwrap().len(), 1);
    assert_eq!(owner.keys().await.unwrap().len(), 3);
    owner.revoke_key(reader.key_id()).await.unwrap();
    assert!(matches!(
        read_only.get("docs", &["r2"]).await,
        Err(ClientError::Unauthenticated(_))
    ));

    // Admin operations.
    let update = TenantUpdate {
        audit_retention: Some(Duration::from_secs(7 * 86400)),
        ..Default::default()
    };
    let updated = admin.update_tenant("acme", &update).await.unwrap();
    assert_eq!(updated.audit_retention_seconds, 7 * 86400);
    assert_eq!(admin.tenants().await.unwrap().len(), 2);
    acme.delete_collection("docs").await.unwrap();
    admin.delete_tenant("globex").await.unwrap();
    assert!(matches!(
        admin.tenant("globex").await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        globex.collections().await,
        Err(ClientError::Unauthenticated(_))
    ));
}

#[tokio::test]
async fn calls_retry_through_a_server_restart() {
    let temp = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(temp.path(), &[]);
    let addr = server.addr.clone();
    let client = Client::builder(format!("http://{addr}"))
        .max_attempts(40)
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let admin = client.admin(ADMIN).unwrap();
    admin
        .create_tenant("acme", &TenantOptions::default())
        .await
        .unwrap();
    assert!(server.terminate().success());

    // The next call finds the server gone, backs off, and succeeds once it is back.
    let dir = temp.path().to_owned();
    let restarted = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        Server::start_at(&dir, &addr, &[])
    });
    let tenant = admin
        .tenant("acme")
        .await
        .expect("retried until the server was back");
    assert_eq!(tenant.name, "tenants/acme");
    let server2 = restarted.join().unwrap();

    // Without retries, an unreachable server is reported as UNAVAILABLE at once.
    let once = Client::builder(format!("http://{}", server2.addr))
        .max_attempts(1)
        .connect()
        .await
        .unwrap();
    drop(server2);
    let err = once.admin(ADMIN).unwrap().tenants().await.unwrap_err();
    assert!(matches!(err, ClientError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

/// A refusal for the tenant's rate limit comes back as `ResourceExhausted` with the wait the
/// server named before the limit could admit the call, and the SDK does not retry it.
/// A load past the tenant's write limit, split into several requests, goes in whole at the
/// server's pace: each refused request is sent again after its wait, and only it (sending the
/// whole call again would spend the limit on its first requests every time). `upsert` itself
/// still answers the refusal.
#[tokio::test]
async fn an_upsert_at_the_servers_pace_sends_again_only_the_refused_request() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    let options = TenantOptions {
        rate_limit: Some(bulkhead_proto::v1::RateLimit {
            requests_per_second: 0.0,
            burst: 0,
            write_bytes_per_second: 20_000,
        }),
        ..TenantOptions::default()
    };
    admin.create_tenant("paced", &options).await.unwrap();
    let key = admin
        .create_key("paced", Role::Write, None, "app")
        .await
        .unwrap();
    let tenant = client
        .tenant("paced", &key.secret)
        .unwrap()
        .with_batch_limits(500, usize::MAX);
    tenant
        .create_collection("docs", &CollectionSpec::new(4, Metric::Cosine))
        .await
        .unwrap();
    // Three requests of about 30 KB under a 20 KB/s limit: each past the first is refused
    // until the bucket is full again.
    let load = records(1500, 4, "paced");
    let upserted = tokio::time::timeout(
        Duration::from_secs(20),
        tenant.upsert_at_the_servers_pace("docs", &load),
    )
    .await
    .expect("paced to the limit, not stuck")
    .unwrap();
    assert_eq!(upserted, 1500);
    let refused = tenant.upsert("docs", &load).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::ResourceExhausted {
                retry_after: Some(_),
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_refusal_says_when_to_try_again() {
    let server = Server::start();
    let client = server.sdk().await;
    let admin = client.admin(ADMIN).unwrap();
    let options = TenantOptions {
        rate_limit: Some(bulkhead_proto::v1::RateLimit {
            requests_per_second: 0.2,
            burst: 2,
            write_bytes_per_second: 0,
        }),
        ..TenantOptions::default()
    };
    admin.create_tenant("slow", &options).await.unwrap();
    let key = admin
        .create_key("slow", Role::Read, None, "app")
        .await
        .unwrap();
    let slow = client.tenant("slow", &key.secret).unwrap();
    let mut refusal = None;
    for _ in 0..3 {
        if let Err(e) = slow.collections().await {
            refusal = Some(e);
            break;
        }
    }
    match refusal {
        // One request every 10 s for the key (half its tenant's rate, the default
        // `principal-rate-share`): the server held the refusal for a second and names about
        // nine more.
        Some(ClientError::ResourceExhausted {
            message,
            retry_after: Some(wait),
        }) => {
            assert!(message.contains("rate limit"), "{message}");
            assert!(
                wait > Duration::from_secs(5) && wait <= Duration::from_secs(10),
                "{wait:?}"
            );
        }
        other => panic!("expected a refusal naming its wait, got {other:?}"),
    }
}
