//! The classic leak of LLM products: a shared semantic cache answering one customer's prompt
//! with another's cached response. Every probe tenant stores its canary as a cached answer
//! under the same cache id and the identical prompt embedding, once unscoped and once for a
//! user scope; each lookup must return the asker's own canary, never another tenant's, and a
//! lookup in another scope must miss even at the lowest threshold.

use bulkhead_client::{CacheStore, Metric};

use super::settle;
use crate::canary::{self, DIMENSION};
use crate::fixture::Fixture;
use crate::report::{ProbeResult, Problems};

const CACHE: &str = "probe-cache";
const SCOPE: &str = "user-1";

pub async fn run(f: &Fixture) -> ProbeResult {
    const NAME: &str = "semantic-cache";
    let outcome = async {
        // Identical embedding in every tenant: the canary vector shared by all (record 0).
        let prompt = canary::vector(0, 0);
        for t in &f.tenants {
            let client = f.with_key(t, &t.write)?;
            client.create_cache(CACHE, DIMENSION as u32, Metric::Cosine, None).await?;
            for scope in [None, Some(SCOPE)] {
                let entry = CacheStore {
                    vector: prompt.clone(),
                    prompt: "the shared prompt".into(),
                    response: t.canary.text(&format!("cache-{}", scope.unwrap_or("none"))),
                    scope: scope.map(str::to_owned),
                    ..CacheStore::default()
                };
                client.cache_store(CACHE, entry).await?;
            }
        }
        let mut problems = Problems::default();
        let mut lookups = 0;
        for t in &f.tenants {
            let client = f.with_key(t, &t.read)?;
            for scope in [None, Some(SCOPE)] {
                lookups += 1;
                let want = t.canary.text(&format!("cache-{}", scope.unwrap_or("none")));
                match client.cache_lookup(CACHE, prompt.clone(), -1.0, None, scope).await? {
                    Some(e) if e.response == want => {}
                    Some(e) => problems.push(format!(
                        "{} (scope {scope:?}) got {:?}, stored {want:?}",
                        t.id, e.response
                    )),
                    None => problems.push(format!("{} (scope {scope:?}) missed its own entry", t.id)),
                }
            }
            lookups += 1;
            if let Some(e) = client.cache_lookup(CACHE, prompt.clone(), -1.0, None, Some("another-user")).await? {
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
