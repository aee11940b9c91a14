//! Credentials that must not open anything: none at all, an empty or made-up bearer, a
//! valid secret without the Bearer scheme, a revoked key, an expired key; and keys used past
//! their role (a READ key writing, a WRITE key managing keys).

use std::time::Duration;

use bulkhead_client::{ClientError, CollectionSpec, Metric, Role, TenantClient};
use tonic::Code;

use super::{settle, unexpected};
use crate::canary::{self, COLLECTION, DIMENSION, RECORD_IDS, RECORDS};
use crate::fixture::Fixture;
use crate::raw::{Auth, Rpc};
use crate::report::{ProbeResult, Problems};

/// The RPCs tried without valid credentials: reads, writes, key and tenant management.
const RPCS: [Rpc; 8] = [
    Rpc::Get,
    Rpc::Query,
    Rpc::Upsert,
    Rpc::ListCollections,
    Rpc::ListAuditEvents,
    Rpc::CreateApiKey,
    Rpc::ListTenants,
    Rpc::CreateTenant,
];

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    vec![
        no_valid_credentials(f).await,
        revoked(f).await,
        expired(f).await,
        roles(f).await,
    ]
}

/// Whether `result` is the refusal `is_expected`; otherwise what came instead.
fn refusal<T>(
    result: Result<T, ClientError>,
    is_expected: fn(&ClientError) -> bool,
) -> Option<String> {
    match result {
        Err(e) if is_expected(&e) => None,
        Err(e) => Some(e.to_string()),
        Ok(_) => Some("succeeded".to_owned()),
    }
}

fn unauthenticated(e: &ClientError) -> bool {
    matches!(e, ClientError::Unauthenticated(_))
}

fn permission_denied(e: &ClientError) -> bool {
    matches!(e, ClientError::PermissionDenied(_))
}

async fn no_valid_credentials(f: &Fixture) -> ProbeResult {
    const NAME: &str = "missing-credentials";
    let outcome = async {
        let a = &f.tenants[0];
        let target = f.target(&a.id, a.read.key_id(), a);
        let credentials = [
            ("no authorization header", Auth::Missing),
            ("empty bearer", Auth::header("Bearer ")?),
            (
                "made-up bearer",
                Auth::bearer(&format!("bh_{}", canary::random_hex(32)))?,
            ),
            ("A's key without 'Bearer '", Auth::header(&a.admin.secret)?),
        ];
        let mut problems = Problems::default();
        for (label, auth) in &credentials {
            for rpc in RPCS {
                let outcome = f.raw.send(rpc, auth, &target).await;
                if let Some(got) = unexpected(&outcome, &[Code::Unauthenticated], &a.id, &f.book) {
                    problems.push(format!("{rpc:?} with {label}: {got}"));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} credentials × {} RPCs: all UNAUTHENTICATED",
                credentials.len(),
                RPCS.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

async fn revoked(f: &Fixture) -> ProbeResult {
    const NAME: &str = "revoked-key";
    let outcome = async {
        let a = &f.tenants[0];
        let key = f
            .admin
            .create_key(&a.id, Role::Read, None, "leakprobe revoked")
            .await?;
        let holder = f.client.tenant(&a.id, &key.secret)?;
        let mut problems = Problems::default();
        if let Err(e) = holder.collection(COLLECTION).await {
            problems.push(format!("the key failed before it was revoked: {e}"));
        }
        f.with_key(a, &a.admin)?.revoke_key(key.key_id()).await?;
        if let Some(got) = refusal(holder.collection(COLLECTION).await, unauthenticated) {
            problems.push(format!("GetCollection with the revoked key: {got}"));
        }
        if let Some(got) = refusal(holder.get(COLLECTION, &["c0"]).await, unauthenticated) {
            problems.push(format!("Get with the revoked key: {got}"));
        }
        Ok(problems.verdict(
            NAME,
            "worked before RevokeApiKey, UNAUTHENTICATED right after",
        ))
    };
    settle(NAME, outcome.await)
}

async fn expired(f: &Fixture) -> ProbeResult {
    const NAME: &str = "expired-key";
    const TTL: Duration = Duration::from_secs(1);
    let outcome = async {
        let a = &f.tenants[0];
        let key = f
            .admin
            .create_key(&a.id, Role::Read, Some(TTL), "leakprobe expiring")
            .await?;
        let holder = f.client.tenant(&a.id, &key.secret)?;
        tokio::time::sleep(TTL * 2).await;
        let mut problems = Problems::default();
        if let Some(got) = refusal(holder.get(COLLECTION, &["c0"]).await, unauthenticated) {
            problems.push(format!(
                "Get with a key expired {} s ago: {got}",
                TTL.as_secs()
            ));
        }
        if let Some(got) = refusal(holder.collections().await, unauthenticated) {
            problems.push(format!("ListCollections with an expired key: {got}"));
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "a key with a {} s TTL, {} s later: UNAUTHENTICATED",
                TTL.as_secs(),
                (TTL * 2).as_secs()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// Each call a key's role does not allow, as (what was tried, its result).
async fn beyond_role(
    reader: &TenantClient,
    writer: &TenantClient,
    victim_key: &str,
) -> Vec<(&'static str, Option<String>)> {
    let spec = CollectionSpec::new(DIMENSION as u32, Metric::Cosine);
    let record = canary::Canary::new("intruder").records(0);
    vec![
        (
            "READ key Upsert",
            refusal(
                reader.upsert(COLLECTION, &record[..1]).await,
                permission_denied,
            ),
        ),
        (
            "READ key Delete",
            refusal(reader.delete(COLLECTION, &["c1"]).await, permission_denied),
        ),
        (
            "READ key CreateCollection",
            refusal(
                reader.create_collection("leakprobe-intruder", &spec).await,
                permission_denied,
            ),
        ),
        (
            "READ key DeleteCollection",
            refusal(
                reader.delete_collection(COLLECTION).await,
                permission_denied,
            ),
        ),
        (
            "WRITE key CreateApiKey",
            refusal(
                writer
                    .create_key(Role::TenantAdmin, None, "leakprobe")
                    .await,
                permission_denied,
            ),
        ),
        (
            "WRITE key ListApiKeys",
            refusal(writer.keys().await, permission_denied),
        ),
        (
            "WRITE key RevokeApiKey",
            refusal(writer.revoke_key(victim_key).await, permission_denied),
        ),
    ]
}

async fn roles(f: &Fixture) -> ProbeResult {
    const NAME: &str = "role-limits";
    let outcome = async {
        let a = &f.tenants[0];
        let reader = f.with_key(a, &a.read)?;
        let writer = f.with_key(a, &a.write)?;
        let mut problems = Problems::default();
        let tried = beyond_role(&reader, &writer, a.read.key_id()).await;
        for (what, got) in &tried {
            if let Some(got) = got {
                problems.push(format!("{what}: {got}"));
            }
        }
        let records = writer.get(COLLECTION, &RECORD_IDS).await?;
        let intact = records.len() == RECORDS
            && records
                .iter()
                .all(|r| r.text.as_deref() == Some(a.canary.text(&r.id).as_str()));
        if !intact {
            problems.push(format!("{}'s canaries changed", a.id));
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} calls beyond the key's role: all PERMISSION_DENIED, canaries intact",
                tried.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}
