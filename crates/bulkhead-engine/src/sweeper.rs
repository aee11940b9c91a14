//! The background sweeper: one thread per engine that, each round, sweeps expired records and
//! prunes audit logs tenant by tenant through ordinary tenant handles, recounts the memory of
//! loaded indexes (they grow with writes) against the budget, closes groups that have
//! been idle for `group_idle_close`, and then opens, sweeps and closes again a few closed
//! groups in turn. Sweeping every closed group each round would undo lazy opening; taking them
//! in turn bounds the work per round and still reaches every tenant's expired records. Between
//! rounds it closes least recently used groups when a request has opened one past the cap.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::background::move_current_thread_to_background;
use crate::residency::Residency;
use crate::storage::GroupId;
use crate::sweep_signal::{Signal, Wake};
use crate::tenant::Maintained;

#[derive(Debug)]
pub(crate) struct Sweeper {
    signal: Arc<Signal>,
    thread: JoinHandle<()>,
}

/// What the sweeper is told at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepSchedule {
    pub interval: Duration,
    pub group_idle_close: Duration,
    pub closed_groups_per_round: usize,
}

impl Sweeper {
    /// Starts the thread. It holds the residency weakly: an engine dropped without `stop` still
    /// frees its tenants, and the thread ends at its next wake-up.
    pub fn start(residency: &Arc<Residency>, signal: Arc<Signal>, schedule: SweepSchedule) -> Self {
        let weak = Arc::downgrade(residency);
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("bulkhead-sweeper".into())
            .spawn(move || {
                move_current_thread_to_background();
                let mut next_closed = 0;
                let mut next_sweep = Instant::now() + schedule.interval;
                loop {
                    let Wake::Work { over_group_cap } = thread_signal.wait(next_sweep) else {
                        return;
                    };
                    let Some(residency) = weak.upgrade() else {
                        return;
                    };
                    if over_group_cap {
                        residency.enforce_open_group_cap();
                    }
                    if Instant::now() >= next_sweep {
                        sweep_once(&residency, &schedule, &mut next_closed);
                        next_sweep = Instant::now() + schedule.interval;
                    }
                }
            })
            .expect("spawning the sweeper thread");
        Self { signal, thread }
    }

    pub fn stop(self) {
        self.signal.stop();
        let _ = self.thread.join();
    }
}

fn sweep_once(residency: &Residency, schedule: &SweepSchedule, next_closed: &mut GroupId) {
    let started = Instant::now();
    let mut removed = Maintained::default();
    for tenant in residency.tenants_in_open_groups() {
        match tenant.maintain() {
            Ok(m) => removed += m,
            Err(e) => tracing::error!(tenant = %tenant.id(), error = %e, "sweep failed"),
        }
    }
    residency.recount_index_bytes();
    let closed = residency.close_idle_groups(schedule.group_idle_close);
    let turn = closed_groups_in_turn(
        &residency.closed_groups(),
        schedule.closed_groups_per_round,
        next_closed,
    );
    for group in turn {
        match residency.sweep_closed_group(group) {
            Ok(m) => removed += m,
            Err(e) => tracing::error!(group, error = %e, "sweep of a closed group failed"),
        }
    }
    if !removed.is_empty() || closed > 0 {
        tracing::info!(
            expired_records = removed.records,
            dead_sessions = removed.sessions,
            audit_events = removed.audit_events,
            idle_groups_closed = closed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep finished"
        );
    }
}

/// The next `per_round` of the `closed` groups (in id order) at or after `next`, wrapping
/// around; advances `next` past them.
fn closed_groups_in_turn(closed: &[GroupId], per_round: usize, next: &mut GroupId) -> Vec<GroupId> {
    let take = per_round.min(closed.len());
    let start = closed.partition_point(|g| g < next);
    let turn: Vec<GroupId> = closed
        .iter()
        .cycle()
        .skip(start)
        .take(take)
        .copied()
        .collect();
    if let Some(last) = turn.last() {
        *next = last + 1;
    }
    turn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_groups_are_taken_in_turn_and_wrap_around() {
        let closed = [1, 4, 6, 9];
        let mut next = 0;
        assert_eq!(closed_groups_in_turn(&closed, 3, &mut next), vec![1, 4, 6]);
        assert_eq!(next, 7);
        assert_eq!(closed_groups_in_turn(&closed, 3, &mut next), vec![9, 1, 4]);
        assert_eq!(next, 5);
        assert_eq!(
            closed_groups_in_turn(&closed, 9, &mut next),
            vec![6, 9, 1, 4]
        );
        assert!(closed_groups_in_turn(&[], 3, &mut next).is_empty());
        assert_eq!(next, 5, "no group taken, no move");
    }
}
