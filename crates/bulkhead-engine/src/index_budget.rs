//! The memory budget of loaded indexes. Each tenant counts its own indexes into the total as
//! they load, grow and go; when a load takes the total past the budget, idle tenants are
//! evicted. Counting is the tenant's business, eviction needs every tenant: the budget reaches
//! the owner of the tenants (the residency) through `Evict`, held weakly, so a tenant can ask
//! for eviction without the tenant module depending on the residency and without an `Arc`
//! cycle between the residency and the tenants it holds.

use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whoever holds the tenants and can evict their indexes.
pub(crate) trait Evict: Send + Sync {
    /// Evicts the least recently used idle tenants' indexes while the total exceeds the budget;
    /// never those of the tenant incarnation `keep` (the one whose load asked for it).
    fn evict_to_budget(&self, keep: Option<u64>);
}

#[derive(Debug)]
pub(crate) struct IndexBudget {
    limit_bytes: usize,
    /// Memory of every loaded tenant's indexes, as last counted.
    loaded_bytes: AtomicUsize,
    evictor: Weak<dyn Evict>,
}

impl IndexBudget {
    pub fn new(limit_bytes: usize, evictor: Weak<dyn Evict>) -> Self {
        Self {
            limit_bytes,
            loaded_bytes: AtomicUsize::new(0),
            evictor,
        }
    }

    /// Moves the total by `add` minus `remove` bytes; returns the new total.
    pub fn count(&self, add: usize, remove: usize) -> usize {
        let after_add = self.loaded_bytes.fetch_add(add, Ordering::Relaxed) + add;
        self.loaded_bytes.fetch_sub(remove, Ordering::Relaxed);
        after_add.saturating_sub(remove)
    }

    pub fn is_exceeded(&self) -> bool {
        self.loaded_bytes.load(Ordering::Relaxed) > self.limit_bytes
    }

    /// After tenant incarnation `grown`'s indexes grew to a total of `total`: evicts others if
    /// that is over the budget. A total under it costs no look at the other tenants.
    pub fn grew(&self, total: usize, grown: u64) {
        if total > self.limit_bytes
            && let Some(evictor) = self.evictor.upgrade()
        {
            evictor.evict_to_budget(Some(grown));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Option<u64>>>);

    impl Evict for Recorder {
        fn evict_to_budget(&self, keep: Option<u64>) {
            self.0.lock().push(keep);
        }
    }

    #[test]
    fn only_a_total_over_the_limit_asks_for_eviction_sparing_the_grown_tenant() {
        let recorder = Arc::new(Recorder::default());
        let evictor: Weak<dyn Evict> = Arc::downgrade(&recorder) as Weak<dyn Evict>;
        let budget = IndexBudget::new(100, evictor);
        assert_eq!(budget.count(60, 0), 60);
        budget.grew(100, 1);
        assert!(!budget.is_exceeded());
        assert!(recorder.0.lock().is_empty(), "at the limit is within it");
        assert_eq!(budget.count(50, 10), 100);
        assert_eq!(budget.count(1, 0), 101);
        assert!(budget.is_exceeded());
        budget.grew(101, 7);
        assert_eq!(*recorder.0.lock(), vec![Some(7)]);
    }

    #[test]
    fn a_budget_whose_owner_is_gone_counts_on_without_evicting() {
        let evictor: Weak<dyn Evict> = Weak::<Recorder>::new();
        let budget = IndexBudget::new(1, evictor);
        assert_eq!(budget.count(10, 0), 10);
        budget.grew(10, 1);
        assert_eq!(budget.count(0, 10), 0);
    }
}
