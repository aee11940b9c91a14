//! Big files of the engine's own (segments) written and removed a few mebibytes at a time,
//! so that the disk stays available to every tenant's log syncs.
//!
//! Why: a tenant's durable write waits for its log's fdatasync, and on a filesystem without a
//! journal (or with one) that sync waits for the device to finish what is already queued. A
//! 92 MB segment written to the page cache and synced whole queued all of it at once: a
//! neighbour's one-record upsert waited 110 ms behind it. And on a filesystem mounted with
//! `discard`, freeing a file's blocks sends the device a discard of all of them from inside
//! `unlink` (or the `rename` over it): 92 MB took the device 40 ms, and the upsert synced
//! meanwhile waited as long (docs/benchmarks.md, *Segments written and removed in steps*).
//! RocksDB's own table files already go out a mebibyte at a time (`bytes_per_sync`).
//!
//! So a segment is synced every [`WRITEBACK_BYTES`] as it is written, and a file is shrunk
//! [`RELEASE_BYTES`] at a time before it is unlinked, each at a pace that leaves the device
//! idle most of the time: the device never holds more than a millisecond or two of this work
//! ahead of a neighbour's sync. Measured with `tools/disk_neighbour.py` on this project's VM
//! (64 MiB files, steps paced at 128 MiB/s), a neighbour's sync p99 was 86 ms beside a file
//! written whole, 2.5 ms beside one written in steps (0.9 ms quiet); 178 ms beside a file
//! unlinked whole, 22 ms beside one removed in steps (5 ms at 256 MiB/s in another run). The
//! pace costs background work time only: a 92 MB segment takes under a second to write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes written between two syncs of a file being written (RocksDB's tuning guide suggests
/// 1 MB for its table files, which `storage::options` follows).
pub(crate) const WRITEBACK_BYTES: u64 = 1 << 20;

/// The pace of those writes.
const WRITE_BYTES_PER_SECOND: u64 = 128 << 20;

/// Bytes freed at a time when a file is removed.
pub(crate) const RELEASE_BYTES: u64 = 8 << 20;

/// The pace of removals (a discard costs the device less than a write of as many bytes).
const RELEASE_BYTES_PER_SECOND: u64 = 256 << 20;

/// Work done at no more than a given rate: the caller sleeps when it is ahead.
#[derive(Debug)]
struct Pace {
    started: Instant,
    bytes_per_second: u64,
}

impl Pace {
    fn new(bytes_per_second: u64) -> Self {
        Self {
            started: Instant::now(),
            bytes_per_second,
        }
    }

    /// How long to wait, at `now`, before going on past `done` bytes.
    fn ahead_by(&self, done: u64, now: Instant) -> Duration {
        let due = Duration::from_secs_f64(done as f64 / self.bytes_per_second as f64);
        (self.started + due).saturating_duration_since(now)
    }

    fn wait_for(&self, done: u64) {
        let ahead = self.ahead_by(done, Instant::now());
        if !ahead.is_zero() {
            std::thread::sleep(ahead);
        }
    }
}

/// What can make its written data durable (a file; in tests, a counter).
pub(crate) trait SyncData {
    fn sync_data(&self) -> io::Result<()>;
}

impl SyncData for File {
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// A writer that syncs what it was given every `WRITEBACK_BYTES`, at no more than
/// `WRITE_BYTES_PER_SECOND`, so the data leaves the page cache as it is written instead of all
/// at once at the end. It sleeps: for background threads only.
#[derive(Debug)]
pub(crate) struct SyncingWriter<W> {
    inner: W,
    unsynced: u64,
    written: u64,
    pace: Pace,
}

impl<W> SyncingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            unsynced: 0,
            written: 0,
            pace: Pace::new(WRITE_BYTES_PER_SECOND),
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write + SyncData> Write for SyncingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.unsynced += n as u64;
        self.written += n as u64;
        if self.unsynced >= WRITEBACK_BYTES {
            self.inner.flush()?;
            self.inner.sync_data()?;
            self.unsynced = 0;
            self.pace.wait_for(self.written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The lengths a file of `len` bytes is cut to, one after the other, before it is unlinked.
fn truncation_steps(len: u64) -> impl Iterator<Item = u64> {
    std::iter::successors(Some(len), |&left| {
        (left > 0).then(|| left.saturating_sub(RELEASE_BYTES))
    })
    .skip(1)
}

/// Removes the file at `path`, `RELEASE_BYTES` of it at a time at no more than
/// `RELEASE_BYTES_PER_SECOND`; nothing to do if it is gone. It sleeps: never on an async
/// worker.
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            let len = file.metadata()?.len();
            let pace = Pace::new(RELEASE_BYTES_PER_SECOND);
            for left in truncation_steps(len) {
                file.set_len(left)?;
                pace.wait_for(len - left);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        // A file it can't open for writing (a directory, or no permission) is unlinked whole.
        Err(_) => {}
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes the directory at `dir` and everything in it, each file as [`remove_file`] does;
/// nothing to do if it is gone.
pub(crate) fn remove_dir_all(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_dir_all(&entry.path())?;
        } else {
            remove_file(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Bytes in memory, with the syncs counted and what each sync saw.
    #[derive(Default)]
    struct Counted {
        bytes: Vec<u8>,
        synced_at: Cell<Vec<usize>>,
    }

    impl Write for Counted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SyncData for Counted {
        fn sync_data(&self) -> io::Result<()> {
            let mut at = self.synced_at.take();
            at.push(self.bytes.len());
            self.synced_at.set(at);
            Ok(())
        }
    }

    #[test]
    fn a_writer_syncs_once_per_writeback_bytes_and_keeps_every_byte() {
        let mut w = SyncingWriter::new(Counted::default());
        let piece: Vec<u8> = (0..64 << 10).map(|i| (i % 251) as u8).collect();
        let pieces = 56; // 3.5 MiB
        for _ in 0..pieces {
            w.write_all(&piece).unwrap();
        }
        let mib = WRITEBACK_BYTES as usize;
        assert_eq!(w.inner.synced_at.take(), vec![mib, 2 * mib, 3 * mib]);
        assert_eq!(w.inner.bytes.len(), pieces * piece.len());
        assert!(w.inner.bytes.chunks(piece.len()).all(|c| c == &piece[..]));
    }

    #[test]
    fn a_pace_holds_back_only_work_ahead_of_its_rate() {
        let pace = Pace::new(100 << 20);
        let at = |ms| pace.started + Duration::from_millis(ms);
        // 10 MiB are due 100 ms in.
        assert_eq!(pace.ahead_by(10 << 20, at(40)), Duration::from_millis(60));
        assert_eq!(pace.ahead_by(10 << 20, at(100)), Duration::ZERO);
        assert_eq!(pace.ahead_by(10 << 20, at(500)), Duration::ZERO);
        assert_eq!(pace.ahead_by(0, at(0)), Duration::ZERO);
    }

    #[test]
    fn a_file_is_cut_release_bytes_at_a_time_down_to_nothing() {
        let r = RELEASE_BYTES;
        assert_eq!(
            truncation_steps(2 * r + 5).collect::<Vec<_>>(),
            vec![r + 5, 5, 0]
        );
        assert_eq!(truncation_steps(r).collect::<Vec<_>>(), vec![0]);
        assert_eq!(truncation_steps(3).collect::<Vec<_>>(), vec![0]);
        assert_eq!(truncation_steps(0).count(), 0);
    }

    #[test]
    fn removal_takes_files_and_directories_and_ignores_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        File::create(&big)
            .unwrap()
            .set_len(2 * RELEASE_BYTES + 1)
            .unwrap();
        remove_file(&big).unwrap();
        assert!(!big.exists());
        remove_file(&big).unwrap();

        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("inner")).unwrap();
        std::fs::write(tree.join("a"), b"a").unwrap();
        File::create(tree.join("inner/b"))
            .unwrap()
            .set_len(RELEASE_BYTES + 1)
            .unwrap();
        remove_dir_all(&tree).unwrap();
        assert!(!tree.exists());
        remove_dir_all(&tree).unwrap();
    }
}
