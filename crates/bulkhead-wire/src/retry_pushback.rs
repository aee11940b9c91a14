//! The trailer in which a refusal for a tenant's limits names how long until the limit could
//! admit the call: the server writes it and the SDK reads it, in one way. gRPC's own name, so
//! a client's retry policy reads it too.

use std::time::Duration;

/// The trailer's key.
pub const RETRY_PUSHBACK_TRAILER: &str = "grpc-retry-pushback-ms";

/// The trailer's value for `wait`: whole milliseconds, at most `u32::MAX`.
pub fn retry_pushback_to_trailer(wait: Duration) -> u32 {
    wait.as_millis().min(u128::from(u32::MAX)) as u32
}

/// The wait a trailer's value names; `None` if it is not a count of milliseconds.
pub fn retry_pushback_from_trailer(value: &str) -> Option<Duration> {
    value.parse().ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_back_in_whole_milliseconds_and_garbage_reads_as_none() {
        let value = retry_pushback_to_trailer(Duration::from_micros(1_500)).to_string();
        assert_eq!(value, "1");
        assert_eq!(
            retry_pushback_from_trailer(&value),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            retry_pushback_to_trailer(Duration::from_secs(u64::MAX)),
            u32::MAX
        );
        for garbage in ["", "-1", "1.5", "soon"] {
            assert_eq!(retry_pushback_from_trailer(garbage), None, "{garbage:?}");
        }
    }
}
