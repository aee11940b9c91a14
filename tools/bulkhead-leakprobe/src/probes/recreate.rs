//! A tenant deleted and created again under the same id is a new tenant: a store, index or
//! key cache keyed by the tenant id alone would hand the newcomer the old tenant's records or
//! honour the old tenant's keys. The last probe tenant is deleted and re-created, its
//! collection created again under the same name, and then searched for anything of its past.

use bulkhead_client::{ClientError, CollectionSpec, Metric, Query, Role, TenantOptions};

use super::settle;
use crate::canary::{self, COLLECTION, DIMENSION, RECORD_IDS};
use crate::fixture::{Fixture, ProbeTenant};
use crate::report::{ProbeResult, Problems};

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    let Some(t) = f.tenants.last() else {
        return Vec::new();
    };
    let recreated = async {
        f.admin.delete_tenant(&t.id).await?;
        f.admin
            .create_tenant(&t.id, &TenantOptions::default())
            .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = recreated {
        return vec![ProbeResult::fail(
            "recreated-tenant-starts-empty",
            format!("could not delete and re-create {}: {e:#}", t.id),
        )];
    }
    vec![starts_empty(f, t).await, old_keys_refused(f, t).await]
}

async fn starts_empty(f: &Fixture, t: &ProbeTenant) -> ProbeResult {
    const NAME: &str = "recreated-tenant-starts-empty";
    let outcome = async {
        let key = f
            .admin
            .create_key(&t.id, Role::Write, None, "leakprobe")
            .await?;
        let fresh = f.client.tenant(&t.id, &key.secret)?;
        let mut problems = Problems::default();
        let collections = fresh.collections().await?;
        if !collections.is_empty() {
            let names: Vec<String> = collections.into_iter().map(|c| c.name).collect();
            problems.push(format!("the new {} lists {names:?}", t.id));
        }
        let old_keys: Vec<&str> = t.keys().iter().map(|k| k.key_id()).collect();
        for e in fresh.audit_events(None, 1_000_000).await? {
            if old_keys.contains(&e.principal.as_str()) {
                problems.push(format!(
                    "the new {}'s trail has {} by the old key {}",
                    t.id, e.method, e.principal
                ));
            }
        }
        fresh
            .create_collection(
                COLLECTION,
                &CollectionSpec::new(DIMENSION as u32, Metric::Cosine),
            )
            .await?;
        let old = fresh.get(COLLECTION, &RECORD_IDS).await?;
        if !old.is_empty() {
            problems.push(format!(
                "get in the new {} returned {} old records",
                t.id,
                old.len()
            ));
        }
        let q = Query::new(canary::vector(0, t.index), f.top_k).with_text();
        let hits = fresh.query(COLLECTION, &q).await?;
        if let Some(h) = hits.first() {
            problems.push(format!(
                "query in the new {} returned {} hits, e.g. {:?}",
                t.id,
                hits.len(),
                h.text
            ));
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{} re-created: no collections, no old audit events; same-named collection has none of the old records",
                t.id
            ),
        ))
    };
    settle(NAME, outcome.await)
}

async fn old_keys_refused(f: &Fixture, t: &ProbeTenant) -> ProbeResult {
    const NAME: &str = "recreated-tenant-old-keys-refused";
    let outcome = async {
        let mut problems = Problems::default();
        for key in t.keys() {
            match f.with_key(t, key)?.collections().await {
                Err(ClientError::Unauthenticated(_)) => {}
                Err(e) => problems.push(format!("old key {}: {e}", key.key_id())),
                Ok(_) => problems.push(format!(
                    "old key {} still lists the new {}'s collections",
                    key.key_id(),
                    t.id
                )),
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "the {} keys of the deleted {}: all UNAUTHENTICATED",
                t.keys().len(),
                t.id
            ),
        ))
    };
    settle(NAME, outcome.await)
}
