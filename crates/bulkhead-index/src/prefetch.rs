//! Graph search is a chain of dependent random memory reads; issuing the reads for a node's
//! neighbours before computing any distance lets the loads overlap instead of stalling one by one.

/// Cache line size assumed when prefetching a whole vector.
const LINE: usize = 64;

/// Hints the CPU to pull the cache lines covering `bytes` bytes at `p` into L1. A no-op on
/// targets without a prefetch instruction. Never faults, whatever the address.
#[inline(always)]
pub(crate) fn prefetch_bytes<T>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let base = p.cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // `wrapping_add` keeps the pointer arithmetic defined even past the allocation.
            let line = base.wrapping_add(off);
            // SAFETY: PREFETCHT0 is only a hint; it performs no architectural memory access and
            // cannot fault on any address, so no validity requirement applies to `line`.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(line)
            };
            off += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, bytes);
    }
}
