//! What an operator meets outside the data path: updating one limit without resetting the
//! others, an import stopped midway that says how far it got, health and reflection that
//! generic gRPC tools can use, a shutdown that warns only when something is wrong, a failed
//! bind that leaves no trace, a rotated admin token that doesn't linger on disk, and settings
//! laid file, then environment, then flag.

use std::io::Write;
use std::process::Command;

use bulkhead_proto::v1 as pb;
use tokio_stream::StreamExt;

use crate::cli::{bulkhead, ok_json, write_fvecs};
use crate::harness::{ADMIN, Server, authed, bulkhead_bin, unit};

const LIMITS: [&str; 7] = [
    "max_collections",
    "max_records",
    "max_stored_bytes",
    "requests_per_second",
    "burst",
    "write_bytes_per_second",
    "audit_retention_seconds",
];

#[test]
fn a_tenant_update_changes_only_the_limits_given() {
    let server = Server::start();
    let created = ok_json(bulkhead(
        &server,
        None,
        &[
            "tenant",
            "create",
            "acme",
            "--max-collections",
            "3",
            "--max-records",
            "100",
            "--max-stored-bytes",
            "1000000",
            "--requests-per-second",
            "50",
            "--burst",
            "80",
            "--write-bytes-per-second",
            "4096",
            "--audit-retention",
            "1d",
            "--json",
        ],
    ));
    for limit in LIMITS {
        assert!(created[limit].as_f64().unwrap() > 0.0, "{limit}: {created}");
    }
    let updated = ok_json(bulkhead(
        &server,
        None,
        &["tenant", "update", "acme", "--max-records", "0", "--json"],
    ));
    let mut want = created.clone();
    want["max_records"] = 0.into();
    for limit in LIMITS {
        assert_eq!(updated[limit], want[limit], "{limit}");
    }
    let updated = ok_json(bulkhead(
        &server,
        None,
        &[
            "tenant",
            "update",
            "acme",
            "--requests-per-second",
            "10",
            "--json",
        ],
    ));
    want["requests_per_second"] = 10.0.into();
    for limit in LIMITS {
        assert_eq!(updated[limit], want[limit], "{limit}");
    }
    // The collection quota of 3 still holds.
    for (i, outcome) in [true, true, true, false].into_iter().enumerate() {
        let out = bulkhead(
            &server,
            None,
            &[
                "collection",
                "create",
                &format!("c{i}"),
                "--tenant",
                "acme",
                "--dimension",
                "3",
            ],
        );
        assert_eq!(out.status.success(), outcome, "collection {i}: {out:?}");
    }
    let deleted = ok_json(bulkhead(
        &server,
        None,
        &["tenant", "delete", "acme", "--json"],
    ));
    assert_eq!(deleted, serde_json::json!({"deleted": "tenants/acme"}));
}

#[tokio::test]
async fn update_masks_name_leaf_fields_and_unknown_ones_are_refused() {
    let server = Server::start();
    let mut c = server.clients().await;
    crate::harness::create_tenant(&mut c, "acme").await;
    let update = |paths: &[&str], tenant: pb::Tenant| {
        authed(
            ADMIN,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: "tenants/acme".into(),
                    ..tenant
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
            },
        )
    };
    let both = pb::Tenant {
        quota: Some(pb::Quota {
            max_collections: 5,
            max_records: 9,
            max_stored_bytes: 0,
        }),
        ..Default::default()
    };
    let t = c
        .admin
        .update_tenant(update(&["quota"], both))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.quota.unwrap().max_collections, 5);
    let only_records = pb::Tenant {
        quota: Some(pb::Quota {
            max_records: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = c
        .admin
        .update_tenant(update(&["quota.max_records"], only_records))
        .await
        .unwrap()
        .into_inner();
    let q = t.quota.unwrap();
    assert_eq!((q.max_collections, q.max_records), (5, 1));
    let refused = c
        .admin
        .update_tenant(update(&["quota.bogus"], pb::Tenant::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("quota.max_records"));
}

/// `bulkhead import` of 3,000 four-dimensional vectors (an fvecs file written in `dir`) into
/// tenant acme's collection `docs`, created, `batch` records per request, one at a time.
fn import_3000_into_acme(
    server: &Server,
    dir: &std::path::Path,
    batch: &str,
    extra: &[&str],
) -> std::process::Output {
    let fvecs = dir.join("v.fvecs");
    let rows: Vec<Vec<f32>> = (0..3000).map(|i| unit(i, 4)).collect();
    write_fvecs(&fvecs, &rows);
    let mut args = vec![
        "import",
        "--tenant",
        "acme",
        "--collection",
        "docs",
        "--create",
        "--fvecs",
        fvecs.to_str().unwrap(),
        "--batch",
        batch,
        "--concurrency",
        "1",
    ];
    args.extend_from_slice(extra);
    bulkhead(server, None, &args)
}

#[test]
fn an_import_stopped_by_a_quota_says_how_many_records_went_in() {
    let server = Server::start();
    ok_json(bulkhead(
        &server,
        None,
        &[
            "tenant",
            "create",
            "acme",
            "--max-records",
            "1200",
            "--json",
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = import_3000_into_acme(&server, dir.path(), "500", &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1000 of 3000 records were imported"),
        "{stderr}"
    );
    assert!(stderr.contains("resource exhausted"), "{stderr}");
}

/// An import past its tenant's write limit waits as the server says and goes in whole; a quota's
/// refusal (no wait) still ends it (above).
#[test]
fn an_import_past_its_write_limit_is_paced_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bulkhead.toml");
    std::fs::write(&config, "default-write-bytes-per-second = 20000\n").unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--json"],
    ));
    // Each batch of 1,000 is more than a second of the limit: every one after the first is
    // refused until the bucket is full again.
    let imported = ok_json(import_3000_into_acme(
        &server,
        dir.path(),
        "1000",
        &["--json"],
    ));
    assert_eq!(imported["imported"], 3000, "{imported}");
}

/// `async fn $name(server) -> service names`: lists the services over one reflection version
/// and checks that it resolves the health service's file. A macro, since each version has its
/// own generated types.
macro_rules! reflection_client {
    ($name:ident, $version:ident) => {
        async fn $name(server: &Server) -> Vec<String> {
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, ServerReflectionResponse,
            };
            let mut client = ServerReflectionClient::new(server.channel().await);
            let ask = |m: MessageRequest| ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            };
            let requests = tokio_stream::iter([
                ask(MessageRequest::ListServices(String::new())),
                ask(MessageRequest::FileContainingSymbol(
                    "grpc.health.v1.Health".into(),
                )),
            ]);
            let answers: Vec<ServerReflectionResponse> = client
                .server_reflection_info(requests)
                .await
                .unwrap()
                .into_inner()
                .collect::<Result<_, _>>()
                .await
                .unwrap();
            let Some(MessageResponse::FileDescriptorResponse(file)) = &answers[1].message_response
            else {
                panic!("health's file not resolved: {:?}", answers[1]);
            };
            assert!(!file.file_descriptor_proto.is_empty());
            match &answers[0].message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    l.service.iter().map(|s| s.name.clone()).collect()
                }
                other => panic!("{other:?}"),
            }
        }
    };
}

reflection_client!(reflection_v1, v1);
// grpcurl before 1.8.8 and Python's grpc_reflection speak only v1alpha.
reflection_client!(reflection_v1alpha, v1alpha);

#[tokio::test]
async fn health_and_both_reflection_versions_serve_generic_tools() {
    let server = Server::start();
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    for services in [
        reflection_v1(&server).await,
        reflection_v1alpha(&server).await,
    ] {
        for wanted in [
            "grpc.health.v1.Health",
            "bulkhead.v1.RecordService",
            "bulkhead.v1.SemanticCacheService",
        ] {
            assert!(
                services.iter().any(|s| s == wanted),
                "{wanted} in {services:?}"
            );
        }
    }
}

/// Scrapes `/metrics` once on a kept-alive connection, which is returned still open.
fn scrape_metrics(server: &Server) -> std::net::TcpStream {
    use std::io::Read;
    let addr = server
        .log()
        .iter()
        .find_map(|l| {
            l.contains("metrics listening")
                .then(|| l.split_whitespace().find_map(|w| w.strip_prefix("addr=")))
                .flatten()
                .map(str::to_owned)
        })
        .expect("the metrics address is logged");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bulkhead\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    stream
}

#[test]
fn a_clean_shutdown_logs_no_warning_and_closes_the_engine() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path(), &["--metrics-listen", "127.0.0.1:0"]);
    // A client that comes and goes, as the CLI does, and a scraper that keeps its connection.
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--json"],
    ));
    let _scraper = scrape_metrics(&server);
    assert!(server.terminate().success());
    let log = server.log();
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(
        !log.iter().any(|l| l.contains("still reference")),
        "the engine was dropped: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("bulkhead stopped")),
        "{log:#?}"
    );
}

#[test]
fn a_failed_bind_leaves_no_data_directory_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(bulkhead_bin())
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("binding {addr}")), "{stderr}");
    assert!(!data.exists(), "no data directory (nor admin token) made");
}

/// `bulkhead serve --print-config` with the variables of the server's environment removed,
/// then `env` set.
fn printed_config(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(bulkhead_bin());
    command.args(["serve", "--print-config"]).args(args);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("BULKHEAD_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

/// One model for the server's and the engine's settings: a key of either in the file, its
/// environment variable over the file, its flag over both; an unknown key (a misspelt engine
/// one too) or a bad value stops the server before it starts; secrets are never printed.
#[test]
fn settings_come_from_the_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bulkhead.toml");
    std::fs::write(
        &file,
        "data-dir = \"/from/file\"\nlisten = \"127.0.0.1:7001\"\nsync-writes = true\n\
         block-cache-mib = 64\nmax-top-k = 77\nadmin-token = \"file-admin-token-0123456\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let out = printed_config(
        &["--config", config, "--listen", "127.0.0.1:7003"],
        &[
            ("BULKHEAD_DATA_DIR", "/from/env"),
            ("BULKHEAD_LISTEN", "127.0.0.1:7002"),
            ("BULKHEAD_SYNC_WRITES", "false"),
            (
                "BULKHEAD_JWT_HS256_SECRET",
                "env-jwt-secret-0123456789-0123456789",
            ),
        ],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "data-dir = \"/from/env\"",
        "listen = \"127.0.0.1:7003\"",
        "sync-writes = false",
        "block-cache-mib = 64",
        "max-top-k = 77",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line} in:\n{printed}");
    }
    assert!(
        !printed.contains("admin-token") && !printed.contains("secret"),
        "{printed}"
    );

    // The config file may itself come from the environment.
    let from_env = printed_config(&[], &[("BULKHEAD_CONFIG", config)]);
    let printed = String::from_utf8_lossy(&from_env.stdout);
    assert!(printed.contains("data-dir = \"/from/file\""), "{printed}");

    for (bad, says) in [
        (
            "block-cache-mb = 64\n",
            "unknown config key(s): block-cache-mb",
        ),
        (
            "sweep-interval-secs = 0\n",
            "sweep-interval-secs must be positive",
        ),
        ("listen = \"nowhere\"\n", "invalid socket address"),
    ] {
        std::fs::write(&file, bad).unwrap();
        let out = printed_config(&["--config", config], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{bad}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_rotated_admin_token_does_not_linger_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    let mut first = Server::start_with_admin_token(dir.path(), "127.0.0.1:0", &[], None);
    let generated = std::fs::read_to_string(&token_file).unwrap();
    assert!(first.terminate().success());

    let mut rotated = Server::start_with_admin_token(dir.path(), "127.0.0.1:0", &[], Some(ADMIN));
    assert!(!token_file.exists(), "the replaced token's file is removed");
    let mut c = rotated.clients().await;
    let refused = c
        .admin
        .list_tenants(authed(generated.trim(), pb::ListTenantsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().contains("rotated"),
        "{}",
        refused.message()
    );
    assert!(rotated.terminate().success());
}
