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

/// The nice value of background work (0 is the default, 19 the lowest priority).
const BACKGROUND_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority for the rest of its life; for threads that only do
/// background work (the sweeper's, index builds, the benchmark's attacker) or a tenant's work
/// past its share (the server's borrowed engine threads).
pub fn lower_current_thread_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICENESS) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
}

/// Offers the CPU to any thread waiting for it; called between the records of a write, each
/// of which costs a graph insert (0.1–0.5 ms of CPU). Linux's scheduler lets a running thread
/// finish its time slice (around a millisecond, longer on bigger machines) before a woken thread of
/// any priority gets the CPU, so a neighbour's query waited out the slice of a flooding
/// tenant's upsert on a background thread; a yield hands the CPU over at the next record. With
/// nothing waiting it returns at once, a system call of under a microsecond. Measured under a
/// write flood (benchmarks.md, *Yields between the records of a write*).
pub(crate) fn offer_cpu() {
    std::thread::yield_now();
}

/// Runs `work` on a helper thread at background priority and waits for it. The caller's own
/// priority is never touched: an unprivileged process could not raise it back afterwards.
pub(crate) fn at_background_priority<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("bulkhead-activate".into())
            .spawn_scoped(s, || {
                lower_current_thread_priority();
                work()
            })
            .expect("spawning an activation thread");
        helper
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
    fn panics_reach_the_caller() {
        let caught = std::panic::catch_unwind(|| at_background_priority(|| panic!("boom")));
        assert!(caught.is_err());
    }
}
