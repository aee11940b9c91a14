//! Work that must not take the CPU from hot tenants' requests: opening a tenant group,
//! activating a tenant (building a large tenant's graph takes many seconds of CPU), the sweeper,
//! and RocksDB's compactions. At a lower scheduling priority (a higher nice value) the
//! scheduler runs hot requests first, and the cold request still gets every cycle they leave.
//! Measured on two cores with a thread activating cold tenants back to back: the hot query
//! thread's run-queue wait fell from 77 to 43 ms per 5 s (docs/benchmarks.md).
//!
//! A tenant's work past its share (the server's borrowed engine threads) runs at the same nice
//! value. Not lower, and not in the kernel's idle class: a thread there gets almost no CPU
//! while anything else is runnable, and one that holds a lock (its collection's writer lock,
//! the lead of a RocksDB write group) then stalls every thread waiting for it. Under other
//! processes' load that made a tenant's requests time out (docs/benchmarks.md, "Borrowed
//! threads in the idle class"). A nice value still gives such work some CPU.
//!
//! Priority alone does not keep such work out of a request's way: the scheduler places a waking
//! thread on the CPU with the least weighted load, which is the one running background threads
//! (their nice value weighs little), and there the request's thread waits out their time
//! slices. So background threads also stay off one core, the first the process may use (the
//! server's borrowed threads only while other tenants are active): a request's thread finds
//! that core clear of them (benchmarks.md, *One core clear of every background thread*).
//! RocksDB's flush and compaction threads are started from a thread confined the same way,
//! and inherit it.

use std::sync::OnceLock;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The nice value of background work (0 is the default, 19 the lowest priority).
const BACKGROUND_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority and keeps it off the core left clear for requests,
/// for the rest of its life; for threads that only do background work (the sweeper's, index
/// builds, the benchmark's attacker) or a tenant's work past its share (the server's borrowed
/// engine threads).
pub fn move_current_thread_to_background() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICENESS) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
    use_the_clear_core(false);
}

/// Runs `start` on a helper thread kept off the clear core (at the caller's priority), so the
/// threads it starts inherit that: RocksDB's flush and compaction threads.
pub(crate) fn start_threads_off_the_clear_core<T: Send>(start: impl FnOnce() -> T + Send) -> T {
    on_helper_thread("bulkhead-start", || use_the_clear_core(false), start)
}

/// Lets the calling thread run on the core kept clear for requests, or keeps it off it. For
/// the server's borrowed engine threads, which run a tenant's work past its share: kept off
/// while other tenants are active, free to use every core while one tenant is alone (confined
/// for good, a lone tenant's many concurrent queries lost 6–9% of their throughput on two
/// cores, benchmarks.md).
pub fn use_the_clear_core(allowed: bool) {
    let Some(cpus) = process_cpus() else {
        return;
    };
    let set = if allowed { &cpus.all } else { &cpus.background };
    if let Err(e) = sched_setaffinity(None, set) {
        tracing::debug!(error = %e, "could not set a background thread's CPUs");
    }
}

/// The CPUs the process may use, and those background threads may use: all but the lowest.
struct ProcessCpus {
    all: CpuSet,
    background: CpuSet,
}

/// `None` (no confinement) with fewer than two CPUs. Read once, by the first thread that asks:
/// every thread asks before it is confined, so that is the process's own set.
fn process_cpus() -> Option<&'static ProcessCpus> {
    static CPUS: OnceLock<Option<ProcessCpus>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let all = sched_getaffinity(None).ok()?;
        let background = off_the_lowest(&all)?;
        Some(ProcessCpus { all, background })
    })
    .as_ref()
}

/// `allowed` without its lowest CPU, if that leaves one.
fn off_the_lowest(allowed: &CpuSet) -> Option<CpuSet> {
    let mut rest = *allowed;
    let lowest = (0..CpuSet::MAX_CPU).find(|&cpu| allowed.is_set(cpu))?;
    rest.unset(lowest);
    (rest.count() > 0).then_some(rest)
}

/// Offers the CPU to any thread waiting for it; called between the records of a write, each
/// of which costs a graph insert (0.1–0.5 ms of CPU). Linux's scheduler lets a running thread
/// finish its time slice (around a millisecond, longer on bigger machines) before a woken
/// thread of any priority gets the CPU, so a neighbour's query waited out the slice of a
/// flooding tenant's upsert on a background thread; a yield hands the CPU over at the next
/// record. With nothing waiting it returns at once, a system call of under a microsecond.
/// Measured under a write flood (benchmarks.md, *Yields between the records of a write*).
pub(crate) fn offer_cpu() {
    std::thread::yield_now();
}

/// Runs `work` on a helper thread at background priority and waits for it. The caller's own
/// priority is never touched: an unprivileged process could not raise it back afterwards.
pub(crate) fn at_background_priority<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    on_helper_thread("bulkhead-activate", move_current_thread_to_background, work)
}

/// Runs `work` on a helper thread named `name` after `setup` (which changes only the helper's
/// own scheduling), waits for it, and passes a panic on to the caller.
fn on_helper_thread<T: Send>(
    name: &str,
    setup: impl FnOnce() + Send,
    work: impl FnOnce() -> T + Send,
) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, || {
                setup();
                work()
            })
            .unwrap_or_else(|e| panic!("spawning a {name} thread: {e}"))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_niceness() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn work_runs_at_lower_priority_and_the_caller_keeps_its_own() {
        let before = own_niceness();
        let inside = at_background_priority(own_niceness);
        assert_eq!(inside, BACKGROUND_NICENESS.max(before));
        assert_eq!(own_niceness(), before);
    }

    #[test]
    fn background_threads_keep_off_the_lowest_cpu_only_when_there_are_others() {
        let set = |cpus: &[usize]| {
            let mut s = CpuSet::new();
            cpus.iter().for_each(|&c| s.set(c));
            s
        };
        assert!(
            off_the_lowest(&set(&[3])).is_none(),
            "one CPU: no confinement"
        );
        assert!(off_the_lowest(&set(&[])).is_none());
        assert!(off_the_lowest(&set(&[0, 1])) == Some(set(&[1])));
        assert!(off_the_lowest(&set(&[2, 5, 7])) == Some(set(&[5, 7])));
    }

    #[test]
    fn work_started_off_the_clear_core_runs_there_and_the_caller_keeps_its_cpus() {
        let before = sched_getaffinity(None).unwrap();
        let inside = start_threads_off_the_clear_core(|| sched_getaffinity(None).unwrap());
        match process_cpus() {
            Some(cpus) => assert!(inside == cpus.background && cpus.all == before),
            None => assert!(inside == before),
        }
        assert!(sched_getaffinity(None).unwrap() == before);
    }

    #[test]
    fn a_borrowed_thread_leaves_the_clear_core_and_comes_back() {
        let before = sched_getaffinity(None).unwrap();
        let (off, back) = std::thread::scope(|s| {
            s.spawn(|| {
                use_the_clear_core(false);
                let off = sched_getaffinity(None).unwrap();
                use_the_clear_core(true);
                (off, sched_getaffinity(None).unwrap())
            })
            .join()
            .unwrap()
        });
        assert!(back == before);
        match process_cpus() {
            Some(cpus) => assert!(off == cpus.background && off.count() == before.count() - 1),
            None => assert!(off == before),
        }
    }

    #[test]
    fn panics_reach_the_caller() {
        let caught = std::panic::catch_unwind(|| at_background_priority(|| panic!("boom")));
        assert!(caught.is_err());
    }
}
