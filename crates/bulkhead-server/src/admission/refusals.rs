//! Requests refused for being over a tenant's limits (rate, requests in flight) are audited,
//! but not one event each: a tenant flooding at a hundred thousand requests a second would
//! otherwise write as many audit events, into the RocksDB instance it shares with other
//! tenants. Per tenant, at most one such event a second is written, and its record count says
//! how many refusals it stands for (itself and those since the last one). Refusals of another
//! kind (another tenant's path, a missing role) are audited one by one, as before.

use std::collections::HashMap;

use bulkhead_core::TenantId;
use parking_lot::Mutex;

/// How often a tenant's over-limit refusals are written.
const WINDOW_MS: u64 = 1000;

#[derive(Debug, Default)]
pub struct Refusals {
    tenants: Mutex<HashMap<TenantId, Window>>,
}

#[derive(Debug)]
struct Window {
    written_at_ms: u64,
    unwritten: u64,
}

/// Tenants whose windows are kept; past it, windows older than a second are dropped.
const TENANTS_KEPT: usize = 4096;

impl Refusals {
    /// Counts one over-limit refusal of `tenant` at `now_ms`; `Some(n)`: write one event now
    /// standing for `n` refusals.
    pub fn count(&self, tenant: &TenantId, now_ms: u64) -> Option<u64> {
        let mut tenants = self.tenants.lock();
        if tenants.len() >= TENANTS_KEPT && !tenants.contains_key(tenant) {
            tenants.retain(|_, w| now_ms.saturating_sub(w.written_at_ms) < WINDOW_MS);
        }
        match tenants.get_mut(tenant) {
            Some(w) if now_ms.saturating_sub(w.written_at_ms) < WINDOW_MS => {
                w.unwritten += 1;
                None
            }
            Some(w) => {
                let n = w.unwritten + 1;
                *w = Window {
                    written_at_ms: now_ms,
                    unwritten: 0,
                };
                Some(n)
            }
            None => {
                tenants.insert(
                    tenant.clone(),
                    Window {
                        written_at_ms: now_ms,
                        unwritten: 0,
                    },
                );
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_a_second_counts_the_refusals_it_stands_for() {
        let r = Refusals::default();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        assert_eq!(r.count(&a, 10_000), Some(1));
        assert_eq!(r.count(&a, 10_100), None);
        assert_eq!(r.count(&a, 10_900), None);
        assert_eq!(r.count(&b, 10_900), Some(1), "tenants are counted apart");
        assert_eq!(r.count(&a, 11_000), Some(3));
        assert_eq!(r.count(&a, 12_500), Some(1));
    }
}
