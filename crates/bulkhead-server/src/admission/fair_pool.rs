//! The engine pool: the threads every request's engine work runs on (searches, scans, filters,
//! audit listings, writes), taking tenants in turn, so no async worker ever runs it. Each
//! tenant has its own queue; a free thread takes the next job of the next tenant in the ring,
//! so a tenant with a thousand queued jobs gets one turn like a tenant with one.
//!
//! Two classes of thread. *Share* threads (one per CPU) run at normal priority, and a tenant
//! holds at most its share of them (half the CPUs by default, or its own `share.engine_threads`
//! setting), and never all of them while the pool has two or more: the others always find one
//! free, so one tenant's load can't make another's requests queue, even when its jobs stall
//! (waiting for its own collection's writer lock, say) and whatever share an operator gives it.
//! *Borrowed* threads run at background priority (the engine's background nice value) and take
//! a tenant's jobs past its share: alone on the server, a tenant still uses every core, but as
//! soon as another tenant has work, the kernel gives that work's normal-priority thread the CPU
//! first. (Not in the kernel's idle class, which did that better but starved a borrowed job,
//! and every thread waiting on a lock it held, while other processes kept the CPUs busy:
//! benchmarks.md, "Borrowed threads in the idle class".) Beside other active tenants a tenant
//! also holds all the borrowed threads but one, so its work past its share leaves a core clear
//! for theirs: background priority alone left their threads waiting out its time slices. And
//! while other tenants are active the borrowed threads keep off the core the engine keeps clear
//! of all background work, where the scheduler would otherwise wake their request threads
//! beside it; a lone tenant's work past its share may use every core.
//! Fairness of queueing comes from the ring, fairness of CPU from the priorities and that
//! core: none depends on jobs being short.
//!
//! Work known to be long before it starts (*bulk* work: a large write, whose every record is a
//! graph insert) also runs on borrowed threads only while other tenants are active, even within
//! its tenant's fair part. A tenant's usage is counted as its jobs finish, so a flood of large
//! writes dipped under its fair part between them, and each dip put one write on a share
//! thread: 100 ms of normal-priority CPU beside the short requests of everyone else
//! (benchmarks.md, *Bulk work off the share threads*). The tenant's requests queued after its
//! bulk work don't wait for a borrowed thread with it: a share thread takes them past it.
//!
//! A job whose caller has gone away (a cancelled request) is skipped.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_core::TenantId;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// What a job is to the pool's fairness, known before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A request's work, short as far as anyone knows.
    Request,
    /// Work known to be long: beside other active tenants it runs on borrowed threads only.
    Bulk,
}

struct Queued {
    job: Job,
    kind: JobKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Share,
    Borrowed,
}

#[derive(Default)]
struct TenantQueue {
    jobs: VecDeque<Queued>,
    on_share: usize,
    borrowed: usize,
    /// The tenant's weight in the fair division of the share threads, and the number it may
    /// hold at once (but see [`Queues::most_held`]); as its latest job was queued with.
    share: usize,
}

/// A tenant's recent use of the pool, in threads busy (a decaying average over about a second),
/// and its share when it last ran.
#[derive(Debug, Clone, Copy)]
struct Usage {
    busy: f64,
    at: Instant,
    share: usize,
}

/// How long usage is remembered (the average's time constant).
const USAGE_WINDOW: Duration = Duration::from_secs(1);

impl Usage {
    fn now(&self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.at).as_secs_f64();
        self.busy * (-age / USAGE_WINDOW.as_secs_f64()).exp()
    }
}

#[derive(Default)]
struct Queues {
    tenants: HashMap<TenantId, TenantQueue>,
    /// Recent use per tenant, kept while it is above a trace.
    usage: HashMap<TenantId, Usage>,
    /// Normal-priority threads in the pool.
    share_threads: usize,
    /// Background-priority threads in the pool.
    borrowed_threads: usize,
    /// Tenants with queued jobs, in turn order.
    ring: VecDeque<TenantId>,
    /// Share threads waiting for work.
    idle_share: usize,
    stopping: bool,
}

impl Queues {
    /// Queues `job` behind `tenant`'s others, under the tenant's `share` (at least one thread, at
    /// most all of them, as a weight); a tenant with no queued job joins the ring.
    fn push(&mut self, tenant: &TenantId, share: usize, kind: JobKind, job: Job) {
        let share = share.clamp(1, self.share_threads.max(1));
        let queue = self.tenants.entry(tenant.clone()).or_default();
        queue.share = share;
        let was_idle = queue.jobs.is_empty();
        queue.jobs.push_back(Queued { job, kind });
        if was_idle {
            self.ring.push_back(tenant.clone());
        }
    }

    /// The next job a thread of `class` may run: the first tenant in the ring under its share
    /// (share threads), or past it (borrowed threads; also any tenant while no share thread is
    /// idle, so no work waits while a core could run it). That tenant goes to the back.
    ///
    /// A tenant using more than its fair part of the share threads lately (their number divided
    /// among the tenants active lately in proportion to their shares) runs on borrowed threads
    /// only: another tenant's work then finds the CPU first, while the busy tenant still gets
    /// every cycle left over. Bulk work, while another tenant is active, runs on borrowed
    /// threads only too; a share thread then takes the tenant's first request queued after it.
    ///
    /// `per_share` is [`Queues::fair_part_per_share`] at `now`, which the caller also needs.
    fn next(
        &mut self,
        class: Class,
        now: Instant,
        per_share: Option<f64>,
    ) -> Option<(TenantId, Job)> {
        let idle_share = self.idle_share;
        let beside_others = per_share.is_some();
        let most_borrowed = self.most_borrowed(beside_others);
        let (at, place) = self.ring.iter().enumerate().find_map(|(at, t)| {
            let q = self.tenants.get(t)?;
            let over = self.is_over(t, q.share, per_share, now);
            let at_share = q.on_share >= self.most_held(q.share);
            let place = match class {
                // Beside other tenants, bulk work is not for share threads: they take the
                // tenant's first request, past any bulk work queued before it.
                Class::Share if !at_share && !over => q
                    .jobs
                    .iter()
                    .position(|j| !beside_others || j.kind == JobKind::Request),
                Class::Share => None,
                Class::Borrowed => {
                    let bulk_first =
                        beside_others && q.jobs.front().is_some_and(|j| j.kind == JobKind::Bulk);
                    ((at_share || over || bulk_first || idle_share == 0)
                        && q.borrowed < most_borrowed
                        && !q.jobs.is_empty())
                    .then_some(0)
                }
            };
            place.map(|place| (at, place))
        })?;
        let tenant = self.ring.remove(at).expect("position is in the ring");
        let queue = self
            .tenants
            .get_mut(&tenant)
            .expect("ring tenants have queues");
        let Queued { job, .. } = queue.jobs.remove(place).expect("a queued job's place");
        match class {
            Class::Share => queue.on_share += 1,
            Class::Borrowed => queue.borrowed += 1,
        }
        if !queue.jobs.is_empty() {
            self.ring.push_back(tenant.clone());
        }
        Some((tenant, job))
    }

    /// The share threads a tenant with `share` may hold at once: its share, but one fewer than
    /// the pool's share threads when it has two or more. A tenant's jobs may block for long (on
    /// its own collection's writer lock, or a slow disk); holding every normal-priority thread,
    /// they would leave another tenant's work only background-priority threads, which the first
    /// tenant's further jobs fill too. A lone tenant loses no core by it: its work past this
    /// runs on the borrowed threads.
    fn most_held(&self, share: usize) -> usize {
        share.min(all_but_one(self.share_threads))
    }

    /// The borrowed threads one tenant may hold at once: all of them while it is the only
    /// tenant active lately, [`all_but_one`] while others are. Even at
    /// background priority a tenant busy on every core costs the others: a thread of theirs that
    /// wakes on a core running the tenant's work often waits out that work's time slice, and
    /// the two share caches and memory bandwidth. With one core kept clear of it, their work
    /// finds one (benchmarks.md, "One core kept clear").
    fn most_borrowed(&self, others_active: bool) -> usize {
        if others_active {
            all_but_one(self.borrowed_threads)
        } else {
            usize::MAX
        }
    }

    /// The share threads' fair part per thread of share: their number over the summed shares
    /// of the tenants active lately (queued, running, or with recent use); `None` while only
    /// one tenant is active. Forgets faded usage.
    fn fair_part_per_share(&mut self, now: Instant) -> Option<f64> {
        self.usage.retain(|_, u| u.now(now) > 0.001);
        let recent = self.usage.values().map(|u| u.share);
        let queued = self
            .tenants
            .iter()
            .filter(|(t, _)| !self.usage.contains_key(*t))
            .map(|(_, q)| q.share);
        let (active, shares) = recent
            .chain(queued)
            .fold((0, 0), |(n, sum), share| (n + 1, sum + share));
        (active >= 2).then(|| self.share_threads as f64 / shares.max(1) as f64)
    }

    /// Whether `tenant`'s recent use exceeds its fair part: `share` times `per_share` (from
    /// [`Queues::fair_part_per_share`]).
    fn is_over(
        &self,
        tenant: &TenantId,
        share: usize,
        per_share: Option<f64>,
        now: Instant,
    ) -> bool {
        per_share.is_some_and(|per_share| {
            self.usage
                .get(tenant)
                .is_some_and(|u| u.now(now) > per_share * share as f64)
        })
    }

    /// Counts `busy` of a finished job of `tenant` into its recent use.
    fn used(&mut self, tenant: &TenantId, busy: Duration, now: Instant) {
        let share = self.tenants.get(tenant).map_or(1, |q| q.share);
        let u = self.usage.entry(tenant.clone()).or_insert(Usage {
            busy: 0.0,
            at: now,
            share,
        });
        u.busy = u.now(now) + busy.as_secs_f64() / USAGE_WINDOW.as_secs_f64();
        u.at = now;
        u.share = share;
    }

    fn finished(&mut self, tenant: &TenantId, class: Class) {
        if let Some(queue) = self.tenants.get_mut(tenant) {
            match class {
                Class::Share => queue.on_share -= 1,
                Class::Borrowed => queue.borrowed -= 1,
            }
            if queue.on_share + queue.borrowed == 0 && queue.jobs.is_empty() {
                self.tenants.remove(tenant);
            }
        }
    }
}

/// What one tenant may hold of a class of `threads` beside others: one fewer when there are two
/// or more, the one when there is one.
fn all_but_one(threads: usize) -> usize {
    threads.saturating_sub(1).max(1)
}

struct Shared {
    queues: Mutex<Queues>,
    share_work: Condvar,
    borrowed_work: Condvar,
}

impl Shared {
    fn wake(&self) {
        self.share_work.notify_one();
        self.borrowed_work.notify_one();
    }
}

/// Stops its threads when dropped (after the jobs they are running).
pub struct FairPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FairPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairPool").finish_non_exhaustive()
    }
}

/// The pool's answer when a job panicked (its caller maps it to `INTERNAL`).
#[derive(Debug)]
pub struct JobPanicked;

/// The pool's size: threads of each class.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    pub share_threads: usize,
    pub borrowed_threads: usize,
}

impl FairPool {
    pub fn new(size: PoolSize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                share_threads: size.share_threads.max(1),
                borrowed_threads: size.borrowed_threads,
                ..Queues::default()
            }),
            share_work: Condvar::new(),
            borrowed_work: Condvar::new(),
        });
        let classes = std::iter::repeat_n(Class::Share, size.share_threads.max(1))
            .chain(std::iter::repeat_n(Class::Borrowed, size.borrowed_threads));
        for (i, class) in classes.enumerate() {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("bulkhead-engine-{i}"))
                .spawn(move || work(&shared, class))?;
        }
        Ok(Self { shared })
    }

    /// Runs `job` for `tenant` on the pool, holding at most `share` share threads at once, and
    /// returns its result.
    pub async fn run<R: Send + 'static>(
        &self,
        tenant: &TenantId,
        share: usize,
        kind: JobKind,
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
        self.shared.queues.lock().push(tenant, share, kind, wrapped);
        self.shared.wake();
        result.await.map_err(|_| JobPanicked)
    }
}

impl Drop for FairPool {
    fn drop(&mut self) {
        self.shared.queues.lock().stopping = true;
        self.shared.share_work.notify_all();
        self.shared.borrowed_work.notify_all();
    }
}

fn work(shared: &Shared, class: Class) {
    if class == Class::Borrowed {
        bulkhead_engine::move_current_thread_to_background();
    }
    let mut on_the_clear_core = false;
    let ready = match class {
        Class::Share => &shared.share_work,
        Class::Borrowed => &shared.borrowed_work,
    };
    let mut q = shared.queues.lock();
    loop {
        if q.stopping {
            return;
        }
        let now = Instant::now();
        let per_share = q.fair_part_per_share(now);
        let Some((tenant, job)) = q.next(class, now, per_share) else {
            if class == Class::Share {
                q.idle_share += 1;
            }
            ready.wait(&mut q);
            if class == Class::Share {
                q.idle_share -= 1;
            }
            continue;
        };
        // Taking a job can make the rest eligible for the other class (a tenant that just
        // reached its share goes to borrowed threads), whose notification may have been spent
        // while nothing was eligible for it: pass the turn on.
        let more = !q.ring.is_empty();
        // A borrowed thread keeps off the core the engine keeps clear for requests while other
        // tenants are active; a lone tenant's work past its share may use every core.
        let clear_core = class == Class::Borrowed && per_share.is_none();
        drop(q);
        if more {
            shared.wake();
        }
        if class == Class::Borrowed && clear_core != on_the_clear_core {
            bulkhead_engine::use_the_clear_core(clear_core);
            on_the_clear_core = clear_core;
        }
        let started = Instant::now();
        job();
        let finished = Instant::now();
        q = shared.queues.lock();
        q.used(&tenant, finished - started, finished);
        q.finished(&tenant, class);
        // A tenant may have jobs that waited for its share, or for a thread.
        shared.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    impl Queues {
        /// [`Queues::next`] with the fair part worked out at `now`, as the pool's threads do.
        fn next_now(&mut self, class: Class, now: Instant) -> Option<(TenantId, Job)> {
            let per_share = self.fair_part_per_share(now);
            self.next(class, now, per_share)
        }
    }

    fn t(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    fn pool(share_threads: usize, borrowed_threads: usize) -> FairPool {
        FairPool::new(PoolSize {
            share_threads,
            borrowed_threads,
        })
        .unwrap()
    }

    /// The calling thread's nice value.
    fn own_niceness() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    /// Returns once the pool's queues satisfy `ready`.
    async fn until(pool: &FairPool, ready: impl Fn(&Queues) -> bool) {
        while !ready(&pool.shared.queues.lock()) {
            tokio::task::yield_now().await;
        }
    }

    /// Jobs that block until released, counting how many of them run at once.
    #[derive(Clone, Default)]
    struct Blocked {
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        release: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    }

    impl Blocked {
        fn job(&self) -> impl FnOnce() + Send + 'static {
            let this = self.clone();
            move || {
                let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
                this.most.fetch_max(now, Ordering::SeqCst);
                let (released, cv) = &*this.release;
                let _g = cv.wait_while(released.lock().unwrap(), |r| !*r).unwrap();
                this.running.fetch_sub(1, Ordering::SeqCst);
            }
        }

        /// Lets every job finish, waits for `jobs`; returns the most that ran at once.
        async fn release(&self, jobs: Vec<tokio::task::JoinHandle<()>>) -> usize {
            *self.release.0.lock().unwrap() = true;
            self.release.1.notify_all();
            for j in jobs {
                j.await.unwrap();
            }
            self.most.load(Ordering::SeqCst)
        }

        /// Queues `n` blocked jobs of `tenant` under `share` and returns once `running` of them
        /// run.
        async fn queue(
            &self,
            pool: &Arc<FairPool>,
            (tenant, share): (&str, usize),
            n: usize,
            running: usize,
        ) -> Vec<tokio::task::JoinHandle<()>> {
            let jobs = (0..n)
                .map(|_| {
                    let (pool, job, tenant) = (pool.clone(), self.job(), t(tenant));
                    tokio::spawn(async move {
                        pool.run(&tenant, share, JobKind::Request, job)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            while self.running.load(Ordering::SeqCst) < running {
                tokio::task::yield_now().await;
            }
            jobs
        }
    }

    /// Where a victim's job runs beside an attacker (under `attacker_share`) whose 20 jobs stall
    /// on every thread it may take: the most attacker jobs that ran at once, and the victim
    /// thread's name and nice value. If the attacker could take every thread, the victim's job
    /// would never run.
    async fn victim_beside_a_stalled_flood(attacker_share: usize) -> (usize, Option<String>, i32) {
        let pool = Arc::new(pool(2, 2));
        until(&pool, |q| q.idle_share == 2).await;
        let blocked = Blocked::default();
        let flood = blocked
            .queue(&pool, ("attacker", attacker_share), 20, 3)
            .await;
        let (name, niceness) = tokio::time::timeout(
            Duration::from_secs(10),
            pool.run(&t("victim"), 1, JobKind::Request, || {
                let name = std::thread::current().name().map(str::to_owned);
                (name, own_niceness())
            }),
        )
        .await
        .expect("the victim ran beside the attacker's stalled jobs")
        .unwrap();
        (blocked.release(flood).await, name, niceness)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_with_a_deep_queue_leaves_a_share_thread_for_the_others() {
        let (most, on, _) = victim_beside_a_stalled_flood(1).await;
        assert_eq!(most, 3, "one share thread, two borrowed");
        assert!(on.is_some_and(|n| n.starts_with("bulkhead-engine-")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_given_every_share_thread_still_leaves_one_for_the_others() {
        // An operator set the attacker's share to both share threads.
        let (most, _, niceness) = victim_beside_a_stalled_flood(2).await;
        assert_eq!(
            most, 3,
            "one share thread and the two borrowed ones; never both share threads"
        );
        assert_eq!(
            niceness,
            own_niceness(),
            "on the share thread left free, at normal priority"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_alone_runs_on_its_share_and_every_borrowed_thread() {
        let pool = Arc::new(pool(2, 2));
        let blocked = Blocked::default();
        let jobs = blocked.queue(&pool, ("a", 1), 5, 3).await;
        assert_eq!(
            blocked.release(jobs).await,
            3,
            "its share thread and both borrowed ones, never the share thread kept for others"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_within_the_share_runs_at_normal_priority_and_one_past_it_at_background_priority()
    {
        let pool = Arc::new(pool(2, 1));
        // Until both share threads wait for work, a borrowed thread may take any job.
        until(&pool, |q| q.idle_share == 2).await;
        let blocked = Blocked::default();
        // The tenant's one share thread is held; its next job can only go to the borrowed one.
        let held = blocked.queue(&pool, ("a", 1), 1, 1).await;
        let past_share = pool
            .run(&t("a"), 1, JobKind::Request, own_niceness)
            .await
            .unwrap();
        blocked.release(held).await;
        // A caller has its answer before the thread that ran the job counts it finished; until
        // then the tenant still holds its share thread and a new job would go to the borrowed one.
        until(&pool, |q| !q.tenants.contains_key(&t("a"))).await;
        let within_share = pool
            .run(&t("a"), 1, JobKind::Request, own_niceness)
            .await
            .unwrap();
        assert_eq!(within_share, own_niceness(), "the process's own priority");
        assert!(
            past_share > within_share,
            "{past_share} is no lower priority"
        );
    }

    /// A borrowed thread runs a lone tenant's work past its share on every core the process
    /// may use, and keeps off the core the engine keeps clear for requests while another tenant
    /// is active.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_borrowed_job_keeps_off_the_clear_core_only_beside_another_tenant() {
        let cpus = || rustix::thread::sched_getaffinity(None).unwrap();
        let all = cpus();
        let pool = Arc::new(pool(2, 1));
        until(&pool, |q| q.idle_share == 2).await;
        let blocked = Blocked::default();
        // The tenant's one share thread is held; its next jobs can only go to the borrowed one.
        let held = blocked.queue(&pool, ("a", 1), 1, 1).await;
        let alone = pool.run(&t("a"), 1, JobKind::Request, cpus).await.unwrap();
        // Another tenant's recent work makes it active for a while.
        let busy = || std::thread::sleep(Duration::from_millis(20));
        pool.run(&t("b"), 1, JobKind::Request, busy).await.unwrap();
        let beside_b = pool.run(&t("a"), 1, JobKind::Request, cpus).await.unwrap();
        blocked.release(held).await;
        assert!(alone == all, "alone: {alone:?}");
        if all.count() >= 2 {
            let lowest = (0..rustix::thread::CpuSet::MAX_CPU)
                .find(|&c| all.is_set(c))
                .unwrap();
            assert_eq!(beside_b.count(), all.count() - 1, "{beside_b:?}");
            assert!(!beside_b.is_set(lowest), "{beside_b:?}");
        } else {
            assert!(beside_b == all, "one CPU confines nothing");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = pool(1, 0);
        assert!(
            pool.run(&t("a"), 1, JobKind::Request, || panic!("boom"))
                .await
                .is_err()
        );
        assert_eq!(
            pool.run(&t("a"), 1, JobKind::Request, || 7).await.unwrap(),
            7
        );
    }

    #[test]
    fn turns_go_round_the_tenants_with_queued_jobs() {
        let mut q = Queues {
            share_threads: 8,
            ..Queues::default()
        };
        for (tenant, jobs) in [("a", 3), ("b", 1), ("c", 2)] {
            for _ in 0..jobs {
                q.push(&t(tenant), 8, JobKind::Request, Box::new(|| ()));
            }
        }
        let mut order = Vec::new();
        while let Some((tenant, _)) = q.next_now(Class::Share, Instant::now()) {
            order.push(tenant.as_str().to_owned());
        }
        assert_eq!(order, ["a", "b", "c", "a", "c", "a"]);
    }

    #[test]
    fn a_tenant_over_its_fair_part_gets_borrowed_threads_only_while_others_are_active() {
        let now = Instant::now();
        let mut q = Queues {
            share_threads: 2,
            ..Queues::default()
        };
        let queue =
            |q: &mut Queues, tenant: &str| q.push(&t(tenant), 1, JobKind::Request, Box::new(|| ()));
        // Busy on three threads for the last second: 3 threads' worth.
        q.used(&t("heavy"), Duration::from_secs(3), now);
        queue(&mut q, "heavy");
        assert!(
            q.next_now(Class::Share, now).is_some(),
            "alone, a busy tenant keeps its share thread"
        );
        q.finished(&t("heavy"), Class::Share);
        queue(&mut q, "heavy");
        queue(&mut q, "light");
        let (first, _) = q.next_now(Class::Share, now).unwrap();
        assert_eq!(
            first.as_str(),
            "light",
            "the heavy tenant is past 2 / 2 tenants"
        );
        assert!(
            q.next_now(Class::Share, now).is_none(),
            "no share thread for the heavy tenant while the light one is active"
        );
        let (borrowed, _) = q.next_now(Class::Borrowed, now).unwrap();
        assert_eq!(borrowed.as_str(), "heavy");
        let later = now + Duration::from_secs(5);
        let per_share = q.fair_part_per_share(later);
        assert!(!q.is_over(&t("heavy"), 1, per_share, later), "use decays");
    }

    #[test]
    fn bulk_work_takes_a_share_thread_only_while_its_tenant_is_alone() {
        let now = Instant::now();
        let mut q = Queues {
            share_threads: 2,
            borrowed_threads: 2,
            ..Queues::default()
        };
        let take = |q: &mut Queues, class| q.next_now(class, now).map(|(t, _)| t);
        q.push(&t("bulk"), 1, JobKind::Bulk, Box::new(|| ()));
        assert_eq!(
            take(&mut q, Class::Share),
            Some(t("bulk")),
            "alone, bulk work runs at normal priority"
        );
        q.finished(&t("bulk"), Class::Share);
        // Another tenant active lately; the bulk tenant has used nothing, so it is far under
        // its fair part.
        q.used(&t("other"), Duration::from_millis(10), now);
        q.push(&t("bulk"), 1, JobKind::Bulk, Box::new(|| ()));
        assert_eq!(
            take(&mut q, Class::Share),
            None,
            "beside another tenant, no share thread for bulk work"
        );
        assert_eq!(take(&mut q, Class::Borrowed), Some(t("bulk")));
        q.push(&t("bulk"), 1, JobKind::Request, Box::new(|| ()));
        assert_eq!(
            take(&mut q, Class::Share),
            Some(t("bulk")),
            "the same tenant's next request gets its share thread"
        );
    }

    #[test]
    fn a_request_queued_behind_bulk_work_takes_a_share_thread_past_it() {
        let now = Instant::now();
        let mut q = Queues {
            share_threads: 2,
            borrowed_threads: 2,
            ..Queues::default()
        };
        q.used(&t("other"), Duration::from_millis(10), now);
        let ran = Arc::new(Mutex::new(Vec::new()));
        for (kind, name) in [(JobKind::Bulk, "import batch"), (JobKind::Request, "query")] {
            let ran = ran.clone();
            q.push(&t("a"), 1, kind, Box::new(move || ran.lock().push(name)));
        }
        let (_, job) = q.next_now(Class::Share, now).expect("the query");
        job();
        let (_, job) = q.next_now(Class::Borrowed, now).expect("the batch");
        job();
        assert_eq!(*ran.lock(), ["query", "import batch"]);
    }

    #[test]
    fn beside_others_a_tenant_holds_every_borrowed_thread_but_one() {
        let now = Instant::now();
        let mut q = Queues {
            share_threads: 2,
            borrowed_threads: 3,
            ..Queues::default()
        };
        for _ in 0..10 {
            q.push(&t("heavy"), 1, JobKind::Request, Box::new(|| ()));
        }
        let take = |q: &mut Queues, class| q.next_now(class, now).map(|(t, _)| t);
        assert_eq!(take(&mut q, Class::Share), Some(t("heavy")));
        for _ in 0..3 {
            assert_eq!(
                take(&mut q, Class::Borrowed),
                Some(t("heavy")),
                "alone, it takes every borrowed thread"
            );
        }
        for class in [
            Class::Share,
            Class::Borrowed,
            Class::Borrowed,
            Class::Borrowed,
        ] {
            q.finished(&t("heavy"), class);
        }
        q.used(&t("light"), Duration::from_millis(100), now);
        assert_eq!(take(&mut q, Class::Share), Some(t("heavy")));
        for _ in 0..2 {
            assert_eq!(take(&mut q, Class::Borrowed), Some(t("heavy")));
        }
        assert_eq!(
            take(&mut q, Class::Borrowed),
            None,
            "beside an active tenant, two of the three"
        );
        q.push(&t("light"), 1, JobKind::Request, Box::new(|| ()));
        assert_eq!(
            take(&mut q, Class::Borrowed),
            Some(t("light")),
            "the one left takes the other tenant's work"
        );
    }

    #[test]
    fn fair_parts_follow_the_tenants_shares() {
        let now = Instant::now();
        let mut q = Queues {
            share_threads: 4,
            ..Queues::default()
        };
        // Both busy on 2.5 threads lately; "big" may hold three share threads, "small" one.
        for (tenant, share) in [("big", 3), ("small", 1)] {
            q.push(&t(tenant), share, JobKind::Request, Box::new(|| ()));
            q.push(&t(tenant), share, JobKind::Request, Box::new(|| ()));
            q.used(&t(tenant), Duration::from_millis(2500), now);
        }
        let per_share = q.fair_part_per_share(now);
        assert_eq!(per_share, Some(1.0), "4 threads over shares 3 + 1");
        assert!(!q.is_over(&t("big"), 3, per_share, now), "2.5 of its 3");
        assert!(q.is_over(&t("small"), 1, per_share, now), "2.5 of its 1");
        let (first, _) = q.next_now(Class::Share, now).unwrap();
        assert_eq!(first.as_str(), "big");
        let (second, _) = q.next_now(Class::Share, now).unwrap();
        assert_eq!(second.as_str(), "big", "the small tenant is past its part");
        let (borrowed, _) = q.next_now(Class::Borrowed, now).unwrap();
        assert_eq!(borrowed.as_str(), "small");
    }

    #[test]
    fn a_share_is_at_least_one_thread_and_holds_all_but_one() {
        let mut q = Queues {
            share_threads: 3,
            ..Queues::default()
        };
        for _ in 0..4 {
            q.push(&t("zero"), 0, JobKind::Request, Box::new(|| ()));
            q.push(&t("huge"), 1000, JobKind::Request, Box::new(|| ()));
        }
        assert_eq!(q.tenants[&t("zero")].share, 1, "at least one");
        assert_eq!(q.tenants[&t("huge")].share, 3, "weighs at most all");
        let mut taken = Vec::new();
        while let Some((tenant, _)) = q.next_now(Class::Share, Instant::now()) {
            taken.push(tenant.as_str().to_owned());
        }
        assert_eq!(
            taken,
            ["zero", "huge", "huge"],
            "one, then two of the three; never all"
        );
    }

    #[test]
    fn a_pool_of_one_share_thread_lets_a_tenant_hold_it() {
        let mut q = Queues {
            share_threads: 1,
            ..Queues::default()
        };
        q.push(&t("a"), 1, JobKind::Request, Box::new(|| ()));
        q.push(&t("a"), 1, JobKind::Request, Box::new(|| ()));
        assert!(q.next_now(Class::Share, Instant::now()).is_some());
        assert!(q.next_now(Class::Share, Instant::now()).is_none());
    }
}
