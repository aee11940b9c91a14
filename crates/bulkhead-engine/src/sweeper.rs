//! The background sweeper: one thread per engine that, each round, sweeps expired records and
//! prunes audit logs tenant by tenant through ordinary tenant handles, recounts the memory of
//! loaded indexes (they grow with writes) against the budget, closes groups that have
//! been idle for `group_idle_close`, and then opens, sweeps and closes again a few closed
//! groups in turn. Sweeping every closed group each round would undo lazy opening; taking them
//! in turn bounds the work per round and still reaches every tenant's expired records. Between
//! rounds it closes least recently used groups when a request has opened one past the cap.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::background::lower_current_thread_priority;
use crate::engine::Shared;
use crate::storage::GroupId;

/// How requests and the engine reach the sweeper thread: a request that opened a group past
/// the cap asks it to close the least recently used ones, so the request itself never waits
/// for another group's flush and close.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    stop: bool,
    over_group_cap: bool,
}

impl Signal {
    pub fn over_group_cap(&self) {
        self.state.lock().over_group_cap = true;
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_all();
    }
}

#[derive(Debug)]
pub(crate) struct Sweeper {
    signal: Arc<Signal>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    pub fn start(shared: Arc<Shared>, signal: Arc<Signal>) -> Self {
        let interval = shared.config.sweep_interval;
        let weak = Arc::downgrade(&shared);
        drop(shared);
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("bulkhead-sweeper".into())
            .spawn(move || {
                lower_current_thread_priority();
                let signal = &*thread_signal;
                let mut next_closed = 0;
                let mut next_sweep = Instant::now() + interval;
                loop {
                    let over_group_cap = {
                        let mut state = signal.state.lock();
                        while !state.stop && !state.over_group_cap && Instant::now() < next_sweep {
                            signal.wake.wait_until(&mut state, next_sweep);
                        }
                        if state.stop {
                            return;
                        }
                        std::mem::take(&mut state.over_group_cap)
                    };
                    let Some(shared) = weak.upgrade() else { return };
                    if over_group_cap {
                        shared.enforce_open_group_cap();
                    }
                    if Instant::now() >= next_sweep {
                        sweep_once(&shared, &mut next_closed);
                        next_sweep = Instant::now() + interval;
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

fn sweep_once(shared: &Arc<Shared>, next_closed: &mut GroupId) {
    let started = Instant::now();
    let (mut records, mut events) = (0, 0);
    for tenant in shared.tenants_in_open_groups() {
        match tenant.maintain() {
            Ok((r, e)) => {
                records += r;
                events += e;
            }
            Err(e) => tracing::error!(tenant = %tenant.id(), error = %e, "sweep failed"),
        }
    }
    shared.recount_index_bytes();
    let closed = shared.close_idle_groups(shared.config.group_idle_close);
    for group in closed_groups_in_turn(shared, next_closed) {
        match shared.sweep_closed_group(group) {
            Ok((r, e)) => {
                records += r;
                events += e;
            }
            Err(e) => tracing::error!(group, error = %e, "sweep of a closed group failed"),
        }
    }
    if records + events + closed > 0 {
        tracing::info!(
            expired_records = records,
            audit_events = events,
            idle_groups_closed = closed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep finished"
        );
    }
}

/// The next `closed_groups_swept_per_round` closed groups at or after `next`, wrapping around;
/// advances `next` past them.
fn closed_groups_in_turn(shared: &Shared, next: &mut GroupId) -> Vec<GroupId> {
    let closed = shared.closed_groups();
    let take = shared
        .config
        .closed_groups_swept_per_round
        .min(closed.len());
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
