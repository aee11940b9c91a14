//! The command line as a new user met it (issue 22): each test drives one papercut through the
//! real `bulkhead` binary against a real server, and failed before its fix.

use std::process::Output;

use serde_json::{Value as Json, json};

use crate::cli::{bulkhead, failure, ok_json, write_fvecs};
use crate::harness::{Server, unit};

/// A server with the tenant `acme`.
fn with_acme() -> Server {
    let server = Server::start();
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "acme", "--json"],
    ));
    server
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The line of `text` that starts with `prefix`, without the prefix.
fn line_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(prefix))
}

const MORE: &str = "more events: rerun with --page-token ";

#[test]
fn audit_says_when_events_were_left_out_and_continues_from_a_token() {
    let server = with_acme();
    let dir = tempfile::tempdir().unwrap();
    // 150 upserts of one record each: more events than the default --limit of 100.
    let fvecs = dir.path().join("v.fvecs");
    write_fvecs(&fvecs, &(0..150).map(|i| unit(i, 4)).collect::<Vec<_>>());
    ok_json(bulkhead(
        &server,
        None,
        &[
            "import",
            "--tenant",
            "acme",
            "--collection",
            "docs",
            "--create",
            "--fvecs",
            fvecs.to_str().unwrap(),
            "--batch",
            "1",
            "--json",
        ],
    ));
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "--tenant", "acme", "--json"];
        args.extend_from_slice(extra);
        bulkhead(&server, None, &args)
    };
    let first = audit(&[]);
    let note = stderr(&first);
    let first = ok_json(first);
    assert_eq!(first.as_array().unwrap().len(), 100);
    let token = line_after(&note, MORE)
        .unwrap_or_else(|| panic!("no sign of the events left out: {note:?}"))
        .to_owned();

    let rest = audit(&["--page-token", &token, "--limit", "1000"]);
    assert!(line_after(&stderr(&rest), MORE).is_none(), "{rest:?}");
    let rest = ok_json(rest);
    let sequences = |events: &Json| -> Vec<u64> {
        events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect()
    };
    let (a, b) = (sequences(&first), sequences(&rest));
    assert!(a.last() < b.first(), "the next page starts after the first");
    let upserts = first
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.as_array().unwrap())
        .filter(|e| e["method"] == "RecordService/Upsert")
        .count();
    assert_eq!(upserts, 150, "both pages together hold every event once");

    // The table says so too, below the table.
    let table = bulkhead(
        &server,
        None,
        &["audit", "--tenant", "acme", "--limit", "3"],
    );
    assert!(table.status.success(), "{table:?}");
    assert!(line_after(&stderr(&table), MORE).is_some(), "{table:?}");
}

#[test]
fn key_revoke_takes_the_name_key_list_prints_and_says_each_error_once() {
    let server = with_acme();
    ok_json(bulkhead(
        &server,
        None,
        &["tenant", "create", "globex", "--json"],
    ));
    let created = ok_json(bulkhead(
        &server,
        None,
        &[
            "key", "create", "--tenant", "acme", "--role", "read", "--json",
        ],
    ));
    let listed = ok_json(bulkhead(
        &server,
        None,
        &["key", "list", "--tenant", "acme", "--json"],
    ));
    let name = listed[0]["name"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], name.as_str());

    // A name of another tenant's key is refused before anything is sent.
    let other = name.replace("tenants/acme/", "tenants/globex/");
    let e = failure(bulkhead(
        &server,
        None,
        &["key", "revoke", "--tenant", "acme", &other],
    ));
    assert!(
        e.contains("belongs to tenant \"globex\", not to --tenant \"acme\""),
        "{e}"
    );

    let revoked = bulkhead(&server, None, &["key", "revoke", "--tenant", "acme", &name]);
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(
        String::from_utf8_lossy(&revoked.stdout).trim(),
        format!("revoked {name}")
    );
    let listed = ok_json(bulkhead(
        &server,
        None,
        &["key", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(listed[0]["revoked"], true);

    // Errors say what is wrong once.
    let missing = failure(bulkhead(
        &server,
        None,
        &["key", "revoke", "--tenant", "acme", "nokey"],
    ));
    assert_eq!(missing.matches("not found").count(), 1, "{missing}");
    assert!(missing.contains("nokey"), "{missing}");
    let malformed = failure(bulkhead(
        &server,
        None,
        &["key", "revoke", "--tenant", "acme", "No-Key"],
    ));
    assert_eq!(malformed.matches("invalid").count(), 1, "{malformed}");
    // So do other commands' not-found and already-exists errors.
    let again = failure(bulkhead(&server, None, &["tenant", "create", "acme"]));
    assert_eq!(again.matches("already exists").count(), 1, "{again}");
    let gone = failure(bulkhead(
        &server,
        None,
        &["collection", "get", "--tenant", "acme", "nope"],
    ));
    assert_eq!(gone.matches("not found").count(), 1, "{gone}");
}

#[test]
fn the_usage_line_shows_the_connection_flags_as_optional() {
    // The helper sets BULKHEAD_ENDPOINT and BULKHEAD_ADMIN_TOKEN, as a configured shell does;
    // clap counted them as given and printed them in the usage line as if required.
    let server = Server::start();
    let usage = |out: &Output| {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
        line_after(&text, "Usage: ")
            .unwrap_or_else(|| panic!("no usage line: {text}"))
            .to_owned()
    };
    let help = bulkhead(&server, None, &["tenant", "list", "--help"]);
    assert!(help.status.success(), "{help:?}");
    assert_eq!(usage(&help), "bulkhead tenant list [OPTIONS]");
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help_text.contains("--endpoint <ENDPOINT>")
            && help_text.contains("[env: BULKHEAD_ADMIN_TOKEN"),
        "the flags are still listed, with their variables: {help_text}"
    );
    for (args, expected) in [
        (
            &["tenant", "get"][..],
            "bulkhead tenant get [OPTIONS] <TENANT>",
        ),
        (
            &["tenant", "list", "--no-such-flag"],
            "bulkhead tenant list [OPTIONS]",
        ),
        (
            &["key", "create", "--tenant", "acme", "--key", "k"],
            "bulkhead key create [OPTIONS] --tenant <TENANT> --role <ROLE>",
        ),
        (
            &["query", "--tenant", "acme"],
            "bulkhead query [OPTIONS] --tenant <TENANT> --collection <COLLECTION>",
        ),
    ] {
        let out = bulkhead(&server, None, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(usage(&out), expected, "{args:?}");
    }
}

#[test]
fn mutating_commands_print_json_with_json() {
    let server = with_acme();
    let key = ok_json(bulkhead(
        &server,
        None,
        &[
            "key", "create", "--tenant", "acme", "--role", "write", "--json",
        ],
    ));
    let name = key["name"].as_str().unwrap();
    let id = name.rsplit('/').next().unwrap();
    assert_eq!(
        ok_json(bulkhead(
            &server,
            None,
            &["key", "revoke", "--tenant", "acme", id, "--json"],
        )),
        json!({ "revoked": name })
    );
    ok_json(bulkhead(
        &server,
        None,
        &[
            "collection",
            "create",
            "--tenant",
            "acme",
            "docs",
            "--dimension",
            "4",
            "--json",
        ],
    ));
    assert_eq!(
        ok_json(bulkhead(
            &server,
            None,
            &["collection", "delete", "--tenant", "acme", "docs", "--json"],
        )),
        json!({ "deleted": "tenants/acme/collections/docs" })
    );
    // Without --json, people still get a sentence.
    let create = [
        "collection",
        "create",
        "--tenant",
        "acme",
        "docs",
        "--dimension",
        "4",
    ];
    assert!(bulkhead(&server, None, &create).status.success());
    let table = bulkhead(
        &server,
        None,
        &["collection", "delete", "--tenant", "acme", "docs"],
    );
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        "deleted tenants/acme/collections/docs\n"
    );
}

#[test]
fn role_takes_exactly_read_write_and_tenant_admin() {
    let server = with_acme();
    const VALUES: &str = "[possible values: read, write, tenant-admin]";
    for wrong in ["admin", "TENANT_ADMIN", "Read"] {
        let out = bulkhead(
            &server,
            None,
            &["key", "create", "--tenant", "acme", "--role", wrong],
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let e = stderr(&out);
        assert!(e.contains(VALUES), "{wrong}: {e}");
        assert!(!e.contains("WRITE"), "only the values the flag takes: {e}");
    }
    let help = bulkhead(&server, None, &["key", "create", "--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains(VALUES),
        "{help:?}"
    );
    for role in ["read", "write", "tenant-admin"] {
        ok_json(bulkhead(
            &server,
            None,
            &[
                "key", "create", "--tenant", "acme", "--role", role, "--json",
            ],
        ));
    }
}

/// `bulkhead args... --tenant acme --json` as the admin; its JSON.
fn as_acme(server: &Server, args: &[&str]) -> Json {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--tenant", "acme", "--json"]);
    ok_json(bulkhead(server, None, &all))
}

/// 30 JSON-lines records of dimension 4: `lang` cycles en/de/fr, `year` is 2000 + i % 10,
/// `score` is i / 10, and every 4th has `public: true`.
fn tagged_docs(dir: &std::path::Path) -> String {
    let lines: Vec<String> = (0..30u64)
        .map(|i| {
            let lang = ["en", "de", "fr"][i as usize % 3];
            let mut d = json!({
                "id": format!("r{i}"),
                "vector": unit(i, 4),
                "lang": lang,
                "year": 2000 + i % 10,
                "score": i as f64 / 10.0,
            });
            if i % 4 == 0 {
                d["public"] = json!(true);
            }
            d.to_string()
        })
        .collect();
    let path = dir.join("d.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

const EVERY_TYPE: [&str; 8] = [
    "--index",
    "lang=keyword",
    "--index",
    "year=integer",
    "--index",
    "score=float",
    "--index",
    "public=bool",
];

#[test]
fn indexed_fields_are_declared_on_create_and_shown_by_get() {
    let server = with_acme();
    let dir = tempfile::tempdir().unwrap();
    let mut create = vec!["collection", "create", "docs", "--dimension", "4"];
    create.extend_from_slice(&EVERY_TYPE);
    let created = as_acme(&server, &create);
    let declared =
        json!({"lang": "KEYWORD", "public": "BOOL", "score": "FLOAT", "year": "INTEGER"});
    assert_eq!(created["indexed_fields"], declared);
    assert_eq!(
        as_acme(&server, &["collection", "get", "docs"])["indexed_fields"],
        declared
    );
    let table = bulkhead(
        &server,
        None,
        &["collection", "get", "--tenant", "acme", "docs"],
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("indexed_fields") && table.contains("\"year\":\"INTEGER\""),
        "{table}"
    );
    let bad_type = failure(bulkhead(
        &server,
        None,
        &[
            "collection",
            "create",
            "--tenant",
            "acme",
            "x",
            "--dimension",
            "4",
            "--index",
            "year=int",
        ],
    ));
    assert!(
        bad_type.contains("expected keyword, integer, float or bool"),
        "{bad_type}"
    );

    // `import --create` declares them too; without --create, --index is refused.
    let docs = tagged_docs(dir.path());
    let import = [
        "import",
        "--collection",
        "more",
        "--index",
        "lang=keyword",
        "--docs",
        &docs,
    ];
    let without_create = bulkhead(&server, None, &import);
    assert_eq!(without_create.status.code(), Some(2), "{without_create:?}");
    let mut with_create = import.to_vec();
    with_create.push("--create");
    assert_eq!(as_acme(&server, &with_create)["imported"], 30);
    assert_eq!(
        as_acme(&server, &["collection", "get", "more"])["indexed_fields"],
        json!({"lang": "KEYWORD"})
    );
}

/// `bulkhead query` on acme's `docs` for all hits, with these `--where` conditions.
fn query<'a>(conditions: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "query",
        "--tenant",
        "acme",
        "--collection",
        "docs",
        "--vector",
        "1,0,0,0",
        "--top-k",
        "100",
    ];
    for c in conditions {
        args.extend_from_slice(&["--where", c]);
    }
    args
}

#[test]
fn query_where_filters_on_indexed_fields_typed_by_their_declaration() {
    let server = with_acme();
    let dir = tempfile::tempdir().unwrap();
    let mut create = vec!["collection", "create", "docs", "--dimension", "4"];
    create.extend_from_slice(&EVERY_TYPE);
    as_acme(&server, &create);
    let docs = tagged_docs(dir.path());
    as_acme(
        &server,
        &["import", "--collection", "docs", "--docs", &docs],
    );

    let ids = |conditions: &[&str]| -> Vec<u64> {
        let mut args = query(conditions);
        args.push("--json");
        let hits = ok_json(bulkhead(&server, None, &args));
        let mut ids: Vec<u64> = hits
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap()[1..].parse().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    let expect = |pred: fn(u64) -> bool| (0..30).filter(|i| pred(*i)).collect::<Vec<u64>>();
    assert_eq!(ids(&["lang=de"]), expect(|i| i % 3 == 1));
    assert_eq!(ids(&["lang!=de"]), expect(|i| i % 3 != 1));
    assert_eq!(ids(&["lang in en, fr"]), expect(|i| i % 3 != 1));
    assert_eq!(
        ids(&["year>=2005", "year<2008"]),
        expect(|i| (5..8).contains(&(i % 10)))
    );
    assert_eq!(ids(&["year>2007"]), expect(|i| i % 10 > 7));
    assert_eq!(ids(&["year<=2001"]), expect(|i| i % 10 <= 1));
    assert_eq!(ids(&["year=2003"]), expect(|i| i % 10 == 3));
    assert_eq!(ids(&["score>1.5"]), expect(|i| i > 15));
    assert_eq!(ids(&["public exists"]), expect(|i| i % 4 == 0));
    assert_eq!(ids(&["public=true", "lang=en"]), expect(|i| i % 12 == 0));

    // Refused before the query is sent, naming the problem.
    let refused = |condition: &str| failure(bulkhead(&server, None, &query(&[condition])));
    let e = refused("color=red");
    assert!(
        e.contains(
            "field \"color\" is not indexed in collection docs; \
             its indexed fields: lang, public, score, year"
        ),
        "{e}"
    );
    let e = refused("year>=soon");
    assert!(
        e.contains("\"year\" is an integer field; \"soon\" is not an integer"),
        "{e}"
    );
    assert!(refused("lang>=en").contains("\"lang\" is a keyword field"));
    assert!(refused("public=yes").contains("not true or false"));
    let malformed = bulkhead(&server, None, &query(&["lang ~ en"]));
    assert_eq!(malformed.status.code(), Some(2), "{malformed:?}");
    assert!(
        stderr(&malformed).contains("expected field=value"),
        "{malformed:?}"
    );
    let audit = as_acme(&server, &["audit", "--limit", "1000"]);
    let sent_badly = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "RecordService/Query" && e["outcome"] != "OK")
        .count();
    assert_eq!(sent_badly, 0, "{audit}");
}
