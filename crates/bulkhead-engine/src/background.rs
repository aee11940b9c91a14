//! Work that must not take the CPU from hot tenants' requests: opening a tenant group,
//! activating a tenant (building a large tenant's graph takes many seconds of CPU), the sweeper,
//! and RocksDB's compactions. At a lower scheduling priority (a higher nice value) the
//! scheduler runs hot requests first, and the cold request still gets every cycle they leave.
//! Measured on two cores with a thread activating cold tenants back to back: the hot query
//! thread's run-queue wait fell from 77 to 43 ms per 5 s (docs/benchmarks.md).
//!
//! A higher nice value only weighs the kernel's choice: a waking request thread does not always
//! preempt a busy nice-10 thread at once, and may wait out the rest of its time slice. A
//! tenant's work past its share (the server's borrowed engine threads) goes further, into the
//! kernel's idle class: any other thread preempts it the moment it wakes, and a CPU running
//! only idle-class threads counts as free when the kernel places a waking thread. That work
//! still gets every cycle nobody else wants. The engine's own maintenance (index builds,
//! activation, the sweeper) stays at nice 10, so that a server kept busy by requests
//! still makes progress on it.

/// The nice value of background work (0 is the default, 19 the lowest priority).
const BACKGROUND_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority for the rest of its life; for threads that only do
/// background work (the sweeper's, index builds, the benchmark's attacker).
pub fn lower_current_thread_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICENESS) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
}

/// Puts the calling thread in the kernel's idle scheduling class (`SCHED_IDLE`) for the rest of
/// its life: it runs only on a CPU no other thread wants. For threads that run a tenant's work
/// past its share (the server's borrowed engine threads). Where the class can't be entered,
/// the thread gets the background nice value instead.
pub fn lower_current_thread_to_idle_class() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    ) {
        tracing::debug!(error = %e, "could not enter the idle scheduling class");
        lower_current_thread_priority();
    }
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
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
    };

    fn own_niceness() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    fn own_policy() -> ThreadSchedulePolicy {
        thread_schedule_policy().unwrap()
    }

    #[test]
    fn work_runs_at_lower_priority_and_the_caller_keeps_its_own() {
        let before = own_niceness();
        let inside = at_background_priority(own_niceness);
        assert_eq!(inside, BACKGROUND_NICENESS.max(before));
        assert_eq!(own_niceness(), before);
    }

    #[test]
    fn an_idle_class_thread_is_in_sched_idle_and_other_threads_are_not() {
        let (inside, beside) = std::thread::scope(|s| {
            let idle = s.spawn(|| {
                lower_current_thread_to_idle_class();
                own_policy()
            });
            let other = s.spawn(own_policy);
            (idle.join().unwrap(), other.join().unwrap())
        });
        assert_eq!(
            inside,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        assert_eq!(
            beside,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
        );
        assert_eq!(
            own_policy(),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
        );
    }

    #[test]
    fn panics_reach_the_caller() {
        let caught = std::panic::catch_unwind(|| at_background_priority(|| panic!("boom")));
        assert!(caught.is_err());
    }
}
