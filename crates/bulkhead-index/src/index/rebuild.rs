//! Promotion and compaction without stopping searches. A build copies the live vectors under the
//! shared lock (searches go on), builds the new graph from that snapshot with no lock held, then
//! replays what was inserted or removed meanwhile, in rounds under the shared lock, until what
//! is left is small (or for a few rounds, if writes come faster than the graph takes them); the
//! remainder is replayed under an upgradable lock, which holds off writers but not searches,
//! and only the swap itself happens under the exclusive lock. So a search never waits for a
//! build, only for one pointer swap, and a write waits at most for the last round.
//!
//! Changes are recorded as labels, not vectors: a replayed insert reads the label's vector from
//! the live state at replay time, or skips it if the label has gone since (its removal follows
//! in the log). Replaying in order therefore ends in exactly the live state's labels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLockUpgradableReadGuard};

use super::{State, VectorIndex};
use crate::error::Result;
use crate::hnsw::Hnsw;
use crate::scratch::Scratch;
use crate::types::IndexKind;

/// A catch-up round this small ends the rounds: the rest is replayed with writers held off,
/// a few milliseconds of graph inserts once per build.
const LAST_ROUND_CHANGES: usize = 256;
/// Most rounds replayed beside writers before the rest is replayed with writers held off
/// (fewer when a round is no smaller than the one before).
const CATCH_UP_ROUNDS: usize = 8;

/// What happened to a label while a build ran.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Inserted(u32),
    Removed(u32),
}

/// Why an index wants to be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildReason {
    /// Flat, and holding more than `flat_threshold` vectors: build the graph.
    Promote,
    /// A graph with more than `max_tombstone_ratio` tombstones: rebuild from live vectors.
    Compact,
}

/// How a build runs.
#[derive(Clone, Copy)]
pub struct BuildOptions<'a> {
    /// Threads inserting into the new graph, the caller's included (at least 1). They run at
    /// the caller's scheduling priority.
    pub threads: usize,
    /// Called with `(vectors linked, vectors to link)` every few thousand vectors.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
    /// Set to stop the build early (at shutdown); the index then keeps what it had.
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for BuildOptions<'_> {
    fn default() -> Self {
        Self {
            threads: 1,
            progress: None,
            cancel: None,
        }
    }
}

impl std::fmt::Debug for BuildOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// What a build did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildReport {
    pub reason: BuildReason,
    /// Vectors in the snapshot the graph was built from.
    pub snapshot_vectors: usize,
    /// Inserts and removals replayed after the snapshot.
    pub replayed_changes: usize,
    /// What the index is after the swap (a compaction below `flat_threshold` ends flat).
    pub kind: IndexKind,
    pub elapsed: Duration,
}

/// A change read from the live state, ready to apply to the new one.
enum Replay {
    Insert(u32, Vec<f32>),
    Remove(u32),
}

/// Stops change tracking if a build ends early (a panic while building), so the next build can
/// start; disarmed by the swap, which stops tracking itself.
struct Tracking<'a> {
    changes: &'a Mutex<Option<Vec<Change>>>,
    armed: bool,
}

impl Drop for Tracking<'_> {
    fn drop(&mut self) {
        if self.armed {
            *self.changes.lock() = None;
        }
    }
}

impl VectorIndex {
    /// Records a change for a running build; called with the state's exclusive lock held, so a
    /// snapshot (taken under the shared lock) sees either the whole change or none of it.
    pub(super) fn record_change(&self, change: Change) {
        if let Some(changes) = self.changes_during_build.lock().as_mut() {
            changes.push(change);
        }
    }

    /// Runs the build the index wants, if any and if none is running, on the calling thread
    /// (and `options.threads - 1` helpers). Searches, inserts and removes go on meanwhile and
    /// wait only for the final swap. Returns `None` when there was nothing to do, or when
    /// `options.cancel` stopped it (nothing changes then).
    pub fn build_if_wanted(&self, options: &BuildOptions<'_>) -> Result<Option<BuildReport>> {
        let started = Instant::now();
        let (snapshot, reason) = {
            let state = self.state.upgradable_read();
            let Some(reason) = state.wanted_build(&self.params) else {
                return Ok(None);
            };
            let mut changes = self.changes_during_build.lock();
            if changes.is_some() {
                return Ok(None);
            }
            *changes = Some(Vec::new());
            // A plain copy, under the upgradable lock: inserts and removes wait for it, and
            // searches go on (under the shared lock, a writer waiting behind the copy would
            // hold up every new search). Dropping tombstoned slots is done on the copy, after.
            (state.store.clone(), reason)
        };
        let snapshot = snapshot.compacted();
        let mut tracking = Tracking {
            changes: &self.changes_during_build,
            armed: true,
        };
        let snapshot_vectors = snapshot.live();
        let cancelled = || options.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        let graph = (snapshot_vectors > self.params.flat_threshold).then(|| {
            let total = snapshot.slots();
            let progress = |done: usize| {
                if let Some(report) = options.progress {
                    report(done, total);
                }
            };
            Hnsw::build(
                &self.params,
                &snapshot.space(self.metric),
                total,
                options.threads.max(1),
                &progress,
                &cancelled,
            )
        });
        let graph = match graph {
            Some(None) => return Ok(None),
            Some(Some(g)) => Some(g),
            None => None,
        };
        let mut next = State {
            store: snapshot,
            graph,
            generation: 0,
        };

        let mut scratch = Scratch::default();
        let mut replayed_changes = 0;
        let mut previous = usize::MAX;
        for _ in 0..CATCH_UP_ROUNDS {
            let round = {
                let state = self.state.read();
                self.take_changes(&state)
            };
            replayed_changes += round.len();
            // Small enough, or not shrinking: writes come faster than the graph takes them.
            let last = round.len() <= LAST_ROUND_CHANGES || round.len() >= previous;
            previous = round.len();
            self.replay(&mut next, round, &mut scratch)?;
            if last {
                break;
            }
            if cancelled() {
                return Ok(None);
            }
        }
        // The rest with writers held off (searches go on): writes that arrive faster than a
        // graph takes them, as cheap flat inserts do, would otherwise keep the rounds going.
        let state = self.state.upgradable_read();
        let rest = self.take_changes(&state);
        replayed_changes += rest.len();
        self.replay(&mut next, rest, &mut scratch)?;
        let mut state = RwLockUpgradableReadGuard::upgrade(state);
        *self.changes_during_build.lock() = None;
        tracking.armed = false;
        let kind = if next.graph.is_some() {
            IndexKind::Hnsw
        } else {
            IndexKind::Flat
        };
        next.generation = state.generation + 1;
        let old = std::mem::replace(&mut *state, next);
        drop(state);
        // Freeing the old vectors and graph (hundreds of megabytes for a big collection)
        // happens after the lock is released, not while searches wait for it.
        drop(old);
        self.scratch.clear();
        Ok(Some(BuildReport {
            reason,
            snapshot_vectors,
            replayed_changes,
            kind,
            elapsed: started.elapsed(),
        }))
    }

    /// Takes the changes recorded so far, reading inserted vectors from `live`.
    fn take_changes(&self, live: &State) -> Vec<Replay> {
        let changes = self
            .changes_during_build
            .lock()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        changes
            .into_iter()
            .filter_map(|change| match change {
                Change::Inserted(label) => live
                    .store
                    .slot(label)
                    .map(|slot| Replay::Insert(label, live.store.vector(slot).to_vec())),
                Change::Removed(label) => Some(Replay::Remove(label)),
            })
            .collect()
    }

    fn replay(&self, next: &mut State, round: Vec<Replay>, scratch: &mut Scratch) -> Result<()> {
        for change in round {
            match change {
                Replay::Insert(label, vector) => {
                    // The label's vector was read at replay time, so a label replaced since
                    // the snapshot already carries its newest vector.
                    next.remove(label);
                    next.insert(self.metric, label, &vector, scratch)?;
                }
                Replay::Remove(label) => {
                    next.remove(label);
                }
            }
        }
        Ok(())
    }
}
