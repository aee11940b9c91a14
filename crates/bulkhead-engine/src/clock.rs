//! Time in milliseconds since the Unix epoch. TTLs are absolute expiry times in those units, so
//! an expiry survives restarts and is the same for the read path, the sweeper and the
//! compaction filter.
//!
//! The engine reads time only through its configured [`Clock`]: the system clock in a server,
//! a [`ManualClock`] in tests, so expiry, retention and idle times are tested by moving time
//! rather than by sleeping past it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the engine's time comes from (`EngineConfig::clock`).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now_ms(&self) -> u64 {
        match &self.source {
            Source::System => system_now_ms(),
            Source::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

/// A clock that stands still until moved: give `clock()` to the engine, then `advance` it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// Standing at the system's time now (so expiry times look like real ones).
    pub fn starting_now() -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(system_now_ms())),
        }
    }

    pub fn clock(&self) -> Clock {
        Clock {
            source: Source::Manual(self.now_ms.clone()),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(millis(by), Ordering::Relaxed);
    }
}

fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// `d` in whole milliseconds, saturating (a duration past `u64::MAX` ms is "forever").
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Expiry time of something written at `now` that lives for `ttl`.
pub fn expiry_after(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(millis(ttl))
}

/// Whether something with expiry `expires_at_ms` (0 = never) is expired at `now`.
pub fn is_expired(expires_at_ms: u64, now: u64) -> bool {
    expires_at_ms != 0 && expires_at_ms <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_every_copy_sees_it() {
        let manual = ManualClock::starting_now();
        let clock = manual.clock();
        let start = clock.now_ms();
        assert!(start > 1_700_000_000_000, "near the system's time: {start}");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.clone().now_ms(), start);
        manual.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), start + 1500);
        assert_eq!(manual.now_ms(), start + 1500);
    }

    #[test]
    fn the_system_clock_follows_the_system() {
        let before = system_now_ms();
        let now = Clock::system().now_ms();
        assert!(now >= before && now < before + 60_000);
    }

    #[test]
    fn expiry_is_inclusive_and_zero_never_expires() {
        assert!(is_expired(100, 100));
        assert!(!is_expired(101, 100));
        assert!(!is_expired(0, u64::MAX));
        assert_eq!(expiry_after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
    }
}
