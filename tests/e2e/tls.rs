//! TLS on the wire: the server encrypts when given a certificate, requires client
//! certificates when given a client CA, and refuses to serve plaintext off loopback unless
//! told to. Every client the project ships (the Rust SDK, the `bulkhead` command, the leak
//! probe) is driven over it; the Python SDK's TLS tests live in `python/bulkhead/tests`.

use std::process::{Command, Output};

use bulkhead_client::{
    Client, ClientError, CollectionSpec, Metric, Query, Record, Role, TenantOptions, TlsOptions,
};

use crate::harness::{ADMIN, Server, bulkhead_bin, unit};
use crate::leakprobe::leakprobe;
use crate::pki::Pki;

fn start_tls(dir: &std::path::Path, pki: &Pki, extra: &[&str]) -> Server {
    let mut args = pki.serve_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(dir, &args)
}

async fn sdk(endpoint: &str, tls: TlsOptions) -> Result<Client, ClientError> {
    Client::builder(endpoint)
        .tls(tls)
        .max_attempts(1)
        .connect()
        .await
}

/// Creates a tenant, writes and finds a record: a round trip through every layer.
async fn round_trip(client: &Client, tenant: &str) -> Result<(), ClientError> {
    let admin = client.admin(ADMIN)?;
    admin
        .create_tenant(tenant, &TenantOptions::default())
        .await?;
    let key = admin
        .create_key(tenant, Role::Write, None, "tls test")
        .await?;
    let handle = client.tenant(tenant, &key.secret)?;
    handle
        .create_collection("docs", &CollectionSpec::new(8, Metric::Cosine))
        .await?;
    handle
        .upsert(
            "docs",
            &[Record::new("a", unit(1, 8)).with_text("over tls")],
        )
        .await?;
    let hits = handle
        .query("docs", &Query::new(unit(1, 8), 1).with_text())
        .await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text.as_deref(), Some("over tls"));
    Ok(())
}

/// Why a round trip as `tenant` through a client with `tls` fails, at connect or at the call.
async fn refusal(endpoint: &str, tls: TlsOptions, tenant: &str) -> ClientError {
    match sdk(endpoint, tls).await {
        Ok(c) => round_trip(&c, tenant).await.unwrap_err(),
        Err(e) => e,
    }
}

fn cli(endpoint: &str, extra: &[&str], args: &[&str]) -> Output {
    Command::new(bulkhead_bin())
        .args(args)
        .args(["--json", "--endpoint", endpoint])
        .args(extra)
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env_remove("BULKHEAD_KEY")
        .env_remove("BULKHEAD_TLS_CA")
        .env_remove("BULKHEAD_CLIENT_CERT")
        .env_remove("BULKHEAD_CLIENT_KEY")
        .output()
        .expect("running bulkhead")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_sdk_and_the_cli_work_over_tls_and_nothing_gets_through_in_plaintext() {
    let (data, certs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pki = Pki::new(certs.path());
    let server = start_tls(data.path(), &pki, &[]);
    assert!(
        server.log().iter().any(|l| l.contains("tls=true")),
        "{:?}",
        server.log()
    );
    let https = format!("https://{}", server.addr);
    let ca = std::fs::read(&pki.ca).unwrap();

    let client = sdk(&https, TlsOptions::default().with_ca_pem(ca.clone()))
        .await
        .unwrap();
    round_trip(&client, "acme").await.unwrap();

    // A client that doesn't trust the CA gets no session (public roots only).
    let untrusted = refusal(&https, TlsOptions::default(), "nope").await;
    assert!(
        format!("{untrusted:?}")
            .to_lowercase()
            .contains("certificate")
            || matches!(
                untrusted,
                ClientError::Unavailable(_) | ClientError::Transport(_)
            ),
        "{untrusted:?}"
    );
    // A plaintext client gets no answer from a TLS server.
    let plain = refusal(
        &format!("http://{}", server.addr),
        TlsOptions::default(),
        "plain",
    )
    .await;
    assert!(
        !matches!(
            plain,
            ClientError::AlreadyExists(_) | ClientError::NotFound(_)
        ),
        "{plain:?}"
    );
    let tenants = client.admin(ADMIN).unwrap().tenants().await.unwrap();
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["tenants/acme"],
        "only the TLS round trip got through"
    );

    // The command: with the CA it works, without it the error says why.
    let ca_arg = pki.ca.display().to_string();
    let listed = cli(&https, &["--tls-ca", &ca_arg], &["tenant", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("acme"));
    let refused = cli(&https, &[], &["tenant", "list"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&https) || stderr(&refused).contains("connecting"),
        "{}",
        stderr(&refused)
    );
    // TLS settings with an http:// endpoint are refused rather than ignored.
    let http = format!("http://{}", server.addr);
    let mixed = cli(&http, &["--tls-ca", &ca_arg], &["tenant", "list"]);
    assert!(!mixed.status.success());
    assert!(
        stderr(&mixed).contains("not an https"),
        "{}",
        stderr(&mixed)
    );
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    let (data, certs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pki = Pki::new(certs.path());
    let ca_arg = pki.ca.display().to_string();
    let server = start_tls(data.path(), &pki, &["--tls-client-ca", &ca_arg]);
    let https = format!("https://{}", server.addr);
    let ca = std::fs::read(&pki.ca).unwrap();
    let trusting = TlsOptions::default().with_ca_pem(ca);

    let no_cert = refusal(&https, trusting.clone(), "anonymous").await;
    assert!(
        matches!(
            no_cert,
            ClientError::Unavailable(_) | ClientError::Transport(_) | ClientError::Server { .. }
        ),
        "{no_cert:?}"
    );
    let rogue = trusting.clone().with_client_identity(
        std::fs::read(&pki.rogue_cert).unwrap(),
        std::fs::read(&pki.rogue_key).unwrap(),
    );
    let rogue_err = refusal(&https, rogue, "rogue").await;
    assert!(
        !matches!(
            rogue_err,
            ClientError::AlreadyExists(_) | ClientError::NotFound(_)
        ),
        "{rogue_err:?}"
    );

    let identified = trusting.with_client_identity(
        std::fs::read(&pki.client_cert).unwrap(),
        std::fs::read(&pki.client_key).unwrap(),
    );
    let client = sdk(&https, identified).await.unwrap();
    round_trip(&client, "acme").await.unwrap();
    let tenants = client.admin(ADMIN).unwrap().tenants().await.unwrap();
    assert_eq!(
        tenants.len(),
        1,
        "only the identified client got through: {tenants:?}"
    );

    let cert_arg = pki.client_cert.display().to_string();
    let key_arg = pki.client_key.display().to_string();
    let with_cert = cli(
        &https,
        &[
            "--tls-ca",
            &ca_arg,
            "--client-cert",
            &cert_arg,
            "--client-key",
            &key_arg,
        ],
        &["tenant", "list"],
    );
    assert!(with_cert.status.success(), "{}", stderr(&with_cert));
    let without = cli(&https, &["--tls-ca", &ca_arg], &["tenant", "list"]);
    assert!(
        !without.status.success(),
        "mTLS let a client without a certificate in"
    );
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused_without_the_flag() {
    let data = tempfile::tempdir().unwrap();
    // Validation runs before the port is bound, so this never listens off loopback.
    let out = Command::new(bulkhead_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("running bulkhead serve");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--insecure-plaintext") && err.contains("0.0.0.0"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        0,
        "a refused start left files behind"
    );
}

#[test]
fn the_leakprobe_runs_over_mutual_tls() {
    let (data, certs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pki = Pki::new(certs.path());
    let ca_arg = pki.ca.display().to_string();
    let server = start_tls(data.path(), &pki, &["--tls-client-ca", &ca_arg]);
    let out = Command::new(leakprobe())
        .args(["--endpoint", &format!("https://{}", server.addr)])
        .args(["--tls-ca", &ca_arg])
        .arg("--client-cert")
        .arg(&pki.client_cert)
        .arg("--client-key")
        .arg(&pki.client_key)
        .args(["--tenants", "2", "--duration", "1s", "--json"])
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("running the leak probe");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let interleaved = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "interleaved-clients")
        .expect("the interleaved probe ran");
    assert_eq!(interleaved["passed"], true, "{interleaved}");
}
