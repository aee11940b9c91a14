//! Wall-clock milliseconds. TTLs are absolute expiry times in milliseconds since the Unix epoch,
//! so an expiry survives restarts and is the same for the read path, the sweeper and the
//! compaction filter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Expiry time of something written at `now` that lives for `ttl`.
pub fn expiry_after(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// Whether something with expiry `expires_at_ms` (0 = never) is expired at `now`.
pub fn is_expired(expires_at_ms: u64, now: u64) -> bool {
    expires_at_ms != 0 && expires_at_ms <= now
}
