//! A deliberate fault for proving that the end-user probes can fail: built with the
//! `fault-skip-reader-check` feature, a handle bound to an end user reads every record of an
//! access-controlled collection, as if the reader check were missing, so
//! `scripts/leakprobe-fault-demo.sh` can show the leak probe's `user-acl` probe failing against
//! it. Release builds refuse the feature, so a faulty binary can't ship.

#[cfg(all(feature = "fault-skip-reader-check", not(debug_assertions)))]
compile_error!("the fault-skip-reader-check feature is for debug test builds only");

/// When true, end users read records whatever their readers.
pub(crate) const SKIP_READER_CHECK: bool = cfg!(feature = "fault-skip-reader-check");
