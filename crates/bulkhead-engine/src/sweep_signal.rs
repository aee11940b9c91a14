//! How requests and the engine reach the sweeper thread: a request that opened a group past the
//! cap asks it to close the least recently used ones, so the request itself never waits for
//! another group's flush and close. A module of its own because both sides hold it: the
//! residency raises it, the sweeper waits on it, and neither needs to know the other's type.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

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

/// Why the sweeper thread woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Stop,
    /// `true` when a request opened a group past the cap since the last wake-up.
    Work {
        over_group_cap: bool,
    },
}

impl Signal {
    pub fn over_group_cap(&self) {
        self.state.lock().over_group_cap = true;
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_all();
    }

    /// Waits until `until`, a stop, or a group opened past the cap, whichever comes first.
    pub fn wait(&self, until: Instant) -> Wake {
        let mut state = self.state.lock();
        while !state.stop && !state.over_group_cap && Instant::now() < until {
            self.wake.wait_until(&mut state, until);
        }
        if state.stop {
            return Wake::Stop;
        }
        Wake::Work {
            over_group_cap: std::mem::take(&mut state.over_group_cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_raised_cap_wakes_the_waiter_once() {
        let signal = Signal::default();
        signal.over_group_cap();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            signal.wait(far),
            Wake::Work {
                over_group_cap: true
            }
        );
        let soon = Instant::now() + Duration::from_millis(1);
        assert_eq!(
            signal.wait(soon),
            Wake::Work {
                over_group_cap: false
            }
        );
        signal.stop();
        assert_eq!(signal.wait(far), Wake::Stop);
    }
}
