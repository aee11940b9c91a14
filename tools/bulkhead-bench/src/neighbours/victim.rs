//! The victim's load: requests on a fixed schedule (open loop), so that a server that stalls
//! can't slow the load down and hide its own stall. Each latency runs from the time its request
//! was due, not from when it was sent, which counts a late send as the server's delay
//! (coordinated omission). The schedule is kept on the calling thread with the operating
//! system's sleep, because tokio's timer wakes up to a millisecond late, as much as the
//! latencies measured; the calls run on a current-thread runtime of their own, on another
//! thread, so nothing the attacker's runtime does can delay them, and the load stays light.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bulkhead_proto::v1 as pb;
use bytes::Bytes;
use http::HeaderValue;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::outcomes::{Counts, within};
use crate::dataset::Dataset;
use crate::unary::{UnaryCaller, frame, method};

/// Connections the calls are spread over, as a small application's client pool would hold.
const CONNECTIONS: usize = 2;
/// Share of the requests that are one-record upserts; the rest are queries.
const UPSERT_SHARE: f64 = 0.1;
const TOP_K: u32 = 10;
const EF: u32 = 64;

/// The victim tenant's collection and key, and the load to put on it.
pub struct VictimLoad {
    pub endpoint: String,
    /// `Bearer` and the victim's WRITE key.
    pub authorization: HeaderValue,
    /// `tenants/{victim}/collections/{collection}`.
    pub collection: String,
    pub data: Arc<Dataset>,
    /// Rows of the data set the collection holds; upserts overwrite one of them.
    pub records: usize,
    /// Requests per second.
    pub rate: f64,
    pub timeout: Duration,
    /// Calls slower than this are logged as they finish (`--log-calls-slower-than-ms`).
    pub log_slower_than: Option<Duration>,
}

/// One phase of the load: the latency of every request (failed ones too, so that a request
/// that timed out counts its wait), ascending, those of the queries and of the upserts apart
/// (an upsert waits for the log's fsync, so the upserts are the tail), and the failures by
/// outcome.
#[derive(Debug)]
pub struct Phase {
    pub latencies: Vec<Duration>,
    pub queries: Vec<Duration>,
    pub upserts: Vec<Duration>,
    /// How late each call started after its due time, ascending: the harness's own wait for
    /// its load thread (one thread runs every call of the phase), before any byte is sent.
    pub start_lags: Vec<Duration>,
    pub errors: Counts,
}

impl VictimLoad {
    /// Runs the load for `duration`, then waits for the requests still in flight.
    pub fn run(&self, duration: Duration, seed: u64) -> Result<Phase> {
        let (due, schedule) = mpsc::unbounded_channel();
        let (connected, ready) = std_mpsc::channel();
        std::thread::scope(|scope| {
            let calls = scope.spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(self.serve(schedule, connected, seed))
            });
            // Nothing arrives if connecting failed: the thread's result says why.
            if ready.recv().is_ok() {
                keep_schedule(&due, self.rate, duration);
            }
            drop(due);
            calls.join().expect("the victim's load thread panicked")
        })
    }

    /// Connects, then makes one call per due time received, until the schedule ends.
    async fn serve(
        &self,
        mut schedule: mpsc::UnboundedReceiver<Instant>,
        connected: std_mpsc::Sender<()>,
        seed: u64,
    ) -> Result<Phase> {
        let mut callers = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let caller = UnaryCaller::connect(&self.endpoint)
                .await
                .context("connecting the victim's load")?;
            callers.push(Arc::new(caller));
        }
        connected.send(()).ok();
        let mut rng = StdRng::seed_from_u64(seed);
        let errors = Counts::default();
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let start_lags = Arc::new(Mutex::new(Vec::new()));
        let mut calls = JoinSet::new();
        let mut sent = 0;
        while let Some(due) = schedule.recv().await {
            let caller = callers[sent % CONNECTIONS].clone();
            let (path, message) = self.request(&mut rng);
            let authorization = self.authorization.clone();
            let (errors, latencies, timeout) = (errors.clone(), latencies.clone(), self.timeout);
            let start_lags = start_lags.clone();
            let log_slower_than = self.log_slower_than;
            calls.spawn(async move {
                let start_lag = due.elapsed();
                start_lags.lock().push(start_lag);
                let result = within(timeout, async {
                    match path {
                        method::QUERY => caller
                            .call_framed::<pb::QueryResponse>(path, &authorization, message)
                            .await
                            .map(drop),
                        _ => caller
                            .call_framed::<pb::UpsertResponse>(path, &authorization, message)
                            .await
                            .map(drop),
                    }
                })
                .await;
                let latency = due.elapsed();
                if log_slower_than.is_some_and(|limit| latency > limit) {
                    log_slow_call(path, latency, start_lag);
                }
                latencies.lock().push((path, latency));
                if result.is_err() {
                    errors.record("", &result);
                }
            });
            sent += 1;
            // Reap what has finished, so the set stays small over a long phase.
            while calls.try_join_next().is_some() {}
        }
        while calls.join_next().await.is_some() {}
        let mut latencies = std::mem::take(&mut *latencies.lock());
        let mut start_lags = std::mem::take(&mut *start_lags.lock());
        start_lags.sort_unstable();
        latencies.sort_unstable_by_key(|(_, latency)| *latency);
        let of = |kind| {
            let kind = latencies.iter().filter(move |(path, _)| *path == kind);
            kind.map(|(_, latency)| *latency).collect()
        };
        Ok(Phase {
            queries: of(method::QUERY),
            upserts: of(method::UPSERT),
            latencies: latencies.iter().map(|(_, latency)| *latency).collect(),
            start_lags,
            errors,
        })
    }

    /// The next request: a top-10 query with a random query vector, or a one-record upsert
    /// that overwrites a random record with another row's vector.
    fn request(&self, rng: &mut StdRng) -> (&'static str, Bytes) {
        if rng.random_bool(UPSERT_SHARE) {
            let row = rng.random_range(0..self.records);
            let source = rng.random_range(0..self.data.base.rows());
            let upsert = pb::UpsertRequest {
                collection: self.collection.clone(),
                records: vec![pb::Record {
                    id: row.to_string(),
                    vector: self.data.base.row(source).to_vec(),
                    ..Default::default()
                }],
            };
            (method::UPSERT, frame(&upsert))
        } else {
            let q = rng.random_range(0..self.data.queries.rows());
            let query = pb::QueryRequest {
                collection: self.collection.clone(),
                vector: self.data.queries.row(q).to_vec(),
                top_k: TOP_K,
                ef: EF,
                ..Default::default()
            };
            (method::QUERY, frame(&query))
        }
    }
}

/// One line on stderr for a slow call: when it finished (Unix seconds), which method, its
/// latency from its due time and how late the harness started it.
fn log_slow_call(path: &str, latency: Duration, start_lag: Duration) {
    let finished = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "slow call: finished {:.3} {path} {:.1} ms (started {:.1} ms late)",
        finished.as_secs_f64(),
        latency.as_secs_f64() * 1e3,
        start_lag.as_secs_f64() * 1e3,
    );
}

/// Sends the due time of each request, `rate` per second for `duration`, when it falls due.
fn keep_schedule(due: &mpsc::UnboundedSender<Instant>, rate: f64, duration: Duration) {
    let start = Instant::now();
    for i in 0.. {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        if at >= start + duration {
            break;
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if due.send(at).is_err() {
            break;
        }
    }
}
