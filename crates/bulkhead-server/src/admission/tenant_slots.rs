//! Counted per-tenant slots (requests in flight, open streams, bytes of writes being
//! received): a tenant at its limit is answered `RESOURCE_EXHAUSTED` at once, never queued, so its
//! excess costs the server nothing and other tenants' counts are untouched.

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

/// Taken slots; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    tenant: TenantId,
    count: usize,
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
        self.try_take_many(tenant, 1, limit)
    }

    /// `count` slots of `tenant` if it holds none, or if with them it holds at most `limit`:
    /// one taking more than the limit alone still gets them, as long as it is alone.
    pub fn try_take_many(
        &self,
        tenant: &TenantId,
        count: usize,
        limit: usize,
    ) -> Result<Slot, Status> {
        let mut taken = self.taken.lock();
        let held = taken.get(tenant).copied().unwrap_or(0);
        if limit == 0 || (held > 0 && held + count > limit) {
            let what = self.what;
            return Err(Status::resource_exhausted(if count == 1 {
                format!(
                    "tenant {tenant} has {held} {what} at its limit of {limit}; retry when some finish"
                )
            } else {
                format!(
                    "tenant {tenant} has {held} {what}, and {count} more would pass its limit of {limit}; retry when some finish"
                )
            }));
        }
        taken.insert(tenant.clone(), held + count);
        Ok(Slot {
            tenant: tenant.clone(),
            count,
            taken: self.taken.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock();
        if let Some(held) = taken.get_mut(&self.tenant) {
            *held -= self.count;
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

    #[test]
    fn many_are_taken_up_to_the_limit_and_one_larger_than_it_only_alone() {
        let bytes = TenantSlots::new("bytes of large writes in flight");
        let a = TenantId::new("a").unwrap();
        let first = bytes.try_take_many(&a, 60, 100).unwrap();
        let refused = bytes.try_take_many(&a, 41, 100).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains(
                "60 bytes of large writes in flight, and 41 more would pass its limit of 100"
            ),
            "{}",
            refused.message()
        );
        let second = bytes.try_take_many(&a, 40, 100).unwrap();
        drop((first, second));
        let alone = bytes.try_take_many(&a, 150, 100).unwrap();
        assert_eq!(
            bytes.try_take_many(&a, 1, 100).unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
        drop(alone);
        assert!(bytes.taken.lock().is_empty());
    }
}
