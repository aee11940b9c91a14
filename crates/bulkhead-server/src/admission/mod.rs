//! Each tenant's share of the server: how many of its requests may be in flight, how many
//! streams it may hold open, and its turn and share of the engine pool. Limits are checked
//! before any engine work, and a tenant over one is refused without touching anything another
//! tenant uses.

mod fair_pool;
mod refusals;
mod tenant_slots;

pub use fair_pool::{FairPool, JobKind, JobPanicked, PoolSize};
pub use refusals::Refusals;
pub use tenant_slots::{Slot, TenantSlots};
