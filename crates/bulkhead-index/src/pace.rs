//! Cooperative yields inside long computations.
//!
//! Linux's scheduler (EEVDF) lets a running thread finish its time slice, about 3 ms on this
//! kind of machine, before a thread that wakes up gets the CPU, whatever their priorities. One
//! tenant's long search (an exact scan of a big flat collection, a graph walk at the largest
//! `ef`), even on a background-priority thread, so made every neighbour's request that woke on
//! its CPU wait out that slice: the tail a hostile neighbour's reads left on a victim's queries
//! (docs/benchmarks.md, *Long searches offer the CPU*). A [`CpuPacer`] turns one long slice
//! into short ones: every 200 µs of a computation it offers the CPU to a waiting thread
//! (`sched_yield`, which returns at once when none waits). A computation shorter than that,
//! which is nearly every query, never yields.

use std::time::{Duration, Instant};

/// How long a computation runs before it offers the CPU.
const RUN_FOR: Duration = Duration::from_micros(200);

/// Steps between looks at the clock: a step is one distance in a scan or one expanded node in
/// a graph walk (tens of nanoseconds to a microsecond), so the clock is read every few
/// microseconds at most.
const STEPS_PER_LOOK: u32 = 64;

/// Counts the steps of one computation and offers the CPU once it has run for `RUN_FOR` since
/// it started or last offered it. Lives on the computation's stack: no thread or global state.
#[derive(Debug)]
pub struct CpuPacer {
    since: Instant,
    steps: u32,
}

impl Default for CpuPacer {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuPacer {
    /// A pacer whose clock starts now.
    pub fn new() -> Self {
        Self {
            since: Instant::now(),
            steps: 0,
        }
    }

    /// One step of the computation; may offer the CPU.
    #[inline]
    pub fn step(&mut self) {
        self.step_with(std::thread::yield_now);
    }

    #[inline]
    fn step_with(&mut self, offer: impl FnOnce()) {
        self.steps += 1;
        if self.steps < STEPS_PER_LOOK {
            return;
        }
        self.steps = 0;
        if self.since.elapsed() >= RUN_FOR {
            offer();
            self.since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers_in(pacer: &mut CpuPacer, steps: u32) -> usize {
        let mut offers = 0;
        for _ in 0..steps {
            pacer.step_with(|| offers += 1);
        }
        offers
    }

    #[test]
    fn a_computation_that_has_run_its_time_offers_the_cpu_at_the_next_look() {
        let mut pacer = CpuPacer::new();
        std::thread::sleep(RUN_FOR + Duration::from_micros(100));
        assert_eq!(offers_in(&mut pacer, STEPS_PER_LOOK - 1), 0, "no look yet");
        assert_eq!(offers_in(&mut pacer, 1), 1, "the look offers");
    }

    #[test]
    fn after_an_offer_the_clock_starts_again() {
        let mut pacer = CpuPacer::new();
        std::thread::sleep(RUN_FOR + Duration::from_micros(100));
        let before_the_offer = Instant::now();
        assert_eq!(offers_in(&mut pacer, STEPS_PER_LOOK), 1);
        let offers = offers_in(&mut pacer, STEPS_PER_LOOK);
        // The clock restarted at the offer, after `before_the_offer`; unless this thread was
        // held off the CPU for RUN_FOR meanwhile, the next look finds too little time run.
        if before_the_offer.elapsed() < RUN_FOR {
            assert_eq!(offers, 0);
        }
    }

    #[test]
    fn a_long_busy_computation_offers_about_once_per_run_time() {
        let mut pacer = CpuPacer::new();
        let started = Instant::now();
        let mut offers = 0;
        while started.elapsed() < RUN_FOR * 10 {
            pacer.step_with(|| offers += 1);
        }
        // At most one offer per RUN_FOR of elapsed time; at least one, since it ran ten times
        // as long (a preempted test thread only lengthens the gaps, never adds offers).
        assert!((1..=10).contains(&offers), "{offers} offers");
    }
}
