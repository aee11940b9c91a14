//! Each tenant's share of the server: how many of its requests may be in flight, how many
//! streams it may hold open, how many of its writes run at once, and its turn on the search
//! pool. Limits are checked before any engine work, and a tenant over one is refused (or, for
//! writes, waits without holding a thread) without touching anything another tenant uses.

mod fair_pool;
mod tenant_slots;
mod write_turns;

pub use fair_pool::{FairPool, JobPanicked};
pub use tenant_slots::{Slot, TenantSlots};
pub use write_turns::WriteTurns;
