//! Times on the wire are `google.protobuf.Timestamp`s and whole seconds; inside, milliseconds
//! since the epoch (the engine) or `SystemTime` (the SDK).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

use crate::error::{Result, WireError};

pub fn timestamp_from_ms(ms: u64) -> Timestamp {
    Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the epoch; a time before it, or nanos out of their range, is refused.
pub fn timestamp_to_ms(t: &Timestamp) -> Result<u64> {
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(WireError::invalid("timestamp out of range"));
    }
    Ok(t.seconds as u64 * 1000 + t.nanos as u64 / 1_000_000)
}

/// A time the server sent; one before the epoch (never sent) reads as the epoch.
pub fn system_time_from_pb(t: &Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
}

pub fn system_time_to_pb(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A positive number of seconds from the wire, or an error naming `field`.
pub fn positive_seconds(field: &str, secs: i64) -> Result<Duration> {
    if secs <= 0 {
        return Err(WireError::invalid(format!(
            "{field} must be positive, got {secs}"
        )));
    }
    Ok(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_and_bad_timestamps_are_refused() {
        for ms in [0, 1, 999, 1000, 1_700_000_000_123] {
            assert_eq!(timestamp_to_ms(&timestamp_from_ms(ms)), Ok(ms));
        }
        let before_epoch = Timestamp {
            seconds: -1,
            nanos: 0,
        };
        assert!(timestamp_to_ms(&before_epoch).is_err());
        for nanos in [-1, 1_000_000_000] {
            assert!(timestamp_to_ms(&Timestamp { seconds: 1, nanos }).is_err());
        }
        let last_nano = Timestamp {
            seconds: 0,
            nanos: 999_999_999,
        };
        assert_eq!(timestamp_to_ms(&last_nano), Ok(999));
    }

    #[test]
    fn system_times_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5_000);
        assert_eq!(system_time_from_pb(&system_time_to_pb(t)), t);
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(positive_seconds("ttl", 1), Ok(Duration::from_secs(1)));
        assert_eq!(
            positive_seconds("ttl", 0).unwrap_err().to_string(),
            "ttl must be positive, got 0"
        );
        assert!(positive_seconds("ttl", -5).is_err());
    }
}
