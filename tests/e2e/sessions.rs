//! Sessions over real gRPC: two sessions of one tenant with the same memory ids and vectors
//! never see each other's items; a token bound to a session reaches that session and nothing
//! else; an ended or idle-expired session is NOT_FOUND at once and swept in the background; a
//! `kill -9` and restart keep the live ones.

use std::time::{Duration, Instant};

use bulkhead_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::end_users::{add_key, claims, sign, signing_key, with};
use crate::harness::*;

const DIM: usize = 8;

fn session_name(tenant: &str, session: &str) -> String {
    format!("tenants/{tenant}/sessions/{session}")
}

fn item(id: &str, seed: u64, text: &str) -> pb::MemoryItem {
    pb::MemoryItem {
        id: id.into(),
        kind: pb::MemoryKind::Turn.into(),
        text: text.into(),
        vector: unit(seed, DIM),
        ..Default::default()
    }
}

fn append(
    secret: &str,
    tenant: &str,
    session: &str,
    items: Vec<pb::MemoryItem>,
) -> tonic::Request<pb::AppendRequest> {
    authed(
        secret,
        pb::AppendRequest {
            session: session_name(tenant, session),
            items,
        },
    )
}

fn recall(
    secret: &str,
    tenant: &str,
    session: &str,
    seed: u64,
) -> tonic::Request<pb::RecallRequest> {
    authed(
        secret,
        pb::RecallRequest {
            session: session_name(tenant, session),
            vector: unit(seed, DIM),
            top_k: 100,
            ..Default::default()
        },
    )
}

fn history(secret: &str, tenant: &str, session: &str) -> tonic::Request<pb::HistoryRequest> {
    authed(
        secret,
        pb::HistoryRequest {
            session: session_name(tenant, session),
            page_size: 1000,
            ..Default::default()
        },
    )
}

/// The texts of a session's history, read with `secret`.
async fn texts(
    c: &mut Clients,
    secret: &str,
    tenant: &str,
    session: &str,
) -> Result<Vec<String>, tonic::Status> {
    Ok(c.memory
        .history(history(secret, tenant, session))
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(|i| i.text)
        .collect())
}

#[tokio::test]
async fn sessions_with_the_same_ids_and_vectors_never_see_each_others_items() {
    let server = Server::start();
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    create_tenant(&mut c, "globex").await;
    let (_, acme) = create_key(&mut c, "acme", pb::Role::Write, None).await;
    let (_, globex) = create_key(&mut c, "globex", pb::Role::Write, None).await;
    for (secret, tenant, session) in [
        (&acme, "acme", "chat-a"),
        (&acme, "acme", "chat-b"),
        (&globex, "globex", "chat-a"),
    ] {
        create_session(&mut c, secret, tenant, session, DIM as u32, 600).await;
        let owner = format!("{tenant}/{session}");
        let items = (0..4).map(|i| item(&format!("m{i}"), i, &owner)).collect();
        let sequences = c
            .memory
            .append(append(secret, tenant, session, items))
            .await
            .unwrap()
            .into_inner()
            .sequences;
        assert_eq!(sequences, vec![0, 1, 2, 3]);
    }
    for (secret, tenant, session) in [
        (&acme, "acme", "chat-a"),
        (&acme, "acme", "chat-b"),
        (&globex, "globex", "chat-a"),
    ] {
        let owner = format!("{tenant}/{session}");
        for seed in 0..4 {
            let hits = c
                .memory
                .recall(recall(secret, tenant, session, seed))
                .await
                .unwrap()
                .into_inner()
                .items;
            assert_eq!(hits.len(), 4);
            assert!(
                hits.iter().all(|h| h.item.as_ref().unwrap().text == owner),
                "{owner}: {hits:?}"
            );
            assert_eq!(hits[0].item.as_ref().unwrap().id, format!("m{seed}"));
        }
        assert_eq!(
            texts(&mut c, secret, tenant, session).await.unwrap(),
            vec![owner; 4]
        );
    }
    // The same id again in one session is refused; another tenant's key can't name the session.
    let again = c
        .memory
        .append(append(&acme, "acme", "chat-a", vec![item("m1", 9, "dup")]))
        .await;
    assert_eq!(code(again), Code::AlreadyExists);
    assert_eq!(
        code(texts(&mut c, &globex, "acme", "chat-a").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(c.memory.recall(recall(&globex, "acme", "chat-b", 0)).await),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn a_session_bound_token_reaches_its_session_and_nothing_else() {
    let server = Server::start();
    let mut c = server.clients().await;
    let service = seeded_tenant(&mut c, "acme", 3, DIM).await;
    for session in ["mine", "theirs"] {
        create_session(&mut c, &service, "acme", session, DIM as u32, 600).await;
        let items = vec![item("m0", 0, &format!("{session}-secret"))];
        c.memory
            .append(append(&service, "acme", session, items))
            .await
            .unwrap();
    }
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let bound = |role: &str| {
        sign(
            &key,
            &kid,
            &with(claims("acme"), json!({ "session": "mine", "role": role })),
        )
    };
    let (reader, writer) = (bound("READ"), bound("WRITE"));

    assert_eq!(
        texts(&mut c, &reader, "acme", "mine").await.unwrap(),
        vec!["mine-secret"]
    );
    let hits = c
        .memory
        .recall(recall(&reader, "acme", "mine", 0))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(hits.len(), 1);
    c.memory
        .append(append(
            &writer,
            "acme",
            "mine",
            vec![item("m1", 1, "from the user")],
        ))
        .await
        .unwrap();
    // A READ token writes nothing, not even into its own session.
    let read_only = c
        .memory
        .append(append(&reader, "acme", "mine", vec![item("m2", 2, "no")]))
        .await;
    assert_eq!(code(read_only), Code::PermissionDenied);

    // Another session of its own tenant, whatever the method.
    for token in [&reader, &writer] {
        assert_eq!(
            code(texts(&mut c, token, "acme", "theirs").await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(c.memory.recall(recall(token, "acme", "theirs", 0)).await),
            Code::PermissionDenied
        );
        let planted = c
            .memory
            .append(append(
                token,
                "acme",
                "theirs",
                vec![item("x", 3, "planted")],
            ))
            .await;
        assert_eq!(code(planted), Code::PermissionDenied);
        let ended = c
            .memory
            .end_session(authed(
                token,
                pb::EndSessionRequest {
                    name: session_name("acme", "theirs"),
                },
            ))
            .await;
        assert_eq!(code(ended), Code::PermissionDenied);
        // The collections its claims list, and the tenant's session list.
        let get = c
            .records
            .get(authed(
                token,
                pb::GetRequest {
                    collection: "tenants/acme/collections/docs".into(),
                    ids: vec!["r0".into()],
                },
            ))
            .await;
        assert_eq!(code(get), Code::PermissionDenied);
        let list = c
            .memory
            .list_sessions(authed(
                token,
                pb::ListSessionsRequest {
                    parent: "tenants/acme".into(),
                    ..Default::default()
                },
            ))
            .await;
        assert_eq!(code(list), Code::PermissionDenied);
    }
    assert_eq!(
        texts(&mut c, &service, "acme", "theirs").await.unwrap(),
        vec!["theirs-secret"]
    );
    // A token of the user without a session reaches no session.
    let unbound = sign(&key, &kid, &claims("acme"));
    assert_eq!(
        code(texts(&mut c, &unbound, "acme", "mine").await),
        Code::PermissionDenied
    );
    // Each refusal is in the tenant's audit trail under the user.
    let events = audit_events(&mut c, ADMIN, "acme").await;
    let refused = events
        .iter()
        .filter(|e| {
            e.principal == "user:alice"
                && e.outcome == "PERMISSION_DENIED"
                && e.resource.contains("sessions/theirs")
        })
        .count();
    assert!(refused >= 8, "{refused} refusals audited: {events:?}");
}

#[tokio::test]
async fn ended_and_idle_sessions_are_gone_at_once_and_swept_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bulkhead.toml");
    std::fs::write(&config, "sweep-interval-secs = 1\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let (_, admin) = create_key(&mut c, "acme", pb::Role::TenantAdmin, None).await;
    create_session(&mut c, &admin, "acme", "ended", DIM as u32, 600).await;
    create_session(&mut c, &admin, "acme", "idle", DIM as u32, 1).await;
    create_session(&mut c, &admin, "acme", "live", DIM as u32, 600).await;
    for s in ["ended", "idle", "live"] {
        c.memory
            .append(append(&admin, "acme", s, vec![item("m0", 0, s)]))
            .await
            .unwrap();
    }
    c.memory
        .end_session(authed(
            &admin,
            pb::EndSessionRequest {
                name: session_name("acme", "ended"),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        code(texts(&mut c, &admin, "acme", "ended").await),
        Code::NotFound
    );
    let get = c
        .memory
        .get_session(authed(
            &admin,
            pb::GetSessionRequest {
                name: session_name("acme", "ended"),
            },
        ))
        .await;
    assert_eq!(code(get), Code::NotFound);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for s in ["ended", "idle"] {
        assert_eq!(
            code(c.memory.recall(recall(&admin, "acme", s, 0)).await),
            Code::NotFound,
            "{s}"
        );
        let late = c
            .memory
            .append(append(&admin, "acme", s, vec![item("m1", 1, "late")]))
            .await;
        assert_eq!(code(late), Code::NotFound, "{s}");
    }
    let listed = c
        .memory
        .list_sessions(authed(
            &admin,
            pb::ListSessionsRequest {
                parent: "tenants/acme".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let names: Vec<_> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["tenants/acme/sessions/live"]);
    // The sweeper reports the two it removed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let swept = |log: &[String]| -> u64 {
        log.iter()
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("dead_sessions="))
            })
            .map(|n| n.parse::<u64>().unwrap())
            .sum()
    };
    while swept(&server.log()) < 2 {
        assert!(
            Instant::now() < deadline,
            "no sweep removed the sessions: {:?}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        texts(&mut c, &admin, "acme", "live").await.unwrap(),
        vec!["live"]
    );
}

#[tokio::test]
async fn a_kill_and_restart_keep_live_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let mut c = server.clients().await;
    create_tenant(&mut c, "acme").await;
    let (_, writer) = create_key(&mut c, "acme", pb::Role::Write, None).await;
    create_session(&mut c, &writer, "acme", "chat", DIM as u32, 600).await;
    create_session(&mut c, &writer, "acme", "done", DIM as u32, 600).await;
    for s in ["chat", "done"] {
        let items = vec![item("m0", 0, "hello"), item("m1", 1, "world")];
        c.memory
            .append(append(&writer, "acme", s, items))
            .await
            .unwrap();
    }
    c.memory
        .end_session(authed(
            &writer,
            pb::EndSessionRequest {
                name: session_name("acme", "done"),
            },
        ))
        .await
        .unwrap();
    drop(server); // SIGKILL
    let server = Server::start_in(dir.path(), &[]);
    let mut c = server.clients().await;
    assert_eq!(
        texts(&mut c, &writer, "acme", "chat").await.unwrap(),
        vec!["hello", "world"]
    );
    assert_eq!(
        code(texts(&mut c, &writer, "acme", "done").await),
        Code::NotFound
    );
    let next = c
        .memory
        .append(append(
            &writer,
            "acme",
            "chat",
            vec![item("m2", 2, "again")],
        ))
        .await
        .unwrap();
    assert_eq!(next.into_inner().sequences, vec![2]);
}
