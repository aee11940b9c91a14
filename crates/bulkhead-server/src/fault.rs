//! Deliberate faults for proving that the isolation tests can fail. The leak probe and the
//! isolation suites are only worth something if they catch a server that leaks; building with
//! the `fault-skip-tenant-check` feature removes the check that a key's tenant is the path's
//! tenant, so `scripts/leakprobe-fault-demo.sh` can show the probe failing against it.
//! Release builds refuse the feature, so a faulty binary can't ship.

#[cfg(all(feature = "fault-skip-tenant-check", not(debug_assertions)))]
compile_error!("the fault-skip-tenant-check feature is for debug test builds only");

/// When true, any valid key may act on any tenant.
pub const SKIP_TENANT_CHECK: bool = cfg!(feature = "fault-skip-tenant-check");

/// When true, the engine skips the record-level reader check (see bulkhead-engine's
/// `fault.rs`); the server only announces it.
pub const SKIP_READER_CHECK: bool = cfg!(feature = "fault-skip-reader-check");
