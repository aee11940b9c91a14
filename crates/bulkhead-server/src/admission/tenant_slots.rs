//! Counted per-tenant slots (requests in flight, open streams): a tenant at its limit is
//! answered `RESOURCE_EXHAUSTED` at once, never queued, so its excess costs the server nothing
//! and other tenants' counts are untouched.

use std::collections::HashMap;
use std::sync::Arc;

use bulkhead_core::TenantId;
use parking_lot::Mutex;
use tonic::Status;

#[derive(Debug)]
pub struct TenantSlots {
    /// What the slots are, for the refusal: "requests in flight", "open streams".
    what: &'static str,
    taken: Arc<Mutex<HashMap<TenantId, usize>>>,
}

/// One taken slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    tenant: TenantId,
    taken: Arc<Mutex<HashMap<TenantId, usize>>>,
}

impl TenantSlots {
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            taken: Arc::default(),
        }
    }

    /// A slot of `tenant` if it holds fewer than `limit`.
    pub fn try_take(&self, tenant: &TenantId, limit: usize) -> Result<Slot, Status> {
        let mut taken = self.taken.lock();
        let held = taken.entry(tenant.clone()).or_default();
        if *held >= limit {
            let held = *held;
            return Err(Status::resource_exhausted(format!(
                "tenant {tenant} has {held} {} at its limit of {limit}; retry when some finish",
                self.what
            )));
        }
        *held += 1;
        Ok(Slot {
            tenant: tenant.clone(),
            taken: self.taken.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock();
        if let Some(held) = taken.get_mut(&self.tenant) {
            *held -= 1;
            if *held == 0 {
                taken.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_at_its_limit_is_refused_and_others_are_not() {
        let slots = TenantSlots::new("open streams");
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let first = slots.try_take(&a, 2).unwrap();
        let _second = slots.try_take(&a, 2).unwrap();
        let refused = slots.try_take(&a, 2).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused
                .message()
                .contains("2 open streams at its limit of 2")
        );
        let _other = slots.try_take(&b, 2).unwrap();
        drop(first);
        let _again = slots.try_take(&a, 2).unwrap();
        drop((_again, _second, _other));
        assert!(
            slots.taken.lock().is_empty(),
            "released slots leave no entry"
        );
    }
}
