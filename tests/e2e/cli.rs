//! The `bulkhead` command's client subcommands against the real server, driven only through
//! the command line, as an operator or a script would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;

use crate::harness::{ADMIN, Server, bulkhead_bin, unit};

/// Runs `bulkhead args...` against `server`, with `key` as BULKHEAD_KEY when given.
pub(crate) fn bulkhead(server: &Server, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bulkhead_bin());
    cmd.args(args)
        .env("BULKHEAD_ENDPOINT", format!("http://{}", server.addr))
        .env_remove("BULKHEAD_KEY")
        .env_remove("BULKHEAD_TENANT")
        .env_remove("RUST_BACKTRACE");
    match key {
        Some(k) => cmd
            .env("BULKHEAD_KEY", k)
            .env_remove("BULKHEAD_ADMIN_TOKEN"),
        None => cmd.env("BULKHEAD_ADMIN_TOKEN", ADMIN),
    };
    cmd.output().expect("running bulkhead")
}

/// The JSON a successful command printed.
pub(crate) fn ok_json(out: Output) -> Json {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The error line of a failed command.
pub(crate) fn failure(out: Output) -> String {
    assert!(!out.status.success(), "expected failure: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn write_fvecs(path: &Path, rows: &[Vec<f32>]) {
    let mut f = std::fs::File::create(path).unwrap();
    for r in rows {
        f.write_all(&(r.len() as i32).to_le_bytes()).unwrap();
        for x in r {
            f.write_all(&x.to_le_bytes()).unwrap();
        }
    }
}

#[test]
fn an_operator_works_only_through_the_cli() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let t = ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--max-records", "500", "--json"],
    ));
    assert_eq!(t["name"], "tenants/acme");
    assert_eq!(t["max_records"], 500);
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "globex", "--json"],
    ));
    let listed = ok_json(bulkhead(&server, None, &["tenant", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let table = bulkhead(&server, None, &["tenant", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("tenants/globex"));

    let key = ok_json(bulkhead(
        &server,
        None,
        &[
            "key",
            "create",
            "--tenant",
            "acme",
            "--role",
            "tenant-admin",
            "--ttl",
            "1h",
            "--json",
        ],
    ));
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert_eq!(key["role"], "TENANT_ADMIN");
    assert!(key["expire_time"].is_string());
    let k = Some(secret.as_str());

    // Import 300 vectors from fvecs paired with their JSON-lines documents.
    let vectors: Vec<Vec<f32>> = (0..300).map(|i| unit(i, 8)).collect();
    let fvecs = dir.path().join("v.fvecs");
    write_fvecs(&fvecs, &vectors);
    let docs = dir.path().join("d.jsonl");
    let lines: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"id": "doc-{i}", "text": "document {i}", "section": "s{}", "secret": "x"}}"#,
                i % 3
            )
        })
        .collect();
    std::fs::write(&docs, lines.join("\n")).unwrap();
    let imported = ok_json(bulkhead(
        &server,
        k,
        &[
            "import",
            "--tenant",
            "acme",
            "--collection",
            "docs",
            "--create",
            "--fvecs",
            fvecs.to_str().unwrap(),
            "--docs",
            docs.to_str().unwrap(),
            "--skip-field",
            "secret",
            "--batch",
            "64",
            "--json",
        ],
    ));
    assert_eq!(imported["imported"], 300);
    let c = ok_json(bulkhead(
        &server,
        k,
        &["collection", "get", "--tenant", "acme", "docs", "--json"],
    ));
    assert_eq!(
        (c["records"].as_u64(), c["dimension"].as_u64()),
        (Some(300), Some(8))
    );
    assert_eq!(c["metric"], "COSINE");

    // Query by an fvecs row and by a stored record: the record itself comes first.
    let query_docs = |args: &[&str]| {
        let mut all = vec![
            "query",
            "--tenant",
            "acme",
            "--collection",
            "docs",
            "--json",
        ];
        all.extend_from_slice(args);
        ok_json(bulkhead(&server, k, &all))
    };
    let hits = query_docs(&[
        "--fvecs",
        fvecs.to_str().unwrap(),
        "--row",
        "17",
        "--top-k",
        "3",
        "--text",
        "--metadata",
    ]);
    assert_eq!(hits[0]["id"], "doc-17");
    assert_eq!(hits[0]["text"], "document 17");
    assert_eq!(hits[0]["metadata"], serde_json::json!({"section": "s2"}));
    assert_eq!(hits.as_array().unwrap().len(), 3);
    let like = query_docs(&["--like", "doc-5", "--top-k", "1"]);
    assert_eq!(like[0]["id"], "doc-5");
    let csv = (0..8)
        .map(|i| vectors[9][i].to_string())
        .collect::<Vec<_>>()
        .join(",");
    let inline = query_docs(&["--vector", &csv, "--top-k", "1"]);
    assert_eq!(inline[0]["id"], "doc-9");

    // The tenant's key can't reach the other tenant; the error says why.
    let denied = failure(bulkhead(
        &server,
        k,
        &["collection", "list", "--tenant", "globex"],
    ));
    assert!(denied.contains("permission denied"), "{denied}");
    let bad = failure(bulkhead(
        &server,
        k,
        &["collection", "list", "--tenant", "Globex"],
    ));
    assert!(bad.contains("invalid input"), "{bad}");
    let no_key = failure(bulkhead(&server, k, &["tenant", "list"]));
    assert!(no_key.contains("admin token"), "{no_key}");

    // Keys and the audit trail, with the tenant's own TENANT_ADMIN key.
    let reader = ok_json(bulkhead(
        &server,
        k,
        &[
            "key", "create", "--tenant", "acme", "--role", "read", "--json",
        ],
    ));
    let reader_id = reader["name"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let keys = ok_json(bulkhead(
        &server,
        k,
        &["key", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        bulkhead(
            &server,
            k,
            &["key", "revoke", "--tenant", "acme", &reader_id]
        )
        .status
        .success()
    );
    let revoked = failure(bulkhead(
        &server,
        reader["secret"].as_str(),
        &["collection", "list", "--tenant", "acme"],
    ));
    assert!(revoked.contains("unauthenticated"), "{revoked}");
    let audit = ok_json(bulkhead(
        &server,
        k,
        &["audit", "--tenant", "acme", "--limit", "1000", "--json"],
    ));
    let methods: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods
            .iter()
            .filter(|m| **m == "RecordService/Upsert")
            .count(),
        5,
        "{methods:?}"
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "PERMISSION_DENIED")
    );

    // Deleting: collection, then tenant.
    assert!(
        bulkhead(
            &server,
            k,
            &["collection", "delete", "--tenant", "acme", "docs"]
        )
        .status
        .success()
    );
    let gone = ok_json(bulkhead(
        &server,
        k,
        &["collection", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(gone, serde_json::json!([]));
    assert!(
        bulkhead(&server, None, &["tenant", "delete", "acme"])
            .status
            .success()
    );
    let missing = failure(bulkhead(&server, None, &["tenant", "get", "acme"]));
    assert!(missing.contains("not found"), "{missing}");
}

#[test]
fn import_rejects_inconsistent_input_before_sending_anything() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--json"],
    ));
    let fvecs = dir.path().join("v.fvecs");
    write_fvecs(&fvecs, &[unit(1, 4), unit(2, 4)]);
    let docs = dir.path().join("d.jsonl");
    std::fs::write(&docs, "{\"id\": \"a\"}\n").unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--tenant",
            "acme",
            "--collection",
            "docs",
            "--create",
        ];
        args.extend_from_slice(extra);
        failure(bulkhead(&server, None, &args))
    };
    let e = import(&[
        "--fvecs",
        fvecs.to_str().unwrap(),
        "--docs",
        docs.to_str().unwrap(),
    ]);
    assert!(e.contains("2 vectors") && e.contains("1 lines"), "{e}");
    let e = import(&["--docs", docs.to_str().unwrap()]);
    assert!(e.contains("line 1: no vector"), "{e}");
    std::fs::write(
        &docs,
        "{\"id\": \"a\", \"vector\": [1, 0]}\n{\"id\": \"b\", \"vector\": [1]}\n",
    )
    .unwrap();
    let e = import(&["--docs", docs.to_str().unwrap()]);
    assert!(e.contains("dimension 1"), "{e}");
    let e = import(&[]);
    assert!(e.contains("give --fvecs, --docs"), "{e}");
    // Nothing was created by the failed attempts.
    let listed = ok_json(bulkhead(
        &server,
        None,
        &["collection", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn the_semantic_cache_from_the_command_line() {
    let server = Server::start();
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--json"],
    ));
    let t = |args: &[&str]| {
        let mut all = vec!["cache"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--tenant", "acme", "--json"]);
        ok_json(bulkhead(&server, None, &all))
    };
    let created = t(&["create", "answers", "--dimension", "3"]);
    assert_eq!(created["name"], "tenants/acme/collections/answers");
    let stored = t(&[
        "store",
        "answers",
        "--vector",
        "1,0,0",
        "--prompt",
        "hi",
        "--response",
        "hello",
        "--scope",
        "alice",
    ]);
    assert!(stored["id"].is_string());
    let hit = t(&[
        "lookup",
        "answers",
        "--vector",
        "0.99,0.1,0",
        "--scope",
        "alice",
    ]);
    assert_eq!(
        (hit["hit"].as_bool(), hit["response"].as_str()),
        (Some(true), Some("hello"))
    );
    let other = t(&[
        "lookup",
        "answers",
        "--vector",
        "0.99,0.1,0",
        "--scope",
        "bob",
        "--min-similarity",
        "-1",
    ]);
    assert_eq!(other["hit"], false);
    let dropped = t(&["invalidate", "answers", "--scope", "alice"]);
    assert_eq!(dropped["invalidated"], 1);
    assert_eq!(
        t(&["lookup", "answers", "--vector", "1,0,0", "--scope", "alice"])["hit"],
        false
    );
}
