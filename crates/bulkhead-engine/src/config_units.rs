//! How the engine's settings read and print in a config file: operators write sizes in MiB
//! and times in whole seconds or days (`block-cache-mib = 256`), the engine keeps bytes and
//! `Duration`s. Each field names its unit in its key, so a number never means two things.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub mod mib {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let mib = u64::deserialize(d)?;
        mib.checked_mul(1 << 20)
            .and_then(|bytes| usize::try_from(bytes).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("{mib} MiB is too large")))
    }

    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64((*bytes >> 20) as u64)
    }
}

pub mod secs {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

pub mod days {
    use super::*;

    const DAY_SECS: u64 = 86_400;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let days = u64::deserialize(d)?;
        days.checked_mul(DAY_SECS)
            .map(Duration::from_secs)
            .ok_or_else(|| serde::de::Error::custom(format!("{days} days is too long")))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs() / DAY_SECS)
    }
}

/// One CPU fewer than the machine has, at least one: a build leaves a core to searches.
pub fn default_index_build_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// A thread count where 0 means the engine's default for the machine.
pub mod threads_or_default {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let threads = usize::deserialize(d)?;
        Ok(if threads == 0 {
            default_index_build_threads()
        } else {
            threads
        })
    }
}
