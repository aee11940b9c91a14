//! Promotion to a graph and compaction of a graph take seconds of CPU for a big collection.
//! They used to run inside the insert or delete that crossed the threshold, under the
//! collection's index lock, so that request and every search of the collection waited for the
//! whole build. Now a write only notices that a build is wanted and queues it here; one engine
//! thread at background priority runs the builds one after another, each with the configured
//! number of threads, while searches and writes of the collection go on against the old index
//! (`bulkhead_index::VectorIndex::build_if_wanted` swaps the new one in at the end).
//!
//! The same thread writes segment files (`tenant::persist`): after each build, and when the
//! sweeper finds a collection with many changes since its last segment. Builds and segment
//! writes of one collection therefore never overlap, and a segment is never written from an
//! index being swapped.
//!
//! The queue holds weak references: a collection or tenant deleted or evicted before its turn
//! is simply skipped, and a build never keeps a tenant's memory alive or delays its deletion.
//! A collection is queued at most once at a time, and a tenant's next build goes behind the
//! builds of other tenants already waiting, so one tenant writing into many collections can't
//! keep another tenant's promotion waiting for more than one turn per collection it has.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bulkhead_index::{BuildOptions, BuildReport};
use parking_lot::{Condvar, Mutex};

use bulkhead_core::TenantId;

use crate::background::move_current_thread_to_background;
use crate::collection::LiveCollection;
use crate::error::{EngineError, Result};

/// The tenant a job's collection belongs to, as the build thread sees it. A trait so that the
/// queue (engine-wide) depends on no tenant type: the tenant module implements it.
pub(crate) trait BuildOwner: Send + Sync {
    fn tenant_id(&self) -> TenantId;
    /// After a build swapped a new index in: recount the tenant's index memory.
    fn index_grew(&self);
    /// Writes `collection`'s segment (or trims its change log) if it changed since the last.
    fn persist(self: Arc<Self>, collection: &LiveCollection) -> Result<Persisted>;
}

/// What a persist did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persisted {
    /// Nothing changed since the last one, or the collection is gone.
    Nothing,
    /// A segment of this many bytes reflects the collection up to `change`.
    Segment { change: u64, bytes: u64 },
    /// A flat collection: no segment (its records load fast), the log trimmed to `change`.
    Trimmed { change: u64 },
}

/// The build queue as operators and tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBuildStats {
    /// Builds queued or running.
    pub pending: usize,
    /// Builds finished since the engine opened.
    pub finished: u64,
}

/// What a job does to its collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// The build its index wants, then a segment of the result.
    Build,
    /// A segment of the index as it is (or, for a flat index, a trim of the change log).
    Persist,
}

/// One queued job.
#[derive(Debug)]
struct Job {
    tenant: Weak<dyn BuildOwner>,
    collection: Weak<LiveCollection>,
    work: Work,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Builds finished since the engine opened (for tests and operators).
    finished: u64,
    running: bool,
    stop: bool,
}

/// The engine's build queue and its thread.
#[derive(Debug)]
pub(crate) struct IndexBuilds {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    /// Set at shutdown: a running build stops instead of delaying it by minutes.
    cancel: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl IndexBuilds {
    /// Starts the build thread; each build uses `threads` threads.
    pub fn start(threads: usize) -> Self {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let cancel = Arc::new(AtomicBool::new(false));
        let (worker_queue, worker_cancel) = (queue.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("bulkhead-index-build".into())
            .spawn(move || {
                move_current_thread_to_background();
                run(&worker_queue, &worker_cancel, threads.max(1));
            })
            .expect("spawning the index build thread");
        Self {
            queue,
            cancel,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues `work` on `collection` unless the same is already queued.
    pub fn schedule<T: BuildOwner + 'static>(
        &self,
        tenant: &Arc<T>,
        collection: &Arc<LiveCollection>,
        work: Work,
    ) {
        let (queue, wake) = &*self.queue;
        let mut q = queue.lock();
        let weak = Arc::downgrade(collection);
        if q.stop
            || q.jobs
                .iter()
                .any(|j| j.collection.ptr_eq(&weak) && j.work == work)
        {
            return;
        }
        let tenant: Weak<dyn BuildOwner> = Arc::downgrade(tenant) as Weak<dyn BuildOwner>;
        q.jobs.push_back(Job {
            tenant,
            collection: weak,
            work,
        });
        // All: callers of `wait_idle` wait on the same condition as the thread.
        wake.notify_all();
    }

    pub fn stats(&self) -> IndexBuildStats {
        let q = self.queue.0.lock();
        IndexBuildStats {
            pending: q.jobs.len() + usize::from(q.running),
            finished: q.finished,
        }
    }

    /// Waits until nothing is queued or running; `false` if `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, wake) = &*self.queue;
        let mut q = lock.lock();
        while !q.jobs.is_empty() || q.running {
            if wake.wait_until(&mut q, deadline).timed_out() {
                return q.jobs.is_empty() && !q.running;
            }
        }
        true
    }

    /// Drops what is queued, stops a running build, and joins the thread (a segment being
    /// written is finished: it takes seconds, not minutes).
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        {
            let mut q = self.queue.0.lock();
            q.stop = true;
            q.jobs.clear();
        }
        self.queue.1.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

fn run(queue: &(Mutex<Queue>, Condvar), cancel: &AtomicBool, threads: usize) {
    let (lock, wake) = queue;
    loop {
        let job = {
            let mut q = lock.lock();
            q.running = false;
            loop {
                if q.stop {
                    wake.notify_all();
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    q.running = true;
                    break job;
                }
                // Idle: wakes the callers of `wait_idle`.
                wake.notify_all();
                wake.wait(&mut q);
            }
        };
        let (Some(tenant), Some(collection)) = (job.tenant.upgrade(), job.collection.upgrade())
        else {
            continue;
        };
        if job.work == Work::Build {
            let threads = match collection.meta.build_threads {
                0 => threads,
                asked => asked.min(cpus()),
            };
            build(tenant.as_ref(), &collection, threads, cancel);
        }
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        persist(tenant.clone(), &collection);
        lock.lock().finished += 1;
        // A promotion can leave enough tombstones for a compaction, written meanwhile.
        if collection.index.wanted_build().is_some() && !*collection.writer.lock() {
            let mut q = lock.lock();
            if !q.stop {
                q.jobs.push_back(Job {
                    work: Work::Build,
                    ..job
                });
            }
        }
    }
}

fn build(
    tenant: &dyn BuildOwner,
    collection: &LiveCollection,
    threads: usize,
    cancel: &AtomicBool,
) {
    let started = Instant::now();
    let last_report = Mutex::new(Instant::now());
    let progress = |done: usize, total: usize| {
        let mut last = last_report.lock();
        if last.elapsed().as_secs() >= 5 {
            *last = Instant::now();
            tracing::info!(
                tenant = %tenant.tenant_id(),
                collection = %collection.id,
                done,
                total,
                "index build in progress"
            );
        }
    };
    let options = BuildOptions {
        threads,
        progress: Some(&progress),
        cancel: Some(cancel),
    };
    match collection.index.build_if_wanted(&options) {
        Ok(Some(report)) => {
            log_report(tenant, collection, &report, started);
            tenant.index_grew();
        }
        Ok(None) => {}
        Err(e) => tracing::error!(
            tenant = %tenant.tenant_id(),
            collection = %collection.id,
            error = %e,
            "index build failed; the collection keeps its current index"
        ),
    }
}

/// The machine's CPUs: a collection may ask for fewer build threads than the engine's, or more
/// (a big tenant on a big machine), never more than this.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn persist(tenant: Arc<dyn BuildOwner>, collection: &LiveCollection) {
    let started = Instant::now();
    let id = tenant.tenant_id();
    match tenant.persist(collection) {
        Ok(Persisted::Segment { change, bytes }) => tracing::info!(
            tenant = %id,
            collection = %collection.id,
            change,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "segment written"
        ),
        Ok(_) | Err(EngineError::TenantNotFound(_)) => {}
        Err(e) => tracing::error!(
            tenant = %id,
            collection = %collection.id,
            error = %e,
            "segment write failed; the collection will be rebuilt from its records on activation"
        ),
    }
}

fn log_report(
    tenant: &dyn BuildOwner,
    collection: &LiveCollection,
    report: &BuildReport,
    started: Instant,
) {
    tracing::info!(
        tenant = %tenant.tenant_id(),
        collection = %collection.id,
        reason = ?report.reason,
        kind = ?report.kind,
        vectors = report.snapshot_vectors,
        replayed_changes = report.replayed_changes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "index built"
    );
}
