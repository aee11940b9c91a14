//! What a tenant sees with its own key. Every tenant holds the same ids and vectors, and the
//! queries ask for the largest `top_k`, so a search, lookup or listing that was not confined
//! to one tenant would return another tenant's canary here.

use std::collections::BTreeSet;

use bulkhead_client::Query;

use super::settle;
use crate::canary::{self, COLLECTION, RECORD_IDS, RECORDS};
use crate::fixture::{Fixture, ProbeTenant};
use crate::report::{ProbeResult, Problems};

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    vec![
        query(f).await,
        get(f).await,
        list(f).await,
        list_keys(f).await,
        audit(f).await,
    ]
}

/// Own canary ids missing from `seen`, as a problem of `tenant`.
fn missing_own(tenant: &str, what: &str, seen: &BTreeSet<String>) -> Option<String> {
    let missing: Vec<&str> = RECORD_IDS
        .into_iter()
        .filter(|id| !seen.contains(*id))
        .collect();
    (!missing.is_empty()).then(|| format!("{tenant}: own canaries {missing:?} missing from {what}"))
}

async fn query(f: &Fixture) -> ProbeResult {
    const NAME: &str = "own-key-query";
    // One query on a vector shared by every tenant, one on a per-tenant nudged one.
    let probes_per_tenant = [0, RECORDS - 1];
    let outcome = async {
        let mut problems = Problems::default();
        let mut hits_checked = 0;
        for t in &f.tenants {
            let reader = f.with_key(t, &t.read)?;
            for record in probes_per_tenant {
                let q = Query::new(canary::vector(record, t.index), f.top_k).with_text();
                let hits = reader.query(COLLECTION, &q).await?;
                hits_checked += hits.len();
                for h in &hits {
                    if let Some(leak) = f.book.misattribution(&t.id, &h.id, h.text.as_deref()) {
                        problems.push(leak);
                    }
                }
                let seen = hits.into_iter().map(|h| h.id).collect();
                if let Some(p) = missing_own(&t.id, "a query", &seen) {
                    problems.push(p);
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} tenants × {} queries at top_k {}: {hits_checked} hits, all the asker's own",
                f.tenants.len(),
                probes_per_tenant.len(),
                f.top_k
            ),
        ))
    };
    settle(NAME, outcome.await)
}

async fn get(f: &Fixture) -> ProbeResult {
    const NAME: &str = "own-key-get";
    let outcome = async {
        let mut problems = Problems::default();
        for t in &f.tenants {
            let records = f.with_key(t, &t.read)?.get(COLLECTION, &RECORD_IDS).await?;
            for r in &records {
                if let Some(leak) = f.book.misattribution(&t.id, &r.id, r.text.as_deref()) {
                    problems.push(leak);
                }
            }
            let seen = records.into_iter().map(|r| r.id).collect();
            if let Some(p) = missing_own(&t.id, "a get", &seen) {
                problems.push(p);
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} tenants × get of the {RECORDS} shared ids: each got its own records",
                f.tenants.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

async fn list(f: &Fixture) -> ProbeResult {
    const NAME: &str = "own-key-list-collections";
    let outcome = async {
        let mut problems = Problems::default();
        for t in &f.tenants {
            let names: Vec<String> = f
                .with_key(t, &t.read)?
                .collections()
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect();
            let own = format!("tenants/{}/collections/{COLLECTION}", t.id);
            if names != [own.clone()] {
                problems.push(format!("{} listed {names:?}, expected only {own:?}", t.id));
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} tenants: each lists exactly its own collection",
                f.tenants.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// The ids of `t`'s keys, revoked and expired ones included, as its TENANT_ADMIN key lists
/// them.
async fn own_key_ids(f: &Fixture, t: &ProbeTenant) -> anyhow::Result<Vec<String>> {
    let keys = f.with_key(t, &t.admin)?.keys().await?;
    Ok(keys
        .into_iter()
        .filter_map(|k| k.name.rsplit('/').next().map(str::to_owned))
        .collect())
}

async fn list_keys(f: &Fixture) -> ProbeResult {
    const NAME: &str = "own-key-list-keys";
    let outcome = async {
        let mut problems = Problems::default();
        for t in &f.tenants {
            let own = format!("tenants/{}/keys/", t.id);
            for k in f.with_key(t, &t.admin)?.keys().await? {
                if !k.name.starts_with(&own) {
                    problems.push(format!("{} listed the key {}", t.id, k.name));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} tenants: each TENANT_ADMIN key lists only its own tenant's keys",
                f.tenants.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// A trail may name another tenant's resource only in a refused attempt by one of the
/// tenant's own keys; any event by another tenant's key is a leak of that tenant's activity.
async fn audit(f: &Fixture) -> ProbeResult {
    const NAME: &str = "own-key-audit";
    let outcome = async {
        let mut problems = Problems::default();
        let mut events_checked = 0;
        for t in &f.tenants {
            let events = f
                .with_key(t, &t.read)?
                .audit_events(None, 1_000_000)
                .await?;
            events_checked += events.len();
            let own_keys = own_key_ids(f, t).await?;
            let own_resource = format!("tenants/{}", t.id);
            for e in &events {
                let stranger = match f.key_owner(&e.principal) {
                    Some(owner) => (owner != t.id).then_some(owner),
                    None if e.principal == "admin" || own_keys.contains(&e.principal) => None,
                    None => Some("an unknown tenant"),
                };
                if let Some(whose) = stranger {
                    problems.push(format!(
                        "{}'s trail has {} on {:?} by key {} of {whose}",
                        t.id, e.method, e.resource, e.principal
                    ));
                }
                let own_path = e.resource == own_resource
                    || e.resource.starts_with(&format!("{own_resource}/"));
                if !own_path && e.outcome == "OK" {
                    problems.push(format!(
                        "{}'s trail records a successful {} on {:?}",
                        t.id, e.method, e.resource
                    ));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} tenants, {events_checked} events: only own keys and admin, no successful call elsewhere",
                f.tenants.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}
