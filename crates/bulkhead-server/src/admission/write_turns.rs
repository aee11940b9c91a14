//! How many writes of one tenant run at once. A write holds a blocking-pool thread for its
//! fsync and its index inserts; past its turns a tenant's writes wait (asynchronously, holding
//! no thread) for one of its own to finish, so a tenant's write burst can't fill the blocking
//! pool that every tenant's writes, key operations and group opens use.

use std::collections::HashMap;
use std::sync::Arc;

use bulkhead_core::TenantId;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct WriteTurns {
    per_tenant: usize,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// A running write's turn; the next waiting write of the tenant goes when it is dropped.
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl WriteTurns {
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            tenants: Mutex::default(),
        }
    }

    pub async fn wait_for_turn(&self, tenant: &TenantId) -> Turn {
        let semaphore = {
            let mut tenants = self.tenants.lock();
            // Idle tenants' semaphores are dropped as the map is touched, so it holds only
            // tenants with writes under way.
            if tenants.len() > 1024 {
                let full = self.per_tenant;
                tenants.retain(|_, s| s.available_permits() < full || Arc::strong_count(s) > 1);
            }
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        let permit = semaphore
            .acquire_owned()
            .await
            .expect("write semaphores are never closed");
        Turn { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_tenant_past_its_turns_waits_and_others_do_not() {
        let turns = WriteTurns::new(2);
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let first = turns.wait_for_turn(&a).await;
        let _second = turns.wait_for_turn(&a).await;
        let third = tokio::time::timeout(Duration::from_millis(50), turns.wait_for_turn(&a));
        assert!(third.await.is_err(), "a's third write waits");
        let _b = tokio::time::timeout(Duration::from_secs(10), turns.wait_for_turn(&b))
            .await
            .expect("b is not held up by a");
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), turns.wait_for_turn(&a))
            .await
            .expect("a's next write goes once one finishes");
    }
}
