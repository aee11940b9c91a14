//! Many clients of different tenants at once. A server that kept request state in a shared
//! buffer, a thread-local or a cache keyed without the tenant would hand one tenant's answer
//! to another only under concurrency, so each client checks every hit it gets against its
//! own tenant's canary while the others hammer the server.

use std::time::Duration;

use bulkhead_client::Query;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::canary::{self, COLLECTION, CanaryBook, RECORD_IDS, RECORDS};
use crate::fixture::Fixture;
use crate::remote::Remote;
use crate::report::{ProbeResult, Problems};

/// Concurrent clients, spread round-robin over the probe tenants.
const CLIENTS: usize = 16;
/// Every this many requests a client rewrites one of its own canaries, so writes interleave
/// with the reads.
const WRITE_EVERY: usize = 8;

/// One client's share of the work: its tenant and keys, and what it found.
#[derive(Debug)]
struct Worker {
    remote: Remote,
    tenant: String,
    index: usize,
    canary: canary::Canary,
    read_secret: String,
    write_secret: String,
    book: CanaryBook,
    top_k: u32,
}

#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    checked: usize,
    problems: Vec<String>,
}

impl Worker {
    async fn run(self, until: Instant) -> Tally {
        let mut tally = Tally::default();
        if let Err(e) = self.hammer(until, &mut tally).await {
            tally
                .problems
                .push(format!("client of {} failed: {e:#}", self.tenant));
        }
        tally
    }

    async fn hammer(&self, until: Instant, tally: &mut Tally) -> anyhow::Result<()> {
        let client = self.remote.client().await?;
        let reader = client.tenant(&self.tenant, &self.read_secret)?;
        let writer = client.tenant(&self.tenant, &self.write_secret)?;
        let records = self.canary.records(self.index);
        for round in 1usize.. {
            if Instant::now() >= until {
                break;
            }
            let pick = rand::random_range(0..RECORDS);
            let seen: Vec<(String, Option<String>)> = if round.is_multiple_of(2) {
                let q = Query::new(canary::vector(pick, self.index), self.top_k).with_text();
                let hits = reader.query(COLLECTION, &q).await?;
                hits.into_iter().map(|h| (h.id, h.text)).collect()
            } else {
                let got = reader.get(COLLECTION, &RECORD_IDS[pick..]).await?;
                got.into_iter().map(|r| (r.id, r.text)).collect()
            };
            tally.requests += 1;
            tally.checked += seen.len();
            for (id, text) in &seen {
                if let Some(leak) = self.book.misattribution(&self.tenant, id, text.as_deref()) {
                    tally.problems.push(leak);
                }
            }
            if round.is_multiple_of(WRITE_EVERY) {
                writer.upsert(COLLECTION, &records[pick..=pick]).await?;
                tally.requests += 1;
            }
        }
        Ok(())
    }
}

pub async fn run(f: &Fixture, duration: Duration) -> ProbeResult {
    const NAME: &str = "interleaved-clients";
    let until = Instant::now() + duration;
    let mut workers = JoinSet::new();
    for i in 0..CLIENTS {
        let t = &f.tenants[i % f.tenants.len()];
        let worker = Worker {
            remote: f.remote.clone(),
            tenant: t.id.clone(),
            index: t.index,
            canary: t.canary.clone(),
            read_secret: t.read.secret.clone(),
            write_secret: t.write.secret.clone(),
            book: f.book.clone(),
            top_k: f.top_k,
        };
        workers.spawn(worker.run(until));
    }
    let mut problems = Problems::default();
    let (mut requests, mut checked, mut idle) = (0, 0, 0);
    for tally in workers.join_all().await {
        requests += tally.requests;
        checked += tally.checked;
        if tally.requests == 0 {
            idle += 1;
        }
        for p in tally.problems {
            problems.push(p);
        }
    }
    // Nothing observed is no evidence: every client must have been answered, and the answers
    // must have held records to attribute.
    if idle > 0 {
        problems.push(format!(
            "{idle} of {CLIENTS} clients completed no request in {:.0} s",
            duration.as_secs_f32()
        ));
    }
    if checked == 0 {
        problems.push(format!(
            "{requests} requests returned no record to attribute"
        ));
    }
    problems.verdict(
            NAME,
            format!(
                "{CLIENTS} clients over {} tenants for {:.0} s: {requests} requests, {checked} records attributed to the asker",
                f.tenants.len().min(CLIENTS),
                duration.as_secs_f32()
            ),
        )
}
