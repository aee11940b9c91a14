//! Failure isolation: one tenant's load, stalled streams or abuse must not stall, starve or
//! blind another, and no write may escape the audit trail. Each test reproduces an attack found
//! in review (issue 16) against the real server.

use std::time::Duration;

use bulkhead_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;
use crate::raw_body::{Then, call_with_body, framed_prefix};

/// A server with `settings` (TOML lines) in a config file.
fn server_with(settings: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bulkhead.toml");
    std::fs::write(&config, settings).unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    (server, dir)
}

/// A connection that grants the server almost no flow-control window: what a client that
/// never reads looks like from the server (it can send a few hundred bytes, then must wait).
async fn stingy_records(
    server: &Server,
) -> pb::record_service_client::RecordServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(Some(256))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    pb::record_service_client::RecordServiceClient::new(channel)
}

fn export_request(secret: &str, tenant: &str) -> tonic::Request<pb::ExportRequest> {
    authed(
        secret,
        pb::ExportRequest {
            collection: format!("tenants/{tenant}/collections/docs"),
            batch_size: 16,
        },
    )
}

/// Export streams nobody reads used to park one blocking thread each; past 512 every write,
/// key operation and admin call of every tenant hung. Now a tenant holds a bounded number of
/// streams, none of them holds a thread, and the others carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_export_streams_of_one_tenant_stall_nobody_else() {
    let server = Server::start();
    let mut c = server.clients().await;
    let attacker = seeded_tenant(&mut c, "attacker", 400, 64).await;
    let victim = seeded_tenant(&mut c, "victim", 4, 64).await;
    // 600 streams over 10 connections, none ever read: each fills its flow-control window and
    // then waits for the client.
    let mut held = Vec::new();
    let mut connections = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let mut records = stingy_records(&server).await;
        for _ in 0..60 {
            match records.export(export_request(&attacker, "attacker")).await {
                Ok(stream) => held.push(stream),
                Err(s) => {
                    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                    assert!(s.message().contains("open streams"), "{}", s.message());
                    refused += 1;
                }
            }
        }
        connections.push(records);
    }
    let deadline = Duration::from_secs(20);
    let upsert = c.records.upsert(authed(
        &victim,
        pb::UpsertRequest {
            collection: "tenants/victim/collections/docs".into(),
            records: vec![record("new", 99, 64, "victim")],
        },
    ));
    tokio::time::timeout(deadline, upsert)
        .await
        .expect("the victim's write is not stalled")
        .unwrap();
    tokio::time::timeout(deadline, async { create_tenant(&mut c, "newcomer").await })
        .await
        .expect("the admin's CreateTenant is not stalled");
    tokio::time::timeout(deadline, async {
        create_key(&mut c, "victim", pb::Role::Read, None).await
    })
    .await
    .expect("key creation is not stalled");
    assert!(refused > 0, "the tenant's streams are bounded");
    drop((held, connections));
}

/// A stream that moves nothing for the idle limit is ended, and its slot goes back to the
/// tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_export_ends_at_the_idle_limit_and_frees_its_slot() {
    let (server, _dir) = server_with("tenant-open-streams = 1\nstream-idle-timeout-secs = 1\n");
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 400, 64).await;
    let mut records = stingy_records(&server).await;
    let stalled = records.export(export_request(&secret, "t")).await.unwrap();
    let second = c.records.export(export_request(&secret, "t")).await;
    assert_eq!(
        code(second),
        Code::ResourceExhausted,
        "one stream at a time"
    );
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if c.records.export(export_request(&secret, "t")).await.is_ok() {
            freed = true;
            break;
        }
    }
    assert!(
        freed,
        "the stalled stream's slot came back after the idle limit"
    );
    let mut stalled = stalled.into_inner();
    let mut ended_with = None;
    while let Some(item) = stalled.message().await.transpose() {
        if let Err(s) = item {
            ended_with = Some(s);
            break;
        }
    }
    let ended_with = ended_with.expect("the stalled stream ends with an error, not a clean end");
    assert_eq!(ended_with.code(), Code::DeadlineExceeded);
    assert!(ended_with.message().contains("stream-idle-timeout-secs"));
}

/// Sets `tenant`'s share field `field` (a `share.*` mask path) to `value` through UpdateTenant;
/// returns the tenant's share as the server answers it, or its refusal.
async fn set_share(
    c: &mut Clients,
    tenant: &str,
    field: &str,
    value: i64,
) -> Result<pb::ServerShare, tonic::Status> {
    let mut share = pb::ServerShare::default();
    match field {
        "open_streams" => share.open_streams = value,
        "requests_in_flight" => share.requests_in_flight = value,
        "engine_threads" => share.engine_threads = value,
        "write_bytes_in_flight" => share.write_bytes_in_flight = value,
        other => panic!("no share field {other}"),
    }
    c.admin
        .update_tenant(authed(
            ADMIN,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: format!("tenants/{tenant}"),
                    share: Some(share),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![format!("share.{field}")],
                }),
            },
        ))
        .await
        .map(|t| t.into_inner().share.unwrap_or_default())
}

/// Stalled exports of `tenant` until one is refused; returns the held streams and the refusal.
async fn exports_until_refused(
    server: &Server,
    secret: &str,
    tenant: &str,
) -> (
    Vec<tonic::Response<tonic::codec::Streaming<pb::ExportResponse>>>,
    tonic::Status,
) {
    let mut records = stingy_records(server).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        match records.export(export_request(secret, tenant)).await {
            Ok(stream) => held.push(stream),
            Err(refused) => return (held, refused),
        }
    }
    panic!("{tenant} opened 20 streams without a refusal");
}

/// The operator gives one tenant a larger share than the server's default through UpdateTenant
/// and takes it back with 0; the other tenants keep the server's setting throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_own_share_overrides_the_servers_setting_for_it_alone() {
    let (server, _dir) = server_with(
        "tenant-open-streams = 1
",
    );
    let mut c = server.clients().await;
    let big = seeded_tenant(&mut c, "big", 400, 64).await;
    let small = seeded_tenant(&mut c, "small", 400, 64).await;
    let share = set_share(&mut c, "big", "open_streams", 3).await.unwrap();
    assert_eq!(
        share,
        pb::ServerShare {
            open_streams: 3,
            ..Default::default()
        }
    );
    set_share(&mut c, "big", "requests_in_flight", 16)
        .await
        .unwrap();
    let share = set_share(&mut c, "big", "engine_threads", 1).await.unwrap();
    assert_eq!(
        (
            share.open_streams,
            share.requests_in_flight,
            share.engine_threads
        ),
        (3, 16, 1),
        "each path changes its field alone"
    );

    let (big_held, refused) = exports_until_refused(&server, &big, "big").await;
    assert_eq!(big_held.len(), 3, "the tenant's own share");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("limit of 3"),
        "{}",
        refused.message()
    );
    let (small_held, refused) = exports_until_refused(&server, &small, "small").await;
    assert_eq!(small_held.len(), 1, "the server's setting");
    assert!(
        refused.message().contains("limit of 1"),
        "{}",
        refused.message()
    );

    // 0 restores the server's setting: the three streams held are now over it.
    set_share(&mut c, "big", "open_streams", 0).await.unwrap();
    let refused = c
        .records
        .export(export_request(&big, "big"))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("limit of 1"),
        "{}",
        refused.message()
    );

    let bad = set_share(&mut c, "big", "engine_threads", 5000)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("share.engine_threads"),
        "{}",
        bad.message()
    );
    drop((big_held, small_held));
}

/// Writes cancelled by a tiny deadline used to commit without their audit event. Every record
/// that landed must now be covered by an audited write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cancelled_at_any_point_is_absent_or_audited() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, 64).await;
    let (_, reader) = create_key(&mut c, "t", pb::Role::Read, None).await;
    for i in 0..200u64 {
        let mut request = authed(
            &secret,
            pb::UpsertRequest {
                collection: "tenants/t/collections/docs".into(),
                records: vec![record(&format!("c{i}"), i, 64, "cancelled?")],
            },
        );
        request.set_timeout(Duration::from_micros(500 + 100 * (i % 30)));
        let _ = c.records.upsert(request).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
    let landed = c
        .records
        .get(authed(
            &reader,
            pb::GetRequest {
                collection: "tenants/t/collections/docs".into(),
                ids,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records
        .len() as u64;
    let mut audited = 0;
    let mut after = String::new();
    loop {
        let page = c
            .audit
            .list_audit_events(authed(
                &reader,
                pb::ListAuditEventsRequest {
                    parent: "tenants/t".into(),
                    page_size: 1000,
                    page_token: after.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        audited += page
            .events
            .iter()
            .filter(|e| e.method == "RecordService/Upsert" && e.outcome == "OK")
            .map(|e| e.record_count)
            .sum::<u64>();
        if page.next_page_token.is_empty() {
            break;
        }
        after = page.next_page_token;
    }
    // The seeding upsert wrote one record with its own event.
    assert_eq!(
        audited,
        landed + 1,
        "every landed record is in an audited write, and nothing else is"
    );
}

/// Work caps: each is a clear refusal naming the limit, not work the server can't bound.
#[tokio::test]
async fn per_request_work_is_bounded() {
    let (server, _dir) = server_with("max-indexed-list-len = 8\n");
    let mut c = server.clients().await;
    create_tenant(&mut c, "t").await;
    let (_, secret) = create_key(&mut c, "t", pb::Role::Write, None).await;
    c.collections
        .create_collection(authed(
            &secret,
            pb::CreateCollectionRequest {
                parent: "tenants/t".into(),
                collection_id: "docs".into(),
                dimension: 8,
                metric: pb::Metric::Cosine as i32,
                indexed_fields: [("tags".to_owned(), pb::FieldType::Keyword as i32)].into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let tagged = |n: usize| pb::Record {
        id: "r".into(),
        vector: unit(1, 8),
        metadata: [(
            "tags".to_owned(),
            pb::Value {
                kind: Some(pb::value::Kind::StringList(pb::StringList {
                    values: vec!["common".into(); n],
                })),
            },
        )]
        .into(),
        ..Default::default()
    };
    let upsert = |r: pb::Record| {
        authed(
            &secret,
            pb::UpsertRequest {
                collection: "tenants/t/collections/docs".into(),
                records: vec![r],
            },
        )
    };
    c.records.upsert(upsert(tagged(8))).await.unwrap();
    let long = c.records.upsert(upsert(tagged(9))).await.unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("limit is 8"), "{}", long.message());

    let query = |ef: u32, filter: Option<pb::Filter>| {
        authed(
            &secret,
            pb::QueryRequest {
                collection: "tenants/t/collections/docs".into(),
                vector: unit(1, 8),
                top_k: 1,
                ef,
                filter,
                ..Default::default()
            },
        )
    };
    let wide = c.records.query(query(100_000, None)).await.unwrap_err();
    assert_eq!(wide.code(), Code::InvalidArgument);
    assert!(
        wide.message().contains("ef must be at most"),
        "{}",
        wide.message()
    );
    let huge_in = pb::Filter {
        condition: Some(pb::Condition {
            field: "tags".into(),
            op: Some(pb::condition::Op::In(pb::ValueList {
                values: vec![
                    pb::Value {
                        kind: Some(pb::value::Kind::StringValue("common".into())),
                    };
                    100_000
                ],
            })),
        }),
        ..Default::default()
    };
    let refused = c.records.query(query(0, Some(huge_in))).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("at most 1024"),
        "{}",
        refused.message()
    );
}

/// Key operations take the tenant's own lock and are capped per tenant.
#[tokio::test]
async fn a_tenant_holds_a_bounded_number_of_keys() {
    let (server, _dir) = server_with("max-api-keys-per-tenant = 3\n");
    let mut c = server.clients().await;
    create_tenant(&mut c, "t").await;
    create_tenant(&mut c, "other").await;
    for _ in 0..3 {
        create_key(&mut c, "t", pb::Role::Read, None).await;
    }
    let refused = c
        .keys
        .create_api_key(authed(
            ADMIN,
            pb::CreateApiKeyRequest {
                parent: "tenants/t".into(),
                role: pb::Role::Read as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("the limit is 3"),
        "{}",
        refused.message()
    );
    create_key(&mut c, "other", pb::Role::Read, None).await;
}

/// A tenant that sets no rate limit runs under the server's default, and one key can use only
/// its share of its tenant's rate.
#[tokio::test]
async fn defaults_limit_every_tenant_and_keys_share_their_tenants_rate() {
    // The share is left at its default: a runaway key is held to part of its tenant's rate
    // unless an operator says otherwise.
    let (server, _dir) = server_with("default-requests-per-second = 1.0\ndefault-burst = 10\n");
    let mut c = server.clients().await;
    create_tenant(&mut c, "t").await;
    let (_, runaway) = create_key(&mut c, "t", pb::Role::Read, None).await;
    let (_, other) = create_key(&mut c, "t", pb::Role::Read, None).await;
    let list = |secret: &str| {
        authed(
            secret,
            pb::ListCollectionsRequest {
                parent: "tenants/t".into(),
                ..Default::default()
            },
        )
    };
    let mut refused = None;
    for _ in 0..10 {
        if let Err(s) = c.collections.list_collections(list(&runaway)).await {
            refused = Some(s);
            break;
        }
    }
    let refused = refused.expect("the runaway key is limited by default");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("its share"),
        "{}",
        refused.message()
    );
    c.collections
        .list_collections(list(&other))
        .await
        .expect("the tenant's other key still gets in");
}

/// Alone on the server, a tenant writes at its own limit; beside another active tenant its
/// writes share the server's write budget with it: past its part it is refused with the budget
/// named and told when to come back, while the other tenant still writes; once the other has
/// gone quiet, it writes at its own limit again.
#[tokio::test]
async fn beside_an_active_tenant_a_writer_is_held_to_its_part_of_the_shared_write_budget() {
    let (server, _dir) = server_with("shared-write-bytes-per-second = 131072\n");
    let mut c = server.clients().await;
    let flood = seeded_tenant(&mut c, "flood", 1, 8).await;
    let quiet = seeded_tenant(&mut c, "quiet", 1, 8).await;
    // About 220 KB: more than the whole budget's second.
    let upsert = |secret: &str, tenant: &str, batch: u64, n: u64| {
        authed(
            secret,
            pb::UpsertRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                records: (0..n)
                    .map(|i| record(&format!("b{batch}-{i}"), i, 8, &"x".repeat(1000)))
                    .collect(),
            },
        )
    };
    let alone = || async {
        // Two windows with nobody else: the seeding of both tenants is forgotten.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    };
    alone().await;
    for batch in 0..4 {
        c.records
            .upsert(upsert(&flood, "flood", batch, 200))
            .await
            .expect("alone, a tenant writes at its own limit (64 MiB/s by default)");
    }
    c.collections
        .list_collections(authed(
            &quiet,
            pb::ListCollectionsRequest {
                parent: "tenants/quiet".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // Its part starts full and lets one write past it in debt; the next is refused.
    c.records
        .upsert(upsert(&flood, "flood", 10, 200))
        .await
        .unwrap();
    let refused = c
        .records
        .upsert(upsert(&flood, "flood", 11, 200))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("shared write budget")
            && refused.message().contains("2 tenants are active"),
        "{refused:?}"
    );
    assert!(
        refused.metadata().get("grpc-retry-pushback-ms").is_some(),
        "{refused:?}"
    );
    c.records
        .upsert(upsert(&quiet, "quiet", 0, 10))
        .await
        .expect("the other tenant still writes");
    alone().await;
    for batch in 20..24 {
        c.records
            .upsert(upsert(&flood, "flood", batch, 200))
            .await
            .expect("alone again, at its own limit");
    }
}

/// Opens an import of tenant `t`'s collection `docs` (dimension 4) with a WRITE key, sends
/// `first`, revokes the key, sends `second`, and returns how the import ended.
async fn import_revoked_between(first: Vec<u8>, second: Vec<u8>) -> tonic::Status {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "t").await;
    let (key, secret) = create_key(&mut c, "t", pb::Role::Write, None).await;
    create_collection(&mut c, &secret, "t", "docs", 4).await;
    let (send, messages) = tokio::sync::mpsc::channel(4);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(messages));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    send.send(pb::ImportRequest {
        collection: "tenants/t/collections/docs".into(),
        arrow_ipc: first,
    })
    .await
    .unwrap();
    let mut records = c.records.clone();
    let import = tokio::spawn(async move { records.import(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.keys
        .revoke_api_key(authed(ADMIN, pb::RevokeApiKeyRequest { name: key }))
        .await
        .unwrap();
    send.send(pb::ImportRequest {
        collection: String::new(),
        arrow_ipc: second,
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), import)
        .await
        .expect("the import ended")
        .unwrap()
        .unwrap_err()
}

/// Import rows `from..from + n` of 4 dimensions, each with a kilobyte of text: about 1 KB a row
/// against a write limit.
fn kilobyte_rows(from: usize, n: usize) -> Vec<bulkhead_formats::RecordRow> {
    (from..from + n)
        .map(|i| bulkhead_formats::RecordRow {
            id: format!("r{i}"),
            vector: vec![1.0, 0.0, 0.0, i as f32],
            text: Some("x".repeat(1000)),
            metadata: Default::default(),
            ttl_seconds: None,
        })
        .collect()
}

/// A paced import is no shelter for a revoked key: while its next message waits for the
/// tenant's write bucket (behind a first message that left it ~900 KB in debt at 20 KB/s),
/// revoking the key ends it within about a second, and nothing of that message is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_an_import_waiting_for_its_write_limit() {
    let (server, _dir) = server_with("default-write-bytes-per-second = 20000\n");
    let mut c = server.clients().await;
    create_tenant(&mut c, "t").await;
    let (key, secret) = create_key(&mut c, "t", pb::Role::Write, None).await;
    create_collection(&mut c, &secret, "t", "docs", 4).await;
    let mut encoder = bulkhead_formats::StreamEncoder::new(4).unwrap();
    let (first, second) = (
        encoder.push(&kilobyte_rows(0, 900)).unwrap(),
        encoder.push(&kilobyte_rows(900, 10)).unwrap(),
    );
    // Admitted on a full bucket, the first leaves it ~900 KB in debt: 45 s to pay.
    assert!(first.len() > 900_000, "{}", first.len());
    let (send, messages) = tokio::sync::mpsc::channel(4);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(messages));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    for (collection, arrow_ipc) in [
        ("tenants/t/collections/docs".to_owned(), first),
        (String::new(), second),
    ] {
        send.send(pb::ImportRequest {
            collection,
            arrow_ipc,
        })
        .await
        .unwrap();
    }
    let mut records = c.records.clone();
    let import = tokio::spawn(async move { records.import(request).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !import.is_finished(),
        "the second message waits for the bucket"
    );
    c.keys
        .revoke_api_key(authed(ADMIN, pb::RevokeApiKeyRequest { name: key }))
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), import)
        .await
        .expect("the revocation ended the wait")
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("1 earlier batches (900 records)"),
        "{status:?}"
    );
    drop(send);
}

/// A paced import whose next message can't be paid for before the stream's time is up ends at
/// once, `RESOURCE_EXHAUSTED` naming the write limit, rather than waiting out its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_its_write_limit_cannot_pay_for_in_its_time_ends_at_once() {
    let (server, _dir) =
        server_with("default-write-bytes-per-second = 20000\nstream-timeout-secs = 8\n");
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, 4).await;
    let mut encoder = bulkhead_formats::StreamEncoder::new(4).unwrap();
    // The first leaves the bucket ~900 KB in debt: 45 s to pay, past the stream's 8.
    let messages = [
        (
            "tenants/t/collections/docs",
            encoder.push(&kilobyte_rows(0, 900)).unwrap(),
        ),
        ("", encoder.push(&kilobyte_rows(900, 10)).unwrap()),
    ]
    .map(|(collection, arrow_ipc)| pb::ImportRequest {
        collection: collection.into(),
        arrow_ipc,
    });
    let status = tokio::time::timeout(
        Duration::from_secs(6),
        c.records
            .import(authed(&secret, tokio_stream::iter(messages))),
    )
    .await
    .expect("refused at once, not at the stream's end")
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("write limit of 20000 bytes/s")
            && status.message().contains("1 earlier batches (900 records)"),
        "{status:?}"
    );
}

/// An import must stop when its key is revoked, and its batches are bounded by `max-batch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_an_open_import() {
    let rows: Vec<bulkhead_formats::RecordRow> = (0..3)
        .map(|i| bulkhead_formats::RecordRow {
            id: format!("r{i}"),
            vector: vec![1.0, 0.0, 0.0, i as f32],
            text: None,
            metadata: Default::default(),
            ttl_seconds: None,
        })
        .collect();
    let mut encoder = bulkhead_formats::StreamEncoder::new(4).unwrap();
    let first = encoder.push(&rows).unwrap();
    let second = encoder.push(&rows).unwrap();
    let status = import_revoked_between(first, second).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("1 earlier batches (3 records)"),
        "{}",
        status.message()
    );
}

/// A revoked key's stream gets no more work out of the server: its next message is refused
/// before it is decoded (garbage would otherwise be reported as bad Arrow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_keys_next_import_message_is_not_decoded() {
    let status = import_revoked_between(Vec::new(), b"not an arrow stream at all".to_vec()).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// A request without a valid credential is refused from its headers: the server doesn't read
/// (and decode) a message it would refuse anyway, so an over-long one is UNAUTHENTICATED, not a
/// size error, while the same message with a key is refused for its size.
#[tokio::test]
async fn a_caller_without_a_credential_is_refused_before_its_message_is_read() {
    let (server, _dir) = server_with("max-message-bytes = 65536\n");
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, 8).await;
    let oversized = || pb::UpsertRequest {
        collection: "tenants/t/collections/docs".into(),
        records: vec![record("big", 1, 8, &"x".repeat(100_000))],
    };
    let anonymous = c.records.upsert(oversized()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    let unknown = c
        .records
        .upsert(authed("bh_not_a_key_of_anyone", oversized()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");
    let with_key = c
        .records
        .upsert(authed(&secret, oversized()))
        .await
        .unwrap_err();
    assert_ne!(with_key.code(), Code::Unauthenticated, "{with_key:?}");
    assert_ne!(with_key.code(), Code::Ok);
}

/// A request of a method that carries no records is cut off at `max-read-message-bytes` as it
/// arrives, before tonic decodes it on an async worker.
#[tokio::test]
async fn an_oversized_query_is_refused_before_it_is_decoded() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, 8).await;
    let refused = c
        .records
        .query(authed(
            &secret,
            pb::QueryRequest {
                collection: "tenants/t/collections/docs".into(),
                vector: vec![0.5; 300_000],
                top_k: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("max-read-message-bytes"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn an_end_user_is_limited_to_its_share_and_the_tenants_other_users_still_get_in() {
    use crate::end_users::{add_key, claims, sign, signing_key, with};
    let (server, _dir) = server_with(
        "default-requests-per-second = 1.0\ndefault-burst = 10\nprincipal-rate-share = 0.5\n",
    );
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 1, 8).await;
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let token = |sub: &str, iat_offset: i64| {
        let iat = claims("acme")["iat"].as_i64().unwrap() - iat_offset;
        sign(
            &key,
            &kid,
            &with(claims("acme"), serde_json::json!({"sub": sub, "iat": iat})),
        )
    };
    // Two tokens of alice share alice's share; a new token doesn't bring a fresh one.
    let (alice, alice_again, bob) = (token("alice", 0), token("alice", 1), token("bob", 0));
    let get = |secret: &str| {
        authed(
            secret,
            pb::GetRequest {
                collection: "tenants/acme/collections/docs".into(),
                ids: vec!["r0".into()],
            },
        )
    };
    let mut refused = None;
    for i in 0..10 {
        let secret = if i % 2 == 0 { &alice } else { &alice_again };
        if let Err(s) = c.records.get(get(secret)).await {
            refused = Some(s);
            break;
        }
    }
    let refused = refused.expect("alice is limited to her share");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("its share"),
        "{}",
        refused.message()
    );
    c.records
        .get(get(&bob))
        .await
        .expect("another user of the tenant still gets in");
}

/// A tenant past its write limit used to have every refused Upsert received and decoded
/// before the limiter saw it, on the request threads all tenants share. Now one bigger than
/// what its tenant's write bucket holds is refused as soon as its first bytes declare its
/// length and collection: one over `max-message-bytes` is refused for the limit, not for its
/// size. A key reaching into another tenant is still `PERMISSION_DENIED`, however far its own
/// tenant is over its limit. The refusals are audited, and writes pass once the debt is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_its_write_limit_is_refused_before_its_upserts_are_read() {
    let (server, _dir) = server_with(
        "default-write-bytes-per-second = 20000\nmax-message-bytes = 65536\nmax-read-message-bytes = 65536\n",
    );
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, 8).await;
    seeded_tenant(&mut c, "u", 1, 8).await;
    let (_, reader) = create_key(&mut c, "t", pb::Role::Read, None).await;
    let upsert = |tenant: &str, ids: std::ops::Range<u64>| {
        authed(
            &secret,
            pb::UpsertRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                records: ids
                    .map(|i| record(&format!("w{i}"), i, 8, &"x".repeat(1000)))
                    .collect(),
            },
        )
    };
    let refused_for_the_limit = |status: tonic::Status| {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("write limit"), "{status:?}");
    };
    // The seeding write's bytes come back: the bucket is full again (20 KB).
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.records.upsert(upsert("t", 0..10)).await.unwrap();
    // ~10 KB left: 104 KB can't be admitted, and is refused before it is read.
    refused_for_the_limit(c.records.upsert(upsert("t", 0..100)).await.unwrap_err());

    tokio::time::sleep(Duration::from_secs(1)).await;
    // ~50 KB from a full bucket: admitted, and 30 KB in debt for 1.5 s.
    c.records.upsert(upsert("t", 10..58)).await.unwrap();
    // A client looping on refusals is slowed to what its limit admits: the refusal comes once
    // the bucket could pay (at most a second later), and its trailer names the rest of the wait.
    let sent = std::time::Instant::now();
    let refused = c.records.upsert(upsert("t", 58..59)).await.unwrap_err();
    let held = sent.elapsed();
    let rest: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or_else(|| panic!("no pushback trailer: {refused:?}"));
    refused_for_the_limit(refused);
    assert!(held >= Duration::from_millis(950), "held {held:?}");
    assert!(
        (300..=600).contains(&rest),
        "{rest} ms left of a ~1.5 s debt"
    );
    let elsewhere = c.records.upsert(upsert("u", 0..1)).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied, "{elsewhere:?}");

    let trail = audit_events(&mut c, &reader, "t").await;
    assert!(
        trail.iter().any(|e| e.method == "RecordService/Upsert"
            && e.outcome == "RESOURCE_EXHAUSTED"
            && e.resource == "tenants/t/collections/docs"),
        "{trail:?}"
    );
    assert!(
        trail.iter().any(|e| e.outcome == "PERMISSION_DENIED"
            && e.resource == "tenants/u/collections/docs"),
        "{trail:?}"
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    c.records
        .upsert(upsert("t", 100..101))
        .await
        .expect("the debt is paid");
}

/// The cache's Stores and a session's Appends are refused unread too once their tenant is past
/// its write limit: a Store over `max-message-bytes` is refused for the limit, not its size. Only
/// a write the usual path would admit is: a READ key's Upsert stays `PERMISSION_DENIED`, and so
/// does a Store into another tenant's cache, however far over its limit the caller is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_its_write_limit_is_refused_before_its_stores_and_appends_are_read() {
    const DIM: usize = 8;
    let (server, _dir) = server_with(
        "default-write-bytes-per-second = 10000\nmax-message-bytes = 65536\nmax-read-message-bytes = 65536\n",
    );
    let mut c = server.clients().await;
    let mut caches =
        pb::semantic_cache_service_client::SemanticCacheServiceClient::new(server.channel().await);
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    let other = seeded_tenant(&mut c, "u", 1, DIM).await;
    let (_, reader) = create_key(&mut c, "t", pb::Role::Read, None).await;
    for (tenant, key) in [("t", &secret), ("u", &other)] {
        caches
            .create_cache(authed(
                key,
                pb::CreateCacheRequest {
                    parent: format!("tenants/{tenant}"),
                    cache_id: "answers".into(),
                    dimension: DIM as u32,
                    metric: pb::Metric::Cosine.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    create_session(&mut c, &secret, "t", "s1", DIM as u32, 3600).await;
    let store = |tenant: &str, prompt_bytes: usize| {
        authed(
            &secret,
            pb::StoreRequest {
                cache: format!("tenants/{tenant}/caches/answers"),
                vector: unit(1, DIM),
                prompt: "p".repeat(prompt_bytes),
                response: "r".into(),
                shared: true,
                ..Default::default()
            },
        )
    };
    let append = |text_bytes: usize| {
        authed(
            &secret,
            pb::AppendRequest {
                session: "tenants/t/sessions/s1".into(),
                items: vec![pb::MemoryItem {
                    kind: pb::MemoryKind::Turn.into(),
                    text: "x".repeat(text_bytes),
                    vector: unit(2, DIM),
                    ..Default::default()
                }],
            },
        )
    };
    let refused_for_the_limit = |status: tonic::Status| {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("write limit"), "{status:?}");
    };
    // Both reach their tenant's cache and session while it is within its limit.
    caches.store(store("t", 100)).await.unwrap();
    c.memory.append(append(100)).await.unwrap();

    // From a full bucket (10 KB), a 60 KB Upsert is admitted and leaves it 50 KB in debt.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let debt = pb::UpsertRequest {
        collection: "tenants/t/collections/docs".into(),
        records: (0..55)
            .map(|i| record(&format!("w{i}"), i, DIM, &"x".repeat(1000)))
            .collect(),
    };
    c.records.upsert(authed(&secret, debt)).await.unwrap();
    // 100 KB messages, past `max-message-bytes`: refused for the limit before they are read.
    refused_for_the_limit(caches.store(store("t", 100_000)).await.unwrap_err());
    // Over-limit refusals are audited once a second per tenant: wait for the Append's turn.
    // An Append is one of the small requests, held to `max-read-message-bytes` before this.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused_for_the_limit(c.memory.append(append(60_000)).await.unwrap_err());
    let elsewhere = caches.store(store("u", 10)).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied, "{elsewhere:?}");
    let read_only = c
        .records
        .upsert(authed(
            &reader,
            pb::UpsertRequest {
                collection: "tenants/t/collections/docs".into(),
                records: vec![record("r", 1, DIM, "")],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(read_only.code(), Code::PermissionDenied, "{read_only:?}");

    let trail = audit_events(&mut c, &reader, "t").await;
    for (method, resource) in [
        ("SemanticCacheService/Store", "tenants/t/caches/answers"),
        ("MemoryService/Append", "tenants/t/sessions/s1"),
    ] {
        assert!(
            trail.iter().any(|e| e.method == method
                && e.outcome == "RESOURCE_EXHAUSTED"
                && e.resource == resource),
            "{method}: {trail:?}"
        );
    }
    for resource in ["tenants/u/caches/answers", "tenants/t/collections/docs"] {
        assert!(
            trail
                .iter()
                .any(|e| e.outcome == "PERMISSION_DENIED" && e.resource == resource),
            "{resource}: {trail:?}"
        );
    }
}

/// An Import bigger than its tenant's write limit lets through at the client's speed is paced to
/// the limit, not cut off part-way: each message waits for the tenant's write bucket before it
/// is decoded, and the whole file arrives. Another tenant's writes go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_past_its_write_limit_is_paced_not_cut_off() {
    const DIM: usize = 8;
    let (server, _dir) = server_with("default-write-bytes-per-second = 1000000\n");
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    let other = seeded_tenant(&mut c, "u", 1, DIM).await;
    let batches: Vec<Vec<bulkhead_formats::RecordRow>> = (0..40)
        .map(|b| {
            (0..500)
                .map(|i| bulkhead_formats::RecordRow {
                    id: format!("r{b}-{i}"),
                    vector: unit((b * 500 + i) as u64, DIM),
                    text: Some("x".repeat(60)),
                    metadata: Default::default(),
                    ttl_seconds: None,
                })
                .collect()
        })
        .collect();
    let ipc = bulkhead_formats::encode_stream(batches.iter().map(Vec::as_slice), DIM).unwrap();
    assert!(ipc.len() > 2_000_000, "{}", ipc.len());
    // The SDK bounds a stream by its stream timeout, not its per-call one, which the pacing
    // outlasts.
    let sdk = bulkhead_client::Client::builder(format!("http://{}", server.addr))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let importer = sdk.tenant("t", &secret).unwrap();
    let started = std::time::Instant::now();
    let again = ipc.clone();
    let import = tokio::spawn(async move { importer.import_arrow("docs", &ipc).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elsewhere = pb::UpsertRequest {
        collection: "tenants/u/collections/docs".into(),
        records: vec![record("w", 1, DIM, "")],
    };
    c.records.upsert(authed(&other, elsewhere)).await.unwrap();
    assert!(!import.is_finished(), "the import is still paced");
    let imported = import.await.unwrap().expect("paced, not refused");
    // A second's worth on a full bucket, then a megabyte a second.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(imported.imported, 20_000);
    let sdk_tenant = sdk.tenant("t", &secret).unwrap();
    assert_eq!(
        sdk_tenant.collection("docs").await.unwrap().record_count,
        20_001
    );
    // With a stream timeout as short, the same import (now more than a second's worth in debt
    // behind the first) is cut off by the client's deadline.
    let short = bulkhead_client::Client::builder(format!("http://{}", server.addr))
        .stream_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let cut = short
        .tenant("t", &secret)
        .unwrap()
        .import_arrow("docs", &again)
        .await
        .unwrap_err();
    assert!(
        matches!(cut, bulkhead_client::ClientError::DeadlineExceeded(_)),
        "{cut:?}"
    );
}

/// Large writes are read whole by the server before they are decoded, so a tenant's clients
/// could have it hold as many of them as they open calls, each up to `max-message-bytes`,
/// sending their first bytes and then nothing. Now a tenant's large writes being read hold at
/// most `tenant-write-bytes-in-flight` bytes (past it `RESOURCE_EXHAUSTED`, another tenant's
/// unaffected), and one whose body stalls holds them only until the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_writes_hold_a_bounded_part_of_memory_until_the_request_timeout() {
    stalled_writes_of_one_tenant_are_bounded_until_the_request_timeout(90, |len| {
        assert!(len > 64 << 10, "past the bulk threshold")
    })
    .await;
}

/// Small writes (under the 64 KiB past which the server reads a write whole itself) used to be
/// left to tonic, which buffered each one a client began and stalled until the request timeout,
/// outside every bound but the connections it opened. They hold their bytes of the tenant's
/// `tenant-write-bytes-in-flight` from their first bytes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_small_writes_count_against_the_same_bound() {
    stalled_writes_of_one_tenant_are_bounded_until_the_request_timeout(20, |len| {
        assert!(len < 64 << 10, "under the bulk threshold")
    })
    .await;
}

/// Eight Upserts of `records` kilobyte records stalled mid-message by one tenant, with room for
/// three at once (`sized` checks the message's length): five are refused naming
/// `tenant-write-bytes-in-flight`, three are held while another tenant writes, and they end at
/// the request timeout and give their bytes back.
async fn stalled_writes_of_one_tenant_are_bounded_until_the_request_timeout(
    records: u64,
    sized: impl FnOnce(usize),
) {
    const DIM: usize = 8;
    let upsert = |tenant: &str| kilobyte_upsert(tenant, records, DIM);
    let message = prost::Message::encode_to_vec(&upsert("t"));
    sized(message.len());
    // Room for three of them at once.
    let (server, _dir) = server_with(&format!(
        "request-timeout-secs = 3\ntenant-write-bytes-in-flight = {}\n",
        message.len() * 7 / 2
    ));
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    let other = seeded_tenant(&mut c, "u", 1, DIM).await;

    let (refused, mut held) = stalled_writes(&server, &secret, &message, 8, 5).await;
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("tenant-write-bytes-in-flight"),
            "{status:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(held.try_join_next().is_none(), "three are held");
    assert_eq!(held.len(), 3);
    // The other tenant's writes are not bounded by them.
    let answered = c.records.upsert(authed(&other, upsert("u"))).await.unwrap();
    assert_eq!(answered.into_inner().upserted, records);
    // The held ones end at the request timeout, with an error, and give their bytes back.
    ended_at_the_request_timeout(held).await;
    let answered = c
        .records
        .upsert(authed(&secret, upsert("t")))
        .await
        .unwrap();
    assert_eq!(answered.into_inner().upserted, records);
}

/// Writes of `message` stalled mid-message by `secret`'s callers, `calls` of them: the statuses
/// of the first `refused` to end (each within 30 s), and the calls still held.
async fn stalled_writes(
    server: &Server,
    secret: &str,
    message: &[u8],
    calls: usize,
    refused: usize,
) -> (Vec<tonic::Status>, tokio::task::JoinSet<tonic::Status>) {
    let channel = server.channel().await;
    let mut stalled = tokio::task::JoinSet::new();
    for _ in 0..calls {
        let (channel, secret, body) = (
            channel.clone(),
            secret.to_owned(),
            framed_prefix(message, 2_000),
        );
        stalled.spawn(async move {
            call_with_body(
                channel,
                "/bulkhead.v1.RecordService/Upsert",
                &secret,
                body,
                Then::Stall,
            )
            .await
        });
    }
    let mut ended = Vec::new();
    while ended.len() < refused {
        let status = tokio::time::timeout(Duration::from_secs(30), stalled.join_next())
            .await
            .expect("the writes past the bound are refused, not held")
            .unwrap()
            .unwrap();
        ended.push(status);
    }
    (ended, stalled)
}

/// Waits for each of `held` (stalled writes) to end, as they do at the request timeout: with an
/// error, and not a refusal.
async fn ended_at_the_request_timeout(mut held: tokio::task::JoinSet<tonic::Status>) {
    while let Some(ended) = tokio::time::timeout(Duration::from_secs(30), held.join_next())
        .await
        .expect("a stalled write ends at the request timeout")
    {
        let ended = ended.unwrap();
        assert_ne!(ended.code(), Code::Ok, "{ended:?}");
        assert_ne!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    }
}

/// The operator gives one tenant room for more large writes in flight than the server's
/// `tenant-write-bytes-in-flight` through UpdateTenant (`share.write_bytes_in_flight`); the
/// other tenant keeps the server's setting, and 0 gives the tenant the server's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_own_write_bytes_in_flight_overrides_the_servers_for_it_alone() {
    const DIM: usize = 8;
    let message = prost::Message::encode_to_vec(&kilobyte_upsert("t", 90, DIM));
    let room_for = |writes: usize| (message.len() * writes + message.len() / 2) as i64;
    let (server, _dir) = server_with(&format!(
        "request-timeout-secs = 3\ntenant-write-bytes-in-flight = {}\n",
        room_for(1)
    ));
    let mut c = server.clients().await;
    let big = seeded_tenant(&mut c, "big", 1, DIM).await;
    let small = seeded_tenant(&mut c, "small", 1, DIM).await;
    let share = set_share(&mut c, "big", "write_bytes_in_flight", room_for(3))
        .await
        .unwrap();
    assert_eq!(share.write_bytes_in_flight, room_for(3));

    let to = |tenant: &str| prost::Message::encode_to_vec(&kilobyte_upsert(tenant, 90, DIM));
    let (refused, mut big_held) = stalled_writes(&server, &big, &to("big"), 6, 3).await;
    let (refused_small, mut small_held) = stalled_writes(&server, &small, &to("small"), 3, 2).await;
    for (status, limit) in refused
        .iter()
        .map(|s| (s, room_for(3)))
        .chain(refused_small.iter().map(|s| (s, room_for(1))))
    {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains(&format!("limit of {limit}"))
                && status.message().contains("share.write_bytes_in_flight"),
            "{status:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for held in [&mut big_held, &mut small_held] {
        assert!(held.try_join_next().is_none(), "the rest are held");
    }
    assert_eq!(
        (big_held.len(), small_held.len()),
        (3, 1),
        "held within each limit"
    );
    for held in [big_held, small_held] {
        ended_at_the_request_timeout(held).await;
    }

    // 0 restores the server's setting.
    let share = set_share(&mut c, "big", "write_bytes_in_flight", 0)
        .await
        .unwrap();
    assert_eq!(share.write_bytes_in_flight, 0);
    let (refused, held) = stalled_writes(&server, &big, &to("big"), 3, 2).await;
    assert!(
        refused
            .iter()
            .all(|s| s.message().contains(&format!("limit of {}", room_for(1)))),
        "{refused:?}"
    );
    assert_eq!(held.len(), 1);
    ended_at_the_request_timeout(held).await;

    let bad = set_share(&mut c, "big", "write_bytes_in_flight", (1 << 40) + 1)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("share.write_bytes_in_flight"),
        "{}",
        bad.message()
    );
}

/// A large write to another tenant's collection, or with a READ key, is refused from its first
/// bytes, as the usual path would refuse it (`PERMISSION_DENIED`, in the caller's audit trail),
/// and nothing more of it is read: a body that never ends is answered all the same. tonic used
/// to receive such a message whole before its handler could refuse it, so these writes were
/// memory outside any tenant's bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_the_caller_may_not_make_is_refused_from_its_first_bytes() {
    const DIM: usize = 8;
    let (server, _dir) = server_with("request-timeout-secs = 30\n");
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    seeded_tenant(&mut c, "u", 1, DIM).await;
    let (_, reader) = create_key(&mut c, "t", pb::Role::Read, None).await;
    for (caller, target) in [(&secret, "u"), (&reader, "t")] {
        let message = prost::Message::encode_to_vec(&kilobyte_upsert(target, 90, DIM));
        let refused = tokio::time::timeout(
            Duration::from_secs(20),
            call_with_body(
                server.channel().await,
                "/bulkhead.v1.RecordService/Upsert",
                caller,
                framed_prefix(&message, 2_000),
                Then::Stall,
            ),
        )
        .await
        .expect("refused without the rest of the message");
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{target}: {refused:?}"
        );
    }
    let denied = audit_events(&mut c, &secret, "t")
        .await
        .into_iter()
        .filter(|e| e.method == "RecordService/Upsert" && e.outcome == "PERMISSION_DENIED")
        .map(|e| e.resource)
        .collect::<Vec<_>>();
    assert_eq!(
        denied,
        ["tenants/u/collections/docs", "tenants/t/collections/docs"],
        "each refusal is audited in the caller's tenant"
    );
}
