//! Where the server's CPU went in a phase, from the kernel's per-thread accounting
//! (`/proc/PID/task/*/schedstat`): how long the threads that serve requests at normal priority
//! ran and how long they sat runnable in a run queue waiting for a CPU, and how much CPU the
//! background-priority threads (borrowed engine threads, index builds, compactions) took.
//!
//! Why: the victim's p99 over a 10 s phase rests on its twenty slowest requests and scatters
//! from run to run on a shared machine more than most changes move it. The run-queue wait of
//! the normal-priority threads sums over every request of the phase, and it is the mechanism a
//! neighbour's load acts through once no lock or queue of the server is shared: a change that
//! should shorten the victim's wait for a CPU can be checked against it directly. Linux only,
//! and only for a server on this machine (`--server-pid`).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::report::round;

/// `SCHED_BATCH` and `SCHED_IDLE`: scheduling policies below the normal one.
const BACKGROUND_POLICIES: [u32; 2] = [3, 5];

/// One thread's totals since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ThreadTotals {
    background: bool,
    run_ns: u64,
    wait_ns: u64,
}

/// Every thread of a process at one instant.
#[derive(Debug, Clone)]
pub struct ThreadTimes {
    at: Instant,
    threads: HashMap<u32, ThreadTotals>,
}

/// A phase's figures, each in CPUs' worth (seconds per second of the phase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseThreads {
    /// CPU of the normal-priority threads (runtime workers, the engine pool's share threads).
    pub foreground_cpu: f64,
    /// Time the normal-priority threads were runnable but waited for a CPU.
    pub foreground_wait: f64,
    /// CPU of the threads below normal priority.
    pub background_cpu: f64,
}

impl ThreadTimes {
    /// The threads of process `pid` now. A thread that ends while it is being read is skipped.
    pub fn of(pid: u32) -> Result<Self> {
        let tasks = Path::new("/proc").join(pid.to_string()).join("task");
        let entries = std::fs::read_dir(&tasks)
            .with_context(|| format!("reading {} (is --server-pid right?)", tasks.display()))?;
        let mut threads = HashMap::new();
        for entry in entries.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let read = |name| std::fs::read_to_string(entry.path().join(name));
            if let (Ok(stat), Ok(schedstat)) = (read("stat"), read("schedstat"))
                && let Some(totals) = parse_thread(&stat, &schedstat)
            {
                threads.insert(tid, totals);
            }
        }
        Ok(Self {
            at: Instant::now(),
            threads,
        })
    }

    /// What the threads did since `earlier`. A thread started in between counts from zero; one
    /// that ended in between is missing (its last stretch with it).
    pub fn since(&self, earlier: &Self) -> PhaseThreads {
        let seconds = self
            .at
            .saturating_duration_since(earlier.at)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        let mut phase = PhaseThreads {
            foreground_cpu: 0.0,
            foreground_wait: 0.0,
            background_cpu: 0.0,
        };
        for (tid, now) in &self.threads {
            let before = earlier.threads.get(tid);
            let run = now.run_ns.saturating_sub(before.map_or(0, |b| b.run_ns)) as f64 / 1e9;
            let wait = now.wait_ns.saturating_sub(before.map_or(0, |b| b.wait_ns)) as f64 / 1e9;
            if now.background {
                phase.background_cpu += run / seconds;
            } else {
                phase.foreground_cpu += run / seconds;
                phase.foreground_wait += wait / seconds;
            }
        }
        phase
    }
}

impl PhaseThreads {
    pub fn json(&self) -> Value {
        json!({
            "foreground_cpu": round(self.foreground_cpu, 3),
            "foreground_wait": round(self.foreground_wait, 3),
            "background_cpu": round(self.background_cpu, 3),
        })
    }
}

/// A thread's priority class from its `stat` line and its run and wait times from its
/// `schedstat` line; `None` if either is malformed.
fn parse_thread(stat: &str, schedstat: &str) -> Option<ThreadTotals> {
    // The command name is in parentheses and may hold spaces and parentheses itself: the
    // fields proper start after the last `)`, with the state (field 3 of proc(5)).
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let nice: i32 = fields.get(19 - 3)?.parse().ok()?;
    let policy: u32 = fields.get(41 - 3)?.parse().ok()?;
    let mut times = schedstat.split_whitespace().map(str::parse::<u64>);
    let run_ns = times.next()?.ok()?;
    let wait_ns = times.next()?.ok()?;
    Some(ThreadTotals {
        background: nice > 0 || BACKGROUND_POLICIES.contains(&policy),
        run_ns,
        wait_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `stat` line of proc(5)'s layout: `comm`, then fields 3.. with `nice` (19) and `policy`
    /// (41) set.
    fn stat(comm: &str, nice: i32, policy: u32) -> String {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[19 - 3] = nice.to_string();
        fields[41 - 3] = policy.to_string();
        format!("1234 ({comm}) {}", fields.join(" "))
    }

    #[test]
    fn priority_class_comes_from_nice_and_policy_whatever_the_name() {
        let normal = parse_thread(&stat("tokio-rt-worker", 0, 0), "500 70 9\n").unwrap();
        assert_eq!(
            normal,
            ThreadTotals {
                background: false,
                run_ns: 500,
                wait_ns: 70
            }
        );
        // A name with spaces and a closing parenthesis doesn't shift the fields.
        let niced = parse_thread(&stat("odd) name (", 10, 0), "1 2 3").unwrap();
        assert!(niced.background);
        let idle_class = parse_thread(&stat("bulkhead-engine", 0, 5), "1 2 3").unwrap();
        assert!(idle_class.background);
        assert!(parse_thread(&stat("x", 0, 0), "not numbers").is_none());
        assert!(parse_thread("no parenthesis", "1 2 3").is_none());
    }

    #[test]
    fn a_phase_counts_each_class_apart_and_new_threads_from_zero() {
        let at = Instant::now();
        let t = |background, run_ns, wait_ns| ThreadTotals {
            background,
            run_ns,
            wait_ns,
        };
        let before = ThreadTimes {
            at,
            threads: HashMap::from([(1, t(false, 1_000_000_000, 0)), (2, t(true, 0, 0))]),
        };
        let after = ThreadTimes {
            at: at + Duration::from_secs(2),
            threads: HashMap::from([
                (1, t(false, 2_000_000_000, 400_000_000)),
                (2, t(true, 3_000_000_000, 900_000_000)),
                (3, t(false, 1_000_000_000, 200_000_000)),
            ]),
        };
        let phase = after.since(&before);
        assert!((phase.foreground_cpu - 1.0).abs() < 1e-9, "{phase:?}");
        assert!((phase.foreground_wait - 0.3).abs() < 1e-9, "{phase:?}");
        assert!((phase.background_cpu - 1.5).abs() < 1e-9, "{phase:?}");
    }

    #[test]
    fn this_process_can_be_read() {
        let times = ThreadTimes::of(std::process::id()).unwrap();
        assert!(!times.threads.is_empty());
        assert!(ThreadTimes::of(u32::MAX).is_err());
    }
}
