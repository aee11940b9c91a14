//! A valid key aimed at another tenant's path: the core promise. Tenant A's TENANT_ADMIN key
//! (the strongest key a tenant has) tries every RPC on tenant B and on a tenant that does not
//! exist, which must look the same so keys can't probe for tenants; the admin RPCs are tried
//! with A's keys too. Afterwards B, seen through the admin token, must be exactly as before.
//! The cache's RPCs are tried the same way by the cache probe, once B holds a cache.

use bulkhead_client::{ClientError, Query};
use tonic::Code;

use super::{settle, unexpected};
use crate::canary::{self, CACHE, COLLECTION, RECORD_IDS};
use crate::fixture::Fixture;
use crate::raw::{Auth, Rpc, Target};
use crate::report::{ProbeResult, Problems};

/// A key id in the right shape that no key has.
const NO_SUCH_KEY: &str = "k0000000000000000";

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    let b = &f.tenants[1];
    let before = snapshot(f, &b.id).await;
    let mut results = vec![
        refused_everywhere(f, "cross-tenant-rpcs", &Rpc::TENANT_SCOPED).await,
        refused_everywhere(f, "cross-tenant-session-rpcs", &Rpc::SESSION).await,
        admin_rpcs(f).await,
    ];
    results.push(unchanged(f, "cross-tenant-target-unchanged", before).await);
    results
}

/// A's TENANT_ADMIN key sends each of `rpcs` at B and at a tenant that does not exist: every
/// one must be PERMISSION_DENIED. `Import` goes twice: naming the target in its first message,
/// and opening on A's own canary collection to name the target in the next; that one must be
/// refused too, with PERMISSION_DENIED or INVALID_ARGUMENT (the stream changed collection).
pub(super) async fn refused_everywhere(f: &Fixture, name: &str, rpcs: &[Rpc]) -> ProbeResult {
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let auth = Auth::bearer(&a.admin.secret)?;
        let absent = f.absent_tenant();
        let targets = [
            ("B", f.target(&b.id, b.read.key_id(), a)),
            ("a missing tenant", f.target(&absent, NO_SUCH_KEY, a)),
        ];
        let own_collection = format!("tenants/{}/collections/{COLLECTION}", a.id);
        let mut problems = Problems::default();
        let mut sent = 0;
        for (label, target) in &targets {
            for &rpc in rpcs {
                sent += 1;
                let outcome = f.raw.send(rpc, &auth, target).await;
                if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &a.id, &f.book) {
                    problems.push(format!("{rpc:?} on {label}: {got}"));
                }
                if rpc != Rpc::Import {
                    continue;
                }
                sent += 1;
                let turning = Target {
                    import_lead: Some(own_collection.clone()),
                    ..target.clone()
                };
                let outcome = f.raw.send(rpc, &auth, &turning).await;
                if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &a.id, &f.book) {
                    problems.push(format!(
                        "Import opening on A's collection, then naming {label}'s: {got}"
                    ));
                }
            }
        }
        let names: Vec<&str> = rpcs
            .iter()
            .map(|rpc| match rpc {
                Rpc::Invalidate => "Invalidate (of a scope)",
                rpc => rpc.method().split_once('/').map_or("", |(_, m)| m),
            })
            .collect();
        let mut checked = format!(
            "A's TENANT_ADMIN key × {} RPCs ({}) on B and on a missing tenant, and an Import \
             opening on A's own collection then naming the target's: all PERMISSION_DENIED",
            rpcs.len(),
            names.join(", ")
        );
        checked.push_str(&format!(" ({sent} requests)"));
        Ok(problems.verdict(name, checked))
    };
    settle(name, outcome.await)
}

async fn admin_rpcs(f: &Fixture) -> ProbeResult {
    const NAME: &str = "tenant-key-admin-rpcs";
    let outcome = async {
        let (a, b) = (&f.tenants[0], &f.tenants[1]);
        let target = f.target(&b.id, b.read.key_id(), a);
        let keys = [("TENANT_ADMIN", &a.admin), ("READ", &a.read)];
        let mut problems = Problems::default();
        for (role, key) in keys {
            let auth = Auth::bearer(&key.secret)?;
            for rpc in Rpc::ADMIN {
                let outcome = f.raw.send(rpc, &auth, &target).await;
                if let Some(got) = unexpected(&outcome, &[Code::PermissionDenied], &a.id, &f.book) {
                    problems.push(format!("{rpc:?} with A's {role} key: {got}"));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "A's TENANT_ADMIN and READ keys × {} AdminService RPCs: all PERMISSION_DENIED",
                Rpc::ADMIN.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// B as the operator sees it, minus its audit trail (which records the probe's own reads):
/// its collections with their record counts include its cache once it has one.
#[derive(Debug, PartialEq)]
pub(super) struct Snapshot {
    settings: String,
    collections: Vec<(String, u64)>,
    records: Vec<(String, Option<String>, Vec<f32>)>,
    /// Every entry of its cache, once it has one: id and cached response.
    cache: Vec<(String, Option<String>)>,
    keys: Vec<(String, bool)>,
    /// Every live session with its items' ids and texts.
    sessions: Vec<(String, Vec<(String, String)>)>,
}

pub(super) async fn snapshot(f: &Fixture, tenant: &str) -> anyhow::Result<Snapshot> {
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
        cache: {
            // Entries are records of the cache's collection; a query at the largest top_k
            // lists them all (a probe tenant's cache holds two).
            let every = Query::new(canary::vector(0, 0), f.top_k).with_text();
            let mut entries: Vec<_> = match view.query(CACHE, &every).await {
                Err(ClientError::NotFound(_)) => Vec::new(),
                hits => hits?.into_iter().map(|h| (h.id, h.text)).collect(),
            };
            entries.sort();
            entries
        },
        keys: view
            .keys()
            .await?
            .into_iter()
            .map(|k| (k.name, k.revoked))
            .collect(),
        sessions: {
            let mut sessions = Vec::new();
            for s in view.sessions().await? {
                let id = s.name.rsplit('/').next().unwrap_or_default().to_owned();
                let items = view.session(&id)?.history().await?;
                sessions.push((s.name, items.into_iter().map(|i| (i.id, i.text)).collect()));
            }
            sessions
        },
    })
}

/// B as in `before`, and neither the missing tenant nor the intruder's tenant created.
pub(super) async fn unchanged(
    f: &Fixture,
    name: &str,
    before: anyhow::Result<Snapshot>,
) -> ProbeResult {
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
                if after.sessions != before.sessions {
                    problems.push(format!(
                        "B's sessions changed from {:?} to {:?}",
                        before.sessions, after.sessions
                    ));
                }
                if after.cache != before.cache {
                    problems.push(format!(
                        "B's cache entries changed from {:?} to {:?}",
                        before.cache, after.cache
                    ));
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
            name,
            "B's settings, collections with their record counts, canary records, cache entries \
             (once it has a cache), sessions with their items, and keys as before; no tenant \
             created",
        ))
    };
    settle(name, outcome.await)
}
