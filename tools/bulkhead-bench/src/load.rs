//! A closed-loop query load: `clients` concurrent callers, each issuing its next request as soon
//! as the previous one answers, until the deadline. The same driver runs against the server over
//! gRPC and against the engine in-process, so the two figures are comparable.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One answered request: which tenant and query, the ids returned, and its latency.
pub struct Answer {
    pub tenant: usize,
    pub query: usize,
    pub ids: Vec<u64>,
}

pub struct LoadResult {
    pub latencies: Vec<Duration>,
    pub answers: Vec<Answer>,
    pub wall: Duration,
}

/// Runs the load. `pick` chooses (tenant, query) for each request; `call(client, tenant, query)`
/// performs it, `client` being the caller's index in `0..clients`.
pub async fn drive<P, C, F>(
    clients: usize,
    duration: Duration,
    pick: P,
    call: C,
) -> Result<LoadResult>
where
    P: Fn(&mut StdRng) -> (usize, usize) + Send + Sync + 'static,
    C: Fn(usize, usize, usize) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Vec<u64>>> + Send,
{
    let pick = Arc::new(pick);
    let call = Arc::new(call);
    let shared = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (pick, call, shared) = (pick.clone(), call.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64 + 1);
            let mut lat = Vec::new();
            let mut answers = Vec::new();
            while Instant::now() < deadline {
                let (tenant, query) = pick(&mut rng);
                let t0 = Instant::now();
                let ids = call(c, tenant, query).await?;
                lat.push(t0.elapsed());
                answers.push(Answer { tenant, query, ids });
            }
            let mut s = shared.lock();
            s.0.extend(lat);
            s.1.extend(answers);
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed();
    let (mut latencies, answers) = std::mem::take(&mut *shared.lock());
    latencies.sort_unstable();
    Ok(LoadResult {
        latencies,
        answers,
        wall,
    })
}
