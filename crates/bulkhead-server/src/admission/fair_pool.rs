//! The search pool: a fixed set of threads that run tenants' CPU-bound reads (searches, scans,
//! filters, audit listings) off the async runtime, taking tenants in turn. Each tenant has its
//! own queue; a free thread takes the next job of the next tenant in the ring that is under
//! its share of threads, so a tenant with a thousand queued jobs gets one turn like a tenant
//! with one. A tenant never holds more than `per_tenant_threads`, so the others always have a
//! thread to run on. A job whose caller has gone away (a cancelled request) is skipped.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bulkhead_core::TenantId;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct TenantQueue {
    jobs: VecDeque<Job>,
    running: usize,
}

#[derive(Default)]
struct Queues {
    tenants: HashMap<TenantId, TenantQueue>,
    /// Tenants with queued jobs, in turn order.
    ring: VecDeque<TenantId>,
    stopping: bool,
}

impl Queues {
    /// The next job of the first tenant in the ring under its share; that tenant goes to the
    /// back of the ring.
    fn next(&mut self, per_tenant_threads: usize) -> Option<(TenantId, Job)> {
        let at = self.ring.iter().position(|t| {
            self.tenants
                .get(t)
                .is_some_and(|q| q.running < per_tenant_threads && !q.jobs.is_empty())
        })?;
        let tenant = self.ring.remove(at).expect("position is in the ring");
        let queue = self
            .tenants
            .get_mut(&tenant)
            .expect("ring tenants have queues");
        let job = queue.jobs.pop_front().expect("checked non-empty");
        queue.running += 1;
        if !queue.jobs.is_empty() {
            self.ring.push_back(tenant.clone());
        }
        Some((tenant, job))
    }

    fn finished(&mut self, tenant: &TenantId) {
        if let Some(queue) = self.tenants.get_mut(tenant) {
            queue.running -= 1;
            if queue.running == 0 && queue.jobs.is_empty() {
                self.tenants.remove(tenant);
            }
        }
    }
}

struct Shared {
    queues: Mutex<Queues>,
    work: Condvar,
    per_tenant_threads: usize,
}

/// Stops its threads when dropped (after the jobs they are running).
pub struct FairPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FairPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairPool")
            .field("per_tenant_threads", &self.shared.per_tenant_threads)
            .finish_non_exhaustive()
    }
}

/// The pool's answer when a job panicked (its caller maps it to `INTERNAL`).
#[derive(Debug)]
pub struct JobPanicked;

impl FairPool {
    pub fn new(threads: usize, per_tenant_threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            work: Condvar::new(),
            per_tenant_threads: per_tenant_threads.max(1),
        });
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("bulkhead-search-{i}"))
                .spawn(move || work(&shared))?;
        }
        Ok(Self { shared })
    }

    /// Runs `job` for `tenant` on the pool and returns its result.
    pub async fn run<R: Send + 'static>(
        &self,
        tenant: &TenantId,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, JobPanicked> {
        let (done, result) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            if done.is_closed() {
                return;
            }
            if let Ok(r) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                let _ = done.send(r);
            }
        });
        {
            let mut q = self.shared.queues.lock();
            let queue = q.tenants.entry(tenant.clone()).or_default();
            let was_idle = queue.jobs.is_empty();
            queue.jobs.push_back(wrapped);
            if was_idle {
                q.ring.push_back(tenant.clone());
            }
        }
        self.shared.work.notify_one();
        result.await.map_err(|_| JobPanicked)
    }
}

impl Drop for FairPool {
    fn drop(&mut self) {
        self.shared.queues.lock().stopping = true;
        self.shared.work.notify_all();
    }
}

fn work(shared: &Shared) {
    let mut q = shared.queues.lock();
    loop {
        if q.stopping {
            return;
        }
        let Some((tenant, job)) = q.next(shared.per_tenant_threads) else {
            shared.work.wait(&mut q);
            continue;
        };
        drop(q);
        job();
        q = shared.queues.lock();
        q.finished(&tenant);
        // The tenant may have jobs that waited for its share: another thread may take one.
        shared.work.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn t(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_with_a_deep_queue_leaves_a_thread_for_the_others() {
        let pool = Arc::new(FairPool::new(2, 1).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // The attacker's jobs block until the victim's job has run: if the attacker could take
        // both threads, the victim would never run.
        let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let mut flood = Vec::new();
        for _ in 0..20 {
            let (pool, running, most, release) =
                (pool.clone(), running.clone(), most.clone(), release.clone());
            flood.push(tokio::spawn(async move {
                pool.run(&t("attacker"), move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let (released, cv) = &*release;
                    let _g = cv.wait_while(released.lock().unwrap(), |r| !*r).unwrap();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        while running.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::timeout(Duration::from_secs(10), pool.run(&t("victim"), || ()))
            .await
            .expect("the victim ran beside the attacker's blocked job")
            .unwrap();
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        for f in flood {
            f.await.unwrap();
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "the attacker held one thread at most"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = FairPool::new(1, 1).unwrap();
        assert!(pool.run(&t("a"), || panic!("boom")).await.is_err());
        assert_eq!(pool.run(&t("a"), || 7).await.unwrap(), 7);
    }

    #[test]
    fn turns_go_round_the_tenants_with_queued_jobs() {
        let mut q = Queues::default();
        for (tenant, jobs) in [("a", 3), ("b", 1), ("c", 2)] {
            for _ in 0..jobs {
                q.tenants
                    .entry(t(tenant))
                    .or_default()
                    .jobs
                    .push_back(Box::new(|| ()));
            }
            q.ring.push_back(t(tenant));
        }
        let mut order = Vec::new();
        while let Some((tenant, _)) = q.next(usize::MAX) {
            order.push(tenant.as_str().to_owned());
        }
        assert_eq!(order, ["a", "b", "c", "a", "c", "a"]);
    }
}
