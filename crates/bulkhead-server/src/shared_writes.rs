//! The disk, shared between tenants' writes. A tenant's own write limit bounds its bandwidth,
//! but not what its writes cost the others: every byte is written again by its flush and
//! compactions, and every other tenant's fsync waits for the disk the while. A flood of 785 KB
//! upserts at the 64 MiB/s default raised a neighbour's p99 1.9 times on this project's VM,
//! about 1.3–1.7 times when the flood was held to 4–8 MiB/s (docs/benchmarks.md, *The disk
//! shared between tenants' writes*); a bulk load alone on the server harms no one at any rate.
//!
//! So while two or more tenants are active, their writes share one budget
//! (`shared-write-bytes-per-second`): each tenant may write what the others left unused in the
//! last window, and never less than an even part of the budget, so a tenant writing little
//! always finds its part, and two floods settle at half each. A tenant alone on the server
//! writes at its own limit.
//!
//! Counting is per one-second window with atomics, never a lock across tenants: each tenant
//! counts itself active and its bytes in its own buckets' state ([`TenantWrites`]), and adds
//! them to the server's totals, which roll over with the window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a window of counting lasts: a tenant is active for this long after its last
/// request, and its part follows the others' use within about as long.
const WINDOW: Duration = Duration::from_secs(1);

/// The server's side: the budget and the totals of the current and the last window.
#[derive(Debug)]
pub struct SharedWrites {
    /// Bytes per second tenants share while two or more are active; 0: no sharing.
    bytes_per_second: u64,
    started: Instant,
    window: AtomicU64,
    active_now: AtomicU64,
    active_last: AtomicU64,
    bytes_now: AtomicU64,
    bytes_last: AtomicU64,
}

/// One tenant's use of the budget, kept with its rate-limit buckets (under their lock).
#[derive(Debug, Default)]
pub struct TenantWrites {
    /// The window it last counted itself active in.
    window: Option<u64>,
    /// Whether it was active in the window before that one too.
    active_last: bool,
    bytes_now: u64,
    bytes_last: u64,
}

/// What a tenant may write beside the others now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WritePart {
    pub bytes_per_second: f64,
    /// The tenants active lately, this one included (two or more).
    pub active_tenants: u64,
    /// The whole budget, for the refusal's message.
    pub budget: u64,
}

impl SharedWrites {
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second,
            started: Instant::now(),
            window: AtomicU64::new(0),
            active_now: AtomicU64::new(0),
            active_last: AtomicU64::new(0),
            bytes_now: AtomicU64::new(0),
            bytes_last: AtomicU64::new(0),
        }
    }

    /// Whether tenants' writes share a budget at all.
    pub fn is_on(&self) -> bool {
        self.bytes_per_second > 0
    }

    /// Counts the tenant whose use is `own` active at `now`, and returns its part of the
    /// budget: `None` while it is the only tenant active lately (or sharing is off).
    pub fn part_of(&self, own: &mut TenantWrites, now: Instant) -> Option<WritePart> {
        if !self.is_on() {
            return None;
        }
        let window = self.window_at(now);
        if own.window != Some(window) {
            let follows = own.window.is_some_and(|w| w + 1 == window);
            own.active_last = follows;
            own.bytes_last = if follows { own.bytes_now } else { 0 };
            own.bytes_now = 0;
            own.window = Some(window);
            self.active_now.fetch_add(1, Ordering::Relaxed);
        }
        // The others it has seen lately: those counted in this window, or in the last one
        // (where a tenant that wrote just before the window turned is counted).
        let others = (self.active_now.load(Ordering::Relaxed).saturating_sub(1)).max(
            self.active_last
                .load(Ordering::Relaxed)
                .saturating_sub(own.active_last as u64),
        );
        if others == 0 {
            return None;
        }
        let active = others + 1;
        let budget = self.bytes_per_second as f64;
        let written_by_others = self
            .bytes_last
            .load(Ordering::Relaxed)
            .saturating_sub(own.bytes_last) as f64;
        Some(WritePart {
            bytes_per_second: (budget / active as f64).max(budget - written_by_others),
            active_tenants: active,
            budget: self.bytes_per_second,
        })
    }

    /// Counts `bytes` written by the tenant whose use is `own` (after [`SharedWrites::part_of`]
    /// in the same call).
    pub fn spent(&self, own: &mut TenantWrites, bytes: u64) {
        if !self.is_on() {
            return;
        }
        own.bytes_now = own.bytes_now.saturating_add(bytes);
        self.bytes_now.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The window of `at`, rolling the totals over when it is a new one. Approximate under
    /// races (a count landing in the window just closed is counted there): it steers a rate,
    /// and the next window corrects it.
    fn window_at(&self, at: Instant) -> u64 {
        let now =
            (at.saturating_duration_since(self.started).as_nanos() / WINDOW.as_nanos()) as u64;
        let mut seen = self.window.load(Ordering::Acquire);
        while seen < now {
            match self
                .window
                .compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let follows = seen + 1 == now;
                    let bytes = self.bytes_now.swap(0, Ordering::Relaxed);
                    let active = self.active_now.swap(0, Ordering::Relaxed);
                    self.bytes_last
                        .store(if follows { bytes } else { 0 }, Ordering::Relaxed);
                    self.active_last
                        .store(if follows { active } else { 0 }, Ordering::Relaxed);
                    break;
                }
                Err(moved) => seen = moved,
            }
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant `windows` and a half windows after `shared` started.
    fn in_window(shared: &SharedWrites, windows: u32) -> Instant {
        shared.started + WINDOW * windows + WINDOW / 2
    }

    #[test]
    fn a_lone_tenant_writes_at_its_own_limit_and_sharing_can_be_off() {
        let shared = SharedWrites::new(1000);
        let mut a = TenantWrites::default();
        assert_eq!(shared.part_of(&mut a, in_window(&shared, 0)), None);
        shared.spent(&mut a, 1_000_000);
        assert_eq!(shared.part_of(&mut a, in_window(&shared, 1)), None);

        let off = SharedWrites::new(0);
        let (mut a, mut b) = (TenantWrites::default(), TenantWrites::default());
        let now = in_window(&off, 0);
        assert_eq!(off.part_of(&mut a, now), None);
        assert_eq!(off.part_of(&mut b, now), None);
    }

    /// Beside a tenant that writes little, a writer gets what it leaves; beside one that
    /// wrote the whole budget, an even part; and once the other has gone quiet for a window
    /// and more, the writer is alone again.
    #[test]
    fn a_tenant_gets_what_the_others_leave_and_at_least_an_even_part() {
        let shared = SharedWrites::new(1000);
        let (mut flood, mut quiet) = (TenantWrites::default(), TenantWrites::default());
        let first = in_window(&shared, 0);
        shared.part_of(&mut flood, first);
        shared.spent(&mut flood, 900);
        let part = shared
            .part_of(&mut quiet, first)
            .expect("two tenants active");
        assert_eq!(part.active_tenants, 2);
        assert_eq!(part.budget, 1000);
        // Nothing counted in a finished window yet: the whole budget.
        assert_eq!(part.bytes_per_second, 1000.0);
        shared.spent(&mut quiet, 100);

        let second = in_window(&shared, 1);
        let flood_part = shared.part_of(&mut flood, second).unwrap();
        let quiet_part = shared.part_of(&mut quiet, second).unwrap();
        assert_eq!(
            flood_part.bytes_per_second, 900.0,
            "what the quiet one left"
        );
        assert_eq!(quiet_part.bytes_per_second, 500.0, "at least an even part");

        shared.part_of(&mut flood, in_window(&shared, 2));
        assert_eq!(
            shared.part_of(&mut flood, in_window(&shared, 3)),
            None,
            "the quiet one has gone"
        );
        // After a pause of more than a window, nothing of before counts.
        shared.part_of(&mut quiet, in_window(&shared, 10));
        let part = shared.part_of(&mut flood, in_window(&shared, 10)).unwrap();
        assert_eq!(part.bytes_per_second, 1000.0);
    }

    /// A tenant last seen just before the window turned still counts as active beside one
    /// seen just after it.
    #[test]
    fn tenants_seen_either_side_of_a_window_turn_are_both_active() {
        let shared = SharedWrites::new(1000);
        let (mut a, mut b) = (TenantWrites::default(), TenantWrites::default());
        assert_eq!(
            shared.part_of(&mut a, shared.started + WINDOW - WINDOW / 10),
            None
        );
        let part = shared
            .part_of(&mut b, shared.started + WINDOW + WINDOW / 10)
            .expect("a was active a moment ago");
        assert_eq!(part.active_tenants, 2);
        // And a, back in the same window as b, sees it.
        let part = shared.part_of(&mut a, in_window(&shared, 1)).unwrap();
        assert_eq!(part.active_tenants, 2);
    }

    /// Three tenants active: the even part is a third.
    #[test]
    fn the_even_part_follows_the_number_of_active_tenants() {
        let shared = SharedWrites::new(900);
        let mut tenants: Vec<TenantWrites> = (0..3).map(|_| TenantWrites::default()).collect();
        for t in &mut tenants {
            shared.part_of(t, in_window(&shared, 0));
            shared.spent(t, 900);
        }
        let part = shared
            .part_of(&mut tenants[0], in_window(&shared, 1))
            .unwrap();
        assert_eq!(part.active_tenants, 3);
        assert_eq!(part.bytes_per_second, 300.0);
    }
}
