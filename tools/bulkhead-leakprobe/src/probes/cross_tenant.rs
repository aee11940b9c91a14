//! A valid key aimed at another tenant's path: the core promise. Tenant A's TENANT_ADMIN key
//! (the strongest key a tenant has) tries every RPC on tenant B and on a tenant that does not
//! exist, which must look the same so keys can't probe for tenants; the admin RPCs are tried
//! with A's keys too. Afterwards B, seen through the admin token, must be exactly as before.

use bulkhead_client::ClientError;
use tonic::Code;

use super::{settle, unexpected};
use crate::canary::{COLLECTION, RECORD_IDS};
use crate::fixture::Fixture;
use crate::raw::{Auth, Rpc};
use crate::report::{ProbeResult, Problems};

/// A key id in the right shape that no key has.
const NO_SUCH_KEY: &str = "k0000000000000000";

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    let b = &f.tenants[1];
    let before = snapshot(f, &b.id).await;
    let mut results = vec![tenant_rpcs(f).await, admin_rpcs(f).await];
    results.push(unchanged(f, before).await);
    results
}

async fn tenant_rpcs(f: &Fixture) -> ProbeResult {
    const NAME: &str = "cross-tenant-rpcs";
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let auth = Auth::bearer(&a.admin.secret)?;
        let absent = f.absent_tenant();
        let targets = [
            ("B", f.target(&b.id, b.read.key_id(), a)),
            ("a missing tenant", f.target(&absent, NO_SUCH_KEY, a)),
        ];
        let mut problems = Problems::default();
        for (label, target) in &targets {
            for rpc in Rpc::TENANT_SCOPED {
                let outcome = f.raw.send(rpc, &auth, target).await;
                if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &a.id, &f.book) {
                    problems.push(format!("{rpc:?} on {label}: {got}"));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "A's TENANT_ADMIN key × {} RPCs on B and on a missing tenant: all PERMISSION_DENIED",
                Rpc::TENANT_SCOPED.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

async fn admin_rpcs(f: &Fixture) -> ProbeResult {
    const NAME: &str = "tenant-key-admin-rpcs";
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let target = f.target(&b.id, b.read.key_id(), a);
        let keys = [("TENANT_ADMIN", &a.admin), ("READ", &a.read)];
        let refused = [Code::PermissionDenied, Code::Unauthenticated];
        let mut problems = Problems::default();
        for (role, key) in keys {
            let auth = Auth::bearer(&key.secret)?;
            for rpc in Rpc::ADMIN {
                let outcome = f.raw.send(rpc, &auth, &target).await;
                if let Some(got) = unexpected(&outcome, &refused, &a.id, &f.book) {
                    problems.push(format!("{rpc:?} with A's {role} key: {got}"));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "A's TENANT_ADMIN and READ keys × {} AdminService RPCs: all refused",
                Rpc::ADMIN.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// B as the operator sees it, minus its audit trail (which records the probe's own reads).
#[derive(Debug, PartialEq)]
struct Snapshot {
    settings: String,
    collections: Vec<(String, u64)>,
    records: Vec<(String, Option<String>, Vec<f32>)>,
    keys: Vec<(String, bool)>,
}

async fn snapshot(f: &Fixture, tenant: &str) -> anyhow::Result<Snapshot> {
    let info = f.admin.tenant(tenant).await?;
    let view = f.operator_view(tenant)?;
    Ok(Snapshot {
        settings: format!(
            "quota {:?}, rate limit {:?}, audit retention {} s",
            info.quota, info.rate_limit, info.audit_retention_seconds
        ),
        collections: view
            .collections()
            .await?
            .into_iter()
            .map(|c| (c.name, c.record_count))
            .collect(),
        records: match view.get(COLLECTION, &RECORD_IDS).await {
            Err(ClientError::NotFound(_)) => Vec::new(),
            records => records?
                .into_iter()
                .map(|r| (r.id, r.text, r.vector))
                .collect(),
        },
        keys: view
            .keys()
            .await?
            .into_iter()
            .map(|k| (k.name, k.revoked))
            .collect(),
    })
}

async fn unchanged(f: &Fixture, before: anyhow::Result<Snapshot>) -> ProbeResult {
    const NAME: &str = "cross-tenant-target-unchanged";
    let outcome = async {
        let before = before?;
        let b = &f.tenants[1];
        let mut problems = Problems::default();
        match snapshot(f, &b.id).await {
            Err(e) => problems.push(format!("B can no longer be read: {e:#}")),
            Ok(after) => {
                if after.settings != before.settings {
                    problems.push(format!(
                        "B's settings changed from {} to {}",
                        before.settings, after.settings
                    ));
                }
                if after.collections != before.collections {
                    problems.push(format!(
                        "B's collections changed from {:?} to {:?}",
                        before.collections, after.collections
                    ));
                }
                if after.records != before.records {
                    let texts = |s: &Snapshot| {
                        s.records
                            .iter()
                            .map(|(id, text, _)| format!("{id}={text:?}"))
                            .collect::<Vec<_>>()
                    };
                    problems.push(format!("B's records changed: now {:?}", texts(&after)));
                }
                let changed_keys: Vec<String> = after
                    .keys
                    .iter()
                    .filter(|k| !before.keys.contains(k))
                    .map(|(name, revoked)| {
                        let change = if *revoked { "revoked" } else { "added" };
                        format!("{name} {change}")
                    })
                    .collect();
                if !changed_keys.is_empty() || after.keys.len() < before.keys.len() {
                    problems.push(format!("B's keys changed: {changed_keys:?}"));
                }
            }
        }
        for stranger in [f.absent_tenant(), f.intruder_tenant()] {
            match f.admin.tenant(&stranger).await {
                Err(ClientError::NotFound(_)) => {}
                Err(e) => problems.push(format!("looking up {stranger}: {e}")),
                Ok(_) => problems.push(format!("tenant {stranger} exists after the attempts")),
            }
        }
        Ok(problems.verdict(
            NAME,
            "B's settings, collections, records and keys as before; no tenant created",
        ))
    };
    settle(NAME, outcome.await)
}
