//! SIGTERM drains and exits 0; a restart finds everything that was acknowledged.

use bulkhead_proto::v1 as pb;

use crate::harness::*;

#[tokio::test]
async fn sigterm_exits_cleanly_and_restart_keeps_data() {
    let temp = tempfile::tempdir().unwrap();
    let secret;
    {
        let mut server = Server::start_in(temp.path(), &[]);
        let mut c = server.clients().await;
        secret = seeded_tenant(&mut c, "acme", 50, 8).await;
        let status = server.terminate();
        assert!(status.success(), "exit status {status:?}");
        let log = server.log().join("\n");
        assert!(log.contains("SIGTERM received"), "{log}");
        assert!(log.contains("bulkhead stopped"), "{log}");
    }
    let server = Server::start_in(temp.path(), &[]);
    let mut c = server.clients().await;
    let hits = c
        .records
        .query(authed(
            &secret,
            pb::QueryRequest {
                collection: "tenants/acme/collections/docs".into(),
                vector: unit(7, 8),
                top_k: 100,
                include_text: true,
                ..Default::default()
            },
        ))
        .await
        .expect("the key survives the restart")
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 50);
    assert_eq!(hits[0].id, "r7");
    assert_eq!(hits[0].text.as_deref(), Some("owner=acme"));
}

#[tokio::test]
async fn first_start_without_a_token_generates_a_private_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path())
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let token_file = temp.path().join("admin.token");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !token_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no token file written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.trim().len() >= 32);
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(log.contains("admin.token"), "{log}");
    assert!(!log.contains(token.trim()), "the token reached the log");
}

#[tokio::test]
async fn get_tenant_reports_cold_warm_and_hot() {
    let temp = tempfile::tempdir().unwrap();
    let state = |t: pb::Tenant| pb::TenantState::try_from(t.state).unwrap();
    let get = || {
        authed(
            ADMIN,
            pb::GetTenantRequest {
                name: "tenants/acme".into(),
            },
        )
    };
    let secret;
    {
        let mut server = Server::start_in(temp.path(), &[]);
        let mut c = server.clients().await;
        secret = seeded_tenant(&mut c, "acme", 5, 8).await;
        let hot = c.admin.get_tenant(get()).await.unwrap().into_inner();
        assert_eq!(state(hot), pb::TenantState::Hot);
        assert!(server.terminate().success());
    }
    let server = Server::start_in(temp.path(), &[]);
    let mut c = server.clients().await;
    let after_restart = c.admin.get_tenant(get()).await.unwrap().into_inner();
    assert_eq!(
        state(after_restart),
        pb::TenantState::Cold,
        "nothing opened yet"
    );
    // The first GetTenant audits into the tenant's trail, which opens its group.
    let warm = c.admin.get_tenant(get()).await.unwrap().into_inner();
    assert_eq!(state(warm), pb::TenantState::Warm);
    c.records
        .query(authed(
            &secret,
            pb::QueryRequest {
                collection: "tenants/acme/collections/docs".into(),
                vector: unit(1, 8),
                top_k: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let hot = c.admin.get_tenant(get()).await.unwrap().into_inner();
    assert_eq!(state(hot), pb::TenantState::Hot);
}
