//! Syncing a tenant group's write-ahead log outside its write queue.
//!
//! A RocksDB write with `sync` set fsyncs the log while it leads the instance's write queue, so
//! every later write of the instance waits for that fsync: with many tenants in one group, the
//! audit append of a neighbour's query waited for a tenant's 785 KB upsert to reach the disk
//! (docs/benchmarks.md, "The log synced outside the write queue"). Now a durable write is
//! written unsynced, which takes the queue only while the bytes enter the log, and then waits
//! here until a sync of the log that began after it has finished. Callers that arrive while a
//! sync runs share the next one, so concurrent writes still cost one fsync between them, as
//! RocksDB's own group commit did.

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

/// One group's log syncs: which writes are in the log, and which of them a finished sync
/// covers. Writes are counted, not identified: a sync that starts after the n-th write returned
/// covers the first n.
#[derive(Debug, Default)]
pub(crate) struct WalSync {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Writes that returned and asked for a sync.
    written: u64,
    /// Writes covered by the last sync that succeeded.
    synced: u64,
    /// Whether a caller is running `sync` now.
    syncing: bool,
}

impl WalSync {
    /// Returns once a sync that began after this call did has finished: the write the caller
    /// made before calling is then on disk. Runs `sync` itself when no other caller is running
    /// one; otherwise waits for that one and, if it began too early, for the next. A failed
    /// sync is the error of the caller that ran it; the callers waiting on it try again.
    pub fn sync_after_write(&self, sync: impl Fn() -> Result<()>) -> Result<()> {
        let mut state = self.state.lock();
        state.written += 1;
        let mine = state.written;
        while state.synced < mine {
            if state.syncing {
                self.finished.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let covers = state.written;
            let outcome = parking_lot::MutexGuard::unlocked(&mut state, &sync);
            state.syncing = false;
            if outcome.is_ok() {
                state.synced = state.synced.max(covers);
            }
            self.finished.notify_all();
            outcome?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::error::EngineError;

    type Outcome = std::thread::JoinHandle<Result<()>>;

    /// A write on another thread whose sync has begun and runs until the sender is used.
    fn a_write_whose_sync_is_held(
        wal: &Arc<WalSync>,
        syncs: &Arc<AtomicUsize>,
    ) -> (Outcome, mpsc::Sender<()>) {
        let (in_sync, started) = mpsc::channel();
        let (release, hold) = mpsc::channel::<()>();
        let (wal, syncs) = (wal.clone(), syncs.clone());
        let write = std::thread::spawn(move || {
            wal.sync_after_write(|| {
                syncs.fetch_add(1, Ordering::SeqCst);
                in_sync.send(()).unwrap();
                hold.recv().unwrap();
                Ok(())
            })
        });
        started.recv().unwrap();
        (write, release)
    }

    #[test]
    fn a_lone_write_runs_one_sync() {
        let wal = WalSync::default();
        let syncs = AtomicUsize::new(0);
        wal.sync_after_write(|| {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }

    /// The essential property: a write that arrives while a sync runs (that sync may have read
    /// the log before the write was in it) is not covered by it, and waits for the next.
    #[test]
    fn a_write_during_a_sync_waits_for_the_next_sync() {
        let wal = Arc::new(WalSync::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let (first, release) = a_write_whose_sync_is_held(&wal, &syncs);
        let (done, second_done) = mpsc::channel();
        let second = {
            let (wal, syncs) = (wal.clone(), syncs.clone());
            std::thread::spawn(move || {
                let r = wal.sync_after_write(|| {
                    syncs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
                done.send(()).unwrap();
                r
            })
        };
        assert!(
            second_done
                .recv_timeout(Duration::from_millis(200))
                .is_err(),
            "the second write returned during a sync that began before it"
        );
        release.send(()).unwrap();
        first.join().unwrap().unwrap();
        second.join().unwrap().unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn writes_waiting_together_share_one_sync() {
        let wal = Arc::new(WalSync::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let (first, release) = a_write_whose_sync_is_held(&wal, &syncs);
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (wal, syncs) = (wal.clone(), syncs.clone());
                std::thread::spawn(move || {
                    wal.sync_after_write(|| {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        // Every waiter has taken its ticket once all eight are counted as written.
        while wal.state.lock().written < 9 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        first.join().unwrap().unwrap();
        for w in waiting {
            w.join().unwrap().unwrap();
        }
        assert_eq!(syncs.load(Ordering::SeqCst), 2, "eight waiters, one sync");
    }

    #[test]
    fn a_failed_sync_fails_its_caller_and_the_next_write_syncs_again() {
        let wal = WalSync::default();
        let failed = wal.sync_after_write(|| Err(EngineError::Storage("disk gone".into())));
        assert!(failed.is_err());
        let syncs = AtomicUsize::new(0);
        wal.sync_after_write(|| {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
        assert_eq!(wal.state.lock().synced, 2, "the retry covers both writes");
    }
}
