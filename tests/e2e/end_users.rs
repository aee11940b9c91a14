//! End-user tokens: a tenant registers an Ed25519 public key and its backend signs short-lived
//! tokens for its users. The server verifies a token only with the key its `kid` names, only for
//! that key's tenant, and refuses every malformed, stolen or stale one with UNAUTHENTICATED;
//! a verified end user reaches only the record methods of the collections its token lists.

use std::time::{SystemTime, UNIX_EPOCH};

use bulkhead_proto::v1 as pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pb::semantic_cache_service_client::SemanticCacheServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::harness::*;

const DIM: usize = 8;

/// An Ed25519 key pair: the PKCS#8 private key that signs, the raw public key the tenant
/// registers.
pub(crate) struct SigningKey {
    private_pkcs8: Vec<u8>,
    public_raw: Vec<u8>,
}

pub(crate) fn signing_key() -> SigningKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    SigningKey {
        private_pkcs8: pair.serialize_der(),
        public_raw: pair.public_key_raw().to_vec(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for `alice` of `tenant`, reading `docs`, for five minutes.
pub(crate) fn claims(tenant: &str) -> Value {
    json!({
        "tenant": tenant,
        "sub": "alice",
        "aud": "bulkhead",
        "role": "READ",
        "collections": ["docs"],
        "iat": now(),
        "exp": now() + 300,
    })
}

/// `claims` with `changes` laid over them (a null removes the claim).
pub(crate) fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

pub(crate) fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_der(&key.private_pkcs8),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) async fn add_key(c: &mut Clients, tenant: &str, id: &str, key: &SigningKey) -> String {
    c.keys
        .add_verification_key(authed(
            ADMIN,
            pb::AddVerificationKeyRequest {
                parent: format!("tenants/{tenant}"),
                key_id: id.into(),
                ed25519_public_key: key.public_raw.clone(),
                description: "the backend's token key".into(),
                max_token_lifetime_seconds: 600,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .name
}

/// Whether a call was answered, its answer dropped.
fn answered<T>(r: Result<T, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(drop)
}

fn get(secret: &str, tenant: &str, collection: &str) -> tonic::Request<pb::GetRequest> {
    authed(
        secret,
        pb::GetRequest {
            collection: format!("tenants/{tenant}/collections/{collection}"),
            ids: vec!["r0".into()],
        },
    )
}

#[tokio::test]
async fn only_a_valid_token_signed_by_its_own_tenants_key_authenticates() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 2, DIM).await;
    seeded_tenant(&mut c, "globex", 2, DIM).await;
    let (acme_key, globex_key) = (signing_key(), signing_key());
    let acme_kid = add_key(&mut c, "acme", "k1", &acme_key).await;
    let globex_kid = add_key(&mut c, "globex", "k1", &globex_key).await;
    assert_eq!(acme_kid, "tenants/acme/verificationKeys/k1");

    let valid = sign(&acme_key, &acme_kid, &claims("acme"));
    let got = c.records.get(get(&valid, "acme", "docs")).await.unwrap();
    assert_eq!(got.into_inner().records.len(), 1);

    let mut refused = Vec::new();
    let acme = claims("acme");
    let cases: Vec<(&str, String)> = vec![
        // Tenant X's key can't vouch for tenant Y, however the token is put together.
        (
            "names globex, signed by acme's key",
            sign(&acme_key, &acme_kid, &claims("globex")),
        ),
        (
            "names globex's key, signed by acme's",
            sign(&acme_key, &globex_kid, &claims("globex")),
        ),
        (
            "names acme's key, signed by globex's",
            sign(&globex_key, &acme_kid, &acme),
        ),
        (
            "expired",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"iat": now() - 400, "exp": now() - 60})),
            ),
        ),
        (
            "not yet valid",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"nbf": now() + 120})),
            ),
        ),
        (
            "issued in the future",
            sign(
                &acme_key,
                &acme_kid,
                &with(
                    acme.clone(),
                    json!({"iat": now() + 120, "exp": now() + 300}),
                ),
            ),
        ),
        (
            "wrong audience",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"aud": "another-service"})),
            ),
        ),
        (
            "no audience",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"aud": null})),
            ),
        ),
        (
            "no expiry",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"exp": null})),
            ),
        ),
        (
            "no subject",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"sub": null})),
            ),
        ),
        (
            "lives longer than its key allows",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"exp": now() + 601})),
            ),
        ),
        (
            "asks to administer the tenant",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"role": "TENANT_ADMIN"})),
            ),
        ),
        (
            "no collections",
            sign(
                &acme_key,
                &acme_kid,
                &with(acme.clone(), json!({"collections": null})),
            ),
        ),
        (
            "unknown key",
            sign(&acme_key, "tenants/acme/verificationKeys/k9", &acme),
        ),
    ];
    // `alg: none`, and the public key used as an HMAC secret (the HS/asymmetric confusion).
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": acme_kid})
            .to_string()
            .as_bytes()),
        b64(acme.to_string().as_bytes())
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(acme_kid.clone());
    let confused =
        jsonwebtoken::encode(&hs, &acme, &EncodingKey::from_secret(&acme_key.public_raw)).unwrap();
    let mut tampered = valid.clone();
    let signature_start = tampered.rfind('.').unwrap() + 1;
    tampered.replace_range(signature_start..signature_start + 2, "AA");
    let cases = cases.into_iter().chain([
        ("alg none", unsigned),
        ("HS256 keyed with the public key", confused),
        ("tampered signature", tampered),
    ]);
    for (case, token) in cases {
        let status = c
            .records
            .get(get(&token, "acme", "docs"))
            .await
            .unwrap_err();
        if status.code() != Code::Unauthenticated {
            refused.push(format!("{case}: {status:?}"));
        }
    }
    assert!(refused.is_empty(), "not UNAUTHENTICATED: {refused:#?}");

    // A valid token of acme aimed at globex: the tenant check, as for any key.
    let aimed = c.records.get(get(&valid, "globex", "docs")).await;
    assert_eq!(code(aimed), Code::PermissionDenied);

    // The operator bounds acme's token lifetimes below what its key allows: a token within the
    // key's 600 s but past the tenant's 200 s stops verifying at once, one within both still
    // works, a new key can't ask for more, and globex's tokens are untouched.
    c.admin
        .update_tenant(authed(
            ADMIN,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: "tenants/acme".into(),
                    max_token_lifetime_seconds: 200,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["max_token_lifetime_seconds".into()],
                }),
            },
        ))
        .await
        .unwrap();
    let too_long = c
        .records
        .get(get(&valid, "acme", "docs"))
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::Unauthenticated, "{too_long:?}");
    assert!(too_long.message().contains("200 s"), "{too_long:?}");
    let issued = now();
    let short = with(acme.clone(), json!({"iat": issued, "exp": issued + 200}));
    let short = sign(&acme_key, &acme_kid, &short);
    c.records.get(get(&short, "acme", "docs")).await.unwrap();
    let globex_token = sign(&globex_key, &globex_kid, &claims("globex"));
    c.records
        .get(get(&globex_token, "globex", "docs"))
        .await
        .unwrap();
    let over = c
        .keys
        .add_verification_key(authed(
            ADMIN,
            pb::AddVerificationKeyRequest {
                parent: "tenants/acme".into(),
                key_id: "k2".into(),
                ed25519_public_key: acme_key.public_raw.clone(),
                max_token_lifetime_seconds: 600,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::InvalidArgument, "{over:?}");

    // Revoked: the same token no longer verifies.
    let valid = short;
    c.keys
        .revoke_verification_key(authed(
            ADMIN,
            pb::RevokeVerificationKeyRequest {
                name: acme_kid.clone(),
            },
        ))
        .await
        .unwrap();
    let revoked = c
        .records
        .get(get(&valid, "acme", "docs"))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated);
    assert!(revoked.message().contains("revoked"), "{revoked:?}");
    let listed = c
        .keys
        .list_verification_keys(authed(
            ADMIN,
            pb::ListVerificationKeysRequest {
                parent: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);
    assert_eq!(listed[0].ed25519_public_key, acme_key.public_raw);
}

#[tokio::test]
async fn an_end_user_reaches_only_the_records_and_answers_of_its_collections() {
    let server = Server::start();
    let mut c = server.clients().await;
    let writer = seeded_tenant(&mut c, "acme", 3, DIM).await;
    create_collection(&mut c, &writer, "acme", "private", DIM as u32).await;
    let mut caches = SemanticCacheServiceClient::new(server.channel().await);
    caches
        .create_cache(authed(
            &writer,
            pb::CreateCacheRequest {
                parent: "tenants/acme".into(),
                cache_id: "answers".into(),
                dimension: DIM as u32,
                metric: pb::Metric::Cosine as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let reader = sign(
        &key,
        &kid,
        &with(claims("acme"), json!({"collections": ["docs", "answers"]})),
    );
    let query = |secret: &str, collection: &str| {
        authed(
            secret,
            pb::QueryRequest {
                collection: format!("tenants/acme/collections/{collection}"),
                vector: unit(0, DIM),
                top_k: 10,
                include_text: true,
                ..Default::default()
            },
        )
    };
    let hits = c.records.query(query(&reader, "docs")).await.unwrap();
    assert_eq!(hits.into_inner().hits.len(), 3);

    let mut wrong = Vec::new();
    let mut expect_denied = |case: &str, result: Result<(), tonic::Status>| match result {
        Err(s) if s.code() == Code::PermissionDenied => {}
        other => wrong.push(format!("{case}: {other:?}")),
    };
    expect_denied(
        "a collection the token doesn't list",
        answered(c.records.get(get(&reader, "acme", "private")).await),
    );
    expect_denied(
        "a cache's collection read as records",
        answered(c.records.query(query(&reader, "answers")).await),
    );
    expect_denied(
        "a READ token writing",
        answered(
            c.records
                .upsert(authed(
                    &reader,
                    pb::UpsertRequest {
                        collection: "tenants/acme/collections/docs".into(),
                        records: vec![record("x", 1, DIM, "user")],
                    },
                ))
                .await,
        ),
    );
    expect_denied(
        "listing the tenant's collections",
        answered(
            c.collections
                .list_collections(authed(
                    &reader,
                    pb::ListCollectionsRequest {
                        parent: "tenants/acme".into(),
                        ..Default::default()
                    },
                ))
                .await,
        ),
    );
    expect_denied(
        "the tenant's audit trail",
        answered(
            c.audit
                .list_audit_events(authed(
                    &reader,
                    pb::ListAuditEventsRequest {
                        parent: "tenants/acme".into(),
                        ..Default::default()
                    },
                ))
                .await,
        ),
    );
    expect_denied(
        "a cache lookup in another user's scope",
        answered(
            caches
                .lookup(authed(
                    &reader,
                    pb::LookupRequest {
                        cache: "tenants/acme/caches/answers".into(),
                        vector: unit(0, DIM),
                        scope: Some("user:bob".into()),
                        ..Default::default()
                    },
                ))
                .await,
        ),
    );
    expect_denied(
        "a cache invalidation",
        answered(
            caches
                .invalidate(authed(
                    &reader,
                    pb::InvalidateRequest {
                        cache: "tenants/acme/caches/answers".into(),
                        scope: Some("user:alice".into()),
                        ..Default::default()
                    },
                ))
                .await,
        ),
    );
    let writer_user = sign(&key, &kid, &with(claims("acme"), json!({"role": "WRITE"})));
    expect_denied(
        "a WRITE token deleting a collection it lists",
        answered(
            c.collections
                .delete_collection(authed(
                    &writer_user,
                    pb::DeleteCollectionRequest {
                        name: "tenants/acme/collections/docs".into(),
                    },
                ))
                .await,
        ),
    );
    let in_session = sign(&key, &kid, &with(claims("acme"), json!({"session": "s1"})));
    expect_denied(
        "a session-bound token",
        answered(c.records.get(get(&in_session, "acme", "docs")).await),
    );
    assert!(wrong.is_empty(), "not PERMISSION_DENIED: {wrong:#?}");

    // A WRITE token writes, and the trail names the user.
    c.records
        .upsert(authed(
            &writer_user,
            pb::UpsertRequest {
                collection: "tenants/acme/collections/docs".into(),
                records: vec![record("by-alice", 7, DIM, "alice's")],
            },
        ))
        .await
        .unwrap();
    let events = audit_events(&mut c, ADMIN, "acme").await;
    assert!(
        events
            .iter()
            .any(|e| e.principal == "user:alice" && e.method == "RecordService/Upsert"),
        "{events:#?}"
    );
}

/// A tenant deleted and created again doesn't inherit its predecessor's keys: tokens signed
/// for the old tenant verify no more, and neither does the old key.
#[tokio::test]
async fn a_recreated_tenant_honours_no_token_of_its_predecessor() {
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 1, DIM).await;
    let key = signing_key();
    let kid = add_key(&mut c, "acme", "k1", &key).await;
    let token = sign(&key, &kid, &claims("acme"));
    c.records.get(get(&token, "acme", "docs")).await.unwrap();
    c.admin
        .delete_tenant(authed(
            ADMIN,
            pb::DeleteTenantRequest {
                name: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap();
    seeded_tenant(&mut c, "acme", 1, DIM).await;
    let status = c
        .records
        .get(get(&token, "acme", "docs"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let keys = c
        .keys
        .list_verification_keys(authed(
            ADMIN,
            pb::ListVerificationKeysRequest {
                parent: "tenants/acme".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(keys.is_empty(), "{keys:?}");
}

/// The whole flow from the command line, as a tenant's backend would run it: make a key pair,
/// register the public key, mint a user's token, and use it (and only within its grant).
#[test]
fn the_cli_makes_a_key_registers_it_and_mints_tokens_that_work() {
    use crate::cli::{bulkhead, failure, ok_json};
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let private_key = dir.path().join("backend.pem");
    let private_key = private_key.to_str().unwrap();
    let run = |key: Option<&str>, args: &[&str]| bulkhead(&server, key, args);
    ok_json(run(None, &["tenant", "create", "acme", "--json"]));
    for collection in ["docs", "private"] {
        ok_json(run(
            None,
            &[
                "collection",
                "create",
                "--tenant",
                "acme",
                collection,
                "--dimension",
                "8",
                "--json",
            ],
        ));
    }
    let keygen = run(None, &["token", "keygen", "--out", private_key]);
    assert!(keygen.status.success(), "{keygen:?}");
    let public_key = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let added = ok_json(run(
        None,
        &[
            "key",
            "add-verification-key",
            "--tenant",
            "acme",
            "--id",
            "backend",
            "--public-key",
            &public_key,
            "--max-token-lifetime",
            "10m",
            "--json",
        ],
    ));
    assert_eq!(added["name"], "tenants/acme/verificationKeys/backend");
    assert_eq!(added["max_token_lifetime_seconds"], 600);
    let mint = |ttl: &str| {
        let out = run(
            None,
            &[
                "token",
                "mint",
                "--private-key-file",
                private_key,
                "--kid",
                "tenants/acme/verificationKeys/backend",
                "--sub",
                "alice",
                "--collection",
                "docs",
                "--ttl",
                ttl,
            ],
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let token = mint("5m");
    let docs = ok_json(run(
        Some(&token),
        &["collection", "get", "--tenant", "acme", "docs", "--json"],
    ));
    assert_eq!(docs["name"], "tenants/acme/collections/docs");
    let private = failure(run(
        Some(&token),
        &["collection", "get", "--tenant", "acme", "private", "--json"],
    ));
    assert!(
        private.contains("doesn't grant collection private"),
        "{private}"
    );
    let too_long = failure(run(
        Some(&mint("11m")),
        &["collection", "get", "--tenant", "acme", "docs"],
    ));
    assert!(too_long.contains("at most 600 s"), "{too_long}");
    ok_json(run(
        None,
        &[
            "key",
            "revoke-verification-key",
            "--tenant",
            "acme",
            "backend",
            "--json",
        ],
    ));
    let revoked = failure(run(
        Some(&token),
        &["collection", "get", "--tenant", "acme", "docs"],
    ));
    assert!(revoked.contains("revoked"), "{revoked}");
}

#[tokio::test]
async fn a_tenant_registers_the_ed25519_keys_of_a_jwks_document() {
    use crate::cli::{bulkhead, ok_json};
    let server = Server::start();
    let mut c = server.clients().await;
    seeded_tenant(&mut c, "acme", 2, DIM).await;
    let (issuer, other) = (signing_key(), signing_key());
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let document = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": b64(&issuer.public_raw), "kid": "issuer-1", "use": "sig", "alg": "EdDSA"},
        {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rsa-legacy"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64(&other.public_raw), "kid": "issuer-2"},
    ]});
    std::fs::write(&jwks, document.to_string()).unwrap();
    let out = bulkhead(
        &server,
        None,
        &[
            "key",
            "import-jwks",
            "--tenant",
            "acme",
            "--jwks",
            jwks.to_str().unwrap(),
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let added = ok_json(out);
    let names: Vec<&str> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tenants/acme/verificationKeys/issuer-1",
            "tenants/acme/verificationKeys/issuer-2"
        ]
    );
    assert!(stderr.contains("skipped rsa-legacy"), "{stderr}");
    // A token the issuer signs for its kid authenticates; the same token under the other kid doesn't.
    let valid = sign(&issuer, names[0], &claims("acme"));
    assert_eq!(
        c.records
            .get(get(&valid, "acme", "docs"))
            .await
            .unwrap()
            .into_inner()
            .records
            .len(),
        1
    );
    let swapped = sign(&issuer, names[1], &claims("acme"));
    assert_eq!(
        code(c.records.get(get(&swapped, "acme", "docs")).await),
        Code::Unauthenticated
    );
}
