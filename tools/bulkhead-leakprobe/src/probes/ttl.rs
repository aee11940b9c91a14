//! Expired records must stop being served: stale session memory or a cached answer replayed
//! after its TTL is a leak in time rather than across tenants. Short-lived canaries go into
//! two tenants under the same ids, and both tenants poll `get` and `query` until they are
//! gone, attributing whatever they see on the way.
//!
//! Before expiry every short-lived record must be seen. That check is only conclusive when it
//! finished before the TTL ran out; when setup was too slow for that, the records are written
//! again with a TTL twice as long, and the probe fails if even the longest was too short:
//! it never passes without having seen the records alive.

use std::time::Duration;

use bulkhead_client::{Query, Record};
use tokio::time::Instant;

use super::settle;
use crate::canary::{self, COLLECTION};
use crate::fixture::{Fixture, ProbeTenant};
use crate::report::{ProbeResult, Problems};

/// The TTLs tried in turn, each only when the visibility check could not finish within the
/// one before.
const TTLS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];
/// How long after the TTL a record may still be seen before the probe fails.
const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
/// Ids of the short-lived records, the same in both tenants.
const SHORT_LIVED: [&str; 4] = ["ttl-0", "ttl-1", "ttl-2", "ttl-3"];

/// How many of the short-lived records `t` still sees through `get` and `query`; every
/// record seen is attributed.
async fn visible(f: &Fixture, t: &ProbeTenant, problems: &mut Problems) -> anyhow::Result<usize> {
    let reader = f.with_key(t, &t.read)?;
    let got = reader.get(COLLECTION, &SHORT_LIVED).await?;
    let q = Query::new(canary::vector(0, t.index), f.top_k).with_text();
    let hits = reader.query(COLLECTION, &q).await?;
    let seen: Vec<(String, Option<String>)> = got
        .into_iter()
        .map(|r| (r.id, r.text))
        .chain(hits.into_iter().map(|h| (h.id, h.text)))
        .collect();
    for (id, text) in &seen {
        if let Some(leak) = f.book.misattribution(&t.id, id, text.as_deref()) {
            problems.push(leak);
        }
    }
    Ok(seen
        .iter()
        .filter(|(id, _)| SHORT_LIVED.contains(&id.as_str()))
        .count())
}

/// Writes the short-lived records into `tenants` with `ttl`, then counts what each sees.
/// Returns when they were written and, per tenant, its sightings and when its check ended.
async fn plant(
    f: &Fixture,
    tenants: &[ProbeTenant],
    ttl: Duration,
    problems: &mut Problems,
) -> anyhow::Result<(Instant, Vec<(usize, Instant)>)> {
    let written = Instant::now();
    for t in tenants {
        let records: Vec<Record> = SHORT_LIVED
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Record::new(*id, canary::vector(i, t.index))
                    .with_text(t.canary.text(id))
                    .with_ttl(ttl)
            })
            .collect();
        f.with_key(t, &t.write)?
            .upsert(COLLECTION, &records)
            .await?;
    }
    let mut seen = Vec::with_capacity(tenants.len());
    for t in tenants {
        let n = visible(f, t, problems).await?;
        seen.push((n, Instant::now()));
    }
    Ok((written, seen))
}

pub async fn run(f: &Fixture) -> ProbeResult {
    const NAME: &str = "ttl-expiry";
    let outcome = async {
        let tenants = &f.tenants[..2];
        let mut problems = Problems::default();
        // Each record is seen twice: by `get` and by `query`.
        let expected = 2 * SHORT_LIVED.len();
        let mut planted = None;
        for ttl in TTLS {
            let (written, seen) = plant(f, tenants, ttl, &mut problems).await?;
            let expiry = written + ttl;
            // A tenant that saw everything passed whenever it looked; one that saw less
            // failed if it looked before the expiry, and is inconclusive otherwise.
            let mut late = false;
            for (t, (n, checked_at)) in tenants.iter().zip(&seen) {
                if *n == expected {
                    continue;
                }
                if *checked_at < expiry {
                    problems.push(format!(
                        "{}: {n} of {expected} short-lived sightings before their {} s TTL ran out",
                        t.id,
                        ttl.as_secs()
                    ));
                } else {
                    late = true;
                }
            }
            if !late {
                planted = Some((ttl, expiry));
                break;
            }
        }
        let Some((ttl, expiry)) = planted else {
            problems.push(format!(
                "setup outlasted even a {} s TTL: the records were never checked while alive",
                TTLS[TTLS.len() - 1].as_secs()
            ));
            return Ok(problems.verdict(NAME, String::new()));
        };
        let gone_at = loop {
            tokio::time::sleep(POLL).await;
            let mut still = 0;
            for t in tenants {
                still += visible(f, t, &mut problems).await?;
            }
            let now = Instant::now();
            if still == 0 {
                break Some(now);
            }
            if now > expiry + GRACE {
                problems.push(format!(
                    "{still} sightings of expired records {:.1} s after their TTL",
                    (now - expiry).as_secs_f32()
                ));
                break None;
            }
        };
        let after = gone_at
            .map(|t| t.saturating_duration_since(expiry).as_secs_f32())
            .unwrap_or_default();
        Ok(problems.verdict(
            NAME,
            format!(
                "{} records with a {} s TTL in 2 tenants: all seen before expiry, gone from get and query {after:.1} s after it",
                SHORT_LIVED.len(),
                ttl.as_secs()
            ),
        ))
    };
    settle(NAME, outcome.await)
}
