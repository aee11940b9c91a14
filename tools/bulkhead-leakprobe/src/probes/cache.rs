//! The classic leak of LLM products: a shared semantic cache answering one customer's prompt
//! with another's cached response. Every probe tenant stores its canary as a cached answer
//! under the same cache id and the identical prompt embedding, once unscoped and once for a
//! user scope; each lookup must return the asker's own canary, never another tenant's, and a
//! lookup in another scope must miss even at the lowest threshold. With every tenant holding
//! a cache, tenant A's key then tries each cache RPC on B's cache (CreateCache on B, Lookup,
//! Store, and Invalidate of B's user scope) and on a missing tenant's, like the other
//! cross-tenant probes: all PERMISSION_DENIED, B unchanged, the denials in A's trail.

use bulkhead_client::{CacheScope, CacheStore, Metric};

use super::{audit_trail, cross_tenant, settle};
use crate::canary::{self, CACHE, CACHE_SCOPE as SCOPE, DIMENSION};
use crate::fixture::Fixture;
use crate::raw::Rpc;
use crate::report::{ProbeResult, Problems};

pub async fn run(f: &Fixture) -> Vec<ProbeResult> {
    const NAME: &str = "semantic-cache";
    if let Err(e) = plant(f).await {
        return vec![ProbeResult::fail(NAME, format!("could not run: {e:#}"))];
    }
    // The cache's RPCs across tenants, now that B holds a cache with an entry in a scope and
    // one without, and before the lookups, which would find an entry a Store put in B.
    let b = &f.tenants[1];
    let before = cross_tenant::snapshot(f, &b.id).await;
    let across = cross_tenant::refused_everywhere(f, "cross-tenant-cache-rpcs", &Rpc::CACHE).await;
    let lookups = lookups(f).await;
    vec![
        lookups,
        across,
        cross_tenant::unchanged(f, "cross-tenant-cache-unchanged", before).await,
        audit_trail::check(f, "cache-denials-audited", &Rpc::CACHE).await,
    ]
}

/// Stores every tenant's canary answer under the same cache id and the identical prompt
/// embedding (the canary vector all tenants share, record 0), once unscoped and once scoped.
async fn plant(f: &Fixture) -> anyhow::Result<()> {
    let prompt = canary::vector(0, 0);
    for t in &f.tenants {
        let client = f.with_key(t, &t.write)?;
        client
            .create_cache(CACHE, DIMENSION as u32, Metric::Cosine, None)
            .await?;
        for scope in [None, Some(SCOPE)] {
            let entry = CacheStore {
                vector: prompt.clone(),
                prompt: "the shared prompt".into(),
                response: t.canary.text(&format!("cache-{}", scope.unwrap_or("none"))),
                scope: scope.map_or(CacheScope::Shared, CacheScope::named),
                ..CacheStore::default()
            };
            client.cache_store(CACHE, entry).await?;
        }
    }
    Ok(())
}

async fn lookups(f: &Fixture) -> ProbeResult {
    const NAME: &str = "semantic-cache";
    let outcome = async {
        let prompt = canary::vector(0, 0);
        let mut problems = Problems::default();
        let mut lookups = 0;
        for t in &f.tenants {
            let client = f.with_key(t, &t.read)?;
            for scope in [None, Some(SCOPE)] {
                lookups += 1;
                let want = t.canary.text(&format!("cache-{}", scope.unwrap_or("none")));
                let asked = scope.map_or(CacheScope::Shared, CacheScope::named);
                match client.cache_lookup(CACHE, prompt.clone(), -1.0, None, asked).await? {
                    Some(e) if e.response == want => {}
                    Some(e) => problems.push(format!(
                        "{} (scope {scope:?}) got {:?}, stored {want:?}",
                        t.id, e.response
                    )),
                    None => problems.push(format!("{} (scope {scope:?}) missed its own entry", t.id)),
                }
            }
            lookups += 1;
            if let Some(e) = client.cache_lookup(CACHE, prompt.clone(), -1.0, None, CacheScope::named("another-user")).await? {
                problems.push(format!("{}: scope \"another-user\" got {:?}", t.id, e.response));
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{lookups} lookups of an identical prompt at threshold -1 over {} tenants: each got only its own scope's answer",
                f.tenants.len()
            ),
        ))
    }
    .await;
    settle(NAME, outcome)
}
